"""Cold-start import cost of the API Lambda handler, side by side with baselines.

Each sample is a fresh interpreter (what a new Lambda container pays): it times the import statement
inside the child (`import`, seconds) and the whole child process from the parent (`process`, seconds:
interpreter start-up and teardown included; teardown is not part of a Lambda cold start). The handler row imports functions/api/app.py, which also builds the
container (settings, boto3 clients, MongoDB client, FastAPI app), with STRATUS_RUNTIME=aws and fake
resource names: nothing is contacted. Baselines that are not installed are reported as such.

Usage: .venv/bin/python bench/cold_import.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "functions" / "api"

# What the API Lambda's environment provides in AWS, with fake values (see template.yaml Globals).
AWS_ENV = {
    "STRATUS_RUNTIME": "aws",
    "STRATUS_ENV": "development",
    "STRATUS_LOG_LEVEL": "WARNING",
    "STRATUS_STATE_DIR": str(Path(tempfile.gettempdir()) / "stratus-bench"),
    "MONGODB_URI": "mongodb://localhost:1/?serverSelectionTimeoutMS=100",
    "STRATUS_ARTIFACTS_BUCKET": "stratus-bench-artifacts",
    "STRATUS_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stratus-bench-jobs",
    "STRATUS_EVENT_BUS_NAME": "stratus-bench",
    "STRATUS_JOB_BACKEND": "sagemaker",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
}
HEAVY = ("torch", "transformers", "diffusers", "sagemaker", "pandas", "numpy")


@dataclass(frozen=True)
class Case:
    label: str
    statement: str
    # The top-level module that must be importable, or None for the handler (always measured).
    requires: str | None


BASELINE = "bare fastapi+mangum+pymongo+boto3"
HANDLER = "functions/api/app.py handler"

CASES = (
    Case("python -c pass (interpreter)", "pass", None),
    Case("import fastapi", "import fastapi", "fastapi"),
    Case("import boto3", "import boto3", "boto3"),
    Case("import pymongo", "import pymongo", "pymongo"),
    Case("import torch", "import torch", "torch"),
    # The baseline the API handler is held to (target: at most 1.15x of this).
    Case(BASELINE, "import fastapi, mangum, pymongo, boto3", "mangum"),
    Case(HANDLER, "import app", None),
)


def _child_code(statement: str) -> str:
    return (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(API_DIR)!r})\n"
        "started = time.perf_counter()\n"
        f"{statement}\n"
        "elapsed = time.perf_counter() - started\n"
        f"heavy = sorted(m for m in {list(HEAVY)!r} if m in sys.modules)\n"
        "print(json.dumps({'import_s': elapsed, 'modules': len(sys.modules), 'heavy': heavy}))\n"
    )


def _env() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(AWS_ENV)
    return env


@dataclass(frozen=True)
class Result:
    label: str
    import_s: list[float]
    process_s: list[float]
    modules: int
    heavy: list[str]


def measure(case: Case, runs: int) -> Result | None:
    if case.requires is not None and importlib.util.find_spec(case.requires) is None:
        return None
    code, env = _child_code(case.statement), _env()
    # One unmeasured run first, so every measured run finds compiled bytecode (as a deployed layer would).
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True)
    import_s, process_s = [], []
    report: dict[str, object] = {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        process_s.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{case.label} failed:\n{done.stderr}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        import_s.append(float(report["import_s"]))  # type: ignore[arg-type]
    modules = report.get("modules", 0)
    heavy = report.get("heavy", [])
    return Result(
        case.label,
        import_s,
        process_s,
        int(modules) if isinstance(modules, int) else 0,
        [str(m) for m in heavy] if isinstance(heavy, list) else [],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per case (median reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    results: dict[str, Result | None] = {case.label: measure(case, args.runs) for case in CASES}

    if args.json:
        print(
            json.dumps(
                {
                    label: None
                    if r is None
                    else {
                        "import_median_s": statistics.median(r.import_s),
                        "process_median_s": statistics.median(r.process_s),
                        "modules": r.modules,
                        "heavy_modules": r.heavy,
                    }
                    for label, r in results.items()
                },
                indent=2,
            )
        )
        return

    print(f"python {sys.version.split()[0]}, {args.runs} fresh interpreters per row, medians (min-max)")
    header = f"{'case':<32}{'import (s)':>24}{'process (s)':>24}{'modules':>9}  heavy ML modules"
    print(header)
    print("-" * len(header))
    for label, r in results.items():
        if r is None:
            print(f"{label:<32}{'not installed':>24}")
            continue
        imp = f"{statistics.median(r.import_s):.3f} ({min(r.import_s):.3f}-{max(r.import_s):.3f})"
        proc = f"{statistics.median(r.process_s):.3f} ({min(r.process_s):.3f}-{max(r.process_s):.3f})"
        print(f"{label:<32}{imp:>24}{proc:>24}{r.modules:>9}  {', '.join(r.heavy) or '-'}")
    base, handler = results.get(BASELINE), results.get(HANDLER)
    if base is not None and handler is not None:
        ratio = statistics.median(handler.import_s) / statistics.median(base.import_s)
        print(f"handler / baseline import time: {ratio:.2f}x (target 1.15x)")


if __name__ == "__main__":
    main()
