"""FastAPI dependencies as narrow Annotated aliases: a handler asks for the services it uses (`Jobs`,
`Datasets`, ...), never the whole container. Each provider is a plain function, so tests replace one
service with `app.dependency_overrides[get_jobs] = ...` and a Lambda builds only what its routes ask for
(the container builds each service on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Request

from stratus.composition import Container
from stratus.observability.metrics import Metrics
from stratus.settings import Settings

if TYPE_CHECKING:
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
    from stratus.jobs.service import JobService
    from stratus.services.rate_limit import RateLimiter


def get_container(request: Request) -> Container:
    return cast(Container, request.app.state.container)


# The providers below read the container from the request themselves rather than through
# Depends(get_container): FastAPI analyses a dependency's whole chain again for every route that uses
# it, and one level less on every service of every route is a good part of an HTTP Lambda's cold import.
# (`_Container` still works for a provider, one dependency level deeper: prefer `request: Request`.)
_Container = Annotated[Container, Depends(get_container)]


def get_settings(request: Request) -> Settings:
    return get_container(request).settings


def get_metrics(request: Request) -> Metrics:
    return get_container(request).metrics


def get_health(request: Request) -> HealthService:
    return get_container(request).health


def get_auth(request: Request) -> AuthService:
    return get_container(request).auth


def get_rate_limiter(request: Request) -> RateLimiter:
    return get_container(request).rate_limiter


def get_api_keys(request: Request) -> ApiKeyService:
    return get_container(request).api_keys


def get_datasets(request: Request) -> DatasetService:
    return get_container(request).datasets


def get_files(request: Request) -> FileService:
    return get_container(request).files


def get_jobs(request: Request) -> JobService:
    return get_container(request).jobs


def get_training(request: Request) -> TrainingService:
    return get_container(request).training


def get_finetune(request: Request) -> FineTuneRecordService:
    return get_container(request).finetune


def get_llm_finetune(request: Request) -> LLMFineTuneService:
    return get_container(request).llm_finetune


def get_models(request: Request) -> ModelService:
    return get_container(request).models


def get_downloads(request: Request) -> DownloadService:
    return get_container(request).downloads


def get_predictions(request: Request) -> PredictionService:
    return get_container(request).predictions


def get_tasks(request: Request) -> TaskService:
    return get_container(request).tasks


def get_perception(request: Request) -> PerceptionService:
    return get_container(request).perception


def get_webhooks(request: Request) -> WebhookService:
    return get_container(request).webhooks


def get_media(request: Request) -> MediaService:
    return get_container(request).media


def get_chats(request: Request) -> ConversationService:
    return get_container(request).chats


def get_chat(request: Request) -> ChatService:
    return get_container(request).chat


def get_custom_tasks(request: Request) -> CustomTaskService:
    return get_container(request).custom_tasks


AppSettings = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

# The service aliases name their class for the type checker only. FastAPI reads a dependency's value from
# its provider, never from the annotation, so at run time the annotation is Any: importing this module
# (every router does) then imports no service, and each HTTP Lambda imports only those its group builds.
if TYPE_CHECKING:
    HealthSvc = Annotated[HealthService, Depends(get_health)]
    Auth = Annotated[AuthService, Depends(get_auth)]
    Limiter = Annotated[RateLimiter, Depends(get_rate_limiter)]
    ApiKeys = Annotated[ApiKeyService, Depends(get_api_keys)]
    Datasets = Annotated[DatasetService, Depends(get_datasets)]
    Files = Annotated[FileService, Depends(get_files)]
    Jobs = Annotated[JobService, Depends(get_jobs)]
    Training = Annotated[TrainingService, Depends(get_training)]
    LLMFineTunes = Annotated[LLMFineTuneService, Depends(get_llm_finetune)]
    Perception = Annotated[PerceptionService, Depends(get_perception)]
    Media = Annotated[MediaService, Depends(get_media)]
    FineTunes = Annotated[FineTuneRecordService, Depends(get_finetune)]
    Models = Annotated[ModelService, Depends(get_models)]
    Downloads = Annotated[DownloadService, Depends(get_downloads)]
    Predictions = Annotated[PredictionService, Depends(get_predictions)]
    Tasks = Annotated[TaskService, Depends(get_tasks)]
    Webhooks = Annotated[WebhookService, Depends(get_webhooks)]
    Chats = Annotated[ConversationService, Depends(get_chats)]
    Chat = Annotated[ChatService, Depends(get_chat)]
    CustomTasks = Annotated[CustomTaskService, Depends(get_custom_tasks)]
else:
    HealthSvc = Annotated[Any, Depends(get_health)]
    Auth = Annotated[Any, Depends(get_auth)]
    Limiter = Annotated[Any, Depends(get_rate_limiter)]
    ApiKeys = Annotated[Any, Depends(get_api_keys)]
    Datasets = Annotated[Any, Depends(get_datasets)]
    Files = Annotated[Any, Depends(get_files)]
    Jobs = Annotated[Any, Depends(get_jobs)]
    Training = Annotated[Any, Depends(get_training)]
    LLMFineTunes = Annotated[Any, Depends(get_llm_finetune)]
    Perception = Annotated[Any, Depends(get_perception)]
    Media = Annotated[Any, Depends(get_media)]
    FineTunes = Annotated[Any, Depends(get_finetune)]
    Models = Annotated[Any, Depends(get_models)]
    Downloads = Annotated[Any, Depends(get_downloads)]
    Predictions = Annotated[Any, Depends(get_predictions)]
    Tasks = Annotated[Any, Depends(get_tasks)]
    Webhooks = Annotated[Any, Depends(get_webhooks)]
    Chats = Annotated[Any, Depends(get_chats)]
    Chat = Annotated[Any, Depends(get_chat)]
    CustomTasks = Annotated[Any, Depends(get_custom_tasks)]
