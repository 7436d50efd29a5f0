"""The chat task: messages rendered with the model's chat template, the reply streamed as it is generated.

Input (one per request): {"messages": [{"role", "content"}], "max_tokens", "temperature", "stop": [str]};
options `top_p` (default 1) and `seed`. Temperature 0 is greedy. Events (see stratus.ports.chat):

    {"type": "start", "model", "prompt_tokens", "dropped_messages", "truncated"}
    {"type": "delta", "text"}
    {"type": "done", "text", "finish_reason", "usage", "dropped_messages"}
    {"type": "error", "status", "error", "message"}

Context: when the prompt and `max_tokens` do not fit the model (`max_length`), the oldest messages
after any leading system messages are dropped, one by one; the last message is always kept (cut to fit
when it alone is too long, `truncated`). `finish_reason` is "stop" when the model ended its turn or a
stop sequence appeared (the text ends before it), "length" when `max_tokens` were generated.

The generation runs on a thread (`model.generate` with a streamer and a stopping criterion) holding the
model's run lock (one generation per model at a time, like the engine's batches); token ids reach the
event loop through `call_soon_threadsafe` and are decoded there, so the loop never blocks on the model.
Closing the event iterator (the client went away) stops the generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stratus.capabilities.chat import spec
from stratus_worker.inference.adapters import AdapterBackend
from stratus_worker.inference.backends import CausalLMBackend, Sampling, _RowPicker
from stratus_worker.inference.engine import InferenceEngine
from stratus_worker.inference.errors import InferenceError, InvalidInput, WrongTask

Item = dict[str, Any]
TASK = spec.TASK


@dataclass(frozen=True)
class ChatItem:
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    stop: list[str]
    top_p: float = 1.0
    seed: int | None = None


def validate(inputs: Any, options: Mapping[str, Any] | None) -> ChatItem:
    """One chat input with defaults; InvalidInput naming the first problem."""
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], Mapping):
        raise InvalidInput("the chat task takes exactly one input object")
    item, options = inputs[0], options or {}
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("inputs[0].messages must be a non-empty list")
    clean = []
    for i, m in enumerate(messages):
        if (
            not isinstance(m, Mapping)
            or m.get("role") not in spec.ROLES
            or not isinstance(m.get("content"), str)
        ):
            raise InvalidInput(
                f"inputs[0].messages[{i}] must be {{role: system|user|assistant, content: str}}"
            )
        clean.append({"role": str(m["role"]), "content": str(m["content"])})
    max_tokens = item.get("max_tokens", spec.MAX_TOKENS.default)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidInput("inputs[0].max_tokens must be an integer")
    if not spec.MAX_TOKENS.ge <= max_tokens <= spec.MAX_TOKENS.le:
        raise InvalidInput(f"inputs[0].max_tokens must be in [{spec.MAX_TOKENS.ge}, {spec.MAX_TOKENS.le}]")
    temperature = item.get("temperature", spec.TEMPERATURE.default)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise InvalidInput("inputs[0].temperature must be a number")
    if not spec.TEMPERATURE.ge <= temperature <= spec.TEMPERATURE.le:
        raise InvalidInput(f"inputs[0].temperature must be in [{spec.TEMPERATURE.ge}, {spec.TEMPERATURE.le}]")
    stop = item.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or len(stop) > spec.MAX_STOP
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise InvalidInput(f"inputs[0].stop must be up to {spec.MAX_STOP} non-empty strings")
    top_p = options.get("top_p", spec.TOP_P.default)
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise InvalidInput("options.top_p must be in (0, 1]")
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInput("options.seed must be an integer")
    return ChatItem(clean, max_tokens, float(temperature), list(stop), float(top_p), seed)


def fit_messages(
    model: CausalLMBackend | AdapterBackend, messages: list[dict[str, str]], max_tokens: int
) -> tuple[list[int], int, bool]:
    """The prompt ids, how many of the oldest messages were dropped, and whether the last was cut."""
    room = model.max_length - max_tokens
    if room <= 8:
        raise InvalidInput(
            f"max_tokens {max_tokens} leaves no room for the messages ({model.max_length} tokens of context)"
        )
    head = 0
    while head < len(messages) - 1 and messages[head]["role"] == "system":
        head += 1
    system, rest = messages[:head], messages[head:]
    dropped = 0
    ids = model.prompt_ids(system + rest)
    while len(ids) > room and len(rest) > 1:
        rest = rest[1:]
        dropped += 1
        ids = model.prompt_ids(system + rest)
    if len(ids) <= room:
        return ids, dropped, False
    # The last message alone is too long: keep its beginning (system messages too, if they fit).
    if len(model.prompt_ids([*system, {**rest[-1], "content": ""}])) > room:
        dropped += len(system)
        system = []
    last = rest[-1]
    overhead = len(model.prompt_ids([*system, {**last, "content": ""}]))
    budget = room - overhead
    while True:
        content, _ = model.fit(last["content"], max(budget, 0))
        ids = model.prompt_ids([*system, {**last, "content": content}])
        if len(ids) <= room or budget <= 0:
            return ids, dropped, True
        budget -= len(ids) - room


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of `text` could begin a stop sequence (not sent yet)."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                longest = max(longest, k)
                break
    return longest


class _Tokens:
    """A transformers streamer: each step's new token ids, handed to the event loop's queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        self._loop = loop
        self._queue = queue
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate's first call is the prompt
            self._prompt_seen = True
            return
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, ("tokens", value.reshape(-1).tolist()))

    def end(self) -> None:
        pass


