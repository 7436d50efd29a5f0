"""Seed 003's chats on `stratus serve`, driven by the seed's own curl examples (placeholders filled in
with the ids the earlier calls returned): a chat on an uploaded CSV answers "What is the average sales
for Q3?" with the computed number, a follow-up keeps the plan, a chat without a dataset is answered by
the real language model on the inference worker, and the reply's pieces reach a WebSocket that follows
the chat. The client only posts and then lists, as the seed's clients do."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.e2e.server import ServeProcess

SALES_CSV = """date,product,sales,region
2025-01-15,Product A,1000,North
2025-02-10,Product B,1500,South
2025-04-03,Product A,1200,East
2025-05-21,Product C,900,North
2025-07-04,Product A,2000,North
2025-08-12,Product B,3000,South
2025-09-30,Product C,4000,South
2025-10-05,Product A,1100,East
2025-11-11,Product B,1300,West
"""
# The first reply loads the language model on the inference worker.
REPLY_WAIT_S = 600


def curl(*args: str) -> tuple[int, Any]:
    """Run curl as the seed writes it; the HTTP status and the JSON body (None when empty)."""
    out = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else None


def wait_for_reply(base: str, token: str, chat_id: str, count: int) -> list[dict[str, Any]]:
    """List the chat's messages until it holds `count` of them (the reply appears when it is done)."""
    deadline = time.monotonic() + REPLY_WAIT_S
    while time.monotonic() < deadline:
        status, messages = curl(
            "-X", "GET", f"{base}/api/messages/chat/{chat_id}?limit=50&offset=0",
            "-H", f"Authorization: Bearer {token}",
        )  # fmt: skip
        assert status == 200
        if len(messages) >= count:
            return list(messages)
        time.sleep(0.5)
    raise AssertionError(f"no reply within {REPLY_WAIT_S} s")


def mentions(text: str, number: int) -> bool:
    """The number written with or without thousands separators."""
    return bool(
        re.search(rf"(?<![\d.]){number:,}(?:\.0+)?(?![\d])|(?<![\d.,]){number}(?:\.0+)?(?![\d,])", text)
    )


