"""The one typed settings object. Every environment variable Stratus reads is declared here, once.

A field `name` is read from `STRATUS_NAME` (any case), or from the names its `validation_alias` gives;
values passed to the constructor win over the environment. Fields holding a list or a dict take JSON
(`STRATUS_CORS_ORIGINS='["https://app.example.com"]'`); the rest are converted by the field's type.

This is what pydantic-settings' environment source does for these fields, in a few lines: the package
imports all its other sources (CLI parsing with argparse, dotenv files, cloud secret stores) whenever it
is imported, about 25 ms of every HTTP Lambda's cold start (bench/cold_import.py), and reading the
environment through it another 5 ms.
"""

import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo

DEV_JWT_SECRET = "stratus-dev-secret-change-me-0123456789abcdef"
DEV_SIGNING_SECRET = "stratus-dev-url-signing-secret-0123456789"


ENV_PREFIX = "STRATUS_"


class Settings(BaseModel):
    """Read from `STRATUS_*` environment variables (plus `MONGODB_URI` and `AWS_REGION`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**read_environment(type(self), os.environ), **values})

    # Deployment flavour. "development" and "test" accept the embedded default secrets; "production" refuses them.
    env: Literal["development", "test", "production"] = "development"
    # Which adapters back the ports: "local" (in-process queue/bus, directory storage, worker
    # subprocesses) or "aws" (SQS, EventBridge, S3, API Gateway Management API, SageMaker/Batch).
    runtime: Literal["local", "aws"] = "local"
    # Log level for the structured JSON logs.
    log_level: str = "INFO"
    # Service name stamped on every log line and metric.
    service_name: str = "stratus"

    # MongoDB connection string (Atlas / DocumentDB in production). Unset locally: `stratus serve` starts
    # the embedded SecantusDB engine and fills this in.
    mongodb_uri: str | None = Field(default=None, validation_alias="MONGODB_URI")
    # Database name inside the MongoDB deployment.
    mongodb_db: str = "stratus"
    # How long a request waits for the database before answering 503.
    mongodb_timeout_ms: int = Field(default=2000, ge=100)

    # Local state folder: embedded database files, stored objects, worker scratch space.
    state_dir: Path = Path(".stratus")

    # HS256 key for access and refresh tokens (from SSM / Secrets Manager in AWS).
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    # Lifetime of an access token, seconds.
    access_token_ttl_s: int = Field(default=1800, ge=60)
    # Lifetime of a refresh token, seconds.
    refresh_token_ttl_s: int = Field(default=14 * 24 * 3600, ge=300)
    # How old an access token's revocation check may be (seconds; 0 reads the database on every request).
    # A logout in the same process is refused at once; one made through another process (another Lambda
    # container) within this many seconds.
    revocation_check_cache_s: float = Field(default=5.0, ge=0, le=60)
    # Key for signed local download URLs (the local stand-in for S3 presigned URLs).
    url_signing_secret: SecretStr = SecretStr(DEV_SIGNING_SECRET)
    # Secrets Manager ARNs read once at cold start in AWS; each overrides the plain value above it.
    mongodb_uri_secret_arn: str | None = None
    jwt_secret_arn: str | None = None
    url_signing_secret_arn: str | None = None
    # Public base URL of the API, used to build absolute links (local signed URLs, webhooks).
    public_base_url: str = "http://127.0.0.1:8000"

    # AWS region for every boto3 client.
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    # SQS queue that carries job messages to the dispatcher.
    jobs_queue_url: str | None = None
    # SQS queue that carries webhook deliveries (its own retries and DLQ, so a failing receiver never
    # delays a job's start). Unset: deliveries share the jobs queue.
    webhooks_queue_url: str | None = None
    # EventBridge bus for job state and progress events.
    event_bus_name: str = "default"
    # S3 bucket for datasets, files, models and artifacts.
    artifacts_bucket: str | None = None
    # API Gateway WebSocket management endpoint (https://{api-id}.execute-api.{region}.amazonaws.com/{stage}).
    websocket_endpoint: str | None = None
    # The WebSocket URL clients connect to, named in responses that offer live updates
    # (wss://{api-id}.execute-api.{region}.amazonaws.com/{stage} in AWS). Unset: derived from
    # public_base_url (ws://host:port/ws, the local runtime's route).
    websocket_url: str | None = None
    # Where container work runs: "local" (worker subprocesses; the local runtime only), "sagemaker"
    # (training jobs) or "batch" (AWS Batch). The AWS runtime needs sagemaker or batch.
    job_backend: Literal["local", "sagemaker", "batch"] = "local"
    # Container image URI run by SageMaker / Batch.
    worker_image_uri: str | None = None
    # IAM role SageMaker training jobs assume.
    sagemaker_role_arn: str | None = None
    # SageMaker instance types: job kinds that need a GPU (their spec says so) run on the GPU type, the
    # others on the CPU type; `sagemaker_instance_types` overrides either per kind ({"training": "ml.c5.xlarge"}).
    sagemaker_gpu_instance_type: str = "ml.g5.xlarge"
    sagemaker_cpu_instance_type: str = "ml.m5.large"
    sagemaker_instance_types: dict[str, str] = {}
    # AWS Batch: the job definition, the queue of the CPU compute environment, and the queue of the GPU
    # one (kinds that need a GPU; unset: the CPU queue, with a GPU resource requirement).
    batch_job_queue: str | None = None
    batch_gpu_job_queue: str | None = None
    batch_job_definition: str | None = None

    # How long an inference request waits for its result before answering 202 (overridden per request
    # with `Prefer: wait=N`, capped at the max; keep the max under API Gateway's 30 s in AWS).
    task_wait_s: float = Field(default=10.0, ge=0)
    task_max_wait_s: float = Field(default=25.0, ge=0)
    # Custom tasks (user code in the inference worker's sandbox): executions one user may have in flight
    # (seed 000: 10; beyond that 429), and each run's wall-clock limit (the worker also caps it).
    custom_task_max_concurrent: int = Field(default=10, ge=1)
    custom_task_timeout_s: float = Field(default=30.0, gt=0, le=900)
    # AWS: the network-isolated SageMaker asynchronous endpoint that runs custom tasks (never the NLP one).
    custom_task_endpoint_name: str | None = None
    # SageMaker asynchronous inference endpoint serving the inference container (AWS).
    inference_endpoint_name: str | None = None
    # Chat (capabilities/chat): the real-time SageMaker endpoint that streams the chat task (AWS; the
    # asynchronous endpoint cannot stream), and the model names clients send (OpenAI's, seed 004's)
    # mapped to served models (STRATUS_CHAT_MODEL_ALIASES as JSON). The reply names the served model.
    chat_endpoint_name: str | None = None
    chat_model_aliases: dict[str, str] = {
        "gpt-4": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "gpt-4o": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "gpt-4o-mini": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "gpt-3.5-turbo": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "text-embedding-ada-002": "sentence-transformers/all-MiniLM-L6-v2",
        "text-embedding-3-small": "sentence-transformers/all-MiniLM-L6-v2",
    }
    # Training jobs one user may run at once (seed 001: 5); more wait in `queued`.
    max_concurrent_jobs_per_user: int = Field(default=5, ge=1)
    # A running job whose worker sends nothing for this long is checked with its backend, then failed.
    job_heartbeat_timeout_s: int = Field(default=600, ge=30)
    # How long a download job waits for the Hugging Face Hub to answer before failing (seconds).
    hub_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Largest model repository a download job fetches (bytes, the files it would keep).
    max_model_download_bytes: int = Field(default=20 * 10**9, ge=10**6)
    # Start the local inference worker with `stratus serve` rather than on the first task request.
    local_warm_inference: bool = True
    # Local worker pool size (subprocesses running the container entrypoint).
    local_workers: int = Field(default=2, ge=1, le=32)

    # Largest request body accepted through the API (bytes); bigger uploads use presigned URLs.
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    # Largest file accepted through the presigned upload flow (bytes).
    max_presigned_upload_bytes: int = Field(default=5 * 1024**3, ge=1024)
    # Uploads that expand to at most this many bytes (a ZIP's members, decompressed) are parsed inside
    # the request; larger ones by a queue worker.
    inline_parse_bytes: int = Field(default=5 * 1024 * 1024, ge=0)
    # Seconds an inline parse may take before the upload is handed to a worker instead (keep it well
    # under the API function's 29 s timeout).
    inline_parse_timeout_s: float = Field(default=5.0, gt=0)
    # Seconds a worker's parse may take before the dataset fails with the reason (keep it under the
    # DispatcherFunction's 300 s timeout, which includes downloading the file).
    dataset_parse_timeout_s: float = Field(default=240.0, gt=0)
    # Rows (records, images) one dataset may have; more is refused with 413.
    dataset_max_rows: int = Field(default=100_000_000, ge=1)
    # Lifetime of presigned upload and download URLs (seconds).
    presigned_url_ttl_s: int = Field(default=900, ge=60, le=7 * 24 * 3600)

    # Requests per window per client IP when not authenticated (seed 000: 100 per minute per IP).
    rate_limit_anonymous: int = Field(default=100, ge=1)
    rate_limit_anonymous_window_s: int = Field(default=60, ge=1)
    # Requests per window per authenticated user (seed 001: 1,000 per hour per user).
    rate_limit_user: int = Field(default=1000, ge=1)
    rate_limit_user_window_s: int = Field(default=3600, ge=1)
    # The per-user count is written to the database every `batch` requests or `sync_s` seconds, and on every
    # request once fewer than `batch` remain (1 writes every request). Exact within one process; across P
    # processes serving one user at once, at most (P - 1) * (batch - 1) requests beyond the limit per window.
    rate_limit_user_batch: int = Field(default=10, ge=1, le=1000)
    rate_limit_user_sync_s: float = Field(default=5.0, ge=0, le=60)
    # Failed logins allowed per account and per IP within the window before 429 (brute-force guard).
    login_failures_per_account: int = Field(default=10, ge=1)
    login_failures_per_ip: int = Field(default=50, ge=1)
    login_failure_window_s: int = Field(default=900, ge=1)
    # Monthly inference-query quota per plan (seed 003's current_plan / queries_used); absent = unlimited.
    plan_quotas: dict[str, int] = {"free": 1000, "pro": 100_000}

    # Origins allowed by CORS ("*" for any).
    cors_origins: list[str] = ["*"]

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Self:
        if self.env == "production":
            if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET and not self.jwt_secret_arn:
                raise ValueError("STRATUS_JWT_SECRET must be set to a real secret in production")
            if (
                self.url_signing_secret.get_secret_value() == DEV_SIGNING_SECRET
                and not self.url_signing_secret_arn
            ):
                raise ValueError("STRATUS_URL_SIGNING_SECRET must be set to a real secret in production")
            if len(self.jwt_secret.get_secret_value()) < 32 and not self.jwt_secret_arn:
                raise ValueError("STRATUS_JWT_SECRET must be at least 32 characters")
        if self.runtime == "local" and self.job_backend != "local":
            raise ValueError(
                f"STRATUS_JOB_BACKEND={self.job_backend} needs STRATUS_RUNTIME=aws; the local runtime runs "
                "jobs as local worker processes (STRATUS_JOB_BACKEND=local)"
            )
        if self.runtime == "aws":
            missing = [
                name
                for name, value in (
                    ("MONGODB_URI", self.mongodb_uri or self.mongodb_uri_secret_arn),
                    ("STRATUS_ARTIFACTS_BUCKET", self.artifacts_bucket),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"runtime 'aws' needs {', '.join(missing)}")
            if self.job_backend == "local":
                raise ValueError("runtime 'aws' needs STRATUS_JOB_BACKEND=sagemaker or batch")
        return self

    def public_websocket_url(self) -> str:
        """Where clients open the WebSocket that live updates are pushed on."""
        if self.websocket_url:
            return self.websocket_url.rstrip("/")
        base = self.public_base_url.rstrip("/")
        scheme, _, rest = base.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"

    def follow_url(self, job_id: str) -> str:
        """The WebSocket URL that pushes one job's (or task's, or download's) updates from the start."""
        return f"{self.public_websocket_url()}?follow={job_id}"

    def with_secrets(self, fetch: Callable[[str], str]) -> Self:
        """A copy with the secrets named by ARN filled in (`fetch` reads one secret string)."""
        updates: dict[str, object] = {}
        if self.mongodb_uri_secret_arn:
            updates["mongodb_uri"] = fetch(self.mongodb_uri_secret_arn)
        if self.jwt_secret_arn:
            updates["jwt_secret"] = SecretStr(fetch(self.jwt_secret_arn))
        if self.url_signing_secret_arn:
            updates["url_signing_secret"] = SecretStr(fetch(self.url_signing_secret_arn))
        return self.model_copy(update=updates) if updates else self


def env_names(field_name: str, field: FieldInfo) -> tuple[str, ...]:
    """The environment variables a field is read from, in order of precedence (upper case)."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return (alias.upper(),)
    if isinstance(alias, AliasChoices):
        return tuple(str(choice).upper() for choice in alias.choices if isinstance(choice, str))
    return (f"{ENV_PREFIX}{field_name}".upper(),)


def read_environment(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of `model` set in `environ`, by field name; list and dict fields decoded from JSON."""
    upper = {key.upper(): value for key, value in environ.items()}
    values: dict[str, Any] = {}
    for field_name, field in model.model_fields.items():
        for name in env_names(field_name, field):
            if name in upper:
                values[field_name] = _decode(name, upper[name], field.annotation)
                break
    return values


def _decode(name: str, raw: str, annotation: Any) -> Any:
    if not _takes_json(annotation):
        return raw
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be JSON ({e})") from None


def _takes_json(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_takes_json(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return origin in (list, dict, tuple, set, frozenset) or annotation in (list, dict, tuple, set)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (Lambda containers and the local runtime)."""
    settings = Settings()
    if settings.runtime == "aws":
        from stratus.adapters.aws.secrets import fetch_secret_string

        settings = settings.with_secrets(fetch_secret_string)
    return settings
