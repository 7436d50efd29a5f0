"""What the assistant returns for one question."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AnswerKind = Literal["answer", "clarify", "unanswerable"]


@dataclass
class Answer:
    """One question's outcome.

    - `kind`: "answer" (a query ran), "clarify" (a column or value was unknown or ambiguous: `text`
      asks back and names the columns the dataset has) or "unanswerable" (`text` says what is missing;
      no number is invented).
    - `text`: a correct template sentence, built from the computed numbers. A model may rephrase it,
      as long as `numbers_agree(its_sentence, answer.numbers)`; otherwise use `text`.
    - `plan`: the typed plan (JSON), to pass back as `previous_plan` for a follow-up; None when no plan
      could be made.
    - `query` / `params`: the SQL that ran, values as `?` parameters, and the parameters, in order.
    - `columns` / `rows`: the result, JSON-ready (dates as ISO strings, decimals as floats).
    - `chart`: a Vega-Lite v5 spec with the values inline, or None (one number, or no result).
    - `numbers`: every number a phrasing may cite (the result's numbers and the plan's own: a year, a
      top-N, a filter bound).
    """

    kind: AnswerKind
    text: str
    plan: dict[str, Any] | None = None
    query: str | None = None
    params: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    numbers: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
