"""The local inference backend: one long-running worker process (stratus_worker.inference.server) that
keeps models loaded and micro-batches requests; started on first use (or warmed at start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from stratus.adapters.local.lifetime import die_with_parent
from stratus.errors import NotFound, ServiceUnavailable
from stratus.ports.inference import InferencePending, InferenceRequest, InferenceResult, worker_error

log = logging.getLogger(__name__)

SERVER_MODULE = "stratus_worker.inference.server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalInferenceServer:
    def __init__(
        self,
        *,
        python: str = sys.executable,
        log_dir: Path,
        startup_timeout_s: float = 180.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._python = python
        self._extra_env = dict(extra_env or {})
        self._log_dir = log_dir
        self._startup_timeout_s = startup_timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._base_url: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._starting = asyncio.Lock()
        self._pending: dict[str, asyncio.Task[InferenceResult]] = {}

    async def _ensure_started(self) -> httpx.AsyncClient:
        async with self._starting:
            if self._client is not None and self._process is not None and self._process.returncode is None:
                return self._client
            port = _free_port()
            self._log_dir.mkdir(parents=True, exist_ok=True)
            with (self._log_dir / "inference.log").open("ab") as out:
                self._process = await asyncio.create_subprocess_exec(
                    self._python, "-m", SERVER_MODULE, "--host", "127.0.0.1", "--port", str(port),
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                    env={**os.environ, **self._extra_env},
                    preexec_fn=die_with_parent(),  # its models are reloaded on demand: nothing to save
                )  # fmt: skip
            self._base_url = f"http://127.0.0.1:{port}"
            client = httpx.AsyncClient(base_url=self._base_url, timeout=httpx.Timeout(600.0, connect=2.0))
            deadline = asyncio.get_running_loop().time() + self._startup_timeout_s
            while True:
                if self._process.returncode is not None:
                    await client.aclose()
                    raise ServiceUnavailable("The inference worker failed to start; see inference.log")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        break
                if asyncio.get_running_loop().time() > deadline:
                    await client.aclose()
                    raise ServiceUnavailable("The inference worker did not start in time")
                await asyncio.sleep(0.2)
            self._client = client
            return client

    async def warm(self) -> None:
        """Start the worker ahead of the first request (errors are logged, the first request retries)."""
        try:
            await self._ensure_started()
        except ServiceUnavailable:
            log.warning("inference worker did not start", exc_info=True)

    async def invoke(self, request: InferenceRequest, *, wait_s: float) -> InferenceResult:
        task = asyncio.create_task(self._call(request))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=wait_s)
        except TimeoutError:
            reference = uuid.uuid4().hex
            self._pending[reference] = task
            raise InferencePending(reference) from None

    async def collect(self, reference: str) -> InferenceResult | None:
        task = self._pending.get(reference)
        if task is None:
            raise NotFound("Task result is no longer available")
        if not task.done():
            return None
        del self._pending[reference]
        return task.result()

    async def _call(self, request: InferenceRequest) -> InferenceResult:
        client = await self._ensure_started()
        body = request.body()
        try:
            response = await client.post("/invoke", json=body)
        except httpx.HTTPError as e:
            raise ServiceUnavailable("The inference worker is unreachable, please retry") from e
        data: dict[str, Any] = response.json() if response.content else {}
        if response.status_code == 200:
            return InferenceResult(
                outputs=list(data["outputs"]),
                model=str(data.get("model", request.model)),
                batch_size=int(data.get("batch_size", 1)),
                duration_ms=data.get("duration_ms"),
            )
        raise worker_error(response.status_code, data)

    async def stream(self, request: InferenceRequest) -> AsyncIterator[dict[str, Any]]:
        """A chat request's events as the worker generates them (stratus.ports.chat), read from its
        chunked newline-delimited JSON answer; closing this iterator early closes the connection, which
        stops the generation."""
        client = await self._ensure_started()
        body = {**request.body(), "stream": True}
        try:
            async with client.stream("POST", "/invoke", json=body) as response:
                if response.status_code != 200:
                    raw = await response.aread()
                    raise worker_error(response.status_code, json.loads(raw) if raw else {})
                async for line in response.aiter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as e:
            raise ServiceUnavailable("The inference worker is unreachable, please retry") from e

    async def catalogue(self) -> list[dict[str, Any]]:
        client = await self._ensure_started()
        try:
            response = await client.get("/models")
        except httpx.HTTPError as e:
            raise ServiceUnavailable("The inference worker is unreachable, please retry") from e
        models = response.json()
        return list(models["models"] if isinstance(models, dict) else models)

    async def stop(self) -> None:
        for task in self._pending.values():
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
