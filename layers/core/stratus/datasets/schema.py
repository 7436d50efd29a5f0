"""Column types inferred while a dataset is read once, front to back.

Each column keeps the set of types every non-null value so far could be (a bit mask) and narrows it as
values arrive, so memory per column is constant however long the file is. The types are exclusive but
for integer ⊂ float, so the answer is the narrowest one left: "1", "2" is integer; add "2.5" and it is
float; add "n/a" and it is string. The empty string is null and never narrows anything.

CSV is parsed in batches, and `add_many` checks a whole batch of one column with one regular expression
over the values joined by newlines: the work stays in C, which is what makes a 50 MB file quick.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

INTEGER, FLOAT, BOOLEAN, DATETIME, STRING = "integer", "float", "boolean", "datetime", "string"
TRUE_WORDS = frozenset({"true", "yes"})

_INT, _FLOAT, _BOOL, _DATE = 1, 2, 4, 8
_ANY = _INT | _FLOAT | _BOOL | _DATE
_WS = "[ \t]*+"
# Possessive quantifiers throughout: each token's longest match is its only sensible one, so the
# engine never backtracks (which keeps a mismatch cheap). Hence "infinity" before "inf".
_TOKENS = {  # in the order `add_many` tries them: the first that fits decides
    _INT: r"[-+]?+[0-9]++",
    _FLOAT: r"[-+]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+|[-+]?+(?i:infinity|inf|nan)",
    _BOOL: r"(?i:true|false|yes|no)",
    # ISO 8601 extended: 2024-05-31, 2024-05-31T12:30, 2024-05-31 12:30:00.250+02:00, ...Z
    _DATE: r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]++)?+)?+"
    r"(?:Z|[-+](?:[01][0-9]|2[0-3])(?::?+[0-5][0-9])?+)?+)?+",
}
# What a column narrows to once a batch fits a type: an integer is also a float, nothing else overlaps.
_KEEPS = {_INT: _INT | _FLOAT, _FLOAT: _FLOAT, _BOOL: _BOOL, _DATE: _DATE}
_ONE = {bit: re.compile(f"{_WS}(?:{token}){_WS}") for bit, token in _TOKENS.items()}


def _lines_of(token: str, space: str) -> re.Pattern[str]:
    """Lines that are each empty (null) or one token."""
    line = f"(?:{space}(?:{token}){space})?"  # not ?+: CPython 3.11.2 matched " " as a line with it
    return re.compile(f"{line}(?:\n{line})*+")


# A batch is tried without surrounding blanks first (the common case, a third faster), then with.
_TIGHT = {bit: _lines_of(token, "") for bit, token in _TOKENS.items()}
_LOOSE = {bit: _lines_of(token, _WS) for bit, token in _TOKENS.items()}
# The date pattern checks ranges; these catch the days that are in range but not in the calendar.
_NO_SUCH_DAY = re.compile(f"(?m)^{_WS}[0-9]{{4}}-(?:02-3[01]|(?:0[469]|11)-31)")
_FEB_29 = re.compile(f"(?m)^{_WS}([0-9]{{4}})-02-29")
_DOUBTFUL_DAYS = ("-02-29", "-02-3", "-04-31", "-06-31", "-09-31", "-11-31")
_INT64 = range(-(2**63), 2**63)


def _in_calendar(lines: str) -> bool:
    """Whether every date at the start of a line of `lines` (already matching the pattern) exists."""
    if not any(day in lines for day in _DOUBTFUL_DAYS):  # substring search: far quicker than a regex
        return True
    if _NO_SUCH_DAY.search(lines):
        return False
    return all(calendar.isleap(int(year)) for year in _FEB_29.findall(lines))


def _text_mask(text: str, mask: int) -> int:
    for bit in _TOKENS:
        if mask & bit and not _ONE[bit].fullmatch(text):
            mask &= ~bit
    if mask & _DATE and not _in_calendar(text):
        mask &= ~_DATE
    return mask


class ColumnStats:
    """Null count and the types still possible for one column; feed it every value once."""

    __slots__ = ("_mask", "non_null", "nulls")

    def __init__(self) -> None:
        self.nulls = 0
        self.non_null = 0
        self._mask = _ANY

    def add(self, value: object) -> None:
        """One value: text from CSV, or whatever JSON parsed (None, bool, int, float, str, list, dict)."""
        if value is None or value == "":
            self.nulls += 1
            return
        self.non_null += 1
        if not self._mask:
            return
        if isinstance(value, str):
            self._mask = _text_mask(value, self._mask)
        elif isinstance(value, bool):
            self._mask &= _BOOL
        elif isinstance(value, int):
            self._mask &= _INT | _FLOAT
        elif isinstance(value, float):
            self._mask &= _FLOAT
        else:
            self._mask = 0  # nested objects and arrays are kept, as strings would be

    def add_many(self, values: Sequence[str]) -> None:
        """A batch of text values of this column; the same result as `add` on each, much faster."""
        count = len(values)
        nulls = values.count("")
        self.nulls += nulls
        self.non_null += count - nulls
        if not self._mask or nulls == count:
            return
        joined = "\n".join(values)
        if joined.count("\n") != count - 1:  # a value spans lines: the joined text would mislead
            for value in values:
                if value:
                    self._mask = _text_mask(value, self._mask)
            return
        # At least one value is non-null, so at most one type (or integer and float) can fit them all.
        for bit in _TOKENS:
            if self._mask & bit and (_TIGHT[bit].fullmatch(joined) or _LOOSE[bit].fullmatch(joined)):
                if bit == _DATE and not _in_calendar(joined):
                    break
                self._mask &= _KEEPS[bit]
                return
        self._mask = 0

    @property
    def type(self) -> str:
        """The narrowest type all non-null values fit; a column of nulls only is string."""
        mask = self._mask if self.non_null else 0
        if mask & _BOOL:
            return BOOLEAN
        if mask & _INT:
            return INTEGER
        if mask & _FLOAT:
            return FLOAT
        if mask & _DATE:
            return DATETIME
        return STRING


def infer_type(values: Iterable[object]) -> str:
    """The type of a column given all its values (convenience for small inputs and tests)."""
    stats = ColumnStats()
    for value in values:
        stats.add(value)
    return stats.type


def convert(text: str, type_: str) -> Any:
    """A CSV value as the JSON value of its column's type; datetimes stay ISO text. A value that does
    not fit the type (the types came from another version of the file) stays text."""
    if text == "":
        return None
    try:
        if type_ == INTEGER:
            number = int(text)
            return number if number in _INT64 else text  # BSON stores 64-bit integers at most
        if type_ == FLOAT:
            real = float(text)
            return real if math.isfinite(real) else None
    except ValueError:
        return text
    if type_ == BOOLEAN:
        return text.strip().lower() in TRUE_WORDS
    return text


def jsonable(value: Any) -> Any:
    """A parsed JSON value made storable: huge integers as text, NaN and infinities as null."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return str(value)
