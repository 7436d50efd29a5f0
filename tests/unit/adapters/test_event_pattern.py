"""EventBridge pattern matching, as the local bus uses it: the rules must route as they will on AWS."""

from __future__ import annotations

from typing import Any

import pytest

from stratus.adapters.event_pattern import compile_pattern, matches
from stratus.ports.events import Event

ENVELOPE = Event(
    "Stratus Job State Change",
    {
        "job_id": "job-42",
        "state": "failed",
        "progress": 75,
        "ratio": 0.5,
        "flag": True,
        "reason": None,
        "tags": ["gpu", "nightly"],
        "owner": {"name": "Alice", "plan": "pro"},
        "runs": [{"state": "ok"}, {"state": "oom"}],
    },
).envelope()


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"source": ["stratus.jobs"]},
        {"detail-type": ["other", "Stratus Job State Change"]},
        {"detail": {"state": ["failed"], "owner": {"plan": ["pro"]}}},
        {"detail": {"job_id": [{"prefix": "job-"}]}},
        {"detail": {"job_id": [{"suffix": "-42"}]}},
        {"detail": {"owner": {"name": [{"prefix": {"equals-ignore-case": "ALI"}}]}}},
        {"detail": {"owner": {"name": [{"equals-ignore-case": "alice"}]}}},
        {"detail": {"job_id": [{"wildcard": "job-*2"}]}},
        {"detail": {"state": [{"anything-but": "completed"}]}},
        {"detail": {"state": [{"anything-but": ["completed", "stopped"]}]}},
        {"detail": {"state": [{"anything-but": {"prefix": "comp"}}]}},
        {"detail": {"progress": [{"numeric": [">", 50, "<=", 75]}]}},
        {"detail": {"progress": [{"numeric": ["=", 75.0]}]}},
        {"detail": {"ratio": [{"numeric": [">=", 0.5]}]}},
        {"detail": {"progress": [75]}},
        {"detail": {"flag": [True]}},
        {"detail": {"reason": [None]}},
        {"detail": {"job_id": [{"exists": True}], "missing": [{"exists": False}]}},
        {"detail": {"tags": ["nightly"]}},  # an array matches when any element does
        {"detail": {"runs": {"state": ["oom"]}}},  # and so does an array of objects
        {"$or": [{"detail": {"state": ["completed"]}}, {"detail": {"progress": [{"numeric": [">", 10]}]}}]},
    ],
)
def test_matching_patterns(pattern: dict[str, Any]) -> None:
    assert matches(pattern, ENVELOPE)


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": ["aws.batch"]},
        {"detail": {"state": ["FAILED"]}},  # exact matching is case-sensitive
        {"detail": {"job_id": [{"prefix": "JOB-"}]}},
        {"detail": {"state": [{"anything-but": "failed"}]}},
        {"detail": {"state": [{"anything-but": ["failed", "stopped"]}]}},
        {"detail": {"missing": [{"anything-but": "x"}]}},  # anything-but needs the field present
        {"detail": {"progress": [{"numeric": [">", 75]}]}},
        {"detail": {"progress": ["75"]}},  # a string is not a number
        {"detail": {"flag": [1]}},  # nor is true the number 1
        {"detail": {"job_id": [{"numeric": [">", 0]}]}},
        {"detail": {"job_id": [{"exists": False}]}},
        {"detail": {"missing": [{"exists": True}]}},
        {"detail": {"missing": [None]}},  # null matches a null value, not an absent field
        {"detail": {"tags": ["daily"]}},
        {"detail": {"owner": {"name": ["Bob"]}}},
        {"detail": {"state": ["failed"], "progress": [10]}},  # every field must match
        {"$or": [{"detail": {"state": ["completed"]}}, {"detail": {"progress": [1]}}]},
    ],
)
def test_non_matching_patterns(pattern: dict[str, Any]) -> None:
    assert not matches(pattern, ENVELOPE)


@pytest.mark.parametrize(
    "pattern",
    [
        ["not", "an", "object"],
        {"source": "stratus.jobs"},  # a value must be a list (or a nested object)
        {"detail": {"n": [{"numeric": [">"]}]}},
        {"detail": {"n": [{"numeric": ["~", 1]}]}},
        {"detail": {"n": [{"numeric": [">", "1"]}]}},
        {"detail": {"n": [{"exists": "yes"}]}},
        {"detail": {"n": [{"prefix": 1}]}},
        {"detail": {"n": [{"anything-but": []}]}},
        {"detail": {"n": [{"anything-but": {"numeric": [">", 1]}}]}},
        {"detail": {"n": [{"regex": ".*"}]}},
        {"detail": {"n": [{"prefix": "a", "suffix": "b"}]}},
        {"$or": [{"source": ["a"]}]},
        {"$or": {"source": ["a"]}},
    ],
)
def test_invalid_patterns_fail_at_compile_time(pattern: Any) -> None:
    with pytest.raises(ValueError):
        compile_pattern(pattern)


def test_a_compiled_pattern_is_reusable() -> None:
    predicate = compile_pattern({"detail": {"state": ["failed"]}})
    assert predicate(ENVELOPE)
    assert not predicate({**ENVELOPE, "detail": {"state": "completed"}})
    assert not predicate({"source": "x"})
