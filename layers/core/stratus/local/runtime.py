"""`stratus serve`: embedded database, API, WebSocket hub, in-process queue and bus, local workers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
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
from stratus.capabilities.perception import camera
from stratus.composition import Container, Ports, build_container
from stratus.jobs.events import EVENT_PATTERN
from stratus.local import websocket
from stratus.local.embedded_db import EmbeddedMongo
from stratus.local.state_dir import StateDirLock
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
            websocket.build_router(
                ports.notifier, container.auth, container.live, chat=lambda: container.chat
            ),
            # Camera frames over a WebSocket: the local runtime's transport only (see perception.routes).
            camera.router,
        ],
    )


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: it re-raises SIGTERM once it has stopped serving, which kills
    the process before the runtime stops the database and the workers (LocalRuntime handles signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# What a terminal (Ctrl-C, closing it), a process manager, a container runtime or `timeout` send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
        self._server: _Server | None = None
        self._stop_requested = False

    async def _start_database(self) -> Settings:
        if self.settings.mongodb_uri:
            return self.settings
        self.embedded = EmbeddedMongo(self.settings.state_dir / "db")
        await asyncio.to_thread(self.embedded.stop_leftovers)
        self.embedded.spawn()  # from the event loop's thread, which lives as long as the server
        uri = await asyncio.to_thread(self.embedded.wait_ready)
        return self.settings.model_copy(update={"mongodb_uri": uri})

    def _on_stop_signal(self) -> None:
        """The first signal stops the server gracefully; a second one also cuts uvicorn's wait for open
        connections (the database and the workers are still stopped in order)."""
        self._stop_requested = True
        if self._server is not None:
            self._server.force_exit = self._server.should_exit
            self._server.should_exit = True

    async def serve(self) -> None:
        with StateDirLock(self.settings.state_dir):
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup stratus serve` keeps running
                    loop.add_signal_handler(sig, self._on_stop_signal)
            try:
                await self._serve()
            finally:
                for sig in STOP_SIGNALS:
                    loop.remove_signal_handler(sig)

    async def _serve(self) -> None:
        try:
            settings = await self._start_database()
            ports = build_local_ports(settings)
            container = build_container(settings, ports)
            app = build_local_app(container, ports)
            consumers = LocalConsumers(container, ports)
            self._server = _Server(
                uvicorn.Config(
                    app,
                    host=self.host,
                    port=self.port,
                    lifespan="off",
                    log_level="warning",
                    ws="websockets-sansio",
                )
            )
            self._server.should_exit = self._stop_requested
            try:
                await container.bootstrap()
                # Before anything consumes the queue: a job this process starts is never taken for lost.
                await recover_jobs(container)
                await consumers.start()
                if settings.local_warm_inference:
                    # Import torch and the models while the user reads the banner, not on their first request.
                    self.warming = asyncio.create_task(ports.inference.warm())
                print(self._banner(settings), flush=True)
                if not self._server.should_exit:
                    await self._server.serve()
            finally:
                await consumers.stop()
                await ports.jobs.shutdown()
                await ports.inference.stop()
                await container.close()
        finally:
            if self.embedded is not None:
                await asyncio.to_thread(self.embedded.stop)
            print("Stratus stopped; data kept in", self.settings.state_dir, flush=True)

    def _banner(self, settings: Settings) -> str:
        database = "embedded SecantusDB" if self.embedded else "MONGODB_URI"
        return (
            f"Stratus listening on http://{self.host}:{self.port} "
            f"(docs /docs, WebSocket ws://{self.host}:{self.port}/ws); "
            f"database: {database}; state: {settings.state_dir}"
        )


async def recover_jobs(container: Container) -> None:
    """The previous process's workers died with it and its queue was in its memory: end the jobs that
    were running there and send the queued ones again (a restart's reconcile, see JobService)."""
    recovered = await container.jobs.reconcile_after_restart()
    for job in recovered.ended:
        await container.job_events.announce_ended(job)
    if recovered.ended or recovered.requeued:
        print(
            f"Recovered from the previous run: {len(recovered.ended)} interrupted job(s) ended, "
            f"{recovered.requeued} queued job(s) sent again",
            flush=True,
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
