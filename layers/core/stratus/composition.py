"""The composition root: the only place adapters are chosen and services are wired together."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from stratus import capabilities
from stratus.capabilities.chat.repository import ChatHistoryRepository
from stratus.capabilities.chats.repository import ChatMessageRepository, ChatRepository
from stratus.capabilities.custom_tasks.repository import (
    CustomRunStats,
    CustomTaskRepository,
    RunSlotRepository,
)
from stratus.db.database import Database
from stratus.db.repositories.api_keys import ApiKeyRepository
from stratus.db.repositories.connections import ConnectionRepository
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.faces import FaceRepository
from stratus.db.repositories.files import FileRepository
from stratus.db.repositories.jobs import JobEventRepository, JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.db.repositories.rate_limits import RateLimitRepository
from stratus.db.repositories.sessions import RefreshTokenRepository, RevocationRepository
from stratus.db.repositories.tasks import TaskRepository
from stratus.db.repositories.users import UserRepository
from stratus.db.repositories.webhooks import WebhookDeliveryRepository, WebhookRepository
from stratus.db.repository import Repository
from stratus.jobs.store import JobStore
from stratus.observability.logging import get_logger
from stratus.observability.metrics import Metrics
from stratus.settings import Settings

# Services (and what only they use) are imported where they are built, in the cached properties below:
# each HTTP Lambda imports only the services its routes ask for (cold start). These imports are for
# the annotations.
if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from bson import ObjectId

    from stratus.capabilities.api_keys.service import ApiKeyService
    from stratus.capabilities.chat.service import ChatService
    from stratus.capabilities.chats.service import ConversationService
    from stratus.capabilities.custom_tasks.service import CustomTaskService
    from stratus.capabilities.datasets.service import DatasetService
    from stratus.capabilities.downloads.service import DownloadService
    from stratus.capabilities.files.service import FileService
    from stratus.capabilities.finetune.llm_service import LLMFineTuneService
    from stratus.capabilities.finetune.service import FineTuneRecordService
    from stratus.capabilities.health.service import HealthService
    from stratus.capabilities.identity.service import AuthService
    from stratus.capabilities.media.service import MediaService
    from stratus.capabilities.models.predictions import PredictionService
    from stratus.capabilities.models.service import ModelService
    from stratus.capabilities.nlp.service import TaskService
    from stratus.capabilities.perception.service import PerceptionService
    from stratus.capabilities.training.service import TrainingService
    from stratus.capabilities.webhooks.service import WebhookService
    from stratus.jobs.events import JobEventsService
    from stratus.jobs.service import JobService
    from stratus.ports.chat import ChatStreamer
    from stratus.ports.events import EventBus
    from stratus.ports.inference import InferenceBackend
    from stratus.ports.jobs import JobBackend
    from stratus.ports.notifier import Notifier
    from stratus.ports.queue import MessageQueue
    from stratus.ports.storage import ObjectStorage
    from stratus.services.live import LiveUpdates
    from stratus.services.messages import MessageRouter
    from stratus.services.quota import QuotaService
    from stratus.services.rate_limit import RateLimiter


@dataclass
class Ports:
    queue: MessageQueue
    bus: EventBus
    storage: ObjectStorage
    notifier: Notifier
    jobs: JobBackend
    inference: InferenceBackend
    # Webhook deliveries' own queue (STRATUS_WEBHOOKS_QUEUE_URL); None: they share `queue`.
    webhook_queue: MessageQueue | None = None
    # The chat task's token stream; None: `inference` streams it (the local inference server does).
    chat: ChatStreamer | None = None
    # Where custom tasks' user code runs (AWS: the network-isolated sandbox endpoint); None: `inference`
    # (the local worker, whose sandbox pool runs it).
    custom_inference: InferenceBackend | None = None


class Container:
    """The composition root's product: ports, repositories and services, built once per process (per
    Lambda container). Services are built on first use, so a Lambda pays only for the services its
    routes and handlers ask for (through the narrow dependencies in stratus.api.deps)."""

    def __init__(self, settings: Settings, database: Database, ports: Ports) -> None:
        self.settings = settings
        self.database = database
        self.ports = ports
        self.metrics = Metrics()

        # Repositories are collection handles: cheap, and all of them are needed for the indexes.
        db = database.db
        self.users = UserRepository(db)
        self.refresh_tokens = RefreshTokenRepository(db)
        self.revocations = RevocationRepository(db, memo_s=settings.revocation_check_cache_s)
        self.api_key_repo = ApiKeyRepository(db)
        self.rate_limit_counters = RateLimitRepository(db)
        self.model_repo = ModelRepository(db)
        self.dataset_repo = DatasetRepository(db)
        self.file_repo = FileRepository(db)
        self.job_repo = JobRepository(db)
        self.job_event_repo = JobEventRepository(db)
        self.webhook_repo = WebhookRepository(db)
        self.webhook_delivery_repo = WebhookDeliveryRepository(db)
        self.connection_repo = ConnectionRepository(db)
        self.task_repo = TaskRepository(db)
        self.face_repo = FaceRepository(db)
        self.chat_repo = ChatRepository(db)
        self.chat_message_repo = ChatMessageRepository(db)
        self.chat_history_repo = ChatHistoryRepository(db)
        self.custom_task_repo = CustomTaskRepository(db)
        self.custom_task_slots = RunSlotRepository(db)
        self.repositories: list[Repository] = [
            self.users,
            self.refresh_tokens,
            self.revocations,
            self.api_key_repo,
            self.rate_limit_counters,
            self.model_repo,
            self.dataset_repo,
            self.file_repo,
            self.job_repo,
            self.job_event_repo,
            self.webhook_repo,
            self.webhook_delivery_repo,
            self.connection_repo,
            self.task_repo,
            self.face_repo,
            self.chat_repo,
            self.chat_message_repo,
            self.chat_history_repo,
            self.custom_task_repo,
            self.custom_task_slots,
        ]
        self.job_kinds = capabilities.job_kinds()
        self.job_store = JobStore(self.job_repo, self.job_event_repo)

    @cached_property
    def logger(self) -> Logger:
        # Built on the first log line (the first request's), so the cold start skips Powertools.
        return get_logger(self.settings.service_name, self.settings.log_level)

    @cached_property
    def health(self) -> HealthService:
        from stratus.capabilities.health.service import HealthService

        return HealthService(
            self.database, probes={"storage": self.ports.storage.ping, "queue": self.ports.queue.ping}
        )

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        from stratus.services.rate_limit import RateLimiter

        return RateLimiter(
            self.rate_limit_counters,
            batch=self.settings.rate_limit_user_batch,
            sync_s=self.settings.rate_limit_user_sync_s,
        )

    @cached_property
    def quota(self) -> QuotaService:
        from stratus.services.quota import QuotaService

        return QuotaService(self.users, self.settings.plan_quotas)

    @cached_property
    def auth(self) -> AuthService:
        from stratus.capabilities.identity.service import AuthService, LoginLimits
        from stratus.security.passwords import PasswordHasher
        from stratus.security.tokens import TokenCodec
        from stratus.services.rate_limit import Limit

        settings = self.settings
        window = settings.login_failure_window_s
        return AuthService(
            users=self.users,
            refresh_tokens=self.refresh_tokens,
            revocations=self.revocations,
            api_key_repo=self.api_key_repo,
            hasher=PasswordHasher(),
            codec=TokenCodec(
                settings.jwt_secret.get_secret_value(),
                access_ttl_s=settings.access_token_ttl_s,
                refresh_ttl_s=settings.refresh_token_ttl_s,
            ),
            limiter=self.rate_limiter,
            login_limits=LoginLimits(
                per_account=Limit(settings.login_failures_per_account, window),
                per_ip=Limit(settings.login_failures_per_ip, window),
            ),
        )

    @cached_property
    def api_keys(self) -> ApiKeyService:
        from stratus.capabilities.api_keys.service import ApiKeyService

        return ApiKeyService(
            self.api_key_repo,
            self.model_repo,
            revocations=self.revocations,
            session_ttl_s=self.settings.refresh_token_ttl_s,
        )

    @cached_property
    def models(self) -> ModelService:
        from stratus.capabilities.models.service import ModelService

        return ModelService(
            self.model_repo,
            datasets=self.dataset_repo,
            api_keys=self.api_key_repo,
            jobs=self.job_repo,
            storage=self.ports.storage,
        )

    @cached_property
    def datasets(self) -> DatasetService:
        from stratus.capabilities.datasets.service import DatasetPolicy, DatasetService
        from stratus.datasets.ingest import IngestLimits

        settings = self.settings
        return DatasetService(
            datasets=self.dataset_repo,
            users=self.users,
            jobs=self.job_repo,
            storage=self.ports.storage,
            queue=self.ports.queue,
            bus=self.ports.bus,
            scratch_dir=settings.state_dir / "scratch",
            policy=DatasetPolicy(
                max_upload_bytes=settings.max_presigned_upload_bytes,
                inline_parse_bytes=settings.inline_parse_bytes,
                inline_parse_s=settings.inline_parse_timeout_s,
                presign_ttl_s=settings.presigned_url_ttl_s,
                limits=IngestLimits(
                    max_rows=settings.dataset_max_rows, max_parse_s=settings.dataset_parse_timeout_s
                ),
            ),
        )

    @cached_property
    def files(self) -> FileService:
        from stratus.capabilities.files.service import FileService

        return FileService(self.file_repo, self.ports.storage, url_ttl_s=self.settings.presigned_url_ttl_s)

    @cached_property
    def jobs(self) -> JobService:
        from stratus.jobs.service import JobPolicy, JobService

        return JobService(
            jobs=self.job_repo,
            store=self.job_store,
            events=self.job_event_repo,
            kinds=self.job_kinds,
            datasets=self.dataset_repo,
            queue=self.ports.queue,
            backend=self.ports.jobs,
            storage=self.ports.storage,
            worker_env=worker_environment(self.settings),
            policy=JobPolicy(
                max_running_per_user=self.settings.max_concurrent_jobs_per_user,
                heartbeat_timeout_s=self.settings.job_heartbeat_timeout_s,
            ),
        )

    @cached_property
    def training(self) -> TrainingService:
        from stratus.capabilities.training.service import TrainingService

        return TrainingService(jobs=self.jobs, datasets=self.dataset_repo, models=self.model_repo)

    @cached_property
    def downloads(self) -> DownloadService:
        from stratus.capabilities.downloads.service import DownloadPolicy, DownloadService

        return DownloadService(
            jobs=self.jobs,
            job_repo=self.job_repo,
            models=self.model_repo,
            policy=DownloadPolicy(
                hub_timeout_s=self.settings.hub_timeout_s, max_bytes=self.settings.max_model_download_bytes
            ),
            follow_url=self.settings.follow_url,
        )

    @cached_property
    def webhooks(self) -> WebhookService:
        from stratus.capabilities.webhooks.service import WebhookService

        # Deliveries go on their own queue (and DLQ) where one is configured; private target addresses
        # are refused outside the local runtime (SSRF).
        return WebhookService(
            self.webhook_repo,
            self.webhook_delivery_repo,
            self.ports.webhook_queue or self.ports.queue,
            allow_private_urls=self.settings.runtime == "local",
        )

    @cached_property
    def live(self) -> LiveUpdates:
        from stratus.services.live import LiveUpdates

        return LiveUpdates(self.connection_repo, self.ports.notifier, job_owner=self._owns_job_or_task)

    @cached_property
    def tasks(self) -> TaskService:
        from stratus.capabilities.nlp.service import TaskService

        return TaskService(
            self.task_repo,
            self.ports.inference,
            self.quota,
            self.live,
            default_wait_s=self.settings.task_wait_s,
            max_wait_s=self.settings.task_max_wait_s,
            models=self.model_repo,
        )

    @cached_property
    def custom_tasks(self) -> CustomTaskService:
        from stratus.capabilities.custom_tasks.service import CustomTaskService

        return CustomTaskService(
            self.custom_task_repo,
            self.custom_task_slots,
            CustomRunStats(self.database.db),
            self.tasks,
            self.model_repo,
            backend=self.ports.custom_inference or self.ports.inference,
            max_concurrent=self.settings.custom_task_max_concurrent,
            timeout_s=self.settings.custom_task_timeout_s,
        )

    @cached_property
    def perception(self) -> PerceptionService:
        from stratus.capabilities.perception.service import PerceptionService

        return PerceptionService(
            self.ports.inference,
            self.face_repo,
            self.ports.storage,
            self.tasks,
            self.task_repo,
            self.quota,
            wait_s=self.settings.task_max_wait_s,
            trained_models=self.predictions,
        )

    @cached_property
    def media(self) -> MediaService:
        from stratus.capabilities.media.service import MediaService

        return MediaService(
            self.jobs,
            self.job_repo,
            self.model_repo,
            self.ports.storage,
            self.quota,
            url_ttl_s=self.settings.presigned_url_ttl_s,
            default_wait_s=self.settings.task_wait_s,
            max_wait_s=self.settings.task_max_wait_s,
        )

    @cached_property
    def chat(self) -> ChatService:
        from stratus.capabilities.chat.service import ChatPolicy, ChatService

        streamer = self.ports.chat or cast("ChatStreamer", self.ports.inference)
        return ChatService(
            self.tasks,
            streamer,
            self.quota,
            self.chat_history_repo,
            models=self.model_repo,
            policy=ChatPolicy(aliases=dict(self.settings.chat_model_aliases)),
        )

    @cached_property
    def job_events(self) -> JobEventsService:
        from stratus.jobs.events import JobEventsService

        return JobEventsService(
            jobs=self.job_repo,
            store=self.job_store,
            kinds=self.job_kinds,
            models=self.model_repo,
            backend=self.ports.jobs,
            heartbeat_timeout_s=self.settings.job_heartbeat_timeout_s,
            live=self.live,
            webhooks=self.webhooks,
        )

    @cached_property
    def predictions(self) -> PredictionService:
        from stratus.capabilities.models.predictions import PredictionService

        return PredictionService(
            self.models,
            self.ports.storage,
            self.quota,
            inference=self.ports.inference,
            image_wait_s=self.settings.task_max_wait_s,
        )

    @cached_property
    def finetune(self) -> FineTuneRecordService:
        from stratus.capabilities.finetune.service import FineTuneRecordService

        # Seed 003's client-managed fine-tune records, kept in the jobs collection (kind "finetune").
        return FineTuneRecordService(
            jobs=self.job_repo, datasets=self.dataset_repo, models=self.model_repo, users=self.users
        )

    @cached_property
    def llm_finetune(self) -> LLMFineTuneService:
        from stratus.capabilities.finetune import spec
        from stratus.capabilities.finetune.llm_service import LLMFineTuneService

        # Seed 002's LoRA/QLoRA jobs (kind "finetune", managed by the platform), test and merge.
        return LLMFineTuneService(
            jobs=self.jobs,
            training=self.training,
            datasets=self.dataset_repo,
            models=self.model_repo,
            storage=self.ports.storage,
            inference=self.ports.inference,
            four_bit_refusal=spec.four_bit_refusal(self.settings),
        )

    @cached_property
    def chats(self) -> ConversationService:
        from stratus.capabilities.chats.model import StreamingReplyModel
        from stratus.capabilities.chats.service import ConversationService

        # Seed 003's chats; replies are produced by the chat.reply queue consumer, the language model
        # on the inference worker.
        return ConversationService(
            chats=self.chat_repo,
            messages=self.chat_message_repo,
            datasets=self.dataset_repo,
            models=self.model_repo,
            storage=self.ports.storage,
            queue=self.ports.queue,
            quota=self.quota,
            live=self.live,
            model=StreamingReplyModel(
                self.chat, self.ports.chat or cast("ChatStreamer", self.ports.inference)
            ),
            scratch_dir=self.settings.state_dir / "scratch",
        )

    @cached_property
    def messages(self) -> MessageRouter:
        """Queue messages, by type: the SQS dispatcher and the local queue both hand bodies here. Each
        handler's service is built when its first message arrives."""
        from stratus.services.messages import MessageRouter

        messages = MessageRouter()
        for capability in capabilities.CAPABILITIES:
            for message_type, service in capability.messages:
                messages.register(message_type, functools.partial(self._handle_message, service))
        return messages

    async def _handle_message(self, service: str, body: Mapping[str, Any]) -> None:
        await getattr(self, service).handle_message(body)

    async def _owns_job_or_task(self, user_id: ObjectId, reference: str) -> bool:
        """WebSocket subscriptions follow jobs (training, downloads) and inference tasks alike."""
        return (
            await self.jobs.owns(user_id, reference)
            or await self.tasks.owns(user_id, reference)
            or await self.chats.owns(user_id, reference)
        )

    async def bootstrap(self) -> None:
        """Idempotent start-up work that needs I/O (indexes); run lazily on the first request."""
        await self.database.ensure_indexes(self.repositories)

    async def close(self) -> None:
        await self.database.close()


