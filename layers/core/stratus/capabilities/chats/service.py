"""Seed 003's chats and messages, and the assistant that answers.

A `user` message posted to a chat is stored, counted as a query, and answered off the request path: a
`chat.reply` queue message (the dispatcher Lambda in AWS, the in-process queue under `stratus serve`)
reaches `handle_message`, which

- on a chat bound to a dataset, computes the answer with the analytics engine (a typed plan compiled to
  a parameterised DuckDB query; the dataset's profile is computed once and cached on its record; a
  follow-up starts from the plan of the chat's last answer), lets the language model phrase it from the
  computed numbers only, and keeps the model's sentence only when every number in it is one the query
  produced (`numbers_agree`), else the engine's template sentence;
- on any other chat, lets the language model answer with the chat's history as context;

streams the reply's pieces to the WebSocket connections that follow the chat ({"type": "chat_token"}),
then stores the assistant message and announces it ({"type": "chat_message"}, the stored message: its
`content` is authoritative). The language model runs on the inference worker, never in the API process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bson import ObjectId

from stratus.capabilities.chats.model import ReplyModel, pieces
from stratus.capabilities.chats.repository import ChatMessageRepository, ChatRepository
from stratus.capabilities.chats.schemas import ChatCreate, ChatUpdate, MessageCreate
from stratus.capabilities.chats.spec import REPLY_MESSAGE
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import Conflict, DomainError, InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.queue import MessageQueue
from stratus.ports.storage import ObjectStorage
from stratus.services.quota import QuotaService

if TYPE_CHECKING:
    from stratus.analytics import Answer, Assistant

log = logging.getLogger(__name__)

CHAT_NOT_FOUND = "Chat not found"
# Model records the inference worker can serve by name: downloaded and fine-tuned models.
SERVED_SOURCES = ("hub", "finetuned")
MESSAGE_NOT_FOUND = "Message not found"
# The dataset formats the analytics engine reads (stratus.analytics.profile.FORMATS).
ANALYTICS_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
PHRASE_SYSTEM = (
    "You are a data assistant. Answer the question in one short sentence using only the result given. "
    "Copy every number exactly as written in the result; do not add any other number."
)
CHAT_SYSTEM = "You are a helpful assistant. Answer briefly and clearly."


class Push(Protocol):
    async def push(self, job_id: str, message: dict[str, Any]) -> int: ...


@dataclass(frozen=True)
class ChatPolicy:
    history_messages: int = 20  # the context a reply sees (oldest dropped first)
    max_tokens: int = 256
    temperature: float = 0.3
    phrase_max_tokens: int = 96
    max_result_rows: int = 200  # rows of a result kept in the message's `query`
    assistants_cached: int = 8  # datasets whose loaded table stays in memory between questions


@dataclass
class Reply:
    content: str
    query_type: str
    charts: Any = None
    query: dict[str, Any] | None = None
    model: str | None = None


class ConversationService:
    def __init__(
        self,
        *,
        chats: ChatRepository,
        messages: ChatMessageRepository,
        datasets: DatasetRepository,
        models: ModelRepository,
        storage: ObjectStorage,
        queue: MessageQueue,
        quota: QuotaService,
        live: Push | None,
        model: ReplyModel,
        scratch_dir: Path,
        policy: ChatPolicy | None = None,
    ) -> None:
        self._chats = chats
        self._messages = messages
        self._datasets = datasets
        self._models = models
        self._storage = storage
        self._queue = queue
        self._quota = quota
        self._live = live
        self.model = model  # public: the composition (and tests) may swap it
        self._scratch = scratch_dir
        self.policy = policy or ChatPolicy()
        self._assistants: collections.OrderedDict[ObjectId, Assistant] = collections.OrderedDict()
        self._engine_lock = asyncio.Lock()

    # --- chats -----------------------------------------------------------------------------------

    async def create(self, user_id: ObjectId, body: ChatCreate) -> dict[str, Any]:
        dataset_id = ObjectId(body.dataset_id) if body.dataset_id else None
        await self._check_bindings(user_id, body.model_id, dataset_id)
        return await self._chats.insert(
            {"user_id": user_id, "title": body.title, "model_id": body.model_id, "dataset_id": dataset_id}
        )

    async def list_owned(
        self, user_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._chats.list_owned(user_id, limit=limit, offset=offset)

    async def get(self, user_id: ObjectId, chat_id: ObjectId) -> dict[str, Any]:
        chat = await self._chats.get_owned(user_id, chat_id)
        if chat is None:
            raise NotFound(CHAT_NOT_FOUND)
        return chat

    async def update(self, user_id: ObjectId, chat_id: ObjectId, body: ChatUpdate) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        if not changes:
            raise InvalidInput("No fields to update", code="NO_FIELDS")
        await self.get(user_id, chat_id)
        if changes.get("dataset_id") is not None:
            changes["dataset_id"] = ObjectId(changes["dataset_id"])
        await self._check_bindings(user_id, changes.get("model_id"), changes.get("dataset_id"))
        updated = await self._chats.update_owned(user_id, chat_id, changes)
        if updated is None:
            raise NotFound(CHAT_NOT_FOUND)
        return updated

    async def delete(self, user_id: ObjectId, chat_id: ObjectId) -> None:
        if await self._chats.delete_owned(user_id, chat_id) is None:
            raise NotFound(CHAT_NOT_FOUND)
        await self._messages.delete_for_chat(chat_id)

    async def owns(self, user_id: ObjectId, reference: str) -> bool:
        """Whether `reference` names one of the user's chats (WebSocket subscriptions)."""
        if not ObjectId.is_valid(reference):
            return False
        return await self._chats.get_owned(user_id, ObjectId(reference)) is not None

    async def _check_bindings(
        self, user_id: ObjectId, model_id: str | None, dataset_id: ObjectId | None
    ) -> None:
        if (
            model_id is not None
            and ObjectId.is_valid(model_id)
            and await self._models.get_owned(user_id, ObjectId(model_id)) is None
        ):
            raise NotFound("Model not found")
        if dataset_id is not None:
            await self._ready_dataset(user_id, dataset_id)

    async def _ready_dataset(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any]:
        dataset = await self._datasets.require_owned(user_id, dataset_id)
        if dataset.get("status") != "ready":
            raise Conflict(
                f"Dataset is not ready (status: {dataset.get('status')})", code="DATASET_NOT_READY"
            )
        return dataset

    # --- messages --------------------------------------------------------------------------------

    async def post(self, user_id: ObjectId, body: MessageCreate) -> dict[str, Any]:
        """Store a message; a `user` message is answered in the background (counts as one query)."""
        chat = await self.get(user_id, ObjectId(body.chat_id))
        answer = body.role == "user"
        if answer:
            if chat.get("dataset_id") is not None:
                with contextlib.suppress(NotFound):  # a deleted dataset: the reply says so
                    await self._ready_dataset(user_id, chat["dataset_id"])
            await self._quota.consume_query(user_id)
        doc: dict[str, Any] = {
            "chat_id": chat["_id"],
            "user_id": user_id,
            "role": body.role,
            "content": body.content,
            "query_type": body.query_type,
            "charts": body.charts,
        }
        message = await self._messages.insert(doc)
        await self._chats.touch(chat["_id"])
        if answer:
            try:
                await self._queue.send(
                    {"type": REPLY_MESSAGE, "chat_id": str(chat["_id"]), "message_id": str(message["_id"])},
                    deduplication_id=str(message["_id"]),
                )
            except DomainError as e:
                with contextlib.suppress(DomainError):
                    await self._messages.delete(message["_id"])
                raise ServiceUnavailable("Could not schedule the reply; the message was not stored") from e
        return message

    async def messages(
        self, user_id: ObjectId, chat_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        await self.get(user_id, chat_id)
        return await self._messages.list_for_chat(chat_id, limit=limit, offset=offset)

    async def message(self, user_id: ObjectId, message_id: ObjectId) -> dict[str, Any]:
        doc = await self._messages.get(message_id)
        if doc is None or await self._chats.get_owned(user_id, doc["chat_id"]) is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        return doc

    # --- the assistant (queue consumer) ----------------------------------------------------------

    async def handle_message(self, body: Mapping[str, Any]) -> None:
        chat_id, message_id = body.get("chat_id"), body.get("message_id")
        if not all(isinstance(v, str) and ObjectId.is_valid(v) for v in (chat_id, message_id)):
            raise InvalidInput(f"{REPLY_MESSAGE} message without valid chat_id and message_id: {body!r}")
        await self.reply(ObjectId(str(chat_id)), ObjectId(str(message_id)))

    async def reply(self, chat_id: ObjectId, message_id: ObjectId) -> dict[str, Any] | None:
        """Answer one user message. Idempotent: a redelivered message that was answered does nothing;
        a chat deleted meanwhile is not answered."""
        chat = await self._chats.get(chat_id)
        question = await self._messages.get(message_id)
        if chat is None or question is None or question["chat_id"] != chat_id:
            return None
        if await self._messages.reply_to(message_id) is not None:
            return None
        user_id = chat["user_id"]
        if chat.get("dataset_id") is not None:
            reply = await self._answer_about_data(chat, question)
        else:
            reply = await self._chat(chat, question)
        doc = {
            "chat_id": chat_id,
            "user_id": user_id,
            "role": "assistant",
            "content": reply.content,
            "query_type": reply.query_type,
            "charts": reply.charts,
            "query": reply.query,
            "model": reply.model,
            "reply_to": message_id,
        }
        try:
            stored = await self._messages.insert(doc)
        except Conflict:
            return None  # a concurrent delivery answered first
        if await self._chats.get(chat_id) is None:
            await self._messages.delete_for_chat(chat_id)  # the chat was deleted while we answered
            return None
        await self._chats.touch(chat_id)
        await self._announce(chat_id, {"type": "chat_message", "data": _public(stored)})
        return stored

    async def _chat(self, chat: dict[str, Any], question: dict[str, Any]) -> Reply:
        history = await self._messages.history(
            chat["_id"], before=question["_id"], limit=self.policy.history_messages
        )
        turns = [{"role": "system", "content": CHAT_SYSTEM}]
        turns += [
            {"role": m["role"], "content": m["content"]}
            for m in history
            if m["role"] in ("user", "assistant", "system") and m.get("content")
        ]
        model = await self._model_name(chat)
        try:
            text = await self._stream(chat["_id"], question["_id"], chat["user_id"], model, turns)
        except DomainError as e:
            log.warning("chat %s: the language model failed: %s", chat["_id"], e.message)
            content = f"Sorry, I could not answer: {e.message}"
            await self._stream_text(chat["_id"], question["_id"], content)
            return Reply(content, "general", query={"error": e.message}, model=model)
        return Reply(text.strip() or "(no answer)", "general", model=model)

    async def _answer_about_data(self, chat: dict[str, Any], question: dict[str, Any]) -> Reply:
        dataset = await self._datasets.get_owned(chat["user_id"], chat["dataset_id"])
        if dataset is None or dataset.get("status") != "ready":
            state = (
                "no longer exists" if dataset is None else f"is not ready (status: {dataset.get('status')})"
            )
            content = f"The dataset of this chat {state}; I cannot compute an answer from it."
            await self._stream_text(chat["_id"], question["_id"], content)
            return Reply(content, "analytics", query={"kind": "unanswerable"})
        if dataset.get("format") not in ANALYTICS_FORMATS:
            content = f"I can answer questions about CSV, JSON and Parquet tables, not {dataset.get('format')} datasets."
            await self._stream_text(chat["_id"], question["_id"], content)
            return Reply(content, "analytics", query={"kind": "unanswerable"})
        # A follow-up builds on the last plan made on this same dataset (the chat's may have changed).
        previous = await self._messages.last_plan(
            chat["_id"], before=question["_id"], dataset_id=str(dataset["_id"])
        )
        try:
            # One answer at a time per process: an Assistant's DuckDB connection is not shared
            # between threads (the consumers run one message at a time anyway).
            async with self._engine_lock:
                assistant = await self._assistant(dataset)
                answer: Answer = await asyncio.to_thread(assistant.answer, question["content"], previous)
        except DomainError:
            raise  # storage or database away: the message is redelivered
        except Exception as e:
            # A table the engine cannot read, or a bug: say so rather than leave the question unanswered.
            log.exception("chat %s: the analytics engine failed on dataset %s", chat["_id"], dataset["_id"])
            content = "I could not compute an answer from this dataset."
            await self._stream_text(chat["_id"], question["_id"], content)
            return Reply(content, "analytics", query={"kind": "unanswerable", "error": type(e).__name__})
        query = {
            "dataset_id": str(dataset["_id"]),
            "kind": answer.kind,
            "plan": answer.plan,
            "sql": answer.query,
            "params": answer.params,
            "columns": answer.columns,
            "rows": answer.rows[: self.policy.max_result_rows],
            "row_count": len(answer.rows),
            "phrasing": "template",
        }
        model = await self._model_name(chat)
        content = answer.text
        if answer.kind == "answer":
            phrased = await self._phrase(chat, question, answer, model)
            if phrased is not None:
                content, query["phrasing"] = phrased, "model"
        else:
            await self._stream_text(chat["_id"], question["_id"], content)
        return Reply(content, "analytics", charts=answer.chart, query=query, model=model)

    async def _phrase(
        self, chat: dict[str, Any], question: dict[str, Any], answer: Answer, model: str | None
    ) -> str | None:
        """The model's sentence when every number in it is a computed one; None otherwise (the
        template sentence is used), or when the model is unavailable."""
        from stratus.analytics import numbers_agree, numbers_cover

        turns = [
            {"role": "system", "content": PHRASE_SYSTEM},
            {"role": "user", "content": f"Question: {question['content']}\nResult: {answer.text}"},
        ]
        try:
            text = (
                await self._stream(
                    chat["_id"],
                    question["_id"],
                    chat["user_id"],
                    model,
                    turns,
                    max_tokens=self.policy.phrase_max_tokens,
                    temperature=0.0,
                )
            ).strip()
        except DomainError as e:
            log.warning("chat %s: phrasing failed, using the template: %s", chat["_id"], e.message)
            return None
        if not (text and numbers_agree(text, answer.numbers) and _cites_a_number(text, answer.numbers)):
            return None
        # A many-row result (a total per region) phrased with one row's number reads as the whole answer.
        if len(answer.rows) > 1 and not numbers_cover(text, _row_values(answer.rows)):
            return None
        return text

    async def _stream(
        self,
        chat_id: ObjectId,
        reply_to: ObjectId,
        user_id: ObjectId,
        model: str | None,
        turns: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        parts: list[str] = []
        stream = self.model.stream(
            user_id,
            model,
            turns,
            max_tokens=max_tokens or self.policy.max_tokens,
            temperature=self.policy.temperature if temperature is None else temperature,
        )
        async for piece in stream:
            if piece:
                await self._token(chat_id, reply_to, len(parts), piece)
                parts.append(piece)
        return "".join(parts)

    async def _stream_text(self, chat_id: ObjectId, reply_to: ObjectId, text: str) -> None:
        """A reply that no model generated still reaches subscribers the same way."""
        for index, piece in enumerate(pieces(text)):
            await self._token(chat_id, reply_to, index, piece)

    async def _token(self, chat_id: ObjectId, reply_to: ObjectId, index: int, piece: str) -> None:
        await self._announce(
            chat_id,
            {
                "type": "chat_token",
                "data": {"chat_id": str(chat_id), "reply_to": str(reply_to), "index": index, "token": piece},
            },
        )

    async def _announce(self, chat_id: ObjectId, message: dict[str, Any]) -> None:
        if self._live is None:
            return
        try:
            await self._live.push(str(chat_id), message)
        except DomainError:
            log.warning("could not push %s for chat %s", message.get("type"), chat_id, exc_info=True)

    async def _model_name(self, chat: dict[str, Any]) -> str | None:
        """The chat's model as the inference worker knows it: a model record's name, or a built-in name."""
        model_id = chat.get("model_id")
        if not model_id:
            return None
        if ObjectId.is_valid(model_id):
            record = await self._models.get_owned(chat["user_id"], ObjectId(model_id))
            if record is None:
                return None
            if record.get("source") in SERVED_SOURCES:
                return str(record["name"])
            # A record the client keeps itself (seed 003's POST /api/models): its base model answers
            # ("gpt-3.5-turbo" through the chat model aliases).
            base = record.get("base_model")
            return str(base) if base else None
        return str(model_id)

    # --- the dataset's table and profile -----------------------------------------------------------

    async def _assistant(self, dataset: dict[str, Any]) -> Assistant:
        from stratus.analytics import Assistant, DatasetProfile, profile_table

        cached = self._assistants.get(dataset["_id"])
        if cached is not None:
            self._assistants.move_to_end(dataset["_id"])
            return cached
        path = await self._local_copy(dataset)
        fmt = str(dataset["format"])
        if isinstance(dataset.get("profile"), dict):
            profile = DatasetProfile.from_dict(dataset["profile"])
        else:
            profile = await asyncio.to_thread(profile_table, path, fmt)
            # Cached on the record: the next process (another Lambda container) skips the profiling.
            with contextlib.suppress(DomainError):
                await self._datasets.transition(
                    dataset["_id"], from_status="ready", changes={"profile": profile.to_dict()}
                )
        assistant = Assistant(profile, path, fmt)
        self._assistants[dataset["_id"]] = assistant
        while len(self._assistants) > self.policy.assistants_cached:
            _, evicted = self._assistants.popitem(last=False)
            evicted.close()
        return assistant

    async def _local_copy(self, dataset: dict[str, Any]) -> Path:
        """Datasets never change once stored, so a local copy (Lambda's /tmp, the state dir) stays valid."""
        cache = self._scratch / "cache" / str(dataset["_id"])
        path: Path = cache / str(dataset["file_name"])
        if not await asyncio.to_thread(path.exists):
            await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
            partial = cache / f"{dataset['file_name']}.{uuid.uuid4().hex}.part"
            await self._storage.download_to(dataset["object_key"], partial)
            await asyncio.to_thread(partial.replace, path)
        return path


def _row_values(rows: list[list[Any]]) -> list[float]:
    return [float(v) for row in rows for v in row if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _cites_a_number(sentence: str, numbers: list[float]) -> bool:
    """A phrasing of a numeric answer must state at least one number (else the template is clearer)."""
    return not numbers or any(ch.isdigit() for ch in sentence)


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    from stratus.capabilities.chats.schemas import MessagePublic

    return MessagePublic.model_validate(doc).model_dump(mode="json", by_alias=True)
