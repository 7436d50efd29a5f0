"""MessageQueue on SQS (standard or FIFO queues)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratus.adapters.aws._errors import translate
from stratus.errors import InvalidInput, ServiceUnavailable

MAX_MESSAGE_BYTES = 256 * 1024
MAX_DELAY_S = 900
# SQS deduplication ids and group ids: up to 128 printable ASCII characters (letters, digits, punctuation).
_SQS_ID = re.compile(r"^[!-~]{1,128}$")


class SqsQueue:
    def __init__(self, client: Any, queue_url: str, *, message_group_id: str | None = None) -> None:
        """`message_group_id` applies to FIFO queues only. Unset, each message is its own group (ordering
        is not needed between our messages, and one shared group would serialise all consumers)."""
        self._client = client
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo")
        self._group_id = message_group_id

    async def send(
        self,
        body: Mapping[str, Any],
        *,
        delay_seconds: int = 0,
        deduplication_id: str | None = None,
    ) -> str:
        payload = json.dumps(body, separators=(",", ":"), default=str)
        if len(payload.encode()) > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"Queue message exceeds {MAX_MESSAGE_BYTES} bytes")
        if not 0 <= delay_seconds <= MAX_DELAY_S:
            raise InvalidInput(f"delay_seconds must be between 0 and {MAX_DELAY_S}")
        params: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": payload}
        if self.fifo:
            if delay_seconds:
                # SQS rejects per-message delays on FIFO queues; say so rather than drop the delay silently.
                raise InvalidInput("FIFO queues do not support per-message delays")
            dedup = _sqs_id(deduplication_id) if deduplication_id else _digest(payload)
            params["MessageDeduplicationId"] = dedup
            params["MessageGroupId"] = _sqs_id(self._group_id) if self._group_id else dedup
        elif delay_seconds:
            params["DelaySeconds"] = delay_seconds
        try:
            response = await asyncio.to_thread(self._client.send_message, **params)
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "queue") from e
        return str(response["MessageId"])

    async def ping(self) -> None:
        try:
            await asyncio.to_thread(
                self._client.get_queue_attributes, QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )
        except (ClientError, BotoCoreError) as e:
            # Readiness: a missing queue or a denied call is as unready as an unreachable one.
            raise ServiceUnavailable("Queue is unavailable") from e


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sqs_id(value: str) -> str:
    """`value` when SQS accepts it as a deduplication/group id, else its SHA-256 (stable, 64 chars)."""
    return value if _SQS_ID.match(value) else _digest(value)
