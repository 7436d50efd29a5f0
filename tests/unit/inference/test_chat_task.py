"""The worker's chat task on the real SmolLM2: streaming, stop sequences, greedy determinism, context
fitting (oldest messages dropped), and input validation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stratus_worker.inference import chat
from stratus_worker.inference.backends import CausalLMBackend
from stratus_worker.inference.engine import InferenceEngine
from stratus_worker.inference.errors import InvalidInput, WrongTask
from tests.unit.inference.conftest import EMBEDDER, LLM


def _item(content: str, **extra: Any) -> chat.ChatItem:
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 24, "temperature": 0, **extra}
    return chat.validate([body], {})


async def _events(engine: InferenceEngine, item: chat.ChatItem, model: str = LLM) -> list[dict[str, Any]]:
    return [event async for event in chat.stream(engine, model, item)]


def test_a_reply_streams_as_deltas_that_add_up(engine: InferenceEngine) -> None:
    events = asyncio.run(_events(engine, _item("Name three colors.")))
    start, *deltas, done = events
    assert start["type"] == "start" and start["model"] == LLM and start["dropped_messages"] == 0
    assert len(deltas) > 1 and all(d["type"] == "delta" and d["text"] for d in deltas)
    assert done["type"] == "done" and "".join(d["text"] for d in deltas) == done["text"]
    usage = done["usage"]
    assert usage["prompt_tokens"] == start["prompt_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # Greedy: the same reply again.
    assert asyncio.run(_events(engine, _item("Name three colors.")))[-1]["text"] == done["text"]


def test_stop_sequences_end_the_reply_before_them(engine: InferenceEngine) -> None:
    item = _item("Count from 1 to 10, separated by commas.", stop=[", 4"], max_tokens=40)
    events = asyncio.run(_events(engine, item))
    done = events[-1]
    assert done["finish_reason"] == "stop" and done["text"].startswith("1, 2, 3")
    assert ", 4" not in "".join(e["text"] for e in events if e["type"] == "delta")


def test_the_token_budget_ends_with_length(engine: InferenceEngine) -> None:
    done = asyncio.run(_events(engine, _item("Write a long story about a dragon.", max_tokens=5)))[-1]
    assert done["finish_reason"] == "length" and done["usage"]["completion_tokens"] == 5


def test_a_seeded_sample_repeats(engine: InferenceEngine) -> None:
    def sample() -> str:
        body = {
            "messages": [{"role": "user", "content": "Tell me a word."}],
            "max_tokens": 8,
            "temperature": 1.0,
        }
        return str(asyncio.run(_events(engine, chat.validate([body], {"seed": 7})))[-1]["text"])

    assert sample() == sample()


def test_the_oldest_messages_are_dropped_to_fit(
    engine: InferenceEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = engine.load(LLM)
    assert isinstance(backend, CausalLMBackend)
    monkeypatch.setattr(backend, "max_length", 200)
    turn = "tell me about the weather in a long sentence " * 4
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(6):
        messages += [{"role": "user", "content": f"{i} {turn}"}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": "Hi"})
    ids, dropped, truncated = chat.fit_messages(backend, messages, max_tokens=50)
    assert len(ids) <= 150 and dropped > 0 and not truncated
    prompt = backend.tokenizer.decode(ids)
    assert "Be brief." in prompt and prompt.rstrip().endswith("assistant")  # system kept, ready to answer
    assert "0 tell me" not in prompt  # the oldest went first
    # The newest history that fits is kept.
    assert chat.fit_messages(backend, messages[:1] + messages[-3:], max_tokens=50)[1] == 0
    # One message too long for the context on its own is cut, keeping its beginning.
    ids, dropped, truncated = chat.fit_messages(
        backend, [{"role": "user", "content": "start " + turn * 20}], max_tokens=50
    )
    assert truncated and len(ids) <= 150 and "start" in backend.tokenizer.decode(ids)
    with pytest.raises(InvalidInput):
        chat.fit_messages(backend, messages, max_tokens=199)


def test_held_back_text_could_begin_a_stop_sequence() -> None:
    assert chat._held_back("1, 2, 3,", [", 4"]) == 1
    assert chat._held_back("1, 2, 3, ", [", 4"]) == 2
    assert chat._held_back("1, 2, 3", [", 4"]) == 0
    assert chat._held_back("abc", []) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        {"messages": [{"role": "user", "content": "hi"}], "temperature": 3},
        {"messages": [{"role": "user", "content": "hi"}], "stop": [""]},
    ],
)
def test_invalid_chat_inputs_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        chat.validate([body], {})


def test_a_model_that_does_not_generate_cannot_chat(engine: InferenceEngine) -> None:
    with pytest.raises(WrongTask):
        asyncio.run(_events(engine, _item("hi"), model=EMBEDDER))
