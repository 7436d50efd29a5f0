"""`stratus serve` for real: a subprocess with the embedded database, spoken to over HTTP and WebSocket."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.server import ServeProcess


def test_register_login_and_websocket_with_token(stratus_server: ServeProcess) -> None:
    server = stratus_server.base_url
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


def test_probes_report_the_embedded_database(stratus_server: ServeProcess) -> None:
    assert (stratus_server.state_dir / "db").exists()
    http = httpx.Client(base_url=stratus_server.base_url, timeout=10)
    assert http.get("/health/db").json()["status"] == "healthy"
    ready = http.get("/ready").json()
    assert ready["status"] == "ready"
    assert ready["services"]["database"] == "connected"