@pytest.mark.slow
def test_seed_003_chat_on_a_dataset_answers_with_the_computed_number(
    stratus_server: ServeProcess, tmp_path: Path
) -> None:
    base = stratus_server.base_url
    # Register and log in (seed 003's "Testing the API").
    curl("-X", "POST", f"{base}/api/auth/register", "-H", "Content-Type: application/json",
         "-d", '{"email":"test@example.com","password":"test123","name":"Test User"}')  # fmt: skip
    status, login = curl("-X", "POST", f"{base}/api/auth/login", "-H", "Content-Type: application/json",
                         "-d", '{"email":"test@example.com","password":"test123"}')  # fmt: skip
    assert status == 200
    token = login["access_token"]
    auth = f"Authorization: Bearer {token}"
    # Upload the CSV, and register a model record (seed 003's examples).
    csv_path = tmp_path / "sales_data.csv"
    csv_path.write_text(SALES_CSV)
    status, dataset = curl("-X", "POST", f"{base}/api/datasets/upload", "-H", auth, "-F", f"file=@{csv_path}")
    assert status == 201 and dataset["status"] == "ready", dataset
    status, model = curl("-X", "POST", f"{base}/api/models", "-H", auth, "-H", "Content-Type: application/json",
                         "-d", json.dumps({"name": "My Fine-tuned Model", "base_model": "gpt-3.5-turbo",
                                           "version": "1.0.0", "status": "ready", "dataset_id": dataset["_id"]}))  # fmt: skip
    assert status == 201, model

    # Create Chat, exactly the seed's body with real ids.
    status, chat = curl("-X", "POST", f"{base}/api/chats", "-H", auth, "-H", "Content-Type: application/json",
                        "-d", json.dumps({"title": "My First Chat", "model_id": model["_id"],
                                          "dataset_id": dataset["_id"]}))  # fmt: skip
    assert status == 201, chat
    assert {k: chat[k] for k in ("title", "model_id", "dataset_id", "user_id")} == {
        "title": "My First Chat", "model_id": model["_id"], "dataset_id": dataset["_id"],
        "user_id": dataset["user_id"],
    }  # fmt: skip
    chat_id = chat["_id"]
    status, listed = curl("-X", "GET", f"{base}/api/chats?limit=10&offset=0", "-H", auth)
    assert status == 200 and [c["_id"] for c in listed] == [chat_id]
    status, got = curl("-X", "GET", f"{base}/api/chats/{chat_id}", "-H", auth)
    assert status == 200 and got["title"] == "My First Chat"

    # A WebSocket follows the chat; then Create Message, exactly the seed's body.
    ws_url = base.replace("http", "ws") + f"/ws/chats/{chat_id}?token={token}"
    with connect(ws_url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connected"
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        status, question = curl("-X", "POST", f"{base}/api/messages", "-H", auth,
                                "-H", "Content-Type: application/json",
                                "-d", json.dumps({"chat_id": chat_id, "role": "user",
                                                  "content": "What is the average sales for Q3?",
                                                  "query_type": "analytics"}))  # fmt: skip
        assert status == 201 and question["role"] == "user" and question["query_type"] == "analytics"
        pushed: list[dict[str, Any]] = []
        while not pushed or pushed[-1]["type"] != "chat_message":
            pushed.append(json.loads(ws.recv(timeout=REPLY_WAIT_S)))
    tokens = [m["data"]["token"] for m in pushed if m["type"] == "chat_token"]
    assert tokens and all(m["data"]["chat_id"] == chat_id for m in pushed[:-1])

    # Get Messages by Chat: the reply is listed after the question, with the computed number.
    messages = wait_for_reply(base, token, chat_id, 2)
    reply = messages[1]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert reply["_id"] == pushed[-1]["data"]["_id"] and reply["content"] == pushed[-1]["data"]["content"]
    print(f"reply ({reply['query']['phrasing']}): {reply['content']}")
    assert reply["query_type"] == "analytics" and mentions(reply["content"], 3000), reply["content"]
    assert reply["query"]["rows"] == [[3000.0]] and reply["query"]["sql"]
    # Get Message by ID.
    status, one = curl("-X", "GET", f"{base}/api/messages/{reply['_id']}", "-H", auth)
    assert status == 200 and one["content"] == reply["content"]

    # A follow-up works on the previous plan.
    status, _ = curl("-X", "POST", f"{base}/api/messages", "-H", auth, "-H", "Content-Type: application/json",
                     "-d", json.dumps({"chat_id": chat_id, "role": "user", "content": "and for the South?"}))  # fmt: skip
    assert status == 201
    follow_up = wait_for_reply(base, token, chat_id, 4)[3]
    print(f"follow-up ({follow_up['query']['phrasing']}): {follow_up['content']}")
    assert follow_up["role"] == "assistant" and mentions(follow_up["content"], 3500), follow_up["content"]

    # Update Chat, then a chat without a dataset: the language model itself answers.
    status, patched = curl("-X", "PATCH", f"{base}/api/chats/{chat_id}", "-H", auth,
                           "-H", "Content-Type: application/json", "-d", '{"title": "Updated Chat Title"}')  # fmt: skip
    assert status == 200 and patched["title"] == "Updated Chat Title"
    status, plain = curl("-X", "POST", f"{base}/api/chats", "-H", auth, "-H", "Content-Type: application/json",
                         "-d", '{"title": "Small talk"}')  # fmt: skip
    assert status == 201
    curl("-X", "POST", f"{base}/api/messages", "-H", auth, "-H", "Content-Type: application/json",
         "-d", json.dumps({"chat_id": plain["_id"], "role": "user", "content": "Say hello in one sentence."}))  # fmt: skip
    answer = wait_for_reply(base, token, plain["_id"], 2)[1]
    print(f"small talk: {answer['content']}")
    assert answer["role"] == "assistant" and answer["query_type"] == "general"
    assert answer["content"].strip() and not answer["content"].startswith("Sorry"), answer["content"]

    # Delete Chat: 204, and then it is not found.
    status, _ = curl("-X", "DELETE", f"{base}/api/chats/{chat_id}", "-H", auth)
    assert status == 204
    status, gone = curl("-X", "GET", f"{base}/api/messages/{reply['_id']}", "-H", auth)
    assert status == 404 and gone == {**gone, "detail": "Message not found"}
