"""Streamed chat over the local WebSocket, next to a raw `model.generate` loop on the same model and prompt.

Starts its own `stratus serve` (embedded database, the inference worker warmed at start) in a temporary
state directory, registers a user, opens the WebSocket (`/ws?token=`) and sends seed 004's chat message
`{"type": "chat", "data": {message, model, temperature: 0, max_tokens}}`, one at a time after a warm-up.
For each reply it records:

- time to first token (TTFT): from sending the message to the first `chat_token` message;
- tokens/s: the reply's completion tokens over the time from sending to `chat_response`.

The baseline, in the same run and interleaved round by round (so the machine's load hits both alike),
is SmolLM2-135M-Instruct loaded in this process from the same converted copy, the same chat template
applied to the same message, and `model.generate(max_new_tokens=N, do_sample=False)` timed from the
call to its return (its TTFT is the time to its first streamed token). Both use torch's default
threads, and the generation budget is the same; the raw loop is made to produce exactly as many tokens
as the streamed reply did, so tokens/s compare like for like.

Targets: TTFT p50 < 300 ms; streamed tokens/s >= 0.9x the raw loop's.
Usage: .venv/bin/python bench/chat_streaming.py [--rounds 20] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from job_latency import Serve, percentile  # same directory: bench scripts run as `python bench/x.py`
from websockets.sync.client import ClientConnection, connect

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
MESSAGE = "Write a long story about a dragon who learns to cook."


def streamed(ws: ClientConnection, max_tokens: int) -> tuple[float, float, int]:
    """(TTFT ms, total ms, completion tokens) of one chat over the WebSocket."""
    body = {
        "type": "chat",
        "data": {"message": MESSAGE, "model": "gpt-4", "temperature": 0, "max_tokens": max_tokens},
    }
    started = time.perf_counter()
    ws.send(json.dumps(body))
    first = None
    while True:
        message = json.loads(ws.recv(timeout=300))
        if message["type"] == "chat_token" and first is None:
            first = time.perf_counter()
        elif message["type"] == "chat_response":
            done = time.perf_counter()
            tokens = int(message["data"]["usage"]["completion_tokens"])
            return ((first or done) - started) * 1000, (done - started) * 1000, tokens
        elif message["type"] == "error":
            raise SystemExit(f"chat failed: {message}")


class RawLoop:
    """The same model in this process: the chat template, then model.generate (greedy)."""

    def __init__(self) -> None:
        import torch

        from stratus_worker.inference import loading
        from stratus_worker.inference.backends import CausalLMBackend, default_cache_dir, load_backend
        from stratus_worker.inference.registry import get

        loading.prepare()
        backend = load_backend(get(MODEL), default_cache_dir())
        assert isinstance(backend, CausalLMBackend)
        self.torch = torch
        self.model = backend.model
        self.ids = torch.tensor([backend.prompt_ids([{"role": "user", "content": MESSAGE}])])
        self.eos = backend.eos_ids

        class First:  # what generate's `streamer` calls
            def __init__(self) -> None:
                self.calls = 0
                self.first: float | None = None

            def put(self, value: Any) -> None:
                self.calls += 1
                if self.calls == 2 and self.first is None:  # the first call is the prompt
                    self.first = time.perf_counter()

            def end(self) -> None:
                pass

        self.First = First

    def run(self, tokens: int) -> tuple[float, float, int]:
        streamer = self.First()
        started = time.perf_counter()
        with self.torch.inference_mode():
            out = self.model.generate(
                input_ids=self.ids,
                attention_mask=self.torch.ones_like(self.ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                pad_token_id=self.eos[0],
                streamer=streamer,
            )
        done = time.perf_counter()
        produced = out.shape[1] - self.ids.shape[1]
        return ((streamer.first or done) - started) * 1000, (done - started) * 1000, int(produced)


def summary(name: str, ttft: list[float], rates: list[float]) -> str:
    return (
        f"| {name} | {percentile(ttft, 50):.0f} ms | {percentile(ttft, 90):.0f} ms | "
        f"{statistics.median(rates):.1f} | {min(rates):.1f}-{max(rates):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as scratch:
        serve = Serve(Path(scratch) / "state")
        serve.start(timeout_s=300)
        try:
            with httpx.Client(base_url=serve.base_url, timeout=60) as client:
                creds = {"email": "bench@example.com", "password": "securepass123", "name": "Bench"}
                token = client.post("/api/auth/register", json=creds).json()["access_token"]
            url = serve.base_url.replace("http", "ws") + f"/ws?token={token}"
            with connect(url, max_size=None) as ws:
                json.loads(ws.recv(timeout=10))  # connected
                for _ in range(args.warmup):  # loads the model in the worker
                    streamed(ws, args.max_tokens)
                raw = RawLoop()
                for _ in range(args.warmup):
                    raw.run(args.max_tokens)
                s_ttft, s_rate, r_ttft, r_rate, ratios = [], [], [], [], []
                for _ in range(args.rounds):
                    ttft, total, tokens = streamed(ws, args.max_tokens)
                    s_ttft.append(ttft)
                    s_rate.append(tokens / total * 1000)
                    r_first, r_total, r_tokens = raw.run(tokens)
                    r_ttft.append(r_first)
                    r_rate.append(r_tokens / r_total * 1000)
                    ratios.append(s_rate[-1] / r_rate[-1])
                    print(f"round {len(ratios)}: stream TTFT {ttft:.0f} ms {s_rate[-1]:.1f} tok/s; "
                          f"raw TTFT {r_first:.0f} ms {r_rate[-1]:.1f} tok/s", flush=True)  # fmt: skip
        finally:
            serve.stop()
    print(f"{args.rounds} rounds, {args.max_tokens} tokens max, greedy; prompt {MESSAGE!r}")
    print("| | TTFT p50 | TTFT p90 | tokens/s median | tokens/s range |")
    print("| --- | --- | --- | --- | --- |")
    print(summary("WebSocket chat through `stratus serve`", s_ttft, s_rate))
    print(summary("raw `model.generate` in-process (baseline)", r_ttft, r_rate))
    print(f"streamed / raw tokens/s, median of per-round ratios: {statistics.median(ratios):.2f}x")
    print(
        json.dumps({"stream_ttft_ms": s_ttft, "stream_tps": s_rate, "raw_ttft_ms": r_ttft, "raw_tps": r_rate})
    )


if __name__ == "__main__":
    main()
