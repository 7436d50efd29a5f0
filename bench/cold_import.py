"""Cold-start import cost of every Lambda handler, side by side with the bare baseline, in one run.

Each sample is a fresh interpreter (what a new Lambda container pays). It times the import statement
inside the child, in wall time and in CPU time (`time.process_time`: on a shared machine, wall time
also counts the time other processes hold the CPU), and the whole child process from the parent
(`process`: interpreter start-up and teardown included; teardown is not part of a Lambda cold start).

A handler row imports functions/<name>/app.py, which also builds the container (settings, boto3
clients, MongoDB client and, for the HTTP Lambdas, the group's FastAPI app), with STRATUS_RUNTIME=aws
and fake resource names: nothing is contacted. The core layer is this checkout's layers/core. The
other Lambdas (queue, events, schedule, WebSocket) also create the database's indexes at import, so
they get a temporary embedded database (or --mongodb-uri) and are shown for information.

The HTTP Lambdas (one per capability group) are held to at most 1.15x the baseline,
`import fastapi, mangum, pymongo, boto3`. A reference row shows what a one-route FastAPI app with a
settings class pays on the same imports. Services are built on first use, so each HTTP row also shows
the CPU time of building what its first authenticated request needs (`1st use`), after the import.

Samples are taken round-robin (every case once per round). The rows that import the whole baseline (the
HTTP Lambdas and the reference) are paired inside each child: it imports the baseline's four packages
first, timed on their own, then the rest of the row, and the sample's ratio is the whole import over
its own baseline part; the row's ratio is the median of those. On a small shared machine the CPU time of
one import moves by a third between processes seconds apart (clock, cache, neighbours), so pairing in
one process measures the Lambda's own share far more steadily than pairing with another process; the
Lambda imports the same modules in either order. The other rows' ratios are the median over rounds of
the row's sample / the baseline row's sample of that round (`x base` says which with `p` and `r`).

With --no-bytecode every child compiles what it imports from source (an empty PYTHONPYCACHEPREFIX):
what a cold start paid when SAM's python builder shipped the layer without bytecode, before
layers/core/Makefile compiled it.

Usage: .venv/bin/python bench/cold_import.py [--runs N] [--json] [--mongodb-uri URI] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "core"
FUNCTIONS = ROOT / "functions"
TARGET = 1.15

# What the Lambdas' environment provides in AWS, with fake values (see template.yaml Globals).
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
BASELINE = "baseline: fastapi+mangum+pymongo+boto3"
BASELINE_STATEMENT = "import fastapi, mangum, pymongo, boto3"
FLOOR = "reference: 1-route app + settings"
FLOOR_APP = """import fastapi, mangum, pymongo, boto3, pydantic, pydantic_settings
class Settings(pydantic_settings.BaseSettings):
    region: str = "us-east-1"
settings = Settings()
class Message(pydantic.BaseModel):
    message: str
app = fastapi.FastAPI()
@app.get("/", response_model=Message)
async def welcome() -> Message:
    return Message(message="hello")
handler = mangum.Mangum(app, lifespan="off")"""


@dataclass(frozen=True)
class Case:
    label: str
    statement: str
    requires: str | None = None  # a top-level module that must be installed (reference rows)
    function_dir: Path | None = None  # put first on sys.path, as Lambda does with the code directory
    compared: bool = False  # shown as a ratio to the baseline
    # Imports the baseline's packages first, timed on their own: its ratio is paired in the process.
    paired: bool = False
    http: bool = False  # held to TARGET x baseline
    # The other Lambdas create the database's indexes at import (container.bootstrap): they get a real,
    # local database, and their rows are import + bootstrap.
    needs_database: bool = False


@dataclass
class Result:
    case: Case
    import_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    # The baseline's part of each sample (paired rows): wall and CPU time.
    base_import_s: list[float] = field(default_factory=list)
    base_cpu_s: list[float] = field(default_factory=list)
    first_use_cpu_s: list[float] = field(default_factory=list)
    process_s: list[float] = field(default_factory=list)
    modules: int = 0
    heavy: list[str] = field(default_factory=list)
    error: str | None = None


def _template_function_dirs() -> list[str]:
    """The CodeUri directories of template.yaml's functions, in template order."""
    template = ROOT / "template.yaml"
    if not template.exists():
        return []
    return re.findall(r"^\s+CodeUri:\s*functions/([\w-]+)/?\s*$", template.read_text(), re.MULTILINE)


