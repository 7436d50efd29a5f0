"""`stratus serve` for real: a subprocess with the embedded database, spoken to over HTTP and WebSocket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("state")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"} | {"STRATUS_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratus.local.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"stratus serve exited: {proc.stdout.read() if proc.stdout else ''}")
    else:
        proc.kill()
        pytest.fail("stratus serve did not become ready")
    yield base
    proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, output
    assert "Stratus listening on" in output
    assert "Stratus stopped" in output
    assert (state / "db").exists()


def test_register_login_and_websocket_with_token(server: str) -> None:
    http = httpx.Client(base_url=server, timeout=10)
    reg = http.post(
        "/api/auth/register", json={"email": "e2e@example.com", "password": "test123", "name": "E2E"}
    )
    assert reg.status_code == 201
    token = http.post("/api/auth/login", json={"email": "e2e@example.com", "password": "test123"}).json()[
        "access_token"
    ]
    ws_url = server.replace("http", "ws") + "/ws"
    # Query-string token
    with connect(f"{ws_url}?token={token}") as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "connected"
        assert hello["data"]["user_id"] == reg.json()["_id"]
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"
    # Sec-WebSocket-Protocol: bearer, <token> (what browsers can send)
    with connect(ws_url, subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        assert json.loads(ws.recv(timeout=5))["type"] == "connected"
    # No token, or a bad one: refused at the handshake
    for url in (ws_url, f"{ws_url}?token=not-a-token"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url)
        assert refused.value.response.status_code == 403


def test_probes_report_the_embedded_database(server: str) -> None:
    http = httpx.Client(base_url=server, timeout=10)
    assert http.get("/health/db").json()["status"] == "healthy"
    ready = http.get("/ready").json()
    assert ready["status"] == "ready"
    assert ready["services"]["database"] == "connected"
