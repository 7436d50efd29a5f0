"""EventBridge event-pattern matching, so the local bus routes events exactly as the AWS rules will.

Supported: exact values (any of a list), nested objects, `prefix`, `suffix`, `wildcard`, `anything-but`
(value, list, `prefix`, `suffix`, `equals-ignore-case`), `numeric` ranges, `exists`, `equals-ignore-case`
and `$or`. Like EventBridge, a pattern value must be a list (of matchers) or an object (nested pattern),
and when the event's value is an array the field matches if any element does.

Patterns are compiled once into predicates: invalid patterns fail at `compile_pattern` (subscribe time),
not on the first event that happens to reach the bad branch.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
# One matcher applied to one leaf value; `present` is False when the event lacks the field.
_LeafTest = Callable[[Any, bool], bool]

_MISSING = object()
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
}


def matches(pattern: Mapping[str, Any], event_envelope: Mapping[str, Any]) -> bool:
    """True when `event_envelope` (see `Event.envelope()`) matches the EventBridge `pattern`."""
    return compile_pattern(pattern)(event_envelope)


def compile_pattern(pattern: Mapping[str, Any]) -> Predicate:
    """Compile a pattern into a predicate; raises ValueError for patterns EventBridge would reject."""
    if not isinstance(pattern, Mapping):
        raise ValueError("an event pattern must be an object")
    return _compile_object(pattern)


def _compile_object(pattern: Mapping[str, Any]) -> Predicate:
    tests: list[Predicate] = []
    for key, value in pattern.items():
        if key == "$or":
            tests.append(_compile_or(value))
        elif isinstance(value, Mapping):
            tests.append(_nested(key, _compile_object(value)))
        elif isinstance(value, list):
            tests.append(_field(key, [_compile_matcher(m) for m in value]))
        else:
            raise ValueError(f"pattern value for {key!r} must be a list or an object, got {value!r}")
    return lambda obj: all(test(obj) for test in tests)


def _compile_or(alternatives: Any) -> Predicate:
    if not isinstance(alternatives, list) or len(alternatives) < 2:
        raise ValueError("$or needs a list of at least two patterns")
    compiled = [compile_pattern(alt) for alt in alternatives]
    return lambda obj: any(test(obj) for test in compiled)


def _nested(key: str, inner: Predicate) -> Predicate:
    def test(obj: Mapping[str, Any]) -> bool:
        value = obj.get(key, _MISSING)
        if isinstance(value, list):
            return any(inner(item) for item in value if isinstance(item, Mapping))
        # A missing or scalar field has no nested keys: only `exists: false` inside can match it.
        return inner(value if isinstance(value, Mapping) else {})

    return test


def _field(key: str, leaf_tests: list[_LeafTest]) -> Predicate:
    def test(obj: Mapping[str, Any]) -> bool:
        value = obj.get(key, _MISSING)
        if value is _MISSING:
            return any(leaf(None, False) for leaf in leaf_tests)
        values = value if isinstance(value, list) else [value]
        return any(leaf(v, True) for v in values for leaf in leaf_tests)

    return test


def _compile_matcher(matcher: Any) -> _LeafTest:
    if matcher is None or isinstance(matcher, (str, int, float, bool)):
        return lambda value, present: present and _same(value, matcher)
    if not isinstance(matcher, Mapping) or len(matcher) != 1:
        raise ValueError(f"invalid matcher {matcher!r}: use a value or an object with one operator")
    ((op, arg),) = matcher.items()
    if op == "exists":
        if not isinstance(arg, bool):
            raise ValueError("exists takes true or false")
        return lambda _value, present: present is arg
    if op == "anything-but":
        excluded = _compile_anything_but(arg)
        return lambda value, present: present and not excluded(value)
    if op == "numeric":
        in_range = _compile_numeric(arg)
        return lambda value, present: present and _is_number(value) and in_range(value)
    string_test = _compile_string_op(op, arg)
    return lambda value, present: present and isinstance(value, str) and string_test(value)


def _compile_string_op(op: str, arg: Any) -> Callable[[str], bool]:
    """prefix / suffix (optionally {"equals-ignore-case": ...}), equals-ignore-case and wildcard."""
    if op in ("prefix", "suffix"):
        fold = False
        if isinstance(arg, Mapping) and set(arg) == {"equals-ignore-case"}:
            fold, arg = True, arg["equals-ignore-case"]
        if not isinstance(arg, str):
            raise ValueError(f"{op} takes a string")
        needle = arg.casefold() if fold else arg
        if op == "prefix":
            return lambda s: (s.casefold() if fold else s).startswith(needle)
        return lambda s: (s.casefold() if fold else s).endswith(needle)
    if op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise ValueError("equals-ignore-case takes a string")
        folded = arg.casefold()
        return lambda s: s.casefold() == folded
    if op == "wildcard":
        if not isinstance(arg, str):
            raise ValueError("wildcard takes a string")
        regex = re.compile(".*".join(re.escape(part) for part in arg.split("*")), re.DOTALL)
        return lambda s: regex.fullmatch(s) is not None
    raise ValueError(f"unsupported pattern operator {op!r}")


def _compile_anything_but(arg: Any) -> Callable[[Any], bool]:
    """The predicate for what `anything-but` excludes."""
    if isinstance(arg, list):
        if not arg or not all(_is_scalar(a) for a in arg):
            raise ValueError("anything-but takes a non-empty list of values")
        return lambda value: any(_same(value, a) for a in arg)
    if _is_scalar(arg):
        return lambda value: _same(value, arg)
    if isinstance(arg, Mapping) and len(arg) == 1:
        ((op, inner),) = arg.items()
        if op == "equals-ignore-case" and isinstance(inner, list):
            folded = {str(i).casefold() for i in inner}
            return lambda value: isinstance(value, str) and value.casefold() in folded
        if op in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            test = _compile_string_op(op, inner)
            return lambda value: isinstance(value, str) and test(value)
    raise ValueError(f"invalid anything-but argument {arg!r}")


def _compile_numeric(arg: Any) -> Callable[[float], bool]:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise ValueError("numeric takes [op, number, ...] pairs")
    checks: list[tuple[Callable[[float, float], bool], float]] = []
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS or not _is_number(bound):
            raise ValueError(f"invalid numeric condition {op!r} {bound!r}")
        checks.append((_NUMERIC_OPS[op], float(bound)))
    return lambda value: all(compare(float(value), bound) for compare, bound in checks)


def _is_number(value: Any) -> bool:
    # bool is an int in Python, but JSON true is not a number to EventBridge.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _same(value: Any, expected: Any) -> bool:
    """JSON equality: 5 == 5.0, but true != 1 and "5" != 5."""
    if _is_number(value) and _is_number(expected):
        return bool(value == expected)
    return type(value) is type(expected) and bool(value == expected)