class _Cancelled:
    """Stopping criterion: the consumer saw a stop sequence, or went away."""

    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self._flag.is_set(), dtype=torch.bool)


def generate(
    backend: CausalLMBackend, ids: list[int], item: ChatItem, streamer: Any, cancel: threading.Event
) -> None:
    """One `generate` call (on the caller's thread): greedy at temperature 0 (transformers' own
    argmax), else sampled with the item's temperature, top-p and seed (see backends._RowPicker)."""
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    input_ids = torch.tensor([ids], dtype=torch.long)
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        max_new_tokens=item.max_tokens,
        do_sample=False,
        pad_token_id=backend.pad_id,
        eos_token_id=backend.eos_ids,
        bos_token_id=backend.model.generation_config.bos_token_id,
    )
    processors = LogitsProcessorList()
    if item.temperature > 0:
        seed = item.seed if item.seed is not None else random.SystemRandom().getrandbits(63)
        processors.append(
            _RowPicker([Sampling(item.max_tokens, temperature=item.temperature, top_p=item.top_p, seed=seed)],
                       backend.eos_ids, len(ids))
        )  # fmt: skip
    with torch.inference_mode():
        backend.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=config,
            logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
            streamer=streamer,
        )


def error_event(error: InferenceError) -> Item:
    return {"type": "error", "status": error.status, **error.to_dict()}


async def stream(engine: InferenceEngine, model: str, item: ChatItem) -> AsyncGenerator[Item, None]:
    """The chat events for `item` on the engine's model `model` (see the module's docstring)."""
    spec_ = engine.spec(model)
    if "generation" not in spec_.tasks:
        raise WrongTask(model, spec.TASK, spec_.tasks)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancel = threading.Event()

    def emit(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            with engine.exclusive(model) as backend:
                # A fine-tune's adapter runs on its base's loaded model, switched on for this reply
                # only; a base model's reply runs with every adapter attached to it switched off.
                if isinstance(backend, AdapterBackend):
                    runner, weights = backend.base, backend.adapter_applied()
                elif isinstance(backend, CausalLMBackend):
                    runner, weights = backend, backend.adapter_applied()
                else:
                    raise WrongTask(model, spec.TASK, ("generation",))
                ids, dropped, truncated = fit_messages(backend, item.messages, item.max_tokens)
                emit("start", (runner, len(ids), dropped, truncated))
                if not cancel.is_set():
                    with weights:
                        generate(runner, ids, item, _Tokens(loop, queue), cancel)
            emit("end", None)
        except InferenceError as e:
            emit("error", e)
        except Exception as e:  # a broken model must answer, not hang its client
            emit("error", InferenceError(f"{type(e).__name__}: {e}"))

    thread = threading.Thread(target=work, name=f"chat-{model}", daemon=True)
    thread.start()
    try:
        kind, value = await queue.get()
        if kind == "error":
            yield error_event(value)
            return
        backend, prompt_tokens, dropped, truncated = value
        yield {"type": "start", "model": model, "prompt_tokens": prompt_tokens, "dropped_messages": dropped,
               "truncated": truncated}  # fmt: skip
        eos = set(backend.eos_ids)
        kept: list[int] = []
        text, sent, finish = "", 0, "length"
        ended = False
        while not ended:
            kind, value = await queue.get()
            if kind == "error":
                yield error_event(value)
                return
            if kind == "end":
                break
            for token in value:
                if token in eos:
                    finish, ended = "stop", True
                    cancel.set()
                    break
                kept.append(token)
            decoded = str(backend.tokenizer.decode(kept, skip_special_tokens=True))
            if not sent:
                decoded = decoded.lstrip()
            if decoded.endswith("\ufffd") and not ended:
                continue  # a character split across tokens: wait for its end
            cut = min((i for i in (decoded.find(s) for s in item.stop) if i >= 0), default=-1)
            if cut >= 0:
                decoded, finish, ended = decoded[:cut], "stop", True
                cancel.set()
            text = decoded
            safe = len(text) if ended else len(text) - _held_back(text, item.stop)
            if safe > sent:
                yield {"type": "delta", "text": text[sent:safe]}
                sent = safe
        if sent < len(text):
            yield {"type": "delta", "text": text[sent:]}
        if finish == "length" and len(kept) < item.max_tokens:
            finish = "stop"
        yield {
            "type": "done",
            "text": text,
            "finish_reason": finish,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(kept),
                "total_tokens": prompt_tokens + len(kept),
            },
            "dropped_messages": dropped,
            "truncated": truncated,
        }
    finally:
        cancel.set()  # the client went away, or the reply is complete: free the model


async def collect(events: AsyncIterator[Item]) -> Item:
    """The non-streaming answer: the done event (or the error event)."""
    last: Item = {"type": "error", "status": 500, "error": "internal_error", "message": "no reply"}
    async for event in events:
        if event["type"] in ("done", "error"):
            last = event
    return last
