"""Seed 003's chats and messages through the API on a real database: fields, order, paging, errors
exactly as documented, tenant isolation, and the assistant's reply produced by the chat.reply consumer
and pushed to the chat's WebSocket followers. The language model is a recording stand-in here (the
e2e test runs the real one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.local.runtime import LocalPorts
from tests.integration.api.accounts import Account


class RecordingModel:
    """Answers "echo: <last user message>" in two pieces and remembers what it was shown."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, str]]] = []

    async def stream(
        self,
        user_id: ObjectId,
        model: str | None,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str]:
        self.calls.append([dict(m) for m in messages])
        yield "echo: "
        yield messages[-1]["content"]


class Socket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_json(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


@pytest.fixture
def model(container: Container) -> RecordingModel:
    recording = RecordingModel()
    container.chats.model = recording
    return recording


async def _chat(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/chats", headers=account.headers, json={"title": "My First Chat", **fields}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_chat_crud_as_documented(client: httpx.AsyncClient, alice: Account) -> None:
    # GIVEN two chats, the second one renamed afterwards (so it was updated last)
    first = await _chat(client, alice)
    second = await _chat(client, alice, title="Data Analysis Chat")
    assert set(first) >= {"_id", "user_id", "title", "model_id", "dataset_id", "last_updated"}
    assert first["user_id"] == alice.user_id and first["model_id"] is None and first["dataset_id"] is None
    assert first["last_updated"].endswith("Z")
    patched = await client.patch(
        f"/api/chats/{first['_id']}", headers=alice.headers, json={"title": "Updated Chat Title"}
    )
    assert patched.status_code == 200 and patched.json()["title"] == "Updated Chat Title"
    assert patched.json()["last_updated"] >= second["last_updated"]
    # WHEN the chats are listed, and paged
    listed = await client.get("/api/chats", headers=alice.headers)
    page = await client.get("/api/chats?limit=1&offset=1", headers=alice.headers)
    # THEN the most recently updated comes first, and the page holds the other one
    assert [c["_id"] for c in listed.json()] == [first["_id"], second["_id"]]
    assert listed.headers["X-Total-Count"] == "2"
    assert [c["_id"] for c in page.json()] == [second["_id"]]
    got = await client.get(f"/api/chats/{second['_id']}", headers=alice.headers)
    assert got.status_code == 200 and got.json()["title"] == "Data Analysis Chat"


async def test_patch_without_fields_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    chat = await _chat(client, alice)
    response = await client.patch(f"/api/chats/{chat['_id']}", headers=alice.headers, json={})
    assert response.status_code == 400
    assert response.json()["detail"] == "No fields to update"


async def test_another_users_chat_is_not_found(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    chat = await _chat(client, alice)
    url = f"/api/chats/{chat['_id']}"
    answers = [
        await client.get(url, headers=bob.headers),
        await client.patch(url, headers=bob.headers, json={"title": "mine"}),
        await client.delete(url, headers=bob.headers),
        await client.get(f"/api/messages/chat/{chat['_id']}", headers=bob.headers),
        await client.post(
            "/api/messages",
            headers=bob.headers,
            json={"chat_id": chat["_id"], "role": "user", "content": "hi"},
        ),
        await client.get(f"/api/chats/{ObjectId()}", headers=alice.headers),
    ]
    assert [r.status_code for r in answers] == [404] * len(answers)
    assert {r.json()["detail"] for r in answers} == {"Chat not found"}
    assert (await client.get(url, headers=alice.headers)).status_code == 200


async def test_messages_are_listed_oldest_first_and_paged(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    chat = await _chat(client, alice)
    sent = []
    for text in ("one", "two", "three"):
        response = await client.post(
            "/api/messages",
            headers=alice.headers,
            json={"chat_id": chat["_id"], "role": "system", "content": text, "query_type": "general"},
        )
        assert response.status_code == 201, response.text
        sent.append(response.json())
    assert set(sent[0]) >= {"_id", "chat_id", "role", "content", "query_type", "charts", "timestamp"}
    assert sent[0]["charts"] is None and sent[0]["query_type"] == "general"
    listed = await client.get(f"/api/messages/chat/{chat['_id']}?limit=50&offset=0", headers=alice.headers)
    assert [m["content"] for m in listed.json()] == ["one", "two", "three"]
    page = await client.get(f"/api/messages/chat/{chat['_id']}?limit=1&offset=1", headers=alice.headers)
    assert [m["content"] for m in page.json()] == ["two"] and page.headers["X-Total-Count"] == "3"
    one = await client.get(f"/api/messages/{sent[0]['_id']}", headers=alice.headers)
    assert one.status_code == 200 and one.json()["content"] == "one"
    hidden = await client.get(f"/api/messages/{sent[0]['_id']}", headers=bob.headers)
    assert hidden.status_code == 404 and hidden.json()["detail"] == "Message not found"


async def test_an_empty_message_is_422_naming_the_field(client: httpx.AsyncClient, alice: Account) -> None:
    chat = await _chat(client, alice)
    response = await client.post(
        "/api/messages", headers=alice.headers, json={"chat_id": chat["_id"], "role": "user", "content": ""}
    )
    assert response.status_code == 422
    assert any(d["loc"][-1] == "content" for d in response.json()["detail"])


async def test_deleting_a_chat_deletes_its_messages(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    chat = await _chat(client, alice)
    message = await client.post(
        "/api/messages",
        headers=alice.headers,
        json={"chat_id": chat["_id"], "role": "system", "content": "x"},
    )
    deleted = await client.delete(f"/api/chats/{chat['_id']}", headers=alice.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert await container.chat_message_repo.get(ObjectId(message.json()["_id"])) is None
    again = await client.delete(f"/api/chats/{chat['_id']}", headers=alice.headers)
    assert again.status_code == 404 and again.json()["detail"] == "Chat not found"


async def test_a_dataset_that_is_not_ready_is_409(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    dataset = await container.dataset_repo.insert(
        {
            "user_id": ObjectId(alice.user_id),
            "name": "big.csv",
            "file_name": "big.csv",
            "status": "processing",
        }
    )
    response = await client.post(
        "/api/chats", headers=alice.headers, json={"title": "t", "dataset_id": str(dataset["_id"])}
    )
    assert response.status_code == 409 and "not ready" in response.json()["detail"]
    missing = await client.post(
        "/api/chats", headers=alice.headers, json={"title": "t", "dataset_id": str(ObjectId())}
    )
    assert missing.status_code == 404 and missing.json()["detail"] == "Dataset not found"


async def test_the_assistant_answers_in_the_background_with_history(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, model: RecordingModel
) -> None:
    # GIVEN a chat followed by one WebSocket connection
    chat = await _chat(client, alice)
    socket = Socket()
    ports.notifier.register("conn-1", socket.send_json)
    await container.live.connect("conn-1", ObjectId(alice.user_id))
    reply = await container.live.respond(
        "conn-1", ObjectId(alice.user_id), {"action": "subscribe", "chat_id": chat["_id"]}
    )
    assert reply["type"] == "subscribed"
    await ports.queue.start(container.messages.handle)
    try:
        # WHEN the user posts two messages, each answered before the next
        for text in ("Hello there", "And again"):
            posted = await client.post(
                "/api/messages",
                headers=alice.headers,
                json={"chat_id": chat["_id"], "role": "user", "content": text},
            )
            assert posted.status_code == 201 and posted.json()["role"] == "user"
            await ports.queue.join()
    finally:
        await ports.queue.stop()
    # THEN the list shows each reply after its question
    listed = (await client.get(f"/api/messages/chat/{chat['_id']}", headers=alice.headers)).json()
    assert [(m["role"], m["content"]) for m in listed] == [
        ("user", "Hello there"),
        ("assistant", "echo: Hello there"),
        ("user", "And again"),
        ("assistant", "echo: And again"),
    ]
    assert listed[1]["query_type"] == "general" and listed[1]["reply_to"] == listed[0]["_id"]
    # AND the second call saw the first exchange as context
    assert [m["content"] for m in model.calls[1] if m["role"] != "system"] == [
        "Hello there",
        "echo: Hello there",
        "And again",
    ]
    # AND the follower got the pieces, then the stored message
    types = [m["type"] for m in socket.sent]
    assert types == ["chat_token", "chat_token", "chat_message"] * 2
    assert "".join(m["data"]["token"] for m in socket.sent[:2]) == "echo: Hello there"
    assert socket.sent[2]["data"]["_id"] == listed[1]["_id"]
    # AND the chat moved to the top of the list when it was answered
    assert (await client.get("/api/chats", headers=alice.headers)).json()[0]["_id"] == chat["_id"]


async def test_a_redelivered_reply_message_answers_once(
    client: httpx.AsyncClient, alice: Account, container: Container, model: RecordingModel
) -> None:
    chat = await _chat(client, alice)
    posted = (
        await client.post(
            "/api/messages",
            headers=alice.headers,
            json={"chat_id": chat["_id"], "role": "user", "content": "hi"},
        )
    ).json()
    body = {"type": "chat.reply", "chat_id": chat["_id"], "message_id": posted["_id"]}
    await container.messages.handle(body)
    await container.messages.handle(body)
    listed = (await client.get(f"/api/messages/chat/{chat['_id']}", headers=alice.headers)).json()
    assert [m["role"] for m in listed] == ["user", "assistant"] and len(model.calls) == 1


async def test_only_user_messages_are_answered_and_counted(
    client: httpx.AsyncClient, alice: Account, ports: LocalPorts
) -> None:
    chat = await _chat(client, alice)
    await client.post(
        "/api/messages",
        headers=alice.headers,
        json={"chat_id": chat["_id"], "role": "assistant", "content": "x"},
    )
    assert ports.queue.pending == 0
    await client.post(
        "/api/messages", headers=alice.headers, json={"chat_id": chat["_id"], "role": "user", "content": "q"}
    )
    assert ports.queue.pending == 1
    me = (await client.get("/api/auth/me", headers=alice.headers)).json()
    assert me["queries_used"] == 1