def _groups() -> tuple[str, ...]:
    sys.path.insert(0, str(CORE))
    from stratus.capabilities import GROUPS

    return GROUPS


def _is_http(app_py: Path) -> bool:
    return "http_lambda(" in app_py.read_text()


def handler_cases() -> tuple[list[Case], list[str]]:
    """One case per Lambda: the HTTP Lambdas of stratus.capabilities.GROUPS first, then the other
    template functions; also the template's CodeUris that have no app.py here (reported, not measured)."""
    names = [*_groups()]
    names += [n for n in _template_function_dirs() if n not in names]
    names += sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py") if p.parent.name not in names)
    cases, missing = [], []
    for name in names:
        app_py = FUNCTIONS / name / "app.py"
        if not app_py.exists():
            missing.append(name)
            continue
        http = _is_http(app_py)
        label = f"functions/{name}" + (" (HTTP)" if http else " (+ bootstrap)")
        cases.append(
            Case(
                label,
                "import app",
                function_dir=app_py.parent,
                compared=True,
                http=http,
                paired=http,
                needs_database=not http,
            )
        )
    cases.sort(key=lambda c: not c.http)
    return cases, missing


REFERENCE = (
    Case("python -c pass (interpreter)", "pass"),
    Case("import fastapi", "import fastapi", "fastapi"),
    Case("import boto3", "import boto3", "boto3"),
    Case("import pymongo", "import pymongo", "pymongo"),
    Case("import torch", "import torch", "torch"),
    Case(BASELINE, BASELINE_STATEMENT, "mangum"),
    # What any HTTP handler on this stack pays beyond the baseline's imports before its own code: a
    # settings class, FastAPI's route building (which imports pydantic.v1 to reject v1 models) and Mangum.
    Case(FLOOR, FLOOR_APP, "pydantic_settings", compared=True, paired=True),
)


# What an HTTP Lambda's first authenticated request builds before its first database round trip: the
# auth service (token checks), the rate limiter, the logger and the metrics. The services are built on
# first use, so this is the part of a cold start that comes after the import.
FIRST_USE = """container = app.app.state.container
container.auth, container.rate_limiter, container.logger
container.metrics.observe_request("GET", "/", 200, 0.0)"""


def _child_code(case: Case) -> str:
    path = "" if case.function_dir is None else f"sys.path.insert(0, {str(case.function_dir)!r})\n"
    first_use = f"{FIRST_USE}\n" if case.http else ""
    base = f"{BASELINE_STATEMENT}\n" if case.paired else ""
    return (
        "import json, sys, time\n"
        f"{path}"
        "started, cpu_started = time.perf_counter(), time.process_time()\n"
        f"{base}"
        "base, base_cpu = time.perf_counter() - started, time.process_time() - cpu_started\n"
        f"{case.statement}\n"
        "elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started\n"
        f"heavy = sorted(m for m in {list(HEAVY)!r} if m in sys.modules)\n"
        "modules = len(sys.modules)\n"
        "cpu_started = time.process_time()\n"
        f"{first_use}"
        "first_use = time.process_time() - cpu_started\n"
        "print(json.dumps({'import_s': elapsed, 'cpu_s': cpu, 'base_import_s': base, 'base_cpu_s': base_cpu,"
        " 'first_use_cpu_s': first_use,"
        " 'modules': modules, 'heavy': heavy}))\n"
    )


