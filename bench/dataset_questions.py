"""Dataset questions on a 100,000-row CSV: `stratus.analytics.Assistant.answer` (parse the question,
compile the plan, run it on the locked-down DuckDB, write the sentence and the chart) against the same
SQL with the same parameters run directly on a DuckDB connection holding the same table.

Also: profiling the file (`profile_table`), and the first answer of a fresh Assistant, which loads the
file. Usage: .venv/bin/python bench/dataset_questions.py [rows] [repeats]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.analytics_data, the generator

from stratus.analytics import Assistant, engine, profile_table
from tests.analytics_data import write_sales

QUESTIONS = [
    "What is the average revenue for Q3 2024 in the South?",
    "Total revenue by region",
    "Monthly revenue in 2024",
    "Which product had the highest revenue in the last 30 days?",
    "How many orders had more than 15 units?",
]


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(samples: list[float], q: float = 0.5) -> str:
    ordered = sorted(samples)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as tmp:
        path = write_sales(Path(tmp) / "sales.csv", rows=rows)
        size = path.stat().st_size / 1e6
        profile_s = timed(lambda: profile_table(path), 3)
        profile = profile_table(path)
        cold = timed(lambda: Assistant(profile, path).answer(QUESTIONS[0]), 3)
        assistant = Assistant(profile, path)
        assistant.answer(QUESTIONS[0])  # loads the table
        direct = engine.connect()
        engine.load(direct, path, "csv")
        engine.convert_dates(direct, {"date": "%Y-%m-%d"})
        print(f"{rows:,} rows, {size:.1f} MB CSV; {repeats} repeats per question (after one warm-up)")
        print(f"profile_table: median {statistics.median(profile_s) * 1000:.0f} ms")
        print(
            f"fresh Assistant, first answer (loads the file): median {statistics.median(cold) * 1000:.0f} ms\n"
        )
        print(
            "| question | answer p50 (ms) | answer p95 (ms) | same SQL on DuckDB p50 (ms) | overhead p50 (ms) |"
        )
        print("| --- | --- | --- | --- | --- |")
        all_answers: list[float] = []
        for question in QUESTIONS:
            answer = assistant.answer(question)
            assert answer.kind == "answer" and answer.query is not None, answer.text
            sql, params = answer.query, answer.params
            direct.execute(sql, params).fetchall()
            got = timed(lambda q=question: assistant.answer(q), repeats)  # type: ignore[misc]
            base = timed(lambda s=sql, p=params: direct.execute(s, p).fetchall(), repeats)  # type: ignore[misc]
            all_answers += got
            overhead = statistics.median(got) - statistics.median(base)
            print(f"| {question} | {ms(got)} | {ms(got, 0.95)} | {ms(base)} | {overhead * 1000:.1f} |")
        print(
            f"\nall questions: answer p50 {ms(all_answers)} ms, p95 {ms(all_answers, 0.95)} ms (target p50 < 1000 ms)"
        )
        direct.close()
        assistant.close()


if __name__ == "__main__":
    main()
