"""Request latency of a short classification through the local API, next to the same request sent to the
inference worker directly.

Starts its own `stratus serve` (embedded database, the inference worker warmed at start) in a temporary
state directory, registers a user and sends seed 000's example text ("This is a great product!") to
POST /tasks/classification one request at a time, as a client would: authentication, rate limit and
quota checks, the task record in MongoDB, the call to the worker, the result stored. The baseline is
the identical engine request posted straight to a second inference worker's /invoke (same models,
same batching settings), so the difference is what the API adds.

Prints p50 / p99 / mean for both and the API's overhead, then one JSON line with the raw samples.
Usage: .venv/bin/python bench/task_latency.py [--requests 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from job_latency import Serve, percentile  # same directory: bench scripts run as `python bench/x.py`

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
TEXT = "This is a great product!"


def timed(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], n: int
) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.post(url, json=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text}")
        samples.append(elapsed)
    return samples


def through_api(requests: int, warmup: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as scratch:
        serve = Serve(Path(scratch) / "state")
        serve.start(timeout_s=180)
        try:
            with httpx.Client(base_url=serve.base_url, timeout=60) as client:
                creds = {"email": "bench@example.com", "password": "securepass123", "name": "Bench"}
                token = client.post("/api/auth/register", json=creds).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                body = {"text": TEXT}
                timed(client, "/tasks/classification", body, headers, warmup)  # loads the model
                return timed(client, "/tasks/classification", body, headers, requests)
        finally:
            serve.stop()


def direct(requests: int, warmup: int) -> list[float]:
    command = [sys.executable, "-m", "stratus_worker.inference.server", "--port", "0", "--preload", EMBEDDER]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        line, deadline = "", time.monotonic() + 180
        while not line.startswith("READY ") and time.monotonic() < deadline and proc.poll() is None:
            if selector.select(timeout=1):
                line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit("the inference worker did not start")
        with httpx.Client(base_url=f"http://127.0.0.1:{int(line.split()[1])}", timeout=60) as client:
            body = {"task": "classification", "model": EMBEDDER, "inputs": [{"text": TEXT}]}
            timed(client, "/invoke", body, {}, warmup)
            return timed(client, "/invoke", body, {}, requests)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    api = through_api(args.requests, args.warmup)
    worker = direct(args.requests, args.warmup)
    a, w = summary(api), summary(worker)
    print(f"Short classification ('{TEXT}'), {args.requests} sequential requests, ms")
    print(f"{'':34}{'p50':>9}{'p99':>9}{'mean':>9}")
    print(f"{'POST /tasks/classification (API)':34}{a['p50']:9.1f}{a['p99']:9.1f}{a['mean']:9.1f}")
    print(f"{'worker /invoke directly (baseline)':34}{w['p50']:9.1f}{w['p99']:9.1f}{w['mean']:9.1f}")
    print(
        f"{'the API adds':34}{a['p50'] - w['p50']:9.1f}{a['p99'] - w['p99']:9.1f}{a['mean'] - w['mean']:9.1f}"
    )
    print(json.dumps({"api_ms": [round(x, 3) for x in api], "direct_ms": [round(x, 3) for x in worker]}))


if __name__ == "__main__":
    main()
