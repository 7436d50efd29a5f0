"""What the sync and async clients share: errors, the retry policy, the endpoints (written once, generic in
what a call returns: a value for `Client`, an awaitable for `AsyncClient`) and page and job helpers.

Nothing here imports the server: only httpx (and websockets, lazily, for following jobs).
"""

from __future__ import annotations

import abc
import email.utils
import mimetypes
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

R = TypeVar("R")
Json = dict[str, Any]

TERMINAL_STATUSES = frozenset({"completed", "failed", "stopped", "cancelled"})
# Above this size an upload goes to storage through a presigned URL instead of through the API (API
# Gateway and Lambda cap a request body at a few MB; the platform Lambdas accept 4 MiB).
DEFAULT_INLINE_LIMIT = 4 * 1024 * 1024
UPLOAD_CHUNK = 256 * 1024


class StratusError(Exception):
    """Anything the client reports."""


class ApiError(StratusError):
    """The API answered with an error (its one error shape: code, message, request_id)."""

    def __init__(self, status_code: int, body: Any, request_id: str | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        if isinstance(body, Mapping):
            self.code = str(body.get("code") or body.get("error") or status_code)
            message = body.get("message") or body.get("detail")
        else:
            self.code = str(status_code)
            message = body
        self.message = message if isinstance(message, str) else str(message)
        super().__init__(f"{status_code} {self.code}: {self.message}")


class AuthenticationError(ApiError):
    """401: no credentials, or they expired (run `stratus login` again)."""


class JobFailed(StratusError):
    """wait() saw the job end failed or stopped."""

    def __init__(self, job: Json) -> None:
        self.job = job
        super().__init__(f"job {job.get('id')} {job.get('status')}: {job.get('error') or ''}".rstrip(": "))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429 and 503 (honouring Retry-After), and on connection errors for calls that are safe to
    repeat (reads, and calls that carry an Idempotency-Key). Exponential backoff with full jitter."""

    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.max_backoff_s)
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    cls = AuthenticationError if response.status_code == 401 else ApiError
    raise cls(response.status_code, body, response.headers.get("X-Request-ID"))


def decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response.content


def page_items(body: Any) -> list[Any]:
    """The items of a page: a bare list (with X-Total-Count), or the first list in an envelope."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for value in body.values():
            if isinstance(value, list):
                return value
    return []


def job_id_of(started: Mapping[str, Any]) -> str:
    """The job a start call created, whatever the seed names it."""
    for key in ("job_id", "task_id", "download_id", "id"):
        value = started.get(key)
        if isinstance(value, str):
            return value
    raise StratusError(f"no job id in {dict(started)}")


def socket_url(base_url: str, token: str, query: str = "", websocket_url: str | None = None) -> str:
    """The API's WebSocket with the token: `websocket_url` (in AWS the WebSocket API's own endpoint), else
    /ws beside the HTTP API, as `stratus serve` has it."""
    if websocket_url:
        url = websocket_url.rstrip("/")
    else:
        base = base_url.rstrip("/")
        url = ("wss" + base[5:] if base.startswith("https") else "ws" + base[4:]) + "/ws"
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{query + '&' if query else ''}token={quote(token, safe='')}"


def is_terminal(message: Mapping[str, Any]) -> bool:
    if message.get("type") not in ("status", "error"):
        return False
    data = message.get("data") or {}
    return data.get("status") in TERMINAL_STATUSES


def status_message(job: Mapping[str, Any]) -> Json:
    """A job record as the WebSocket's status message (for a job that ended before we subscribed)."""
    data = {"job_id": job.get("id"), "status": job.get("status"), "error": job.get("error")}
    if job.get("model_id"):
        data["model_id"] = job["model_id"]
    return {"type": "error" if job.get("status") == "failed" else "status", "data": data}


def _clean(values: Mapping[str, Any]) -> Json:
    return {k: v for k, v in values.items() if v is not None}


def _form(**values: Any) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _file(field: str, source: str | os.PathLike[str] | bytes) -> dict[str, tuple[str, bytes, str]]:
    """A multipart file field from a path or bytes (images and audio clips: read whole)."""
    if isinstance(source, bytes):
        return {field: (field, source, "application/octet-stream")}
    path = Path(source)
    return {
        field: (
            path.name,
            path.read_bytes(),
            mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        )
    }


class Endpoints(abc.ABC, Generic[R]):
    """Every capability's calls, once. `_call` returns the decoded body (or an awaitable of it)."""

    @abc.abstractmethod
    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        starts_work: bool = False,
        idempotency_key: str | None = None,
    ) -> R: ...

    # --- account -----------------------------------------------------------------------------------
    def me(self) -> R:
        return self._call("GET", "/api/auth/me")

    def create_api_key(self, name: str, *, model_id: str | None = None) -> R:
        """The full key is in the answer's `key`, once."""
        return self._call("POST", "/api/apikeys", json=_clean({"name": name, "model_id": model_id}))

    def delete_api_key(self, apikey_id: str) -> R:
        return self._call("DELETE", f"/api/apikeys/{apikey_id}")

    # --- datasets ----------------------------------------------------------------------------------
    def get_dataset(self, dataset_id: str) -> R:
        return self._call("GET", f"/api/datasets/{dataset_id}")

    def dataset_rows(self, dataset_id: str, *, offset: int = 0, limit: int = 100) -> R:
        return self._call(
            "GET", f"/api/datasets/{dataset_id}/rows", params={"offset": offset, "limit": limit}
        )

    def delete_dataset(self, dataset_id: str) -> R:
        return self._call("DELETE", f"/api/datasets/{dataset_id}")

    # --- training and jobs -------------------------------------------------------------------------
    def train(
        self,
        dataset_id: str,
        *,
        model_type: str = "mlp",
        epochs: int | None = None,
        learning_rate: float | None = None,
        batch_size: int | None = None,
        optimizer: str | None = None,
        target: str | None = None,
        task: str | None = None,
        validation_split: float | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> R:
        """Start a training job (seed 001's /training/start); the answer's `job_id` names it."""
        hyper = _clean(
            {
                "epochs": epochs,
                "learning_rate": learning_rate,
                "batch_size": batch_size,
                "optimizer": optimizer,
            }
        )
        body = _clean(
            {
                "dataset_id": dataset_id,
                "model_type": model_type,
                "target": target,
                "task": task,
                "validation_split": validation_split,
                "name": name,
            }
        )
        if hyper:
            body["hyperparameters"] = hyper
        body.update(extra)
        return self._call(
            "POST", "/training/start", json=body, starts_work=True, idempotency_key=idempotency_key
        )

    def training_results(self, job_id: str) -> R:
        return self._call("GET", f"/training/results/{job_id}")

    def get_job(self, job_id: str) -> R:
        return self._call("GET", f"/api/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> R:
        return self._call("POST", f"/api/jobs/{job_id}/cancel")

    # --- models ------------------------------------------------------------------------------------
    def get_model(self, model_id: str) -> R:
        return self._call("GET", f"/api/models/{model_id}")

    def delete_model(self, model_id: str) -> R:
        return self._call("DELETE", f"/api/models/{model_id}")

    def model_info(self, model_name: str) -> R:
        return self._call("GET", f"/models/{model_name}/info")

    def predict(self, model_id: str, inputs: Any) -> R:
        """Predictions of a trained model: `inputs` is a list of rows (lists or objects keyed by column)."""
        return self._call("POST", f"/models/{model_id}/predict", json={"inputs": inputs})

    def download_model(
        self,
        model_name: str,
        task_type: str,
        *,
        revision: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Start downloading a hub model into the registry; follow the answer's `download_id`."""
        body = _clean({"model_name": model_name, "task_type": task_type, "revision": revision})
        return self._call(
            "POST", "/models/download", json=body, starts_work=True, idempotency_key=idempotency_key
        )

    def get_download(self, download_id: str) -> R:
        return self._call("GET", f"/models/download/{download_id}")

    # --- LLM fine-tuning -----------------------------------------------------------------------------
    def finetune(
        self,
        dataset_path: str,
        *,
        method: str = "lora",
        base_model: str | None = None,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> R:
        """Start a LoRA (or `method="qlora"`) fine-tune; follow the answer's `task_id`."""
        if method not in ("lora", "qlora"):
            raise ValueError("method is lora or qlora")
        body = _clean({"dataset_path": dataset_path, "base_model": base_model, **params})
        return self._call(
            "POST",
            f"/api/llm-finetuning/{method}/start",
            json=body,
            starts_work=True,
            idempotency_key=idempotency_key,
        )

    def finetune_test(self, task_id: str, prompt: str, *, max_tokens: int | None = None) -> R:
        body = _clean({"task_id": task_id, "prompt": prompt, "max_tokens": max_tokens})
        return self._call("POST", "/api/llm-finetuning/test", json=body)

    def finetune_merge(self, task_id: str, *, idempotency_key: str | None = None) -> R:
        return self._call(
            "POST",
            "/api/llm-finetuning/merge",
            json={"task_id": task_id},
            starts_work=True,
            idempotency_key=idempotency_key,
        )

    def finetune_checkpoints(self, task_id: str) -> R:
        return self._call("GET", f"/api/llm-finetuning/{task_id}/checkpoints")

    # --- NLP tasks ---------------------------------------------------------------------------------
    def classify(
        self, text: str, *, candidate_labels: list[str] | None = None, model_name: str | None = None
    ) -> R:
        body = _clean({"text": text, "candidate_labels": candidate_labels, "model_name": model_name})
        return self._call("POST", "/api/tasks/classification", json=body)

    def answer(self, question: str, context: str, *, model_name: str | None = None) -> R:
        body = _clean({"question": question, "context": context, "model_name": model_name})
        return self._call("POST", "/api/tasks/qa", json=body)

    def entities(self, text: str, *, model_name: str | None = None) -> R:
        return self._call("POST", "/api/tasks/ner", json=_clean({"text": text, "model_name": model_name}))

    def summarize(self, text: str, *, max_length: int | None = None, model_name: str | None = None) -> R:
        body = _clean({"text": text, "max_length": max_length, "model_name": model_name})
        return self._call("POST", "/api/tasks/summarization", json=body)

    def embed(self, text: str | list[str], *, model_name: str | None = None) -> R:
        return self._call(
            "POST", "/api/tasks/embeddings", json=_clean({"text": text, "model_name": model_name})
        )

    def generate_text(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        model_name: str | None = None,
    ) -> R:
        body = _clean(
            {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "model_name": model_name}
        )
        return self._call("POST", "/api/tasks/generation", json=body)

    def get_task(self, task_id: str) -> R:
        return self._call("GET", f"/api/tasks/{task_id}")

    # --- recognition and audio -----------------------------------------------------------------------
    def classify_image(
        self, image: str | os.PathLike[str] | bytes, *, model: str | None = None, top_k: int | None = None
    ) -> R:
        """ImageNet classes (or a trained image classifier's, with `model` its id)."""
        return self._call(
            "POST",
            "/api/image-recognition/classify",
            files=_file("image", image),
            data=_form(model=model, top_k=top_k),
        )

    def detect_objects(
        self,
        image: str | os.PathLike[str] | bytes,
        *,
        model: str | None = None,
        threshold: float | None = None,
    ) -> R:
        return self._call(
            "POST",
            "/api/image-recognition/detect",
            files=_file("image", image),
            data=_form(model=model, threshold=threshold),
        )

    def detect_faces(self, image: str | os.PathLike[str] | bytes) -> R:
        return self._call("POST", "/api/face-recognition/detect", files=_file("image", image))

    def register_face(self, image: str | os.PathLike[str] | bytes, name: str) -> R:
        return self._call(
            "POST", "/api/face-recognition/register", files=_file("image", image), data={"name": name}
        )

    def recognize_faces(
        self, image: str | os.PathLike[str] | bytes, *, max_distance: float | None = None
    ) -> R:
        return self._call(
            "POST",
            "/api/face-recognition/recognize",
            files=_file("image", image),
            data=_form(max_distance=max_distance),
        )

    def delete_face(self, face_id: str) -> R:
        return self._call("DELETE", f"/api/face-recognition/faces/{face_id}")

    def transcribe(self, audio: str | os.PathLike[str] | bytes, *, language: str | None = None) -> R:
        return self._call(
            "POST", "/api/audio/transcribe", files=_file("audio", audio), data=_form(language=language)
        )

    def synthesize(self, text: str, *, voice: str | None = None, format: str | None = None) -> R:
        """Speech audio (bytes) for `text`."""
        return self._call(
            "POST", "/api/audio/synthesize", json=_clean({"text": text, "voice": voice, "format": format})
        )

    def voices(self) -> R:
        return self._call("GET", "/api/audio/voices")

    # --- files and model records ---------------------------------------------------------------------
    def upload_file(self, path: str | os.PathLike[str] | bytes) -> R:
        return self._call("POST", "/api/files/upload", files=_file("file", path))

    def get_file(self, file_id: str) -> R:
        return self._call("GET", f"/api/files/{file_id}")

    def delete_file(self, file_id: str) -> R:
        return self._call("DELETE", f"/api/files/{file_id}")

    def create_model(self, name: str, base_model: str, **fields: Any) -> R:
        """A model record (seed 003's registry entry)."""
        return self._call("POST", "/api/models", json={"name": name, "base_model": base_model, **fields})

    def update_model(self, model_id: str, **fields: Any) -> R:
        return self._call("PATCH", f"/api/models/{model_id}", json=fields)

    # --- webhooks ----------------------------------------------------------------------------------
    def create_webhook(self, url: str, events: list[str], *, description: str | None = None) -> R:
        """The signing secret is in the answer's `secret`, once."""
        body = _clean({"url": url, "events": events, "description": description})
        return self._call("POST", "/api/webhooks", json=body)

    def get_webhook(self, webhook_id: str) -> R:
        return self._call("GET", f"/api/webhooks/{webhook_id}")

    def delete_webhook(self, webhook_id: str) -> R:
        return self._call("DELETE", f"/api/webhooks/{webhook_id}")

    def test_webhook(self, webhook_id: str) -> R:
        return self._call("POST", f"/api/webhooks/{webhook_id}/test")

    # --- chats (seed 003: chats and messages, answered by the data assistant) ----------------------
    def create_chat(self, title: str, *, model_id: str | None = None, dataset_id: str | None = None) -> R:
        """A chat; with `dataset_id`, questions about that dataset are answered with computed numbers."""
        body = _clean({"title": title, "model_id": model_id, "dataset_id": dataset_id})
        return self._call("POST", "/api/chats", json=body)

    def get_chat(self, chat_id: str) -> R:
        return self._call("GET", f"/api/chats/{chat_id}")

    def update_chat(self, chat_id: str, **fields: Any) -> R:
        return self._call("PATCH", f"/api/chats/{chat_id}", json=fields)

    def delete_chat(self, chat_id: str) -> R:
        return self._call("DELETE", f"/api/chats/{chat_id}")

    def post_message(self, chat_id: str, content: str, *, role: str = "user") -> R:
        """Adds a message; a `user` message is answered by the assistant in the background (see ask())."""
        body = {"chat_id": chat_id, "role": role, "content": content}
        return self._call("POST", "/api/messages", json=body)

    def get_message(self, message_id: str) -> R:
        return self._call("GET", f"/api/messages/{message_id}")

    # --- AI chat (seed 004) and the OpenAI-compatible API --------------------------------------------
    def chat(
        self,
        message: str,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> R:
        """One exchange with the language model: {id, message, model, usage, created_at}."""
        body = _clean(
            {"message": message, "model": model, "temperature": temperature, "max_tokens": max_tokens}
        )
        return self._call("POST", "/api/chat", json=body)

    def chat_completion(self, messages: list[dict[str, str]], *, model: str, **params: Any) -> R:
        """OpenAI's chat completions (non-streaming) on the platform's models."""
        return self._call(
            "POST", "/v1/chat/completions", json={"model": model, "messages": messages, **params}
        )

    # --- media generation (seed 002) -----------------------------------------------------------------
    def generate_image(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        width: int | None = None,
        height: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        model_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Start a text-to-image generation: {task_id, status, image_url, progress}; follow `task_id`."""
        body = _clean(
            {
                "prompt": prompt,
                "negative_prompt": negative_prompt,
                "width": width,
                "height": height,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": guidance_scale,
                "seed": seed,
                "model_id": model_id,
            }
        )
        return self._call(
            "POST",
            "/api/text-to-image/generate",
            json=body,
            starts_work=True,
            idempotency_key=idempotency_key,
        )

    def generate_video(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        num_frames: int | None = None,
        fps: int | None = None,
        width: int | None = None,
        height: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        model_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Start a text-to-video generation; follow `task_id` with media_status(kind="text-to-video"),
        the MP4 is at the status's `video_url`."""
        body = _clean(
            {
                "prompt": prompt,
                "negative_prompt": negative_prompt,
                "num_frames": num_frames,
                "fps": fps,
                "width": width,
                "height": height,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": guidance_scale,
                "seed": seed,
                "model_id": model_id,
            }
        )
        return self._call(
            "POST",
            "/api/text-to-video/generate",
            json=body,
            starts_work=True,
            idempotency_key=idempotency_key,
        )

    def transform_image(
        self,
        image: str | os.PathLike[str] | bytes,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        strength: float | None = None,
        width: int | None = None,
        height: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        model_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Start an image-to-image generation from `image` (a path or bytes): `strength` 0 keeps it, 1
        ignores it; follow `task_id` with media_status(kind="image-to-image")."""
        form = _form(prompt=prompt, negative_prompt=negative_prompt, strength=strength, width=width,
                     height=height, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                     seed=seed, model_id=model_id)  # fmt: skip
        return self._call(
            "POST",
            "/api/image-to-image/generate",
            files=_file("image", image),
            data=form,
            starts_work=True,
            idempotency_key=idempotency_key,
        )

    def animate_image(
        self,
        image: str | os.PathLike[str] | bytes,
        *,
        prompt: str | None = None,
        num_frames: int | None = None,
        fps: int | None = None,
        strength: float | None = None,
        width: int | None = None,
        height: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        model_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Start an image-to-video generation (an MP4 animating `image`); follow `task_id` with
        media_status(kind="image-to-video")."""
        form = _form(prompt=prompt, num_frames=num_frames, fps=fps, strength=strength, width=width,
                     height=height, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                     seed=seed, model_id=model_id)  # fmt: skip
        return self._call(
            "POST",
            "/api/image-to-video/generate",
            files=_file("image", image),
            data=form,
            starts_work=True,
            idempotency_key=idempotency_key,
        )

    def media_status(self, task_id: str, *, kind: str = "text-to-image") -> R:
        """{task_id, status, image_url or video_url, progress} (URLs re-signed on each read)."""
        return self._call("GET", f"/api/{kind}/status/{task_id}")

    def image_models(self) -> R:
        return self._call("GET", "/api/text-to-image/models")

    # --- anything else -----------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> R:
        """Any operation of the API (see /docs), with the client's auth, retries and errors."""
        return self._call(method, path, **kwargs)
