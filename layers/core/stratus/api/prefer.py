"""RFC 7240's `Prefer` header as the API reads it on routes that start work: `wait=N` to wait up to N
seconds for the answer, `respond-async` for a 202 at once (NLP and custom tasks, perception, media)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Header

_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+(?:\.\d+)?)")

PreferHeader = Annotated[
    str | None,
    Header(
        alias="Prefer", max_length=200, description="`wait=N` to wait up to N seconds, or `respond-async`"
    ),
]


def wait_of(prefer: str | None) -> float | None:
    """Seconds the client will wait (0 for respond-async); None when it did not say."""
    if not prefer:
        return None
    if "respond-async" in prefer:
        return 0.0
    match = _WAIT.search(prefer)
    return float(match.group(1)) if match else None
