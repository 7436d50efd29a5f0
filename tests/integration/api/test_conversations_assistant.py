"""The data assistant on a chat bound to an uploaded CSV: the numbers come from the analytics engine's
query, the model only phrases them (and is overruled when it cites a number the query did not
produce), follow-ups start from the previous plan, the plan/query/chart are kept in the message and the
dataset's profile is cached on its record. The real engine and database; the language model is a
stand-in (the e2e test runs the real one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.local.runtime import LocalPorts
from tests.integration.api.accounts import Account

SALES_CSV = b"""date,product,sales,region
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


class PhrasingModel:
    """Phrases a result by repeating it ("Sure: <result>"), or, when `lie` is set, invents a number, or
    says `say` whatever the result."""

    def __init__(self, *, lie: bool = False, say: str | None = None) -> None:
        self.lie = lie
        self.say = say
        self.prompts: list[str] = []

    async def stream(
        self,
        user_id: ObjectId,
        model: str | None,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str]:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        result = prompt.split("Result: ", 1)[-1]
        if self.say is not None:
            yield self.say
            return
        for piece in ("Sure: ", "about 2,999." if self.lie else result):
            yield piece


async def _ask(
    client: httpx.AsyncClient, account: Account, ports: LocalPorts, chat_id: str, question: str
) -> dict[str, Any]:
    posted = await client.post(
        "/api/messages",
        headers=account.headers,
        json={"chat_id": chat_id, "role": "user", "content": question, "query_type": "analytics"},
    )
    assert posted.status_code == 201, posted.text
    await ports.queue.join()
    listed = (await client.get(f"/api/messages/chat/{chat_id}", headers=account.headers)).json()
    assert listed[-2]["_id"] == posted.json()["_id"]
    return dict(listed[-1])


@pytest.fixture
async def sales_chat(client: httpx.AsyncClient, alice: Account) -> str:
    upload = await client.post(
        "/api/datasets/upload", headers=alice.headers, files={"file": ("sales_data.csv", SALES_CSV)}
    )
    assert upload.status_code == 201 and upload.json()["status"] == "ready", upload.text
    chat = await client.post(
        "/api/chats",
        headers=alice.headers,
        json={"title": "Data Analysis Chat", "dataset_id": upload.json()["_id"]},
    )
    assert chat.status_code == 201, chat.text
    assert chat.json()["dataset_id"] == upload.json()["_id"]
    return str(chat.json()["_id"])


@pytest.fixture
async def consuming(container: Container, ports: LocalPorts) -> AsyncIterator[None]:
    await ports.queue.start(container.messages.handle)
    try:
        yield
    finally:
        await ports.queue.stop()


@pytest.mark.usefixtures("consuming")
async def test_the_number_is_computed_and_follow_ups_build_on_the_plan(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, sales_chat: str
) -> None:
    model = PhrasingModel()
    container.chats.model = model
    # WHEN the user asks for the Q3 average
    reply = await _ask(client, alice, ports, sales_chat, "What is the average sales for Q3?")
    # THEN the reply states the computed number, phrased by the model, with its work shown
    assert reply["role"] == "assistant" and reply["query_type"] == "analytics"
    assert "3,000" in reply["content"] and reply["content"].startswith("Sure:")
    assert reply["query"]["phrasing"] == "model" and reply["query"]["kind"] == "answer"
    assert reply["query"]["rows"] == [[3000.0]] and "avg" in reply["query"]["sql"].lower()
    assert reply["query"]["params"] == [3] and reply["query"]["plan"]["aggregate"] == "avg"
    assert reply["charts"] is None  # one number: no chart
    # AND the model was shown the computed result, nothing else to compute
    assert "3,000" in model.prompts[0]
    # WHEN the user follows up on a filter, then on the grouping
    south = await _ask(client, alice, ports, sales_chat, "and for the South?")
    by_product = await _ask(client, alice, ports, sales_chat, "by product instead")
    # THEN each keeps the previous plan and changes one thing (the South filter stays)
    assert "3,500" in south["content"] and south["query"]["rows"] == [[3500.0]]
    assert sorted(by_product["query"]["rows"]) == [["Product B", 3000.0], ["Product C", 4000.0]]
    assert "bar" in str(by_product["charts"]["mark"]) and by_product["charts"]["data"]["values"]
    # AND the dataset's profile is cached on its record
    chat = await container.chat_repo.get(ObjectId(sales_chat))
    assert chat is not None
    dataset = await container.dataset_repo.get(chat["dataset_id"])
    assert dataset is not None and {c["name"] for c in dataset["profile"]["columns"]} >= {"date", "sales"}


