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


_Container = Annotated[Container, Depends(get_container)]


def get_settings(container: _Container) -> Settings:
    return container.settings


def get_metrics(container: _Container) -> Metrics:
    return container.metrics


def get_health(container: _Container) -> HealthService:
    return container.health


def get_auth(container: _Container) -> AuthService:
    return container.auth


def get_rate_limiter(container: _Container) -> RateLimiter:
    return container.rate_limiter


def get_api_keys(container: _Container) -> ApiKeyService:
    return container.api_keys


def get_datasets(container: _Container) -> DatasetService:
    return container.datasets


def get_files(container: _Container) -> FileService:
    return container.files


def get_jobs(container: _Container) -> JobService:
    return container.jobs


def get_training(container: _Container) -> TrainingService:
    return container.training


def get_finetune(container: _Container) -> FineTuneRecordService:
    return container.finetune


def get_llm_finetune(container: _Container) -> LLMFineTuneService:
    return container.llm_finetune


def get_models(container: _Container) -> ModelService:
    return container.models


def get_downloads(container: _Container) -> DownloadService:
    return container.downloads


def get_predictions(container: _Container) -> PredictionService:
    return container.predictions


def get_tasks(container: _Container) -> TaskService:
    return container.tasks


def get_perception(container: _Container) -> PerceptionService:
    return container.perception


def get_media(container: _Container) -> MediaService:
    return container.media


def get_webhooks(container: _Container) -> WebhookService:
    return container.webhooks


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
