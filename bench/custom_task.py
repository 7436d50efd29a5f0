"""A trivial custom task through the local API, warm, next to the same function in a bare subprocess.

Starts its own `stratus serve` (embedded database, local inference worker) in a temporary state
directory, registers a user, runs one custom task to start the worker and its warm sandbox runners,
then posts seed 000's shape to POST /tasks/custom one request at a time: authentication, rate limit,
the per-user execution slot, quota, the call to the inference worker, a fresh child forked from a warm
runner that applies every sandbox layer (network namespace, rlimits, uid or dropped capabilities,
no_new_privs, Landlock, seccomp), runs custom_function and returns its JSON over a pipe, and the task
record written. The baseline is what running untrusted code "simply" costs without a warm pool: the
same function in a fresh `python -I -c` subprocess (no torch, no confinement), timed from spawn to exit.

Target: p50 < 250 ms through the API. Prints p50 / p99 / mean for both, then one JSON line with the raw
samples. Usage: .venv/bin/python bench/custom_task.py [--requests 100] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from job_latency import Serve, percentile  # same directory: bench scripts run as `python bench/x.py`

FUNCTION = "def custom_function(text):\n    return {'length': len(text), 'upper': text.upper()}"
TEXT = "Input text here"


def _finish(client: httpx.Client, response: httpx.Response, headers: dict[str, str]) -> dict[str, Any]:
    if response.status_code not in (200, 202):
        raise SystemExit(f"answered {response.status_code}: {response.text}")
    task: dict[str, Any] = response.json()
    deadline = time.monotonic() + 300
    while task["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
        task = client.get(f"/api/tasks/{task['task_id']}", headers=headers).json()
    if task["status"] != "completed":
        raise SystemExit(f"the custom task did not complete: {task}")
    return task


def through_api(requests: int, warmup: int) -> tuple[list[float], dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as scratch:
        serve = Serve(Path(scratch) / "state")
        serve.start(timeout_s=180)
        try:
            with httpx.Client(base_url=serve.base_url, timeout=120) as client:
                creds = {"email": "bench@example.com", "password": "securepass123", "name": "Bench"}
                token = client.post("/api/auth/register", json=creds).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=25"}
                body = {"tokenizer_code": "", "model_code": "", "function_code": FUNCTION, "input_text": TEXT}
                first = _finish(client, client.post("/tasks/custom", json=body, headers=headers), headers)
                for _ in range(warmup):
                    _finish(client, client.post("/tasks/custom", json=body, headers=headers), headers)
                samples = []
                for _ in range(requests):
                    started = time.perf_counter()
                    response = client.post("/tasks/custom", json=body, headers=headers)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200 or response.json()["status"] != "completed":
                        raise SystemExit(f"answered {response.status_code}: {response.text}")
                    samples.append(elapsed)
                return samples, first["isolation"]
        finally:
            serve.stop()


def bare_subprocess(runs: int) -> list[float]:
    script = f"import json\n{FUNCTION}\nprint(json.dumps(custom_function({TEXT!r})))"
    command = [sys.executable, "-I", "-c", script]
    subprocess.run(command, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    api, isolation = through_api(args.requests, args.warmup)
    bare = bare_subprocess(args.requests)
    print(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, samples in (("API /tasks/custom (sandboxed)", api), ("bare `python -I -c` subprocess", bare)):
        print(
            f"{label:34} {percentile(samples, 50):8.1f} {percentile(samples, 99):8.1f} {statistics.mean(samples):8.1f}"
        )
    verdict = "met" if percentile(api, 50) < 250 else "NOT met"
    print(f"target p50 < 250 ms through the API: {verdict}")
    print("isolation:", ", ".join(f"{k}={v.split(':')[0]}" for k, v in isolation.items()))
    print(json.dumps({"api_ms": [round(s, 2) for s in api], "bare_ms": [round(s, 2) for s in bare]}))


if __name__ == "__main__":
    main()