@pytest.mark.usefixtures("consuming")
async def test_a_phrasing_with_an_invented_number_is_replaced_by_the_template(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, sales_chat: str
) -> None:
    container.chats.model = PhrasingModel(lie=True)
    reply = await _ask(client, alice, ports, sales_chat, "What is the average sales for Q3?")
    assert reply["content"] == "The average sales in Q3 2025 is 3,000."
    assert reply["query"]["phrasing"] == "template"


@pytest.mark.usefixtures("consuming")
async def test_a_grouped_result_phrased_with_one_group_is_replaced_by_the_template(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, sales_chat: str
) -> None:
    # GIVEN a model that states only one region's total, as if it were the whole answer
    container.chats.model = PhrasingModel(say="The total sales by region is 1,300.")
    reply = await _ask(client, alice, ports, sales_chat, "total sales by region")
    # THEN the template, which states every region's total, is kept
    assert reply["query"]["phrasing"] == "template"
    assert len(reply["query"]["rows"]) == 4
    assert all(f"{total:,.0f}" in reply["content"] for _, total in reply["query"]["rows"])


@pytest.mark.usefixtures("consuming")
async def test_an_unknown_column_is_asked_back_without_a_number(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, sales_chat: str
) -> None:
    model = PhrasingModel()
    container.chats.model = model
    reply = await _ask(client, alice, ports, sales_chat, "What is the average profit margin?")
    assert reply["query"]["kind"] in ("clarify", "unanswerable")
    assert "sales" in reply["content"]  # it names the columns it has
    assert model.prompts == []  # nothing to phrase


@pytest.mark.usefixtures("consuming")
async def test_a_chat_whose_dataset_was_deleted_says_so(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, sales_chat: str
) -> None:
    container.chats.model = PhrasingModel()
    chat = (await client.get(f"/api/chats/{sales_chat}", headers=alice.headers)).json()
    deleted = await client.delete(f"/api/datasets/{chat['dataset_id']}", headers=alice.headers)
    assert deleted.status_code == 204
    reply = await _ask(client, alice, ports, sales_chat, "What is the average sales for Q3?")
    assert "no longer exists" in reply["content"] and not any(ch.isdigit() for ch in reply["content"])


@pytest.mark.usefixtures("consuming")
async def test_an_engine_failure_is_answered_not_retried_forever(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    ports: LocalPorts,
    sales_chat: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stratus.analytics import Assistant

    def broken(self: Assistant, question: str, previous_plan: dict[str, Any] | None = None) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(Assistant, "answer", broken)
    container.chats.model = PhrasingModel()
    reply = await _ask(client, alice, ports, sales_chat, "What is the average sales for Q3?")
    assert reply["content"] == "I could not compute an answer from this dataset."
    assert reply["query"] == {"kind": "unanswerable", "error": "RuntimeError"}
    assert ports.queue.dead_letters == []


@pytest.mark.usefixtures("consuming")
async def test_a_follow_up_after_switching_datasets_starts_afresh(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts, sales_chat: str
) -> None:
    container.chats.model = PhrasingModel()
    first = await _ask(client, alice, ports, sales_chat, "What is the average sales for Q3?")
    assert first["query"]["rows"] == [[3000.0]]
    other = await client.post(
        "/api/datasets/upload",
        headers=alice.headers,
        files={"file": ("scores.csv", b"team,score\nRed,10\nBlue,30\n")},
    )
    assert other.status_code == 201
    patched = await client.patch(
        f"/api/chats/{sales_chat}", headers=alice.headers, json={"dataset_id": other.json()["_id"]}
    )
    assert patched.status_code == 200
    reply = await _ask(client, alice, ports, sales_chat, "What is the average score?")
    assert reply["query"]["rows"] == [[20.0]] and reply["query"]["dataset_id"] == other.json()["_id"]
