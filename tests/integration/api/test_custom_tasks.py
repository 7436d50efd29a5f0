"""Seed 000's custom tasks through the API on the real local stack: the code runs in the inference
worker's sandbox (never in the API process), saved tasks are searched, exported, imported and counted,
and a user's executions in flight are bounded (429 with Retry-After beyond the limit)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.local.runtime import LocalPorts
from stratus.settings import Settings
from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # starts the inference worker and its sandbox runners (torch)

EMBED = {
    "tokenizer_code": "tokenizer = AutoTokenizer.from_pretrained('sentence-transformers/all-MiniLM-L6-v2')",
    "model_code": "model = AutoModel.from_pretrained('sentence-transformers/all-MiniLM-L6-v2')",
    "function_code": (
        "def custom_function(text):\n"
        "    with torch.no_grad():\n"
        "        hidden = model(**tokenizer(text, return_tensors='pt')).last_hidden_state\n"
        "    return {'dimension': int(hidden.shape[-1]), 'words': text.split()}"
    ),
}
LIMIT = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"custom_task_max_concurrent": LIMIT, "task_max_wait_s": 120.0})


async def _finish(client: httpx.AsyncClient, account: Account, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 202), response.text
    task: dict[str, Any] = response.json()
    async with asyncio.timeout(180):
        while task["status"] == "pending":
            await asyncio.sleep(0.3)
            task = (await client.get(f"/api/tasks/{task['task_id']}", headers=account.headers)).json()
    return task


async def test_custom_code_runs_in_the_sandbox(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    wait = {**alice.headers, "Prefer": "wait=120"}  # the first run starts the worker and its runners
    ran = await _finish(client, alice, await client.post("/tasks/custom", headers=wait,
                                                          json={**EMBED, "input_text": "hello sandbox"}))  # fmt: skip
    assert ran["status"] == "completed", str(ran)
    assert ran["task"] == "custom"
    assert ran["result"] == {"dimension": 384, "words": ["hello", "sandbox"]}
    assert ran["isolation"]["seccomp"] == "applied" and ran["isolation"]["landlock"].startswith("applied")

    # A blocked run fails with its reason; the API keeps answering.
    blocked = await _finish(client, alice, await client.post("/api/tasks/custom", headers=wait, json={
        "function_code": "def custom_function(text):\n    return open('/etc/passwd').read()"}))  # fmt: skip
    assert blocked["status"] == "failed" and blocked["reason"] == "filesystem_denied", blocked
    assert "Permission denied" in blocked["error"]
    assert (await client.get(f"/api/tasks/{blocked['task_id']}", headers=alice.headers)).json()[
        "status"
    ] == "failed"
    assert (await client.get(f"/api/tasks/{blocked['task_id']}", headers=bob.headers)).status_code == 404

    # Invalid requests never reach the worker.
    missing = await client.post("/tasks/custom", headers=alice.headers, json={"function_code": "x = 1"})
    assert missing.status_code == 422

    # Saved tasks: create, search (name and description), tags (all must match), model.
    async def create(name: str, description: str, tags: list[str], model: str | None) -> dict[str, Any]:
        body = {"name": name, "description": description, "tags": tags, **EMBED, "model_name": model}
        created = await client.post("/custom-tasks", headers=alice.headers, json=body)
        assert created.status_code == 201, created.text
        return dict(created.json())

    words = await create(
        "Word splitter", "Splits text into words", ["nlp", "text"], "sentence-transformers/all-MiniLM-L6-v2"
    )
    shout = await create("Shouter", "Upper-cases WORDS", ["text"], None)
    await create("Other", "Nothing in common", ["vision"], None)

    async def names(query: str) -> list[str]:
        listed = await client.get(f"/custom-tasks?{query}", headers=alice.headers)
        assert listed.status_code == 200, listed.text
        return sorted(t["name"] for t in listed.json())

    assert await names("search=words") == ["Shouter", "Word splitter"]  # description, case-insensitive
    assert await names("tags=text") == ["Shouter", "Word splitter"]
    assert await names("tags=nlp,text") == ["Word splitter"]
    assert await names("tags=nlp,vision") == []
    assert await names("model=sentence-transformers/all-MiniLM-L6-v2") == ["Word splitter"]
    assert (await client.get("/custom-tasks", headers=bob.headers)).json() == []

    updated = await client.put(f"/custom-tasks/{shout['id']}", headers=alice.headers,
                               json={"name": "Shouter 2", "tags": ["updated", "tags"]})  # fmt: skip
    assert updated.status_code == 200 and updated.json()["tags"] == ["updated", "tags"]
    assert updated.json()["function_code"] == EMBED["function_code"]
    assert (await client.get(f"/custom-tasks/{shout['id']}", headers=bob.headers)).status_code == 404

    # Run a saved task.
    saved_run = await _finish(client, alice, await client.post(
        f"/custom-tasks/{words['id']}/run", headers=wait, json={"input_text": "one two three"}))  # fmt: skip
    assert saved_run["status"] == "completed" and saved_run["result"]["words"] == ["one", "two", "three"]
    assert saved_run["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert (await client.get(f"/custom-tasks/{words['id']}", headers=alice.headers)).json()["runs"] == 1

    # Export -> a versioned file; import it back: valid tasks imported, the rest refused with reasons.
    exported = await client.post("/custom-tasks/export", headers=alice.headers,
                                 json={"task_ids": [words["id"], shout["id"]]})  # fmt: skip
    assert exported.status_code == 200, exported.text
    assert "attachment" in exported.headers["content-disposition"]
    document = exported.json()
    assert document["format"] == "stratus.custom-tasks" and document["version"] == 1
    assert [t["name"] for t in document["tasks"]] == ["Word splitter", "Shouter 2"]
    document["tasks"] += [
        {"name": "No function", "function_code": ""},
        {"name": "Extra", "function_code": "def custom_function(t): return t", "owner": "mallory"},
        "not an object",
        {"name": "Fresh", "function_code": "def custom_function(t): return t", "tags": ["imported"]},
    ]
    files = {"file": ("tasks.json", io.BytesIO(json.dumps(document).encode()), "application/json")}
    imported = await client.post("/custom-tasks/import", headers=bob.headers, files=files)
    assert imported.status_code == 200, imported.text
    report = imported.json()
    assert [i["name"] for i in report["imported"]] == ["Word splitter", "Shouter 2", "Fresh"]
    refused = {r["index"]: r["reason"] for r in report["refused"]}
    assert set(refused) == {2, 3, 4}
    assert "function_code" in refused[2] and "owner" in refused[3] and "not an object" in refused[4]
    again = await client.post("/custom-tasks/import", headers=bob.headers, files={
        "file": ("tasks.json", io.BytesIO(json.dumps(document).encode()), "application/json")})  # fmt: skip
    assert again.json()["imported_count"] == 0 and "exists" in again.json()["refused"][0]["reason"]
    wrong = await client.post("/custom-tasks/import", headers=bob.headers,
                              files={"file": ("x.json", io.BytesIO(b'{"format": "other"}'), "application/json")})  # fmt: skip
    assert wrong.status_code == 400

    # Stats: counts by tag and model, runs, success rate, mean duration.
    stats = (await client.get("/custom-tasks/stats", headers=alice.headers)).json()
    assert stats["total_tasks"] == 3
    assert stats["by_tag"] == {"nlp": 1, "text": 1, "updated": 1, "tags": 1, "vision": 1}
    assert stats["by_model"] == {"sentence-transformers/all-MiniLM-L6-v2": 1, "none": 2}
    assert stats["runs"] == 3 and stats["completed"] == 2 and stats["failed"] == 1
    assert stats["success_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert stats["mean_duration_ms"] > 0 and stats["failure_reasons"] == {"filesystem_denied": 1}

    assert (await client.delete(f"/custom-tasks/{shout['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/custom-tasks/{shout['id']}", headers=alice.headers)).status_code == 404


async def test_executions_in_flight_are_limited_per_user(
    client: httpx.AsyncClient, alice: Account, bob: Account, container: Container, ports: LocalPorts
) -> None:
    warm = await client.post("/tasks/custom", headers={**alice.headers, "Prefer": "wait=120"},
                             json={"function_code": "def custom_function(text):\n    return 1"})  # fmt: skip
    assert (await _finish(client, alice, warm))["status"] == "completed"
    slow = {"function_code": "import time\ndef custom_function(text):\n    time.sleep(3)\n    return text",
            "input_text": "slow"}  # fmt: skip
    later = {**alice.headers, "Prefer": "respond-async"}
    accepted = [await client.post("/tasks/custom", headers=later, json=slow) for _ in range(LIMIT)]
    assert [r.status_code for r in accepted] == [202] * LIMIT
    refused = await client.post("/tasks/custom", headers=later, json=slow)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 5
    # Another user has slots of their own.
    other = await client.post("/tasks/custom", headers={**bob.headers, "Prefer": "respond-async"}, json=slow)
    assert other.status_code == 202
    for response in [*accepted]:
        assert (await _finish(client, alice, response))["result"] == "slow"
    # Finished runs give their slots back.
    async with asyncio.timeout(30):
        while True:
            again = await client.post(
                "/tasks/custom", headers=later, json={"function_code": "def custom_function(t): return 2"}
            )
            if again.status_code != 429:
                break
            await asyncio.sleep(0.5)
    assert (await _finish(client, alice, again))["result"] == 2

    # A pending run is pushed to its /ws/tasks/{id} followers when it ends (the local WebSocket hub).
    pending = await client.post("/tasks/custom", headers=later, json={**slow, "input_text": "pushed"})
    assert pending.status_code == 202, pending.text
    task_id = pending.json()["task_id"]
    pushed: list[dict[str, Any]] = []

    async def receive(message: dict[str, Any]) -> None:
        pushed.append(message)

    connection_id = str(ObjectId())
    ports.notifier.register(connection_id, receive)
    await container.live.connect(connection_id, ObjectId(alice.user_id))
    await container.live.subscribe(connection_id, ObjectId(alice.user_id), task_id)
    async with asyncio.timeout(60):
        while not pushed:
            await asyncio.sleep(0.2)
    assert pushed[0]["data"]["task_id"] == task_id
    assert pushed[0]["data"]["status"] == "completed" and pushed[0]["data"]["result"] == "pushed"
