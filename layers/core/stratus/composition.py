"""The composition root: the only place adapters are chosen and services are wired together."""

from __future__ import annotations

from dataclasses import dataclass

from bson import ObjectId

from stratus.datasets.ingest import IngestLimits
from stratus.db.database import Database
from stratus.db.repositories.api_keys import ApiKeyRepository
from stratus.db.repositories.connections import ConnectionRepository
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.files import FileRepository
from stratus.db.repositories.jobs import JobEventRepository, JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.db.repositories.rate_limits import RateLimitRepository
from stratus.db.repositories.sessions import RefreshTokenRepository, RevocationRepository
from stratus.db.repositories.tasks import TaskRepository
from stratus.db.repositories.users import UserRepository
from stratus.db.repositories.webhooks import WebhookDeliveryRepository, WebhookRepository
from stratus.db.repository import Repository
from stratus.observability.logging import get_logger
from stratus.observability.metrics import Metrics
from stratus.ports.events import EventBus
from stratus.ports.inference import InferenceBackend
from stratus.ports.jobs import JobBackend
from stratus.ports.notifier import Notifier
from stratus.ports.queue import MessageQueue
from stratus.ports.storage import ObjectStorage
from stratus.security.passwords import PasswordHasher
from stratus.security.tokens import TokenCodec
from stratus.services.api_keys import ApiKeyService
from stratus.services.auth import AuthService, LoginLimits
from stratus.services.datasets import PROCESS_MESSAGE, DatasetPolicy, DatasetService
from stratus.services.downloads import DownloadPolicy, DownloadService
from stratus.services.files import FileService
from stratus.services.finetune import FineTuneRecordService
from stratus.services.health import HealthService
from stratus.services.job_events import JobEventsService
from stratus.services.jobs import START_MESSAGE, JobPolicy, JobService
from stratus.services.live import LiveUpdates
from stratus.services.messages import MessageRouter
from stratus.services.models import ModelService
from stratus.services.predictions import PredictionService
from stratus.services.quota import QuotaService
from stratus.services.rate_limit import Limit, RateLimiter
from stratus.services.tasks import TaskService
from stratus.services.webhooks import DELIVER_MESSAGE, WebhookService
from stratus.settings import Settings


@dataclass
class Ports:
    queue: MessageQueue
    bus: EventBus
    storage: ObjectStorage
    notifier: Notifier
    jobs: JobBackend
    inference: InferenceBackend


class Container:
    """Everything a request or an event handler needs, built once per process (per Lambda container)."""

    def __init__(self, settings: Settings, database: Database, ports: Ports) -> None:
        self.settings = settings
        self.database = database
        self.ports = ports
        self.logger = get_logger(settings.service_name, settings.log_level)
        self.metrics = Metrics()
        self.health = HealthService(
            database,
            probes={"storage": ports.storage.ping, "queue": ports.queue.ping},
        )

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
        ]

        self.rate_limiter = RateLimiter(
            self.rate_limit_counters,
            batch=settings.rate_limit_user_batch,
            sync_s=settings.rate_limit_user_sync_s,
        )
        self.quota = QuotaService(self.users, settings.plan_quotas)
        window = settings.login_failure_window_s
        self.auth = AuthService(
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
        self.api_keys = ApiKeyService(
            self.api_key_repo,
            self.model_repo,
            revocations=self.revocations,
            session_ttl_s=settings.refresh_token_ttl_s,
        )
        self.models = ModelService(
            self.model_repo, api_keys=self.api_key_repo, jobs=self.job_repo, storage=ports.storage
        )
        self.datasets = DatasetService(
            datasets=self.dataset_repo,
            users=self.users,
            jobs=self.job_repo,
            storage=ports.storage,
            queue=ports.queue,
            bus=ports.bus,
            scratch_dir=settings.state_dir / "scratch",
            policy=DatasetPolicy(
                max_upload_bytes=settings.max_presigned_upload_bytes,
                inline_parse_bytes=settings.inline_parse_bytes,
                presign_ttl_s=settings.presigned_url_ttl_s,
                limits=IngestLimits(),
            ),
        )
        self.files = FileService(self.file_repo, ports.storage, url_ttl_s=settings.presigned_url_ttl_s)
        self.jobs = JobService(
            jobs=self.job_repo,
            events=self.job_event_repo,
            datasets=self.dataset_repo,
            queue=ports.queue,
            backend=ports.jobs,
            storage=ports.storage,
            worker_env=worker_environment(settings),
            policy=JobPolicy(
                max_running_per_user=settings.max_concurrent_jobs_per_user,
                heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
            ),
        )
        self.downloads = DownloadService(
            jobs=self.jobs,
            job_repo=self.job_repo,
            models=self.model_repo,
            policy=DownloadPolicy(
                hub_timeout_s=settings.hub_timeout_s, max_bytes=settings.max_model_download_bytes
            ),
        )
        # Webhook deliveries share the jobs queue (and its DLQ); private target addresses are refused
        # outside the local runtime (SSRF).
        self.webhooks = WebhookService(
            self.webhook_repo,
            self.webhook_delivery_repo,
            ports.queue,
            allow_private_urls=settings.runtime == "local",
        )
        self.live = LiveUpdates(self.connection_repo, ports.notifier, job_owner=self._owns_job_or_task)
        self.tasks = TaskService(
            self.task_repo,
            ports.inference,
            self.quota,
            self.live,
            default_wait_s=settings.task_wait_s,
            max_wait_s=settings.task_max_wait_s,
            models=self.model_repo,
        )
        self.job_events = JobEventsService(
            jobs=self.job_repo,
            events=self.job_event_repo,
            models=self.model_repo,
            backend=ports.jobs,
            heartbeat_timeout_s=settings.job_heartbeat_timeout_s,
            live=self.live,
            webhooks=self.webhooks,
        )
        self.predictions = PredictionService(self.models, ports.storage, self.quota)
        # Seed 003's client-managed fine-tune records, kept in the jobs collection (kind "finetune").
        self.finetune = FineTuneRecordService(
            jobs=self.job_repo, datasets=self.dataset_repo, models=self.model_repo, users=self.users
        )

        # Queue messages, by type: the SQS dispatcher and the local queue both hand bodies here.
        self.messages = MessageRouter()
        self.messages.register(PROCESS_MESSAGE, self.datasets.handle_message)
        self.messages.register(START_MESSAGE, self.jobs.handle_message)
        self.messages.register(DELIVER_MESSAGE, self.webhooks.handle_message)

    async def _owns_job_or_task(self, user_id: ObjectId, reference: str) -> bool:
        """WebSocket subscriptions follow jobs (training, downloads) and inference tasks alike."""
        return await self.jobs.owns(user_id, reference) or await self.tasks.owns(user_id, reference)

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
    from stratus.adapters.aws.sagemaker_async import SageMakerAsyncInference
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
            job_definition=settings.batch_job_definition or "",
        )
    else:
        jobs = SageMakerBackend(
            clients.LazyClient(lambda: clients.sagemaker(settings)),
            image_uri=settings.worker_image_uri or "",
            role_arn=settings.sagemaker_role_arn or "",
            bucket=settings.artifacts_bucket,
            gpu_instance_type=settings.sagemaker_instance_type,
        )
    storage = S3Storage(clients.LazyClient(lambda: clients.s3(settings)), settings.artifacts_bucket)
    return Ports(
        queue=SqsQueue(clients.LazyClient(lambda: clients.sqs(settings)), settings.jobs_queue_url),
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