def _env(mongodb_uri: str | None = None, bytecode_dir: str | None = None) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(AWS_ENV)
    if bytecode_dir is not None:
        # No bytecode to be found (an empty cache prefix) and none written: every module is compiled
        # from source at import, as in a layer shipped without bytecode on Lambda's read-only /opt.
        env.update(PYTHONPYCACHEPREFIX=bytecode_dir, PYTHONDONTWRITEBYTECODE="1")
    if mongodb_uri:
        env["MONGODB_URI"] = mongodb_uri
    # The core layer of this checkout, as Lambda's /opt/python would provide it.
    env["PYTHONPATH"] = str(CORE)
    return env


def _error_line(stderr: str) -> str:
    """The exception a failed child died of (asyncio may print warnings after the traceback)."""
    lines = stderr.strip().splitlines()
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Timeout)\b", line):
            return line
    return lines[-1] if lines else "no output"


def _sample(case: Case, env: dict[str, str], result: Result) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _child_code(case)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        result.error = _error_line(done.stderr)
        return
    report = json.loads(done.stdout.strip().splitlines()[-1])
    result.process_s.append(elapsed)
    result.import_s.append(float(report["import_s"]))
    result.cpu_s.append(float(report["cpu_s"]))
    result.base_import_s.append(float(report["base_import_s"]))
    result.base_cpu_s.append(float(report["base_cpu_s"]))
    result.first_use_cpu_s.append(float(report["first_use_cpu_s"]))
    result.modules = int(report["modules"])
    result.heavy = [str(m) for m in report["heavy"]]


@contextlib.contextmanager
def _database(uri: str | None, needed: bool) -> Iterator[str | None]:
    """A MongoDB for the Lambdas that bootstrap at import: `uri`, else the embedded engine (the local
    runtime's, if installed) in a temporary directory, else None."""
    if uri or not needed:
        yield uri
        return
    try:
        from stratus.local.embedded_db import EmbeddedMongo
    except ImportError:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="stratus-bench-db-") as state:
        engine = EmbeddedMongo(Path(state) / "db")
        try:
            yield engine.start()
        finally:
            engine.stop()


