"""`stratus serve`: embedded database, API, WebSocket hub, in-process queue and bus, local workers."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from stratus.adapters.local.bus import LocalEventBus
from stratus.adapters.local.inference import LocalInferenceServer
from stratus.adapters.local.queue import LocalQueue
from stratus.adapters.local.storage import LocalDirectoryStorage
from stratus.adapters.local.worker_pool import LocalProcessBackend
from stratus.adapters.local.ws_hub import LocalWebSocketHub
from stratus.api.app import create_app
from stratus.api.routers import storage_local
from stratus.composition import Container, Ports, build_container
from stratus.local import websocket
from stratus.local.embedded_db import EmbeddedMongo
from stratus.services.job_events import EVENT_PATTERN
from stratus.settings import Settings

WORKER_COMMAND = [sys.executable, "-m", "stratus_worker"]


@dataclass
class LocalPorts(Ports):
    """The local adapters, with their concrete types for the parts only the runtime touches."""

    queue: LocalQueue
    bus: LocalEventBus
    storage: LocalDirectoryStorage
    notifier: LocalWebSocketHub
    jobs: LocalProcessBackend
    inference: LocalInferenceServer


def build_local_ports(settings: Settings) -> LocalPorts:
    bus = LocalEventBus()
    return LocalPorts(
        queue=LocalQueue(),
        bus=bus,
        storage=LocalDirectoryStorage(
            settings.state_dir / "objects",
            base_url=settings.public_base_url,
            signing_secret=settings.url_signing_secret.get_secret_value(),
        ),
        notifier=LocalWebSocketHub(),
        jobs=LocalProcessBackend(
            WORKER_COMMAND,
            on_event=lambda event: bus.publish([event]),
            max_workers=settings.local_workers,
            work_dir=settings.state_dir / "jobs",
            # A container reads inputs and writes artifacts through S3; a local worker uses the same directory.
            extra_env={"STRATUS_STORAGE_ROOT": str(settings.state_dir / "objects")},
        ),
        inference=LocalInferenceServer(
            log_dir=settings.state_dir / "inference",
            # Downloaded models are read from the same object store the download jobs wrote to.
            extra_env={"STRATUS_STORAGE_ROOT": str(settings.state_dir / "objects")},
        ),
    )


class LocalConsumers:
    """What the AWS event sources do, in-process: the queue feeds the message router, the bus feeds the
    job-events service (with the same pattern as the EventBridge rule), and a timer runs the sweepers."""

    def __init__(self, container: Container, ports: LocalPorts, *, sweep_every_s: float = 30.0) -> None:
        self.container = container
        self.ports = ports
        self.sweep_every_s = sweep_every_s
        self._unsubscribe: Callable[[], None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._unsubscribe = self.ports.bus.subscribe(EVENT_PATTERN, self.container.job_events.handle)
        await self.ports.queue.start(self.container.messages.handle)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="stratus-sweeper")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every_s)
            try:
                await self.container.jobs.sweep()
                await self.container.job_events.sweep()
                await self.container.datasets.sweep()
            except Exception:
                self.container.logger.exception("sweep failed; retrying on the next tick")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.ports.queue.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()


def build_local_app(container: Container, ports: LocalPorts) -> FastAPI:
    return create_app(
        container,
        extra_routers=[
            storage_local.build_router(ports.storage),
            websocket.build_router(ports.notifier, container.auth, container.live),
        ],
    )


class LocalRuntime:
    def __init__(self, settings: Settings, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.settings = settings.model_copy(
            update={
                "state_dir": settings.state_dir.resolve(),
                "public_base_url": f"http://{host}:{port}",
            }
        )
        self.embedded: EmbeddedMongo | None = None
        self.warming: asyncio.Task[None] | None = None

    def _start_database(self) -> Settings:
        if self.settings.mongodb_uri:
            return self.settings
        self.embedded = EmbeddedMongo(self.settings.state_dir / "db")
        uri = self.embedded.start()
        return self.settings.model_copy(update={"mongodb_uri": uri})

    async def serve(self) -> None:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        settings = await asyncio.to_thread(self._start_database)
        ports = build_local_ports(settings)
        container = build_container(settings, ports)
        app = build_local_app(container, ports)
        consumers = LocalConsumers(container, ports)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                lifespan="off",
                log_level="warning",
                ws="websockets-sansio",
            )
        )
        try:
            await container.bootstrap()
            await consumers.start()
            if settings.local_warm_inference:
                # Import torch and the models while the user reads the banner, not on their first request.
                self.warming = asyncio.create_task(ports.inference.warm())
            print(self._banner(settings), flush=True)
            await server.serve()
        finally:
            await consumers.stop()
            await ports.jobs.shutdown()
            await ports.inference.stop()
            await container.close()
            if self.embedded is not None:
                await asyncio.to_thread(self.embedded.stop)
            print("Stratus stopped; data kept in", settings.state_dir, flush=True)

    def _banner(self, settings: Settings) -> str:
        database = "embedded SecantusDB" if self.embedded else "MONGODB_URI"
        return (
            f"Stratus listening on http://{self.host}:{self.port} "
            f"(docs /docs, WebSocket ws://{self.host}:{self.port}/ws); "
            f"database: {database}; state: {settings.state_dir}"
        )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard], the `local` extra): its C event loop and
    transports take a measurable share off each request and database round trip (bench/load.py)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(settings: Settings, *, host: str, port: int) -> None:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(LocalRuntime(settings, host=host, port=port).serve())
