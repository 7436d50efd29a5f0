"""LiveUpdates: connections follow their owner's jobs, pushes reach exactly the followers, gone
connections are forgotten; and the local WebSocket endpoint speaking that protocol over a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import uvicorn
from bson import ObjectId
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from stratus.adapters.local.ws_hub import LocalWebSocketHub
from stratus.api.app import create_app
from stratus.composition import Container
from stratus.db.repositories.connections import MAX_SUBSCRIPTIONS, ConnectionRepository
from stratus.errors import Conflict, NotFound, ServiceUnavailable
from stratus.local import websocket
from stratus.local.runtime import LocalPorts
from stratus.services.live import LiveUpdates
from tests.integration.live.conftest import User, model_bound_credentials

PROGRESS = {"type": "progress", "data": {"epoch": 1, "total_epochs": 3, "loss": 0.42}}


class Socket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_json(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


async def _open(live: LiveUpdates, hub: LocalWebSocketHub, user: User) -> tuple[str, Socket]:
    connection_id, sock = ObjectId().__str__(), Socket()
    hub.register(connection_id, sock.send_json)
    await live.connect(connection_id, user.user_id)
    return connection_id, sock


async def test_push_reaches_only_the_jobs_followers(
    live: LiveUpdates, ports: LocalPorts, alice: User, bob: User
) -> None:
    # GIVEN two of Alice's connections, one following her job, and one of Bob's following his
    following, follower = await _open(live, ports.notifier, alice)
    _, idle = await _open(live, ports.notifier, alice)
    bobs, bob_socket = await _open(live, ports.notifier, bob)
    await live.subscribe(following, alice.user_id, alice.job_id)
    await live.subscribe(following, alice.user_id, alice.job_id)  # twice is once
    await live.subscribe(bobs, bob.user_id, bob.job_id)
    # WHEN her job reports progress
    delivered = await live.push(alice.job_id, PROGRESS)
    # THEN only the following connection gets it, once
    assert delivered == 1
    assert follower.sent == [PROGRESS] and idle.sent == [] and bob_socket.sent == []
    # AND after unsubscribing it gets nothing more
    await live.unsubscribe(following, alice.job_id)
    assert await live.push(alice.job_id, PROGRESS) == 0


async def test_gone_connections_are_forgotten(
    live: LiveUpdates, ports: LocalPorts, connections: ConnectionRepository, alice: User
) -> None:
    gone, _ = await _open(live, ports.notifier, alice)
    alive, sock = await _open(live, ports.notifier, alice)
    for connection_id in (gone, alive):
        await live.subscribe(connection_id, alice.user_id, alice.job_id)
    ports.notifier.unregister(gone)  # the client went away without a clean close
    assert await live.push(alice.job_id, PROGRESS) == 1
    assert sock.sent == [PROGRESS]
    assert await connections.user_of(gone) is None
    assert await connections.subscribers(alice.job_id) == [alive]


async def test_one_failing_connection_does_not_stop_the_others(
    connections: ConnectionRepository, alice: User
) -> None:
    class FlakyNotifier:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
            if connection_id == "throttled":
                raise ServiceUnavailable("Throttled")
            self.sent.append(connection_id)
            return True

    async def owns(user_id: ObjectId, job_id: str) -> bool:
        return True

    notifier = FlakyNotifier()
    live = LiveUpdates(connections, notifier, job_owner=owns)
    for connection_id in ("throttled", "fine"):
        await live.connect(connection_id, alice.user_id)
        await live.subscribe(connection_id, alice.user_id, "job-1")
    assert await live.push("job-1", PROGRESS) == 1
    assert notifier.sent == ["fine"]
    assert sorted(await connections.subscribers("job-1")) == ["fine", "throttled"]  # kept: not gone


@pytest.mark.parametrize("job", ["bobs", "missing", "malformed"])
async def test_only_your_own_jobs_can_be_followed(
    live: LiveUpdates, ports: LocalPorts, alice: User, bob: User, job: str
) -> None:
    connection_id, _ = await _open(live, ports.notifier, alice)
    job_id = {"bobs": bob.job_id, "missing": str(ObjectId()), "malformed": "not-an-id"}[job]
    with pytest.raises(NotFound, match="Job not found"):
        await live.subscribe(connection_id, alice.user_id, job_id)
    reply = await live.respond(connection_id, alice.user_id, {"action": "subscribe", "job_id": job_id})
    assert reply == {"type": "error", "data": {"message": "Job not found"}}
    assert await live.push(job_id, PROGRESS) == 0


async def test_a_connection_cannot_be_used_by_another_user(live: LiveUpdates, alice: User, bob: User) -> None:
    await live.connect("alices", alice.user_id)
    with pytest.raises(NotFound, match="Connection not found"):
        await live.subscribe("alices", bob.user_id, bob.job_id)


async def test_subscriptions_per_connection_are_capped(
    connections: ConnectionRepository, alice: User
) -> None:
    async def owns(user_id: ObjectId, job_id: str) -> bool:
        return True

    live = LiveUpdates(connections, LocalWebSocketHub(), job_owner=owns)
    await live.connect("c", alice.user_id)
    for i in range(MAX_SUBSCRIPTIONS):
        await live.subscribe("c", alice.user_id, f"job-{i}")
    with pytest.raises(Conflict):
        await live.subscribe("c", alice.user_id, "one-too-many")


async def test_protocol_replies(live: LiveUpdates, alice: User) -> None:
    await live.connect("c", alice.user_id)
    assert await live.respond("c", alice.user_id, {"action": "ping"}) == {"type": "pong", "data": {}}
    subscribed = await live.respond("c", alice.user_id, {"action": "subscribe", "job_id": alice.job_id})
    assert subscribed == {"type": "subscribed", "data": {"job_id": alice.job_id}}
    unsubscribed = await live.respond("c", alice.user_id, {"action": "unsubscribe", "job_id": alice.job_id})
    assert unsubscribed == {"type": "unsubscribed", "data": {"job_id": alice.job_id}}
    for bad in ({"action": "dance"}, ["subscribe"], {"action": "subscribe"}):
        assert (await live.respond("c", alice.user_id, bad))["type"] == "error"


async def test_connections_expire_with_api_gateways_two_hour_limit(connections: ConnectionRepository) -> None:
    await connections.add("c", ObjectId())
    doc = await connections.collection.find_one({"_id": "c"})
    assert doc is not None and (doc["expires_at"] - doc["connected_at"]).total_seconds() == 2 * 3600
    assert (await connections.collection.index_information())["expires_ttl"]["expireAfterSeconds"] == 0


# --- the local WebSocket endpoint, over a real socket ----------------------------------------------


@pytest.fixture
async def ws_base(container: Container, ports: LocalPorts, live: LiveUpdates) -> AsyncIterator[str]:
    app = create_app(container, extra_routers=[websocket.build_router(ports.notifier, container.auth, live)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _recv(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return message


async def test_subscribing_over_the_socket(
    ws_base: str, live: LiveUpdates, connections: ConnectionRepository, alice: User, bob: User
) -> None:
    async with connect(f"{ws_base}/ws/training?token={alice.token}") as ws:
        assert (await _recv(ws))["type"] == "connected"
        await ws.send(json.dumps({"action": "subscribe", "job_id": bob.job_id}))
        assert await _recv(ws) == {"type": "error", "data": {"message": "Job not found"}}
        await ws.send(json.dumps({"action": "subscribe", "job_id": alice.job_id}))
        assert await _recv(ws) == {"type": "subscribed", "data": {"job_id": alice.job_id}}
        assert await live.push(alice.job_id, PROGRESS) == 1
        assert await _recv(ws) == PROGRESS
        await ws.send("not json")
        assert (await _recv(ws))["type"] == "error"
        await ws.send(json.dumps({"action": "ping"}))
        assert (await _recv(ws))["type"] == "pong"
    # Closing the socket forgets the connection.
    for _ in range(100):
        if not await connections.subscribers(alice.job_id):
            break
        await asyncio.sleep(0.02)
    assert await connections.subscribers(alice.job_id) == []


@pytest.mark.parametrize("kind", ["tasks", "download"])
async def test_per_resource_paths_follow_on_connect(
    ws_base: str, live: LiveUpdates, alice: User, kind: str
) -> None:
    async with connect(f"{ws_base}/ws/{kind}/{alice.job_id}", subprotocols=["bearer", alice.token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        assert (await _recv(ws))["type"] == "connected"
        assert await _recv(ws) == {"type": "subscribed", "data": {"job_id": alice.job_id}}
        await live.push(alice.job_id, PROGRESS)
        assert await _recv(ws) == PROGRESS


async def test_per_resource_path_for_someone_elses_job_closes(ws_base: str, alice: User, bob: User) -> None:
    async with connect(f"{ws_base}/ws/tasks/{bob.job_id}?token={alice.token}") as ws:
        assert (await _recv(ws))["type"] == "connected"
        assert await _recv(ws) == {"type": "error", "data": {"message": "Job not found"}}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == websocket.CLOSE_NOT_FOUND


@pytest.mark.parametrize("path", ["/ws", "/ws/training", "/ws/tasks/{job}"])
async def test_model_bound_keys_are_refused_before_the_handshake(
    ws_base: str, container: Container, connections: ConnectionRepository, alice: User, path: str
) -> None:
    # A model-bound key (or a session opened with one) may call its model, not follow the user's jobs.
    url = ws_base + path.format(job=alice.job_id)
    for credential in await model_bound_credentials(container, alice):
        for options in (
            {"uri": f"{url}?token={credential}"},
            {"uri": url, "subprotocols": ["bearer", credential]},
        ):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(**options):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403
    assert await connections.subscribers(alice.job_id) == []
