"""Sustained load on a CRUD mix through the local API, then a check that nothing was lost.

Starts its own `stratus serve` on a temporary state directory (or uses a running one given by --url, on
127.0.0.1 only), registers one user per client and runs N clients that send requests back to back, with
no pause, for T seconds. Each request is drawn from the mix below (a delete picks one of the client's
own uploads; with none left it uploads instead). Prints req/s and p50/p95/p99 per endpoint and overall.

Afterwards it checks, per user, that every upload answered 201 and not deleted is listed, readable
through its detail endpoint and downloadable with the same bytes, and that every deleted file is gone
from the listing and answers 404. Exit status 1 on any request error or any lost or resurrected file.

The server it starts has the inference warm-up off (its model loading would compete for the CPU) and
the per-user limit raised to 10^9 per hour, because the seed's 1,000 per hour would otherwise turn a
minute of this load into 429s; the limiter still counts every request. With --url, it is the server's
own settings that apply.

Usage: .venv/bin/python bench/load.py [--clients 50] [--duration 60] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from job_latency import Serve, percentile  # same directory: bench scripts run as `python bench/x.py`

PASSWORD = "bench-password-123"
MAX_CLIENTS = 200
MAX_DURATION_S = 300
PAGE = 20  # a listing page as a UI asks for it, so the cost does not grow with the files a user has

# Relative weights of the mix.
MIX = {
    "GET /api/users/me": 20,
    "GET /api/datasets": 15,
    "GET /api/files": 20,
    "POST /api/files/upload": 15,
    "DELETE /api/files/{id}": 15,
    "GET /health": 15,
}


@dataclass
class Client:
    index: int
    headers: dict[str, str]
    live: dict[str, bytes] = field(default_factory=dict)  # uploads answered 201, not deleted
    deleted: set[str] = field(default_factory=set)
    uploads: int = 0


@dataclass
class Results:
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


class CpuMeter:
    """CPU used by the server (the API process and its children: the embedded database) and by this
    load generator. On a shared machine this moves far less than latency does with other work running."""

    def __init__(self, server_pid: int | None) -> None:
        self.pids = [server_pid, *_children(server_pid)] if server_pid else []
        self.start = self._read()

    def _read(self) -> tuple[list[float], float]:
        return [_cpu_s(pid) for pid in self.pids], time.process_time()

    def used(self) -> tuple[list[float], float]:
        (servers, client), (servers0, client0) = self._read(), self.start
        return [a - b for a, b in zip(servers, servers0, strict=True)], client - client0


async def register(http: httpx.AsyncClient, index: int) -> Client:
    email = f"load-{index}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": f"Load {index}"}
    response = await http.post("/api/auth/register", json=body)
    if response.status_code != 201:
        raise SystemExit(f"registering client {index}: {response.status_code} {response.text}")
    return Client(index, {"Authorization": f"Bearer {response.json()['access_token']}"})


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{response.status_code} {response.text[:200]}")


async def _upload(http: httpx.AsyncClient, client: Client) -> None:
    client.uploads += 1
    content = f"client {client.index} upload {client.uploads} {uuid.uuid4().hex}\n".encode() * 8
    files = {"file": (f"c{client.index}-{client.uploads}.txt", content, "text/plain")}
    response = await http.post("/api/files/upload", headers=client.headers, files=files)
    _expect(response, 201)
    client.live[response.json()["id"]] = content


async def _delete(http: httpx.AsyncClient, client: Client, file_id: str) -> None:
    # Taken out of `live` before the request, so no other step of this client picks it meanwhile.
    content = client.live.pop(file_id)
    response = await http.delete(f"/api/files/{file_id}", headers=client.headers)
    if response.status_code != 200:
        client.live[file_id] = content  # not deleted: it must still be there afterwards
    _expect(response, 200)
    client.deleted.add(file_id)


def _step(http: httpx.AsyncClient, client: Client, name: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    headers = client.headers

    async def get(path: str) -> None:
        _expect(await http.get(path, headers=headers), 200)

    if name == "DELETE /api/files/{id}":
        if client.live:
            file_id = random.choice(list(client.live))
            return name, lambda: _delete(http, client, file_id)
        name = "POST /api/files/upload"
    if name == "POST /api/files/upload":
        return name, lambda: _upload(http, client)
    path = name.split(" ", 1)[1]
    if path in ("/api/files", "/api/datasets"):
        path += f"?limit={PAGE}"
    return name, lambda: get(path)


async def run_client(
    http: httpx.AsyncClient, client: Client, deadline: float, results: Results, rng: random.Random
) -> None:
    names, weights = list(MIX), list(MIX.values())
    while time.perf_counter() < deadline:
        name, call = _step(http, client, rng.choices(names, weights)[0])
        started = time.perf_counter()
        try:
            await call()
        except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as e:
            results.errors[name].append(f"{type(e).__name__}: {e}")
            continue
        results.samples[name].append((time.perf_counter() - started) * 1000)


async def verify(http: httpx.AsyncClient, client: Client) -> list[str]:
    """What is wrong with this client's files after the run (empty when nothing was lost)."""
    problems: list[str] = []
    listed: set[str] = set()
    offset = 0
    while True:
        page = await http.get(f"/api/files?limit=1000&offset={offset}", headers=client.headers)
        _expect(page, 200)
        files = page.json()["files"]
        listed.update(item["id"] for item in files)
        offset += len(files)
        if not files or offset >= page.json()["total"]:
            break
    for file_id, content in client.live.items():
        if file_id not in listed:
            problems.append(f"client {client.index}: upload {file_id} not listed")
        detail = await http.get(f"/api/files/{file_id}", headers=client.headers)
        if detail.status_code != 200:
            problems.append(f"client {client.index}: upload {file_id} answers {detail.status_code}")
            continue
        download = await http.get(detail.json()["url"])
        if download.status_code != 200 or download.content != content:
            problems.append(f"client {client.index}: upload {file_id} content differs")
    for file_id in client.deleted:
        if file_id in listed:
            problems.append(f"client {client.index}: deleted {file_id} still listed")
        if (await http.get(f"/api/files/{file_id}", headers=client.headers)).status_code != 404:
            problems.append(f"client {client.index}: deleted {file_id} still readable")
    if extra := listed - set(client.live):
        problems.append(f"client {client.index}: {len(extra)} listed files it never kept")
    return problems


