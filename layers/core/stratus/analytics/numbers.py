"""Does a sentence cite only numbers that the computation produced?"""

from __future__ import annotations

from collections.abc import Sequence


def numbers_agree(sentence: str, numbers: Sequence[float]) -> bool:
    """True when every number written in `sentence` is one of `numbers`, allowing the rounding a
    sentence uses (12,345.678 may be written 12,345.68, 12345.7, 12.3k or 12.3 thousand; 0.25 may be
    25%). A sentence with no numbers agrees."""
    raise NotImplementedError
