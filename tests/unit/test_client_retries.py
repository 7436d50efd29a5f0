"""stratus.client's retry policy and idempotency keys, against httpx's mock transport (no server)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stratus.client import ApiError, AsyncClient, Client, RetryPolicy
from stratus.client._core import retry_after

FAST = RetryPolicy(max_retries=3, backoff_s=0.0, max_backoff_s=0.0)


def _flaky(statuses: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses.pop(0) if statuses else 201
        headers = {"Retry-After": "0"} if status in (429, 503) else {}
        return httpx.Response(status, json={"job_id": "j1", "status": "queued"}, headers=headers)

    return httpx.MockTransport(handler)


def test_retries_429_and_503_with_one_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    with Client("http://stratus.test", api_key="sk-x", retry=FAST, transport=_flaky([429, 503], seen)) as c:
        started = c.train("d" * 24, epochs=2)
    assert started["job_id"] == "j1"
    assert len(seen) == 3
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(keys) == 1 and next(iter(keys))
    assert all(r.headers["Authorization"] == "Bearer sk-x" for r in seen)


def test_gives_up_after_max_retries_with_the_api_error() -> None:
    seen: list[httpx.Request] = []
    with (
        Client("http://stratus.test", retry=FAST, transport=_flaky([503] * 10, seen)) as c,
        pytest.raises(ApiError) as raised,
    ):
        c.get_job("j1")
    assert raised.value.status_code == 503
    assert len(seen) == FAST.max_retries + 1


def test_calls_that_start_no_work_carry_no_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    with Client("http://stratus.test", retry=FAST, transport=_flaky([], seen)) as c:
        c.get_job("j1")
        c.classify("hello")
    assert all("Idempotency-Key" not in r.headers for r in seen)


async def test_async_client_retries_too() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "0"})
        return httpx.Response(201, json={"download_id": "d1"})

    async with AsyncClient("http://stratus.test", retry=FAST, transport=httpx.MockTransport(handler)) as c:
        started = await c.download_model("tiny", "text-classification")
    assert started == {"download_id": "d1"}
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after("soon") is None
    assert FAST.delay(0, httpx.Response(429, headers={"Retry-After": "0"})) == 0.0


def test_client_imports_without_the_server() -> None:
    """The client needs httpx only: FastAPI, pymongo, boto3 and pydantic stay out."""
    code = (
        "import sys; import stratus.client, stratus.client.cli; "
        "bad = [m for m in ('fastapi', 'pymongo', 'boto3', 'pydantic', 'starlette', 'jinja2') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_websocket_urls_beside_the_api_or_the_websocket_api_of_aws() -> None:
    from stratus.client._core import socket_url

    assert (
        socket_url("http://127.0.0.1:8000/", "sk-a", "follow=j1")
        == "ws://127.0.0.1:8000/ws?follow=j1&token=sk-a"
    )
    assert socket_url("https://api.example.com", "t/+") == "wss://api.example.com/ws?token=t%2F%2B"
    aws = socket_url("https://x", "t", "follow=j", "wss://abc.execute-api.us-east-1.amazonaws.com/prod")
    assert aws == "wss://abc.execute-api.us-east-1.amazonaws.com/prod?follow=j&token=t"


def test_credentials_are_written_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stratus.client import cli

    monkeypatch.setenv("STRATUS_CONFIG_DIR", str(tmp_path / "stratus"))
    path = cli.save_credentials({"url": "http://x", "token": "sk-secret"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cli.load_credentials() == {"url": "http://x", "token": "sk-secret"}
    path.write_text("not json")
    assert cli.load_credentials() == {}


def test_cli_exit_codes_without_a_server(tmp_path: Path) -> None:
    env = {**os.environ, "STRATUS_CONFIG_DIR": str(tmp_path)}
    env.pop("STRATUS_API_KEY", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stratus.local.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert run("jobs").returncode == 3  # not signed in
    assert run("jobs", "--bogus").returncode == 2  # usage
    env["STRATUS_API_KEY"] = "sk-x"
    unreachable = run("jobs", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 4, unreachable.stderr


def test_image_and_audio_calls_send_the_multipart_fields_the_api_names(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    photo = tmp_path / "cat.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")
    with Client("http://stratus.test", api_key="sk-x", transport=httpx.MockTransport(handler)) as c:
        c.classify_image(photo, top_k=3)
        c.register_face(photo.read_bytes(), "Ada")
        c.transcribe(photo)
    classify, register, transcribe = (r.read() for r in seen)
    assert b'name="image"; filename="cat.png"' in classify and b'name="top_k"' in classify
    assert b'name="image"' in register and b"Ada" in register
    assert b'name="audio"' in transcribe
    assert [r.url.path for r in seen] == [
        "/api/image-recognition/classify",
        "/api/face-recognition/register",
        "/api/audio/transcribe",
    ]