async def bounded(limit: int, jobs: list[Awaitable[object]]) -> list[object]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[object]) -> object:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


def row(name: str, samples: list[float], errors: int, seconds: float) -> str:
    if not samples:
        return f"{name:26}{0:8}{errors:8}{0:9.1f}{'-':>8}{'-':>8}{'-':>8}"
    p50, p95, p99 = (percentile(samples, q) for q in (50, 95, 99))
    return f"{name:26}{len(samples):8}{errors:8}{len(samples) / seconds:9.1f}{p50:8.1f}{p95:8.1f}{p99:8.1f}"


async def load(
    base_url: str, clients: int, duration_s: float, seed: int, server_pid: int | None = None
) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        users = await bounded(4, [register(http, i) for i in range(clients)])
        accounts = [u for u in users if isinstance(u, Client)]
        results = Results()
        # One connection per client, busy back to back: a connection shared through a pool can sit idle
        # past the server's keep-alive timeout and be closed just as a request goes out on it.
        connections = [
            httpx.AsyncClient(base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=1))
            for _ in accounts
        ]
        meter = CpuMeter(server_pid)
        started = time.perf_counter()
        deadline = started + duration_s
        try:
            await asyncio.gather(
                *(
                    run_client(own, c, deadline, results, random.Random(seed + c.index))
                    for own, c in zip(connections, accounts, strict=True)
                )
            )
        finally:
            elapsed = time.perf_counter() - started
            servers_cpu, client_cpu = meter.used()
            await asyncio.gather(*(own.aclose() for own in connections))
        checks = await bounded(8, [verify(http, c) for c in accounts])
    problems = [p for found in checks if isinstance(found, list) for p in found]

    print(f"{clients} clients, no pause, {elapsed:.1f} s against {base_url} (latency in ms)")
    print(f"{'endpoint':26}{'ok':>8}{'errors':>8}{'req/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}")
    everything: list[float] = []
    for name in MIX:
        samples = results.samples.get(name, [])
        everything += samples
        print(row(name, samples, len(results.errors.get(name, [])), elapsed))
    total_errors = sum(len(e) for e in results.errors.values())
    print(row("overall", everything, total_errors, elapsed))
    for name, errors in results.errors.items():
        print(f"errors on {name}: {len(errors)}, first: {errors[0]}")
    per_request = 1000 / max(len(everything), 1)
    if servers_cpu:
        parts = " + ".join(f"{cpu * per_request:.2f}" for cpu in servers_cpu)
        print(f"server CPU per request: {sum(servers_cpu) * per_request:.2f} ms ({parts}: API, database)")
    print(f"load generator CPU per request: {client_cpu * per_request:.2f} ms")
    uploads = sum(len(c.live) + len(c.deleted) for c in accounts)
    deletes = sum(len(c.deleted) for c in accounts)
    print(f"checked afterwards: {uploads} uploads, {deletes} deleted: {len(problems)} problems")
    for problem in problems[:10]:
        print("  " + problem)
    print(
        json.dumps(
            {
                "clients": clients,
                "seconds": round(elapsed, 2),
                "requests_per_s": round(len(everything) / elapsed, 1),
                "errors": total_errors,
                "problems": len(problems),
                "server_cpu_ms_per_request": [round(cpu * per_request, 3) for cpu in servers_cpu],
                "client_cpu_ms_per_request": round(client_cpu * per_request, 3),
                "percentiles_ms": {
                    name: [round(percentile(s, q), 1) for q in (50, 95, 99)]
                    for name, s in [*results.samples.items(), ("overall", everything)]
                    if s
                },
            }
        )
    )
    return 1 if total_errors or problems else 0


def local_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("--url must be http://127.0.0.1:<port> (load goes to this machine only)")
    return url.rstrip("/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--url", type=local_url, default=None, help="a running `stratus serve`")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION_S:
        raise SystemExit(f"--clients 1..{MAX_CLIENTS} and --duration up to {MAX_DURATION_S} s")
    if args.url:
        sys.exit(asyncio.run(load(args.url, args.clients, args.duration, args.seed)))
    os.environ["STRATUS_LOCAL_WARM_INFERENCE"] = "false"
    os.environ["STRATUS_RATE_LIMIT_USER"] = str(10**9)
    os.environ["STRATUS_RATE_LIMIT_ANONYMOUS"] = str(10**6)  # registering the clients
    with tempfile.TemporaryDirectory(prefix="stratus-load-") as scratch:
        serve = Serve(Path(scratch) / "state")
        serve.start(timeout_s=120)
        try:
            assert serve.process is not None
            code = asyncio.run(
                load(serve.base_url, args.clients, args.duration, args.seed, server_pid=serve.process.pid)
            )
        finally:
            serve.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
