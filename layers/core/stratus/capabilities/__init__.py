"""The capabilities: the one list that the HTTP apps, the composition root, the queue and event handlers
and the worker read. A capability is a package (routes, schemas, service, spec); adding one is its
package plus one line in CAPABILITIES.

Routes are named by module and imported only by the HTTP apps that serve them (`routes_of`), so the
worker and the event handlers read job kinds without importing FastAPI routers, and each HTTP Lambda
imports only its own group's routers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from stratus.capabilities.chats.spec import REPLY_MESSAGE
from stratus.capabilities.datasets.spec import PROCESS_MESSAGE
from stratus.capabilities.downloads import spec as downloads
from stratus.capabilities.finetune import spec as finetune
from stratus.capabilities.media import spec as media
from stratus.capabilities.training import spec as training
from stratus.capabilities.webhooks.spec import DELIVER_MESSAGE
from stratus.jobs.kinds import START_MESSAGE, JobKind, JobKinds

if TYPE_CHECKING:
    from fastapi import APIRouter

# The HTTP Lambdas (template.yaml: one function per group, functions/<group>/app.py).
GROUPS = ("platform", "data", "jobs", "models", "ai")


class Capability(NamedTuple):
    name: str
    group: str  # the HTTP Lambda that serves its routes
    routes: str | None = None  # module whose routers() lists its APIRouters, in mount order
    job_kinds: tuple[JobKind, ...] = ()
    # Whether its operations answer the API's full set of errors (authenticated, rate-limited, taking
    # input), or only the unexpected 500 (the welcome page, health, metrics).
    api_errors: bool = True
    # Queue messages it consumes: (message type, the container's service whose handle_message takes it).
    messages: tuple[tuple[str, str], ...] = ()


# Mount order matters where paths overlap (a literal path before a parameterised one).
CAPABILITIES: tuple[Capability, ...] = (
    Capability("meta", "platform", "stratus.capabilities.meta.routes", api_errors=False),
    Capability("console", "platform", "stratus.capabilities.console.routes", api_errors=False),
    Capability("health", "platform", "stratus.capabilities.health.routes", api_errors=False),
    Capability("identity", "platform", "stratus.capabilities.identity.routes"),
    Capability("api_keys", "platform", "stratus.capabilities.api_keys.routes"),
    Capability("models", "models", "stratus.capabilities.models.routes"),
    Capability(
        "datasets", "data", "stratus.capabilities.datasets.routes", messages=((PROCESS_MESSAGE, "datasets"),)
    ),
    Capability("files", "data", "stratus.capabilities.files.routes"),
    Capability(
        "training", "jobs", "stratus.capabilities.training.routes", (training.KIND, training.IMAGE_KIND)
    ),
    Capability("jobs", "jobs", "stratus.capabilities.jobs.routes", messages=((START_MESSAGE, "jobs"),)),
    Capability(
        "finetune", "jobs", "stratus.capabilities.finetune.routes", (finetune.KIND, finetune.MERGE_KIND)
    ),
    Capability("registry", "models", "stratus.capabilities.registry.routes"),
    Capability("downloads", "models", None, (downloads.KIND,)),
    Capability(
        "webhooks", "jobs", "stratus.capabilities.webhooks.routes", messages=((DELIVER_MESSAGE, "webhooks"),)
    ),
    Capability("nlp", "models", "stratus.capabilities.nlp.routes"),
    Capability("perception", "ai", "stratus.capabilities.perception.routes"),
    Capability("chats", "data", "stratus.capabilities.chats.routes", messages=((REPLY_MESSAGE, "chats"),)),
    Capability("chat", "ai", "stratus.capabilities.chat.routes"),
    Capability("custom_tasks", "models", "stratus.capabilities.custom_tasks.routes"),
    Capability("media", "ai", "stratus.capabilities.media.routes", (media.IMAGE_KIND, media.VIDEO_KIND)),
)


def in_groups(groups: Iterable[str] | None) -> tuple[Capability, ...]:
    """The capabilities served by these HTTP groups (all of them for None)."""
    if groups is None:
        return CAPABILITIES
    wanted = set(groups)
    unknown = wanted - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown HTTP groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
    return tuple(c for c in CAPABILITIES if c.group in wanted)


def routes_of(capabilities: Iterable[Capability]) -> list[APIRouter]:
    routers: list[APIRouter] = []
    for capability in capabilities:
        if capability.routes:
            routers.extend(importlib.import_module(capability.routes).routers())
    return routers


def job_kinds() -> JobKinds:
    return JobKinds(kind for capability in CAPABILITIES for kind in capability.job_kinds)
