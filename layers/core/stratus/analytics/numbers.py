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
