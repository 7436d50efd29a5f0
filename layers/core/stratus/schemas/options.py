"""A bounded option with its default, written once in a capability's spec and read by both the API's
request schemas (Field(ge=..., le=...)) and the worker's own validation. Imports nothing heavy."""

from __future__ import annotations

from typing import NamedTuple


class IntOption(NamedTuple):
    default: int
    ge: int
    le: int


class FloatOption(NamedTuple):
    default: float
    ge: float
    le: float