def worker_environment(settings: Settings) -> dict[str, str]:
    """The settings a container job needs (its image sets STRATUS_RUNTIME=aws): where artifacts live and
    where to publish progress. Local workers get theirs from the local backend."""
    if settings.runtime != "aws":
        return {}
    env = {
        "STRATUS_RUNTIME": "aws",
        "STRATUS_EVENT_BUS_NAME": settings.event_bus_name,
        "AWS_DEFAULT_REGION": settings.aws_region,
    }
    if settings.artifacts_bucket:
        env["STRATUS_ARTIFACTS_BUCKET"] = settings.artifacts_bucket
    return env


def build_aws_ports(settings: Settings) -> Ports:
    # Imported here so the local runtime never pays for the AWS adapters, and vice versa.
    from stratus.adapters.aws import clients
    from stratus.adapters.aws.apigw_notifier import ApiGatewayNotifier
    from stratus.adapters.aws.batch import BatchBackend
    from stratus.adapters.aws.eventbridge import EventBridgeBus
    from stratus.adapters.aws.s3 import S3Storage
    from stratus.adapters.aws.sagemaker import SageMakerBackend
    from stratus.adapters.aws.sagemaker_async import (
        SANDBOX_INPUT_PREFIX,
        SANDBOX_INVOCATION_TIMEOUT_S,
        SageMakerAsyncInference,
    )
    from stratus.adapters.aws.sagemaker_stream import SageMakerChatStream
    from stratus.adapters.aws.sqs import SqsQueue

    if not (settings.artifacts_bucket and settings.jobs_queue_url):
        raise RuntimeError(
            "STRATUS_ARTIFACTS_BUCKET and STRATUS_JOBS_QUEUE_URL are required for runtime 'aws'"
        )
    jobs: JobBackend
    if settings.job_backend == "batch":
        jobs = BatchBackend(
            clients.LazyClient(lambda: clients.batch(settings)),
            job_queue=settings.batch_job_queue or "",
            gpu_job_queue=settings.batch_gpu_job_queue,
            job_definition=settings.batch_job_definition or "",
        )
    else:
        jobs = SageMakerBackend(
            clients.LazyClient(lambda: clients.sagemaker(settings)),
            image_uri=settings.worker_image_uri or "",
            role_arn=settings.sagemaker_role_arn or "",
            bucket=settings.artifacts_bucket,
            gpu_instance_type=settings.sagemaker_gpu_instance_type,
            cpu_instance_type=settings.sagemaker_cpu_instance_type,
            instance_types=settings.sagemaker_instance_types,
        )
    storage = S3Storage(clients.LazyClient(lambda: clients.s3(settings)), settings.artifacts_bucket)
    sqs = clients.LazyClient(lambda: clients.sqs(settings))
    return Ports(
        queue=SqsQueue(sqs, settings.jobs_queue_url),
        webhook_queue=SqsQueue(sqs, settings.webhooks_queue_url) if settings.webhooks_queue_url else None,
        bus=EventBridgeBus(clients.LazyClient(lambda: clients.events(settings)), settings.event_bus_name),
        storage=storage,
        notifier=ApiGatewayNotifier(
            clients.LazyClient(lambda: clients.apigw_management(settings, settings.websocket_endpoint or ""))
        ),
        jobs=jobs,
        inference=SageMakerAsyncInference(
            clients.LazyClient(lambda: clients.sagemaker_runtime(settings)),
            storage,
            bucket=settings.artifacts_bucket,
            endpoint_name=settings.inference_endpoint_name or "",
        ),
        chat=SageMakerChatStream(
            clients.LazyClient(lambda: clients.sagemaker_runtime(settings)),
            endpoint_name=settings.chat_endpoint_name or "",
        ),
        # No endpoint configured: custom tasks are refused, never run on the NLP endpoint.
        custom_inference=SageMakerAsyncInference(
            clients.LazyClient(lambda: clients.sagemaker_runtime(settings)),
            storage,
            bucket=settings.artifacts_bucket,
            endpoint_name=settings.custom_task_endpoint_name or "",
            input_prefix=SANDBOX_INPUT_PREFIX,
            invocation_timeout_s=SANDBOX_INVOCATION_TIMEOUT_S,
        ),
    )


def build_container(settings: Settings, ports: Ports | None = None) -> Container:
    """Build the container; the local runtime and tests pass their own `ports`."""
    if settings.mongodb_uri is None:
        raise RuntimeError(
            "MONGODB_URI is not set (the local runtime starts the embedded engine and sets it)"
        )
    database = Database.connect(
        settings.mongodb_uri, settings.mongodb_db, timeout_ms=settings.mongodb_timeout_ms
    )
    if ports is None:
        if settings.runtime != "aws":
            raise RuntimeError("local ports are built by stratus.local.runtime")
        ports = build_aws_ports(settings)
    return Container(settings, database, ports)
