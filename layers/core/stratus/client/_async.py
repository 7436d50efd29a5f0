"""The asynchronous client: the same calls as `Client`, awaited."""
# ruff: noqa: ASYNC109, ASYNC230, ASYNC240
# (timeouts mirror the sync client's; the files read are local and read in chunks)

from __future__ import annotations

import asyncio
import json as jsonlib
import mimetypes
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from stratus.client._core import (
    DEFAULT_INLINE_LIMIT,
    UPLOAD_CHUNK,
    ApiError,
    AuthenticationError,
    Endpoints,
    JobFailed,
    Json,
    RetryPolicy,
    StratusError,
    decode,
    is_terminal,
    job_id_of,
    new_idempotency_key,
    page_items,
    raise_for_status,
    socket_url,
    status_message,
)

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class _CountingReader:
    """A file object that reports how much of it has been read (httpx reads multipart files in chunks)."""

    def __init__(self, file: IO[bytes], total: int, progress: Progress | None) -> None:
        self._file, self._total, self._progress, self._done = file, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._done += len(chunk)
        if self._progress is not None and chunk:
            self._progress(self._done, self._total)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


class AsyncClient(Endpoints[Any]):
    """Stratus over HTTP. Authenticate with `api_key` (an `sk-` key or an access token) or `login()`.

    >>> async with AsyncClient("http://127.0.0.1:8000", api_key="sk-...") as stratus:
    ...     job = await stratus.train(dataset_id, epochs=5)
    ...     await stratus.wait(job["job_id"])
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        websocket_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = api_key
        self.refresh_token = refresh_token
        self.retry = retry or RetryPolicy()
        self.inline_limit = inline_limit
        # The WebSocket API (in AWS its own endpoint, the WebSocketUrl output); default: /ws beside base_url.
        self.websocket_url = websocket_url
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- transport ---------------------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        safe: bool,
        authenticated: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        attempt = 0
        refreshed = False
        while True:
            sent = dict(headers or {})
            if authenticated and self.token:
                sent["Authorization"] = f"Bearer {self.token}"
            files = kwargs.get("files")
            if files is not None and attempt:
                for value in files.values():  # a retried multipart body is read again from the start
                    value[1].seek(0)
            try:
                response = await self._http.request(method, url, headers=sent, **kwargs)
            except httpx.TransportError:
                if not safe or attempt >= self.retry.max_retries:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, None))
                attempt += 1
                continue
            if response.status_code in self.retry.statuses and attempt < self.retry.max_retries:
                await asyncio.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            if response.status_code == 401 and authenticated and self.refresh_token and not refreshed:
                refreshed = True
                await self._refresh()
                continue
            return response

    async def _refresh(self) -> None:
        response = await self._send(
            "POST",
            "/api/auth/refresh",
            json={"refresh_token": self.refresh_token},
            safe=True,
            authenticated=False,
        )
        raise_for_status(response)
        tokens = response.json()
        self.token, self.refresh_token = tokens["access_token"], tokens.get("refresh_token")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        starts_work: bool = False,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {}
        if starts_work or idempotency_key:
            headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        safe = method in ("GET", "HEAD", "OPTIONS", "DELETE", "PUT") or "Idempotency-Key" in headers
        response = await self._send(
            method, path, headers=headers, safe=safe, json=json, params=params, files=files, data=data
        )
        raise_for_status(response)
        return decode(response)

    # --- sign in -----------------------------------------------------------------------------------
    async def login(
        self, email: str | None = None, password: str | None = None, *, api_key: str | None = None
    ) -> Json:
        """Sign in with email and password (or exchange an API key for a session); keeps the tokens."""
        body = {"api_key": api_key} if api_key else {"email": email, "password": password}
        tokens: Json = await self._call("POST", "/api/auth/login", json=body)
        self.token, self.refresh_token = tokens["access_token"], tokens.get("refresh_token")
        return tokens

    async def register(self, email: str, password: str, name: str) -> Json:
        """Create an account and sign in with it."""
        body = {"email": email, "password": password, "name": name}
        user: Json = await self._call("POST", "/api/auth/register", json=body)
        self.token, self.refresh_token = user["access_token"], user.get("refresh_token")
        return user

    # --- pages -------------------------------------------------------------------------------------
    async def _offset_pages(
        self, path: str, params: Mapping[str, Any] | None = None, page_size: int = 100
    ) -> AsyncIterator[Json]:
        offset = 0
        while True:
            body = await self._call(
                "GET", path, params={**(params or {}), "limit": page_size, "offset": offset}
            )
            items = page_items(body)
            for item in items:
                yield item
            if len(items) < page_size:
                return
            offset += len(items)

    async def _cursor_pages(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[Json]:
        cursor: str | None = None
        while True:
            query = {**(params or {}), **({"cursor": cursor} if cursor else {})}
            body = await self._call("GET", path, params=query)
            for item in page_items(body):
                yield item
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def datasets(self, *, sort_by: str = "created_at", order: str = "desc") -> AsyncIterator[Json]:
        return self._offset_pages("/api/datasets", {"sort_by": sort_by, "order": order})

    def models(self, **filters: str) -> AsyncIterator[Json]:
        return self._offset_pages("/api/models", filters)

    async def builtin_models(self) -> list[Json]:
        return page_items(await self._call("GET", "/models", params={"source": "builtin", "limit": 100}))

    def jobs(self, *, status: str | None = None, kind: str | None = None) -> AsyncIterator[Json]:
        return self._cursor_pages(
            "/api/jobs", {k: v for k, v in {"status": status, "kind": kind}.items() if v}
        )

    def job_events(self, job_id: str) -> AsyncIterator[Json]:
        return self._cursor_pages(f"/api/jobs/{job_id}/events")

    def api_keys(self) -> AsyncIterator[Json]:
        return self._offset_pages("/api/apikeys")

    def webhooks(self) -> AsyncIterator[Json]:
        return self._offset_pages("/api/webhooks")

    def deliveries(self, webhook_id: str) -> AsyncIterator[Json]:
        return self._offset_pages(f"/api/webhooks/{webhook_id}/deliveries")

    def chats(self) -> AsyncIterator[Json]:
        return self._offset_pages("/api/chats")

    def messages(self, chat_id: str) -> AsyncIterator[Json]:
        return self._offset_pages(f"/api/messages/chat/{chat_id}")

    def files(self) -> AsyncIterator[Json]:
        return self._offset_pages("/api/files")

    def faces(self) -> AsyncIterator[Json]:
        """The faces you registered."""
        return self._offset_pages("/api/face-recognition/faces")

    def chat_history(self) -> AsyncIterator[Json]:
        return self._offset_pages("/api/chat/history")

    # --- chats, live -------------------------------------------------------------------------------
    async def _socket(self, query: str) -> Any:
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import InvalidHandshake
        except ImportError:
            return None
        if not self.token:
            raise AuthenticationError(401, "sign in first: the WebSocket needs a token")
        try:
            return await connect(
                socket_url(self.base_url, self.token, query, self.websocket_url), open_timeout=10
            )
        except (OSError, InvalidHandshake):
            return None

    async def _reply(self, chat_id: str, asked: Any) -> Json | None:
        async for message in self.messages(chat_id):
            if message.get("role") == "assistant" and message.get("reply_to") == asked:
                return message
        return None

    async def ask(
        self,
        chat_id: str,
        content: str,
        *,
        on_token: Callable[[str], None] | None = None,
        timeout: float = 300,
    ) -> Json:
        """Post a user message and return the assistant's reply (see Client.ask)."""
        deadline = time.monotonic() + timeout
        ws = await self._socket(f"follow={chat_id}")
        try:
            posted: Json = await self.post_message(chat_id, content)
            asked = posted.get("id") or posted.get("_id")
            while ws is not None and time.monotonic() < deadline:
                try:
                    message = jsonlib.loads(await asyncio.wait_for(ws.recv(), 2.0))
                except TimeoutError:
                    reply = await self._reply(chat_id, asked)
                    if reply is not None:
                        return reply
                    continue
                except Exception:
                    break
                data = message.get("data") or {}
                if data.get("reply_to") != asked:
                    continue
                if message.get("type") == "chat_token" and on_token is not None:
                    on_token(str(data.get("token", "")))
                elif message.get("type") == "chat_message":
                    return dict(data)
        finally:
            if ws is not None:
                await ws.close()
        while time.monotonic() < deadline:
            reply = await self._reply(chat_id, asked)
            if reply is not None:
                return reply
            await asyncio.sleep(0.5)
        raise TimeoutError(f"no reply in chat {chat_id} within {timeout} s")

    async def stream_chat(
        self,
        message: str,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Json]:
        """Seed 004's chat over the WebSocket (see Client.stream_chat)."""
        request = {"message": message, "model": model, "temperature": temperature, "max_tokens": max_tokens}
        ws = await self._socket("")
        if ws is None:
            reply: Json = await self.chat(
                message, model=model, temperature=temperature, max_tokens=max_tokens
            )
            yield {"type": "chat_response", "data": reply}
            return
        try:
            await ws.send(
                jsonlib.dumps({"type": "chat", "data": {k: v for k, v in request.items() if v is not None}})
            )
            while True:
                event = jsonlib.loads(await asyncio.wait_for(ws.recv(), 300))
                if event.get("type") in ("connected", "pong"):
                    continue
                if event.get("type") == "error":
                    raise ApiError(400, event.get("data") or {})
                yield event
                if event.get("type") == "chat_response":
                    return
        finally:
            await ws.close()

    # --- uploads -----------------------------------------------------------------------------------
    async def upload_dataset(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        dataset_type: str | None = None,
        description: str | None = None,
        progress: Progress | None = None,
        wait: bool = True,
    ) -> Json:
        """Upload a CSV, JSON, JSON Lines or ZIP file. Up to `inline_limit` bytes go in one multipart
        request; bigger files go straight to storage through a presigned URL. With `wait`, returns once the
        dataset is parsed (`ready`) or raises if it `failed`."""
        file_path = Path(path)
        size = file_path.stat().st_size
        content_type = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
        if size <= self.inline_limit:
            form = {
                k: v
                for k, v in {"name": name, "dataset_type": dataset_type, "description": description}.items()
                if v
            }
            with file_path.open("rb") as f:
                reader = _CountingReader(f, size, progress)
                dataset: Json = await self._call(
                    "POST",
                    "/api/datasets/upload",
                    files={"file": (file_path.name, reader, content_type)},
                    data=form,
                )
        else:
            ticket = await self._call(
                "POST",
                "/api/datasets/uploads",
                json={
                    "filename": file_path.name,
                    "size": size,
                    "content_type": content_type,
                    "name": name,
                    "description": description,
                    "dataset_type": dataset_type,
                },
            )
            upload = ticket["upload"]

            async def chunks() -> AsyncIterator[bytes]:
                done = 0
                with file_path.open("rb") as f:
                    while chunk := f.read(UPLOAD_CHUNK):
                        done += len(chunk)
                        yield chunk
                        if progress is not None:
                            progress(done, size)

            headers = {"Content-Length": str(size), **upload.get("headers", {})}
            put = await self._send(
                upload.get("method", "PUT"),
                upload["url"],
                headers=headers,
                safe=False,
                authenticated=False,
                content=chunks(),
            )
            raise_for_status(put)
            dataset = await self._call("POST", ticket["complete_url"])
        if wait:
            dataset = await self.wait_dataset(dataset["id"])
        return dataset

    async def wait_dataset(self, dataset_id: str, *, timeout: float = 600, poll_s: float = 0.5) -> Json:
        deadline = time.monotonic() + timeout
        while True:
            dataset: Json = await self.get_dataset(dataset_id)
            if dataset["status"] == "ready":
                return dataset
            if dataset["status"] == "failed":
                raise StratusError(f"dataset {dataset_id} failed: {dataset.get('error')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} is still {dataset['status']}")
            await asyncio.sleep(poll_s)

    # --- following jobs ----------------------------------------------------------------------------
    async def follow(
        self, job: str | Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[Json]:
        """The job's live messages over the WebSocket, ending with its terminal status (see Client.follow)."""
        job_id = job if isinstance(job, str) else job_id_of(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import ConnectionClosed, InvalidHandshake
        except ImportError:
            async for message in self._poll(job_id, deadline):
                yield message
            return
        if not self.token:
            raise AuthenticationError(401, "sign in first: follow needs a token")
        try:
            ws = await connect(
                socket_url(self.base_url, self.token, f"follow={job_id}", self.websocket_url), open_timeout=10
            )
        except (OSError, InvalidHandshake):
            async for message in self._poll(job_id, deadline):
                yield message
            return
        try:
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    raw = await asyncio.wait_for(
                        ws.recv(), min(remaining, 5.0) if remaining is not None else 5.0
                    )
                except TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
                    current: Json = await self.get_job(job_id)
                    if current.get("status") in ("completed", "failed", "stopped"):
                        yield status_message(current)
                        return
                    continue
                message = jsonlib.loads(raw)
                if message.get("type") == "error" and "status" not in (message.get("data") or {}):
                    raise ApiError(404, message.get("data"))
                if message.get("type") == "subscribed":
                    current = await self.get_job(job_id)
                    if current.get("status") in ("completed", "failed", "stopped"):
                        yield status_message(current)
                        return
                yield message
                if is_terminal(message):
                    return
        except ConnectionClosed:
            async for message in self._poll(job_id, deadline):
                yield message
        finally:
            await ws.close()

    async def _poll(self, job_id: str, deadline: float | None, every_s: float = 1.0) -> AsyncIterator[Json]:
        cursor: str | None = None
        while True:
            body = await self._call(
                "GET", f"/api/jobs/{job_id}/events", params={"cursor": cursor} if cursor else None
            )
            for event in body["events"]:
                message = {"type": event["type"], "data": event["data"]}
                yield message
                if is_terminal(message):
                    return
            cursor = body.get("next_cursor") or cursor
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish in time")
            if not body.get("next_cursor"):
                current: Json = await self.get_job(job_id)
                if current.get("status") in ("completed", "failed", "stopped") and not body["events"]:
                    yield status_message(current)
                    return
                await asyncio.sleep(every_s)

    async def wait(
        self, job: str | Mapping[str, Any], *, timeout: float | None = None, raise_on_failure: bool = True
    ) -> Json:
        """Block until the job ends; returns its record. Raises JobFailed if it failed or was stopped."""
        job_id = job if isinstance(job, str) else job_id_of(job)
        async for _ in self.follow(job_id, timeout=timeout):
            pass
        record: Json = await self.get_job(job_id)
        if raise_on_failure and record.get("status") != "completed":
            raise JobFailed(record)
        return record


__all__ = ["AsyncClient"]
