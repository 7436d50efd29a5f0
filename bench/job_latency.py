"""Job latency on the local runtime: how soon a started job is `running`, and how soon a worker's
progress event reaches a WebSocket client, each next to its baseline.

Starts its own `stratus serve` (embedded database, local workers) in a temporary state directory and
drives it as a client does: register, upload a CSV, POST /training/start, follow the job on /ws.

1. Start: N jobs run one after the other (epochs 2, 400-row CSV), so the per-user cap never queues
   them. From POST /training/start returning to the first WebSocket message saying `running` (the
   backend's state change, sent once the worker process is spawned), and to the worker's first
   progress event (sent once it has imported torch). Baselines: `python -c "import torch"` and
   `python -m stratus_worker` with an unknown job kind (it fails before importing torch), each timed
   from process start to exit.
2. Events: while a long job trains, the bench appends its own "Stratus Job Progress" envelopes to the
   job's events file (seq far above the worker's, so none is dropped as stale), timing each from the
   write to its arrival on the WebSocket (matched by seq). Each is written a random 0-EVENT_POLL_S
   after the previous one arrived, so writes land at random points of the backend's poll cycle and
   never share a poll. Baselines: the wait the file poll alone imposes (uniform over 0-EVENT_POLL_S)
   and a {"action": "ping"} -> pong round trip on the same connection.

Prints a table and one JSON line with the raw samples.
Usage: .venv/bin/python bench/job_latency.py [--jobs 10] [--events 60] [--pings 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from stratus.adapters.local.worker_pool import EVENT_POLL_S
from stratus.jobs.events import PROGRESS
from stratus.ports.events import Event

TERMINAL = ("completed", "failed", "stopped")
SYNTHETIC_SEQ = 1_000_000  # far above any seq the worker itself reaches
START_TARGET_S = 0.5
EVENT_TARGET_MS = 50.0


# --- `stratus serve` as a subprocess (as tests/e2e/server.py runs it; tests/ is not importable here) --


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir.parent / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"} | {
            "STRATUS_STATE_DIR": str(self.state_dir)
        }
        command = [sys.executable, "-m", "stratus.local.cli", "serve", "--host", "127.0.0.1"]
        with self.log_path.open("wb") as log:  # a file, not a pipe nobody reads while the bench runs
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"stratus serve exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        self.process.kill()
        raise SystemExit("stratus serve did not become ready")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # Ctrl-C: stops the workers, then the database
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- figures ------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 samples is their maximum)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def process_time(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall time from process start to exit, after one unmeasured run (warm page cache and bytecode)."""
    subprocess.run(command, env=env, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
    return samples


def baselines(runs: int, scratch: Path) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    worker_env = env | {
        "STRATUS_JOB_ID": "bench-unknown-kind",
        "STRATUS_JOB_KIND": "bench-unknown-kind",
        "STRATUS_JOB_WORKDIR": str(scratch / "worker"),
        "STRATUS_STORAGE_ROOT": str(scratch / "objects"),
        "STRATUS_STATE_DIR": str(scratch),
    }
    done = subprocess.run(
        [sys.executable, "-m", "stratus_worker"], env=worker_env, capture_output=True, text=True, check=False
    )
    if done.returncode != 1 or "Unknown job kind" not in done.stderr:
        raise SystemExit(f"the worker did not fail on an unknown kind as expected:\n{done.stderr}")
    return {
        "import_torch_s": process_time([sys.executable, "-c", "import torch"], env, runs),
        "worker_unknown_kind_s": process_time([sys.executable, "-m", "stratus_worker"], worker_env, runs),
    }


# --- the client -----------------------------------------------------------------------------------


def csv_bytes(rows: int = 400, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    lines = ["x1,x2,color,label"]
    for _ in range(rows):
        x1, x2 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        color = rng.choice(["red", "green", "blue"])
        label = "yes" if x1 + 0.5 * x2 + (1.0 if color == "red" else 0.0) > 0.3 else "no"
        lines.append(f"{x1:.4f},{x2:.4f},{color},{label}")
    return ("\n".join(lines) + "\n").encode()


def training_body(dataset_id: str, epochs: int) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "model_type": "mlp",
        "hyperparameters": {"learning_rate": 0.01, "batch_size": 32, "epochs": epochs, "optimizer": "adam"},
        "validation_split": 0.25,
        "early_stopping": {"enabled": False},
    }


class Inbox:
    """Reads the WebSocket all the time, timestamping each message as it arrives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.queue.put_nowait((time.perf_counter(), json.loads(raw)))

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout_s: float
    ) -> tuple[float, dict[str, Any]]:
        async with asyncio.timeout(timeout_s):
            while True:
                at, message = await self.queue.get()
                if match(message):
                    return at, message

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


def about(job_id: str, *types: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") in types and m.get("data", {}).get("job_id") == job_id


async def start_latency(
    http: httpx.AsyncClient, inbox: Inbox, dataset_id: str, jobs: int
) -> dict[str, list[float]]:
    to_running, to_progress, post_s, missed = [], [], [], 0
    for _ in range(jobs):
        sent = time.perf_counter()
        response = await http.post("/training/start", json=training_body(dataset_id, epochs=2))
        returned = time.perf_counter()
        assert response.status_code == 201, response.text
        job_id = response.json()["job_id"]
        post_s.append(returned - sent)
        await inbox.ws.send(json.dumps({"action": "subscribe", "job_id": job_id}))
        running_at = progress_at = None
        async with asyncio.timeout(120):
            while True:
                at, message = await inbox.queue.get()
                data = message.get("data", {})
                if data.get("job_id") != job_id:
                    continue
                if message["type"] == "subscribed" or data.get("status") not in ("running", *TERMINAL):
                    continue
                # The backend's state change; progress messages also say "running", but come later.
                if running_at is None and message["type"] == "status" and data["status"] == "running":
                    running_at = at
                if progress_at is None and message["type"] == "progress":
                    progress_at = at
                if data.get("status") in TERMINAL:
                    break
        if data["status"] != "completed":
            raise SystemExit(f"job {job_id} ended {data['status']}: {data.get('error')}")
        if progress_at is None:
            raise SystemExit(f"job {job_id}: no progress message was received")
        if running_at is None:
            missed += 1  # `running` was pushed before the subscription took effect
        else:
            to_running.append(running_at - returned)
        to_progress.append(progress_at - returned)
    return {
        "post_start_s": post_s,
        "start_to_running_s": to_running,
        "start_to_first_progress_s": to_progress,
        "running_missed": missed,
    }


async def ping_rtt(inbox: Inbox, pings: int) -> list[float]:
    samples = []
    for _ in range(pings + 1):
        started = time.perf_counter()
        await inbox.ws.send(json.dumps({"action": "ping"}))
        at, _ = await inbox.wait_for(lambda m: m.get("type") == "pong", 5)
        samples.append(at - started)
    return samples[1:]  # the first one warms the path


async def event_latency(
    inbox: Inbox, events_file: Path, job_id: str, count: int, rng: random.Random
) -> tuple[list[float], int]:
    """(latencies in seconds, how many never arrived). The bench's lines interleave with the worker's
    (both append whole lines with O_APPEND)."""
    samples, lost = [], 0
    with events_file.open("a", encoding="utf-8") as f:
        for i in range(count):
            await asyncio.sleep(rng.uniform(0, EVENT_POLL_S))
            seq = SYNTHETIC_SEQ + i
            detail = {
                "job_id": job_id,
                "seq": seq,
                "phase": "training",
                "epoch": 1,
                "total_epochs": 1000,
                "step": i,
                "total_steps": 1_000_000,
                "progress": 0.1,
                "metrics": {"loss": 0.5},
            }
            line = json.dumps(Event(detail_type=PROGRESS, detail=detail).envelope(), separators=(",", ":"))
            f.write(line + "\n")
            f.flush()
            written = time.perf_counter()
            try:
                at, _ = await inbox.wait_for(
                    lambda m, seq=seq: m.get("type") == "progress" and m["data"].get("seq") == seq, 2.0
                )
            except TimeoutError:
                lost += 1
                continue
            samples.append(at - written)
    return samples, lost


async def measure(base_url: str, state_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        creds = {"email": "bench@example.com", "password": "bench-password-1", "name": "Bench"}
        token = (await http.post("/api/auth/register", json=creds)).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        upload = await http.post(
            "/datasets/upload",
            files={"file": ("bench.csv", csv_bytes())},
            data={"name": "bench", "dataset_type": "classification"},
        )
        assert upload.status_code == 201, upload.text
        dataset_id = upload.json()["id"]
        async with connect(base_url.replace("http", "ws") + f"/ws?token={token}") as ws:
            inbox = Inbox(ws)
            await inbox.wait_for(lambda m: m.get("type") == "connected", 10)
            # One unmeasured job first: the first worker pays the cold page cache for torch.
            await start_latency(http, inbox, dataset_id, 1)
            figures: dict[str, Any] = await start_latency(http, inbox, dataset_id, args.jobs)

            started = await http.post("/training/start", json=training_body(dataset_id, epochs=1000))
            assert started.status_code == 201, started.text
            job_id = started.json()["job_id"]
            await ws.send(json.dumps({"action": "subscribe", "job_id": job_id}))
            # The worker's first progress event: torch is imported and it trains for a while yet.
            await inbox.wait_for(about(job_id, "progress"), 60)
            figures["ping_rtt_s"] = await ping_rtt(inbox, args.pings)
            inbox.drain()
            events_file = state_dir / "jobs" / job_id / "events.jsonl"
            latencies, lost = await event_latency(inbox, events_file, job_id, args.events, random.Random(7))
            status = (await http.get(f"/training/status/{job_id}")).json()["status"]
            if status != "running":
                raise SystemExit(f"the long job ended ({status}) before the events were measured")
            figures["event_latency_s"], figures["lost_events"] = latencies, lost
            await http.post(f"/training/stop/{job_id}")
            await inbox.wait_for(lambda m: m.get("data", {}).get("status") in TERMINAL, 30)
            inbox.task.cancel()
    return figures


def table(title: str, unit: str, rows: list[tuple[str, list[float], str, str]]) -> None:
    """Rows of (label, samples in seconds, note, n shown instead of the count)."""
    scale, fmt = (1, ".3f") if unit == "s" else (1000, ".1f")
    print(f"{title:<54}{'n':>5}{f'p50 ({unit})':>11}{f'p99 ({unit})':>11}")
    for label, samples, note, n in rows:
        if not samples:
            print(f"{label:<54}{0:>5}{'-':>11}{'-':>11}  {note}".rstrip())
            continue
        p50, p99 = percentile(samples, 50) * scale, percentile(samples, 99) * scale
        print(f"{label:<54}{n or len(samples):>5}{p50:>11{fmt}}{p99:>11{fmt}}  {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10, help="jobs run one after the other (default 10)")
    parser.add_argument("--events", type=int, default=60, help="synthetic progress events (default 60)")
    parser.add_argument("--pings", type=int, default=50, help="WebSocket ping round trips (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs per process baseline (default 3)")
    args = parser.parse_args()

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        figures = baselines(args.runs, Path(tmp) / "scratch")
        server = Serve(Path(tmp) / "state")
        server.start()
        try:
            figures |= asyncio.run(measure(server.base_url, server.state_dir, args))
        finally:
            server.stop()

    poll_wait = [EVENT_POLL_S * (i + 0.5) / 1000 for i in range(1000)]  # uniform over one interval
    missed = figures["running_missed"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, local runtime (`stratus serve`)")
    table(
        "job start (epochs 2, 400-row CSV, one job at a time)",
        "s",
        [
            (
                "POST /training/start -> `running` on the WebSocket",
                figures["start_to_running_s"],
                f"target < {START_TARGET_S} s" + (f"; {missed} pushed before subscribing" if missed else ""),
                "",
            ),
            ("POST /training/start -> first worker progress", figures["start_to_first_progress_s"], "", ""),
            ("  baseline: python -c 'import torch' (process)", figures["import_torch_s"], "", ""),
            ("  baseline: python -m stratus_worker, unknown kind", figures["worker_unknown_kind_s"], "", ""),
            ("  the POST /training/start request itself", figures["post_start_s"], "", ""),
        ],
    )
    print()
    table(
        "progress event delivery (a job training meanwhile)",
        "ms",
        [
            (
                "events file write -> WebSocket client",
                figures["event_latency_s"],
                f"target < {EVENT_TARGET_MS:.0f} ms; lost: {figures['lost_events']}",
                "",
            ),
            (
                f"  baseline: file poll wait (EVENT_POLL_S {EVENT_POLL_S * 1000:.0f} ms)",
                poll_wait,
                "uniform over 0-EVENT_POLL_S",
                "-",
            ),
            ("  baseline: WebSocket ping -> pong round trip", figures["ping_rtt_s"], "", ""),
        ],
    )
    if figures["event_latency_s"]:
        beyond = (statistics.median(figures["event_latency_s"]) - EVENT_POLL_S / 2) * 1000
        print(f"median delivery less the median poll wait (read, handle, store, push): {beyond:.1f} ms")
    print(f"total bench time: {time.perf_counter() - began:.0f} s")
    raw = {k: [round(v, 6) for v in vs] if isinstance(vs, list) else vs for k, vs in figures.items()}
    print(json.dumps({"event_poll_s": EVENT_POLL_S, **raw}))


if __name__ == "__main__":
    main()
