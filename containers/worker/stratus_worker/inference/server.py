"""`python -m stratus_worker.inference.server --host 127.0.0.1 --port 8080`: the inference HTTP server.

One `InferenceEngine` for the process (each model loaded once, on first use or with `--preload`) and
a `MicroBatcher` in front of it. Prints `READY <port>` on stdout once it accepts connections (`--port 0`
picks a free port).

    GET  /health  -> 200 {"status": "ok", "loaded": [names], "batches_run": n, "items_run": n,
                          "requests_served": n, "max_batch": n, "max_wait_ms": x}
    GET  /models  -> 200 {"models": [{name, tasks, architecture, parameters, size_mb,
                          max_sequence_length, sequence_unit, labels, source, loaded}]}
    POST /invoke  {"task": str, "model": str, "inputs": [{...}, ...], "options": {...}?,
                   "source": {...}? (a downloaded model's snapshot, see inference.downloaded)}
                  -> 200 {"outputs": [one per input, in order], "model", "task",
                          "batch_size" (items in the engine call that served it),
                          "batched_requests", "engine_ms", "duration_ms" (this request, queueing included)}

SageMaker's contract, for the same server in the `serve` image:

    GET  /ping         -> 200 once the server accepts requests (models named by --preload are loaded)
    POST /invocations  same body and answer as /invoke, except that errors are 200 with the error's
                       fields and its "status": asynchronous inference stores only 2xx bodies

Errors are {"error": code, "message": text, ...}: 400 invalid_request (body), invalid_input (an input
or option), unknown_task (+ "tasks"); 404 model_not_found (+ "available"); 422 wrong_task (+ "model",
"task", "supported_tasks"); 503 model_unavailable; 500 internal_error. The tasks' inputs and outputs
are described in `stratus_worker.inference.tasks`; the task `trained-image-classification` (the user's
trained image classifiers, `source: {"descriptor": key}`, inputs `{"image": base64}`) in
`stratus_worker.vision.serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from stratus_worker.inference import adapters, chat, downloaded, loading
from stratus_worker.inference.batching import MicroBatcher
from stratus_worker.inference.engine import InferenceEngine
from stratus_worker.inference.errors import InferenceError
from stratus_worker.sandbox import serve as custom_tasks
from stratus_worker.storage import build_storage
from stratus_worker.vision import serve as trained_images

MAX_INPUTS = 256  # per request; a request is one forward pass, so this bounds its memory

log = logging.getLogger("stratus_worker.inference")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


def create_app(engine: InferenceEngine, *, max_batch: int = 32, max_wait_ms: float = 10.0) -> Starlette:
    batcher = MicroBatcher(engine, max_batch=max_batch, max_wait_ms=max_wait_ms)
    storage = functools.cache(lambda: build_storage(os.environ))  # only downloaded models need it
    image_models = trained_images.TrainedImageClassifiers(storage, engine.cache_dir)
    custom = custom_tasks.CustomTasks(storage, engine.cache_dir)  # user code: the sandbox pool

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "loaded": engine.loaded(),
                "batches_run": engine.batches_run,
                "items_run": engine.items_run,
                "requests_served": batcher.requests_served,
                "max_batch": batcher.max_batch,
                "max_wait_ms": batcher.max_wait_ms,
            }
        )

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"models": engine.catalogue()})

    async def served(model: str, source: Any) -> str:
        """The engine key of a downloaded model, copying its files from storage on first use."""
        source = downloaded.check_source(source)
        key = downloaded.engine_key(model, source)
        if not engine.knows(key):
            path = await asyncio.to_thread(downloaded.fetch, storage(), source, engine.cache_dir)
            if adapters.is_adapter(source):  # a fine-tuned adapter, served on its (one) loaded base
                base = await asyncio.to_thread(
                    adapters.base_spec, dict(source["adapter"].get("base") or {}), storage(), engine.cache_dir
                )
                engine.add(base)
                spec = adapters.spec_for(model, source, path, base)
            else:
                spec = downloaded.spec_for(model, source, path)
            engine.add(spec)
        return key

    async def answer(request: Request) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        try:
            body = await request.json()
        except ValueError:
            return 400, _error("invalid_request", "The body must be a JSON object")
        if not isinstance(body, dict):
            return 400, _error("invalid_request", "The body must be a JSON object")
        task, model, inputs = body.get("task"), body.get("model"), body.get("inputs")
        options = body.get("options") or {}
        if not isinstance(task, str) or not task:
            return 400, _error("invalid_request", "'task' must be a non-empty string")
        if not isinstance(model, str) or not model:
            return 400, _error("invalid_request", "'model' must be a non-empty string")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS:
            return 400, _error("invalid_request", f"'inputs' must be a list of 1 to {MAX_INPUTS} objects")
        if not isinstance(options, dict):
            return 400, _error("invalid_request", "'options' must be an object")
        if task == trained_images.TASK:  # the user's trained image classifiers: their own module
            try:
                outputs = await image_models.run(body.get("source"), inputs)
            except InferenceError as e:
                return e.status, e.to_dict()
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            return 200, {"outputs": outputs, "model": model, "task": task, "batch_size": len(inputs),
                         "batched_requests": 1, "engine_ms": elapsed, "duration_ms": elapsed}  # fmt: skip
        if task == custom_tasks.TASK:  # a custom task's user code: run in the sandbox, never here
            try:
                outputs = await custom.run(inputs, options, body.get("source"))
            except InferenceError as e:
                return e.status, e.to_dict()
            elapsed = round((time.perf_counter() - started) * 1000, 3)
            return 200, {"outputs": outputs, "model": model, "task": task, "batch_size": 1,
                         "batched_requests": 1, "engine_ms": elapsed, "duration_ms": elapsed}  # fmt: skip
        try:
            key = model if body.get("source") is None else await served(model, body["source"])
            result = await batcher.submit(task, key, inputs, options)
        except InferenceError as e:
            return e.status, e.to_dict()
        except Exception as e:
            log.exception("invoke %s/%s failed", task, model)
            return 500, _error("internal_error", f"{type(e).__name__}: {e}")
        return 200, {
            "outputs": result.outputs,
            "model": model,
            "task": task,
            "batch_size": result.batch_size,
            "batched_requests": result.batched_requests,
            "engine_ms": round(result.engine_ms, 3),
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    async def chat_answer(body: dict[str, Any], *, errors_in_body: bool) -> Response:
        """The chat task (stratus_worker.inference.chat): with `"stream": true`, newline-delimited
        JSON events in a chunked answer, as the model generates (an error before the first event is
        an ordinary error answer); otherwise the done event as the task's single output."""
        started = time.perf_counter()

        def fail(status: int, payload: dict[str, Any]) -> JSONResponse:
            if errors_in_body:
                return JSONResponse({**payload, "status": status})
            return JSONResponse(payload, status_code=status)

        model = body.get("model")
        if not isinstance(model, str) or not model:
            return fail(400, _error("invalid_request", "'model' must be a non-empty string"))
        try:
            item = chat.validate(body.get("inputs"), body.get("options"))
            key = model if body.get("source") is None else await served(model, body["source"])
            events = chat.stream(engine, key, item)
            first = await anext(events)
        except InferenceError as e:
            return fail(e.status, e.to_dict())
        except Exception as e:
            log.exception("chat %s failed", model)
            return fail(500, _error("internal_error", f"{type(e).__name__}: {e}"))
        if first["type"] == "error":
            return fail(int(first["status"]), {k: v for k, v in first.items() if k not in ("type", "status")})
        if body.get("stream"):

            async def lines() -> AsyncIterator[bytes]:
                try:
                    yield (json.dumps(first) + "\n").encode()
                    async for event in events:
                        yield (json.dumps(event) + "\n").encode()
                finally:
                    await events.aclose()

            return StreamingResponse(lines(), media_type="application/x-ndjson")
        done = await chat.collect(events)
        if done["type"] == "error":
            return fail(int(done["status"]), {k: v for k, v in done.items() if k not in ("type", "status")})
        output = {k: v for k, v in done.items() if k != "type"}
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return JSONResponse({"outputs": [output], "model": model, "task": chat.TASK, "batch_size": 1,
                             "batched_requests": 1, "engine_ms": elapsed, "duration_ms": elapsed})  # fmt: skip

    async def chat_body(request: Request) -> dict[str, Any] | None:
        """The body, when it is a chat request (the other tasks go through `answer`)."""
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) and body.get("task") == chat.TASK else None

    async def invoke(request: Request) -> Response:
        body = await chat_body(request)
        if body is not None:
            return await chat_answer(body, errors_in_body=False)
        status, payload = await answer(request)
        return JSONResponse(payload, status_code=status)

    async def invocations(request: Request) -> Response:
        """SageMaker's route. Asynchronous inference writes only a 2xx body to the output location,
        so errors travel in the body (with their status) for the API to read from S3. A real-time
        endpoint invoked with InvokeEndpointWithResponseStream gets the chat events as they come."""
        body = await chat_body(request)
        if body is not None:
            return await chat_answer(body, errors_in_body=not body.get("stream"))
        status, payload = await answer(request)
        return JSONResponse(payload if status == 200 else {**payload, "status": status})

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "loaded": engine.loaded()})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if os.environ.get("STRATUS_SANDBOX_WARM") == "1":  # start the runners before the first run
            warming = asyncio.create_task(custom.pool.start())
            warming.add_done_callback(lambda task: task.exception())  # logged by the first run
        yield
        batcher.close()
        await custom.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/models", models, methods=["GET"]),
            Route("/invoke", invoke, methods=["POST"]),
            # SageMaker's serving contract (the image started as `serve`, port 8080).
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.batcher = batcher
    app.state.custom_tasks = custom
    return app


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stratus_worker.inference.server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port (see the READY line)")
    parser.add_argument("--max-batch", type=int, default=32, help="items per engine call (default 32)")
    parser.add_argument(
        "--max-wait-ms", type=float, default=10.0, help="how long a batch gathers (default 10)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--preload", default="", help="models to load before READY: comma-separated names, or 'all'"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="converted models ($STRATUS_MODEL_CACHE)"
    )
    parser.add_argument(
        "--max-downloaded", type=int, default=4, help="downloaded models kept in memory (default 4; LRU)"
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.max_batch < 1 or args.max_wait_ms < 0 or args.max_downloaded < 1:
        parser.error("--max-batch and --max-downloaded must be at least 1 and --max-wait-ms at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    engine = InferenceEngine(
        cache_dir=args.cache_dir, num_threads=args.threads, max_downloaded_loaded=args.max_downloaded
    )
    names = (
        [spec.name for spec in engine.models]
        if args.preload == "all"
        else [n for n in args.preload.split(",") if n]
    )
    try:
        loading.prepare()  # before any request thread can race on transformers' lazy names
        for name in names:
            engine.load(name)
    except InferenceError as e:
        print(f"Cannot start: {e.message}", file=sys.stderr)
        return 1
    app = create_app(engine, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level.lower())
    )
    return asyncio.run(_serve(server))


async def _serve(server: uvicorn.Server) -> int:
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            return 1  # could not start (port taken): uvicorn has said why
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    await serving
    return 0


if __name__ == "__main__":
    sys.exit(main())
