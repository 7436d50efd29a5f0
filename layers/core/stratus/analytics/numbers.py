"""Does a sentence cite only numbers that the computation produced?"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# A number as sentences write it: 12,345.6, 1234, .5, 40%, 1.2k, 3.4 million. A sign only where no
# word or digit precedes it (2024-07-01 is three numbers, not 2024 and -7 and -1).
NUMBER = re.compile(
    r"(?<![\d.,])(?:(?<![\w])[-−])?(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?(?![\d])"
    r"(\s*(?:%|percent\b|k\b|K\b|thousand\b|m\b|M\b|million\b|bn\b|billion\b))?"
)
SCALE = {
    "%": 0.01,
    "percent": 0.01,
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "million": 1e6,
    "bn": 1e9,
    "billion": 1e9,
}


_UNIT_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
_UNIT_WORDS += " sixteen seventeen eighteen nineteen"
UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split(" "))}
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
TENS = {w: 10 * (i + 2) for i, w in enumerate(_TEN_WORDS.split(" "))}
MULTIPLIERS = {"hundred": 100, "thousand": 1e3, "million": 1e6, "billion": 1e9}
WORD = re.compile(r"[a-z]+")


def _spelled(sentence: str) -> list[tuple[float, float, float]]:
    """Numbers written in words ("three thousand", "twenty-five"), as (value, tolerance, 1.0). A lone
    "one" is left alone: it is usually a pronoun ("one of the regions")."""
    out: list[tuple[float, float, float]] = []
    words = WORD.findall(sentence.lower())
    i = 0
    while i < len(words):
        if words[i] not in UNITS and words[i] not in TENS:
            i += 1
            continue
        total, current, last_scale, j = 0.0, 0.0, 1.0, i
        while j < len(words) and (
            words[j] in UNITS or words[j] in TENS or words[j] in MULTIPLIERS or words[j] == "and"
        ):
            w = words[j]
            if w in UNITS or w in TENS:
                current += UNITS.get(w, 0) + TENS.get(w, 0)
            elif w == "hundred":
                current *= 100
            elif w in MULTIPLIERS:
                total += current * MULTIPLIERS[w]
                current, last_scale = 0.0, MULTIPLIERS[w]
            j += 1
        value = total + current
        if not (j == i + 1 and words[i] == "one"):
            # "three thousand" stands for anything that rounds to it, in thousands
            out.append((value, 0.5 * last_scale if current == 0 and last_scale > 1 else 0.0, 1.0))
        i = j
    return out


def extract(sentence: str) -> list[tuple[float, float, float]]:
    """(value, tolerance, scale) for each number written in `sentence`: a number with d decimals
    stands for anything that rounds to it."""
    out = []
    for m in NUMBER.finditer(sentence):
        whole, frac, suffix = m.group(1), m.group(2), m.group(3)
        if whole is None and frac is None:
            continue
        text = (whole or "0").replace(",", "") + (frac or "")
        value = float(text)
        if m.group(0).lstrip().startswith(("-", "−")):
            value = -value
        decimals = len(frac) - 1 if frac else 0
        scale = SCALE.get(suffix.strip().lower() if suffix else "", 1.0) if suffix else 1.0
        if suffix and suffix.strip() == "M":
            scale = 1e6
        out.append((value, 0.5 * 10**-decimals, scale))
    out.extend(_spelled(sentence))
    return out


def _agrees(value: float, tolerance: float, scale: float, n: float) -> bool:
    if not math.isfinite(n):
        return False
    slack = 1e-9 * max(1.0, abs(n))
    if abs(n - value * scale) <= tolerance * scale + slack:
        return True
    if scale == 0.01:  # "25%" may cite 25 itself, as well as 0.25
        return abs(n - value) <= tolerance + slack
    return False


def numbers_agree(sentence: str, numbers: Sequence[float]) -> bool:
    """True when every number written in `sentence` is one of `numbers`, allowing the rounding a
    sentence uses (12,345.678 may be written 12,345.68, 12346, 12.3k or 12.3 thousand; 0.25 may be
    25%). A sentence with no numbers agrees."""
    return all(any(_agrees(v, tol, scale, float(n)) for n in numbers) for v, tol, scale in extract(sentence))


def numbers_cover(sentence: str, values: Sequence[float]) -> bool:
    """True when `sentence` states every one of `values` (with the same rounding as numbers_agree): a
    phrasing of a many-row result that cites one row's number reads as if it were the whole answer."""
    cited = extract(sentence)
    return all(any(_agrees(v, tol, scale, float(n)) for v, tol, scale in cited) for n in values)