def measure(
    cases: list[Case], runs: int, mongodb_uri: str | None = None, *, bytecode: bool = True
) -> dict[str, Result | None]:
    results: dict[str, Result | None] = {}
    live: list[Result] = []
    with (
        _database(mongodb_uri, any(c.needs_database for c in cases)) as database,
        tempfile.TemporaryDirectory(prefix="stratus-bench-nobytecode-") as empty,
    ):
        no_cache = None if bytecode else empty
        envs = {c.label: _env(database if c.needs_database else None, no_cache) for c in cases}
        for case in cases:
            if case.requires is not None and importlib.util.find_spec(case.requires) is None:
                results[case.label] = None
                continue
            result = Result(case)
            results[case.label] = result
            if case.needs_database and database is None:
                result.error = "needs a MongoDB: pass --mongodb-uri or install the local extra"
                continue
            # One unmeasured run first, so every measured run finds compiled bytecode (as the layer
            # built by layers/core/Makefile ships it) and a failing import is found before the rounds.
            _sample(case, envs[case.label], result)
            result.import_s.clear()
            result.cpu_s.clear()
            result.base_import_s.clear()
            result.base_cpu_s.clear()
            result.first_use_cpu_s.clear()
            result.process_s.clear()
            if result.error is None:
                live.append(result)
        for _ in range(runs):
            for result in live:
                _sample(result.case, envs[result.case.label], result)
    return results


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per case (median reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--mongodb-uri",
        help="database for the Lambdas that bootstrap at import (default: a temporary embedded engine)",
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile every module at import, baseline included (a layer shipped without bytecode)",
    )
    args = parser.parse_args()

    handlers, missing = handler_cases()
    results = measure([*REFERENCE, *handlers], args.runs, args.mongodb_uri, bytecode=not args.no_bytecode)
    base = results.get(BASELINE)

    def ratio(r: Result, attr: str) -> float:
        """The median of this row's samples / their baseline: the baseline part of the same process for a
        paired row, else the baseline row's sample of the same round."""
        if r.case.paired:
            pairs = zip(getattr(r, attr), getattr(r, f"base_{attr}"), strict=True)
        elif base is not None:
            pairs = zip(getattr(r, attr), getattr(base, attr), strict=False)
        else:
            return float("nan")
        return _median([mine / theirs for mine, theirs in pairs if theirs > 0])

    if args.json:
        print(
            json.dumps(
                {
                    "runs": args.runs,
                    "target_ratio": TARGET,
                    "missing_function_dirs": missing,
                    "cases": {
                        label: None
                        if r is None
                        else {
                            "http": r.case.http,
                            "error": r.error,
                            "import_median_s": _median(r.import_s),
                            "import_cpu_median_s": _median(r.cpu_s),
                            "first_use_cpu_median_s": _median(r.first_use_cpu_s) if r.case.http else None,
                            "process_median_s": _median(r.process_s),
                            "ratio_to_baseline": ratio(r, "import_s") if r.case.compared else None,
                            "cpu_ratio_to_baseline": ratio(r, "cpu_s") if r.case.compared else None,
                            "ratio_paired_in_process": r.case.paired,
                            "modules": r.modules,
                            "heavy_modules": r.heavy,
                        }
                        for label, r in results.items()
                    },
                },
                indent=2,
            )
        )
        return

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} fresh interpreters per row "
        "(round-robin); medians (min-max); x base = median of row / baseline, p: paired in each process (the "
        "baseline's imports timed first), r: paired with the baseline row's sample of the round;\n"
        "1st use = building what an HTTP Lambda's first authenticated request needs before its first "
        "database round trip (auth service, rate limiter, logger, metrics), after the import"
    )
    header = (
        f"{'case':<40}{'import wall (s)':>22}{'import CPU (s)':>22}{'process (s)':>13}"
        f"{'x base wall':>13}{'x base CPU':>13}{'1st use CPU':>12}{'modules':>8}  heavy ML modules"
    )
    print(header)
    print("-" * len(header))
    for label, r in results.items():
        if r is None:
            print(f"{label:<40}{'not installed':>22}")
            continue
        if r.error is not None:
            print(f"{label:<40}  failed: {r.error}")
            continue
        wall = f"{_median(r.import_s):.3f} ({min(r.import_s):.3f}-{max(r.import_s):.3f})"
        cpu = f"{_median(r.cpu_s):.3f} ({min(r.cpu_s):.3f}-{max(r.cpu_s):.3f})"
        how = "p" if r.case.paired else "r"
        x_wall = f"{ratio(r, 'import_s'):.2f}x {how}" if r.case.compared else ""
        x_cpu = f"{ratio(r, 'cpu_s'):.2f}x {how}" if r.case.compared else ""
        first = f"{_median(r.first_use_cpu_s):.3f}" if r.case.http else ""
        print(
            f"{label:<40}{wall:>22}{cpu:>22}{_median(r.process_s):>13.3f}{x_wall:>13}{x_cpu:>13}"
            f"{first:>12}{r.modules:>8}  {', '.join(r.heavy) or '-'}"
        )
    for name in missing:
        print(f"functions/{name}: named in template.yaml or GROUPS, but has no app.py here (not measured)")
    http = [r for r in results.values() if r is not None and r.case.http and r.error is None]
    if http and base is not None:
        heavy = sorted({m for r in http for m in r.heavy}) or "none"
        for attr, what in (("import_s", "wall"), ("cpu_s", "CPU")):
            met = [r for r in http if ratio(r, attr) <= TARGET]
            worst = max(http, key=lambda r: ratio(r, attr))
            print(
                f"HTTP Lambdas / baseline, import {what} time: {len(met)} of {len(http)} within {TARGET}x "
                f"(worst: {worst.case.label}, {ratio(worst, attr):.2f}x)"
            )
        print(f"heavy ML modules in the HTTP Lambdas: {heavy}")


if __name__ == "__main__":
    main()
