"""The synchronous client."""

from __future__ import annotations

import contextlib
import json as jsonlib
import mimetypes
import os
import time
from collections.abc import Callable, Iterator, Mapping
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


class Client(Endpoints[Any]):
    """Stratus over HTTP. Authenticate with `api_key` (an `sk-` key or an access token) or `login()`.

    >>> with Client("http://127.0.0.1:8000", api_key="sk-...") as stratus:
    ...     job = stratus.train(dataset_id, epochs=5)
    ...     stratus.wait(job["job_id"])
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = api_key
        self.refresh_token = refresh_token
        self.retry = retry or RetryPolicy()
        self.inline_limit = inline_limit
        # The WebSocket API (in AWS its own endpoint, the WebSocketUrl output); default: /ws beside base_url.
        self.websocket_url = websocket_url
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------------
    def _send(
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
                response = self._http.request(method, url, headers=sent, **kwargs)
            except httpx.TransportError:
                if not safe or attempt >= self.retry.max_retries:
                    raise
                time.sleep(self.retry.delay(attempt, None))
                attempt += 1
                continue
            if response.status_code in self.retry.statuses and attempt < self.retry.max_retries:
                time.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            if response.status_code == 401 and authenticated and self.refresh_token and not refreshed:
                refreshed = True
                self._refresh()
                continue
            return response

    def _refresh(self) -> None:
        response = self._send(
            "POST",
            "/api/auth/refresh",
            json={"refresh_token": self.refresh_token},
            safe=True,
            authenticated=False,
        )
        raise_for_status(response)
        tokens = response.json()
        self.token, self.refresh_token = tokens["access_token"], tokens.get("refresh_token")

    def _call(
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
        response = self._send(
            method, path, headers=headers, safe=safe, json=json, params=params, files=files, data=data
        )
        raise_for_status(response)
        return decode(response)

    # --- sign in -----------------------------------------------------------------------------------
    def login(
        self, email: str | None = None, password: str | None = None, *, api_key: str | None = None
    ) -> Json:
        """Sign in with email and password (or exchange an API key for a session); keeps the tokens."""
        body = {"api_key": api_key} if api_key else {"email": email, "password": password}
        tokens: Json = self._call("POST", "/api/auth/login", json=body)
        self.token, self.refresh_token = tokens["access_token"], tokens.get("refresh_token")
        return tokens

    def register(self, email: str, password: str, name: str) -> Json:
        """Create an account and sign in with it."""
        body = {"email": email, "password": password, "name": name}
        user: Json = self._call("POST", "/api/auth/register", json=body)
        self.token, self.refresh_token = user["access_token"], user.get("refresh_token")
        return user

    # --- pages -------------------------------------------------------------------------------------
    def _offset_pages(
        self, path: str, params: Mapping[str, Any] | None = None, page_size: int = 100
    ) -> Iterator[Json]:
        offset = 0
        while True:
            body = self._call("GET", path, params={**(params or {}), "limit": page_size, "offset": offset})
            items = page_items(body)
            yield from items
            if len(items) < page_size:
                return
            offset += len(items)

    def _cursor_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Json]:
        cursor: str | None = None
        while True:
            query = {**(params or {}), **({"cursor": cursor} if cursor else {})}
            body = self._call("GET", path, params=query)
            yield from page_items(body)
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def datasets(self, *, sort_by: str = "created_at", order: str = "desc") -> Iterator[Json]:
        return self._offset_pages("/api/datasets", {"sort_by": sort_by, "order": order})

    def models(self, **filters: str) -> Iterator[Json]:
        """Your models (source, task, model_type, status filters); built-in ones: `builtin_models()`."""
        return self._offset_pages("/api/models", filters)

    def builtin_models(self) -> list[Json]:
        return page_items(self._call("GET", "/models", params={"source": "builtin", "limit": 100}))

    def jobs(self, *, status: str | None = None, kind: str | None = None) -> Iterator[Json]:
        """Newest first."""
        return self._cursor_pages(
            "/api/jobs", {k: v for k, v in {"status": status, "kind": kind}.items() if v}
        )

    def job_events(self, job_id: str) -> Iterator[Json]:
        """Status changes and progress, oldest first."""
        return self._cursor_pages(f"/api/jobs/{job_id}/events")

    def api_keys(self) -> Iterator[Json]:
        return self._offset_pages("/api/apikeys")

    def webhooks(self) -> Iterator[Json]:
        return self._offset_pages("/api/webhooks")

    def deliveries(self, webhook_id: str) -> Iterator[Json]:
        return self._offset_pages(f"/api/webhooks/{webhook_id}/deliveries")

    def chats(self) -> Iterator[Json]:
        """Your chats, most recently updated first."""
        return self._offset_pages("/api/chats")

    def messages(self, chat_id: str) -> Iterator[Json]:
        """A chat's messages, oldest first."""
        return self._offset_pages(f"/api/messages/chat/{chat_id}")

    def files(self) -> Iterator[Json]:
        return self._offset_pages("/api/files")

    def faces(self) -> Iterator[Json]:
        """The faces you registered."""
        return self._offset_pages("/api/face-recognition/faces")

    def chat_history(self) -> Iterator[Json]:
        return self._offset_pages("/api/chat/history")

    # --- chats, live -------------------------------------------------------------------------------
    def _socket(self, query: str) -> Any:
        """A WebSocket to the API's /ws, or None when none can be opened (no websockets package)."""
        try:
            from websockets.exceptions import InvalidHandshake
            from websockets.sync.client import connect
        except ImportError:
            return None
        if not self.token:
            raise AuthenticationError(401, "sign in first: the WebSocket needs a token")
        try:
            return connect(socket_url(self.base_url, self.token, query, self.websocket_url), open_timeout=10)
        except (OSError, InvalidHandshake):
            return None

    def ask(
        self,
        chat_id: str,
        content: str,
        *,
        on_token: Callable[[str], None] | None = None,
        timeout: float = 300,
    ) -> Json:
        """Post a user message and return the assistant's reply (with its `charts` and `query`), calling
        `on_token` with each piece of text as it is generated (over the WebSocket; polled otherwise)."""
        deadline = time.monotonic() + timeout
        with contextlib.ExitStack() as stack:
            ws = self._socket(f"follow={chat_id}")
            if ws is not None:
                stack.enter_context(ws)
            posted: Json = self.post_message(chat_id, content)
            asked = posted.get("id") or posted.get("_id")
            while ws is not None and time.monotonic() < deadline:
                try:
                    message = jsonlib.loads(ws.recv(timeout=2.0))
                except TimeoutError:
                    reply = self._reply(chat_id, asked)  # announced before we listened?
                    if reply is not None:
                        return reply
                    continue
                except Exception:  # the connection dropped: poll instead
                    break
                data = message.get("data") or {}
                if data.get("reply_to") != asked:
                    continue
                if message.get("type") == "chat_token" and on_token is not None:
                    on_token(str(data.get("token", "")))
                elif message.get("type") == "chat_message":
                    return dict(data)
        while time.monotonic() < deadline:
            reply = self._reply(chat_id, asked)
            if reply is not None:
                if on_token is not None:
                    on_token(reply.get("content", ""))
                return reply
            time.sleep(0.5)
        raise TimeoutError(f"no reply in chat {chat_id} within {timeout} s")

    def _reply(self, chat_id: str, asked: Any) -> Json | None:
        for message in self.messages(chat_id):
            if message.get("role") == "assistant" and message.get("reply_to") == asked:
                return message
        return None

    def stream_chat(
        self,
        message: str,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[Json]:
        """Seed 004's chat over the WebSocket: {"type": "chat_token", "data": {token}} as the model generates,
        then {"type": "chat_response", "data": {id, message, model, usage}}. Without a WebSocket, the
        whole reply of POST /api/chat as one chat_response."""
        request = {"message": message, "model": model, "temperature": temperature, "max_tokens": max_tokens}
        ws = self._socket("")
        if ws is None:
            reply: Json = self.chat(message, model=model, temperature=temperature, max_tokens=max_tokens)
            yield {"type": "chat_response", "data": reply}
            return
        with ws:
            ws.send(
                jsonlib.dumps({"type": "chat", "data": {k: v for k, v in request.items() if v is not None}})
            )
            while True:
                event = jsonlib.loads(ws.recv(timeout=300))
                if event.get("type") in ("connected", "pong"):
                    continue
                if event.get("type") == "error":
                    data = event.get("data") or {}
                    raise ApiError(400, data)
                yield event
                if event.get("type") == "chat_response":
                    return

    # --- uploads -----------------------------------------------------------------------------------
    def upload_dataset(
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
                dataset: Json = self._call(
                    "POST",
                    "/api/datasets/upload",
                    files={"file": (file_path.name, reader, content_type)},
                    data=form,
                )
        else:
            ticket = self._call(
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

            def chunks() -> Iterator[bytes]:
                done = 0
                with file_path.open("rb") as f:
                    while chunk := f.read(UPLOAD_CHUNK):
                        done += len(chunk)
                        yield chunk
                        if progress is not None:
                            progress(done, size)

            headers = {"Content-Length": str(size), **upload.get("headers", {})}
            put = self._send(
                upload.get("method", "PUT"),
                upload["url"],
                headers=headers,
                safe=False,
                authenticated=False,
                content=chunks(),
            )
            raise_for_status(put)
            dataset = self._call("POST", ticket["complete_url"])
        if wait:
            dataset = self.wait_dataset(dataset["id"])
        return dataset

    def wait_dataset(self, dataset_id: str, *, timeout: float = 600, poll_s: float = 0.5) -> Json:
        deadline = time.monotonic() + timeout
        while True:
            dataset: Json = self.get_dataset(dataset_id)
            if dataset["status"] == "ready":
                return dataset
            if dataset["status"] == "failed":
                raise StratusError(f"dataset {dataset_id} failed: {dataset.get('error')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} is still {dataset['status']}")
            time.sleep(poll_s)

    # --- following jobs ----------------------------------------------------------------------------
    def follow(self, job: str | Mapping[str, Any], *, timeout: float | None = None) -> Iterator[Json]:
        """The job's live messages ({"type": "progress"|"status"|"error", "data": {...}}) over the
        WebSocket, ending with its terminal status. Falls back to polling the job's event log when no
        WebSocket can be opened (no `websockets` package, or a proxy in the way)."""
        job_id = job if isinstance(job, str) else job_id_of(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            from websockets.exceptions import ConnectionClosed, InvalidHandshake
            from websockets.sync.client import connect
        except ImportError:
            yield from self._poll(job_id, deadline)
            return
        if not self.token:
            raise AuthenticationError(401, "sign in first: follow needs a token")
        try:
            ws = connect(
                socket_url(self.base_url, self.token, f"follow={job_id}", self.websocket_url), open_timeout=10
            )
        except (OSError, InvalidHandshake):
            yield from self._poll(job_id, deadline)
            return
        with ws:
            try:
                while True:
                    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                    try:
                        raw = ws.recv(timeout=min(remaining, 5.0) if remaining is not None else 5.0)
                    except TimeoutError:
                        if deadline is not None and time.monotonic() >= deadline:
                            raise
                        # Quiet for a while: the job may have ended before we subscribed.
                        current: Json = self.get_job(job_id)
                        if current.get("status") in ("completed", "failed", "stopped"):
                            yield status_message(current)
                            return
                        continue
                    message = jsonlib.loads(raw)
                    if message.get("type") == "error" and "status" not in (message.get("data") or {}):
                        raise ApiError(404, message.get("data"))
                    if message.get("type") == "subscribed":
                        current = self.get_job(job_id)
                        if current.get("status") in ("completed", "failed", "stopped"):
                            yield status_message(current)
                            return
                    yield message
                    if is_terminal(message):
                        return
            except ConnectionClosed:
                yield from self._poll(job_id, deadline)

    def _poll(self, job_id: str, deadline: float | None, every_s: float = 1.0) -> Iterator[Json]:
        cursor: str | None = None
        while True:
            body = self._call(
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
                current: Json = self.get_job(job_id)
                if current.get("status") in ("completed", "failed", "stopped") and not body["events"]:
                    yield status_message(current)
                    return
                time.sleep(every_s)

    def wait(
        self, job: str | Mapping[str, Any], *, timeout: float | None = None, raise_on_failure: bool = True
    ) -> Json:
        """Block until the job ends; returns its record. Raises JobFailed if it failed or was stopped."""
        job_id = job if isinstance(job, str) else job_id_of(job)
        for _ in self.follow(job_id, timeout=timeout):
            pass
        record: Json = self.get_job(job_id)
        if raise_on_failure and record.get("status") != "completed":
            raise JobFailed(record)
        return record


__all__ = ["ApiError", "Client"]
