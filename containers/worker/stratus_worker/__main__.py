"""`python -m stratus_worker`: run the job the environment describes and report how it ended.

Exit codes, which every backend turns into the job's state: 0 completed; 1 failed (after a failed
result event carrying the reason, which is also the last line on stderr, where the local backend and
SageMaker's failure file pick it up); 143 stopped by SIGTERM, after a checkpoint and a "stopped" result.
The kind's module is imported only when it runs, so a bad job fails before torch is loaded.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from stratus.capabilities import job_kinds
from stratus.errors import DomainError
from stratus_worker.events import JobEvents
from stratus_worker.runtime import JobContext, JobEnv, JobFailed, JobStopped, Outcome
from stratus_worker.storage import build_sink, build_storage, load_params

# kind -> module with run(ctx) -> Outcome, from the same specs the API dispatches by.
KINDS = job_kinds().workers()
EXIT_COMPLETED, EXIT_FAILED, EXIT_STOPPED = 0, 1, 143
SAGEMAKER_FAILURE_FILE = Path("/opt/ml/output/failure")

log = logging.getLogger("stratus_worker")


def main(environ: Mapping[str, str] = os.environ) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        job = JobEnv.from_environ(environ)
        job.workdir.mkdir(parents=True, exist_ok=True)
        sink = build_sink(environ, job.workdir)
        storage = build_storage(environ)
        if "STRATUS_JOB_PARAMS" not in environ and environ.get("STRATUS_JOB_PARAMS_KEY"):
            # Params too long for the environment (SageMaker's 512-character limit) come by reference.
            job = replace(job, params=load_params(storage, environ["STRATUS_JOB_PARAMS_KEY"]))
    except Exception as e:  # nowhere to report to yet: stderr is the reason the backend records
        print(f"Job failed: the worker could not start: {e}", file=sys.stderr)
        return EXIT_FAILED
    events = JobEvents(sink, job.job_id)
    ctx = JobContext(job.job_id, job.params, job.output_prefix, job.workdir, storage, events)
    ctx.install_stop_handler()
    try:
        return run_job(ctx, job.kind)
    finally:
        sink.close()


def run_job(ctx: JobContext, kind: str) -> int:
    """Run one kind and publish its result; the exit code."""
    log.info("job %s (%s) starting", ctx.job_id, kind)
    outcome, reason = Outcome(), None
    try:
        outcome = _kind(kind)(ctx)
    except JobStopped as stopped:
        _finish(ctx, "stopped", None, stopped.outcome)
        return EXIT_STOPPED
    except JobFailed as e:
        reason, outcome = e.reason, e.outcome
    except DomainError as e:  # from the shared core: unreadable dataset, storage unavailable
        reason = e.message
    except Exception as e:
        traceback.print_exc()
        reason = f"Internal error: {type(e).__name__}: {e}"
    if reason is None:
        _finish(ctx, "completed", None, outcome)
        return EXIT_COMPLETED
    _finish(ctx, "failed", reason, outcome)
    print(f"Job failed: {reason}", file=sys.stderr)
    if SAGEMAKER_FAILURE_FILE.parent.is_dir():  # SageMaker shows this file as the FailureReason
        SAGEMAKER_FAILURE_FILE.write_text(reason[:1024])
    return EXIT_FAILED


def _kind(kind: str) -> Callable[[JobContext], Outcome]:
    module = KINDS.get(kind)
    if module is None:
        raise JobFailed(f"Unknown job kind '{kind}'; this worker runs: {', '.join(sorted(KINDS))}")
    run: Callable[[JobContext], Outcome] = importlib.import_module(module).run
    return run


def _finish(
    ctx: JobContext, status: Literal["completed", "failed", "stopped"], error: str | None, outcome: Outcome
) -> None:
    log.info("job %s %s%s", ctx.job_id, status, f": {error}" if error else "")
    try:
        ctx.events.result(
            status,
            error=error,
            final_metrics=outcome.final_metrics,
            history=outcome.history,
            baseline=outcome.baseline,
            artifacts=outcome.artifacts,
            model=outcome.model,
            duration_s=ctx.elapsed(),
        )
    except Exception:  # the exit code still tells the backend how the job ended
        log.exception("could not publish the result of job %s", ctx.job_id)


if __name__ == "__main__":
    sys.exit(main())
