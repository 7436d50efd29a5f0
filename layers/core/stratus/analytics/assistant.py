"""Questions in, computed answers out."""

from __future__ import annotations

import os
from typing import Any

from stratus.analytics.answer import Answer
from stratus.analytics.profile import DatasetProfile


class Assistant:
    """Answers questions about one table. Build it once per dataset (the table is loaded into an
    in-memory, locked-down DuckDB on first use) and call `answer` per question; pass the previous
    answer's `plan` as `previous_plan` for a follow-up ("and for the South?", "by month instead")."""

    def __init__(self, profile: DatasetProfile, table_path: str | os.PathLike[str], fmt: str = "csv") -> None:
        self.profile = profile
        self.table_path = os.fspath(table_path)
        self.fmt = fmt

    def answer(self, question: str, previous_plan: dict[str, Any] | None = None) -> Answer:
        raise NotImplementedError
