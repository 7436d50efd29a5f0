"""Dataset ingestion throughput: `stratus.datasets.ingest.analyse` against `pandas.read_csv` on the same
~50 MB CSV (integer, float, boolean, date and text columns from a seeded RNG), plus the latency of
reading one page of rows deep in the file with `read_rows`.

analyse() does more than parse (type inference, null counts, preview), pandas does less checking
(ragged rows, strict quoting): the comparison says what the streaming pure-Python path costs.
Usage: .venv/bin/python bench/dataset_parse.py [size_mb] [repeats]
"""

from __future__ import annotations

import csv
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from stratus.datasets.formats import DatasetFormat
from stratus.datasets.ingest import analyse, read_rows

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
]
REGIONS = ["North", "South", "East", "West"]


def generate(path: Path, size_mb: float, seed: int = 7) -> int:
    """Write rows until the file reaches `size_mb`; returns the number of data rows."""
    rng = random.Random(seed)
    target = int(size_mb * 1024 * 1024)
    start = date(2020, 1, 1)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "day", "region", "units", "price", "score", "active", "comment"])
        while f.tell() < target:
            block = [
                [
                    rows + i,
                    (start + timedelta(days=rng.randrange(2000))).isoformat(),
                    rng.choice(REGIONS),
                    rng.randrange(1000),
                    round(rng.uniform(0, 500), 2),
                    "" if rng.random() < 0.05 else f"{rng.gauss(0, 1):.6f}",
                    rng.choice(("true", "false")),
                    " ".join(rng.choices(WORDS, k=rng.randrange(3, 12))),
                ]
                for i in range(10_000)
            ]
            writer.writerows(block)
            rows += len(block)
    return rows


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time over `repeats` runs, and the last result."""
    samples, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), result


# Run in a fresh interpreter so that one parser's memory cannot hide the other's: the peak resident
# set while parsing, less the resident set once imports are done (pandas' C parser allocates outside
# Python's heap, so tracemalloc would not see it). Linux: /proc and ru_maxrss in KiB.
PROBE = """
import resource, sys
from pathlib import Path
path = Path(sys.argv[2])
if sys.argv[1] == "pandas":
    import pandas as pd
    run = lambda: pd.read_csv(path)
else:
    from stratus.datasets.formats import DatasetFormat
    from stratus.datasets.ingest import analyse
    run = lambda: analyse(path, DatasetFormat.CSV)
status = Path("/proc/self/status").read_text()
before = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmRSS:")))
run()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def peak_rss_mib(parser: str, path: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, parser, str(path)], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def line(name: str, seconds: float, mb: float, peak: float) -> str:
    return f"{name:<22}{seconds:>10.2f}{mb / seconds:>10.1f}{peak:>18.1f}"


def main() -> None:
    size_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 50.0
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        rows = generate(path, size_mb)
        mb = path.stat().st_size / 1024**2
        print(f"file: {mb:.1f} MB, {rows} rows x 8 columns; wall time is the median of {repeats} runs\n")
        print(f"{'parser':<22}{'wall s':>10}{'MB/s':>10}{'peak RSS +MiB':>18}")

        ours, summary = timed(lambda: analyse(path, DatasetFormat.CSV), repeats)
        assert summary.row_count == rows
        print(line("stratus analyse()", ours, mb, peak_rss_mib("stratus", path)))
        try:
            import pandas as pd
        except ImportError:
            print(f"{'pandas.read_csv':<22}  pandas not installed (pip install pandas)")
        else:
            theirs, frame = timed(lambda: pd.read_csv(path), repeats)
            assert len(frame) == rows
            print(line("pandas.read_csv", theirs, mb, peak_rss_mib("pandas", path)))
            print(f"\nanalyse() takes {ours / theirs:.1f}x the time of pandas.read_csv")
        print("column types:", {c.name: c.type for c in summary.columns})

        offset = min(100_000, max(rows - 100, 0))
        page_s, page = timed(lambda: read_rows(path, DatasetFormat.CSV, offset=offset, limit=100), repeats)
        assert len(page) == 100
        assert int(page[0]["id"]) == offset
        print(f"read_rows(offset={offset}, limit=100): {page_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
