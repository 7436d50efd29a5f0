"""Seed 003's data assistant, end to end minus HTTP: a user message on a chat bound to a 100,000-row
CSV, answered by the chat.reply consumer (`ConversationService.reply`: read the chat and the question,
find the last plan, answer with the cached Assistant, store the message, push it), next to
`Assistant.answer` alone on the same table and question. The language model is left out (a model that
phrases nothing, so the template sentence is stored): this measures what the chat path adds to the
engine. Real SecantusDB (in process), local object storage.

Usage: .venv/bin/python bench/chat_answers.py [rows] [repeats]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.analytics_data, the generator

from bson import ObjectId
from secantus import SecantusDBServer

from stratus.analytics import Assistant, profile_table
from stratus.capabilities.chats.schemas import ChatCreate, MessageCreate
from stratus.composition import build_container
from stratus.local.runtime import build_local_ports
from stratus.settings import Settings
from tests.analytics_data import write_sales

QUESTIONS = [
    "What is the average revenue for Q3 2024 in the South?",
    "Total revenue by region",
    "Monthly revenue in 2024",
]


class Silent:
    """A model that says nothing: the engine's template sentence is stored."""

    async def stream(
        self, user_id: ObjectId, model: str | None, messages: Sequence[dict[str, str]], **_: Any
    ) -> AsyncIterator[str]:
        nothing: tuple[str, ...] = ()
        for piece in nothing:
            yield piece


def ms(samples: list[float], q: float = 0.5) -> str:
    ordered = sorted(samples)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


async def run(rows: int, repeats: int, tmp: Path, uri: str) -> None:
    settings = Settings(
        env="test", mongodb_uri=uri, mongodb_db="bench", state_dir=tmp / "state", public_base_url="http://x"
    )
    ports = build_local_ports(settings)
    container = build_container(settings, ports)
    await container.bootstrap()
    user, _ = await container.auth.register(
        email="bench@example.com",
        password="securepassword123",  # noqa: S106
        name="Bench",
        username=None,
    )
    path = write_sales(tmp / "sales.csv", rows=rows)
    key = f"users/{user['_id']}/datasets/bench/sales.csv"
    await ports.storage.put_file(key, path, content_type="text/csv")
    dataset = await container.dataset_repo.insert(
        {"user_id": user["_id"], "name": "sales.csv", "file_name": "sales.csv", "format": "csv",
         "object_key": key, "status": "ready"}
    )  # fmt: skip
    chats = container.chats
    chats.model = Silent()
    chat = await chats.create(user["_id"], ChatCreate(title="bench", dataset_id=str(dataset["_id"])))

    async def ask(question: str) -> float:
        posted = await chats.post(
            user["_id"], MessageCreate(chat_id=str(chat["_id"]), role="user", content=question)
        )
        start = time.perf_counter()
        reply = await chats.reply(chat["_id"], posted["_id"])
        took = time.perf_counter() - start
        assert reply is not None and reply["query"]["kind"] == "answer", reply
        return took

    start = time.perf_counter()
    await ask(QUESTIONS[0])  # copies the file, profiles it, caches the profile, loads the table
    first = time.perf_counter() - start
    profile = profile_table(path)
    direct = Assistant(profile, path)
    direct.answer(QUESTIONS[0])
    print(f"{rows:,} rows; first question on the chat (copy, profile, load): {first * 1000:.0f} ms")
    print(
        "| question | chat reply p50 (ms) | p95 (ms) | Assistant.answer p50 (ms) | chat overhead p50 (ms) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for question in QUESTIONS:
        chat_s = [await ask(question) for _ in range(repeats)]
        engine_s = []
        for _ in range(repeats):
            t = time.perf_counter()
            direct.answer(question)
            engine_s.append(time.perf_counter() - t)
        overhead = (statistics.median(chat_s) - statistics.median(engine_s)) * 1000
        print(f"| {question} | {ms(chat_s)} | {ms(chat_s, 0.95)} | {ms(engine_s)} | {overhead:.1f} |")
    direct.close()
    await container.close()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    server = SecantusDBServer(storage_path=":memory:")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(rows, repeats, Path(tmp), server.uri + "?retryWrites=false"))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
