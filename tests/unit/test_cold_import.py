"""The HTTP Lambdas' cold start: importing functions/<group>/app.py (one per capability group, each
building the whole container and its group's FastAPI app) must not pull in any heavy ML or data library,
nor the services and libraries that are built on first use. Each import runs in a fresh interpreter, as
a Lambda container would, with STRATUS_RUNTIME=aws and fake AWS resource names: boto3 clients and the
MongoDB client connect lazily, so nothing is contacted. Timings are bench/cold_import.py's job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stratus.capabilities import GROUPS

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"

# Never imported by an API Lambda: they belong in the worker container image (or nowhere near a request).
HEAVY_MODULES = (
    "torch",
    "transformers",
    "diffusers",
    "sagemaker",
    "pandas",
    "numpy",
    "scipy",
    "sklearn",
    "pyarrow",
    "duckdb",
    "PIL",
    "tensorflow",
    "jax",
)

# Imported on first use, not at cold start: token and password hashing (the identity service), the
# logging and metrics libraries (the first request), MIME sniffing (uploads), YAML (/openapi.yaml) and
# the webhook delivery client.
DEFERRED_LIBRARIES = (
    "jwt",
    "argon2",
    "aws_lambda_powertools",
    "prometheus_client",
    "puremagic",
    "yaml",
    "httpx",
    # The web console's templates (first page) and the client's CLI libraries (never in a Lambda).
    "jinja2",
    "rich",
    "websockets",
)

# The minimum Settings needs for runtime "aws" (see Settings._refuse_default_secrets), plus the queue that
# composition.build_aws_ports requires. STRATUS_ENV=development accepts the embedded default secrets, so no
# Secrets Manager ARN is set and nothing is fetched at import.
AWS_ENV = {
    "STRATUS_RUNTIME": "aws",
    "STRATUS_ENV": "development",
    "STRATUS_LOG_LEVEL": "WARNING",
    "STRATUS_STATE_DIR": "/tmp/stratus-cold-import-test",
    "MONGODB_URI": "mongodb://localhost:1/?serverSelectionTimeoutMS=100",
    "STRATUS_ARTIFACTS_BUCKET": "stratus-test-artifacts",
    "STRATUS_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stratus-test-jobs",
    "STRATUS_EVENT_BUS_NAME": "stratus-test",
    "STRATUS_JOB_BACKEND": "sagemaker",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}

# Every service the container builds on first use: building them all after the cold import checks that
# their deferred imports resolve, and that even then no heavy library comes in.
SERVICES = (
    "logger",
    "health",
    "rate_limiter",
    "quota",
    "auth",
    "api_keys",
    "models",
    "datasets",
    "files",
    "jobs",
    "downloads",
    "webhooks",
    "live",
    "tasks",
    "job_events",
    "predictions",
    "finetune",
    "messages",
)

PROBE = """
import json, re, sys
sys.path.insert(0, {function_dir!r})
import app
cold = set(sys.modules)

from fastapi import FastAPI, routing
from mangum import Mangum
from stratus import capabilities

def table(routes):
    # Newer FastAPI keeps an included router as one entry, expanded on demand: list what it serves.
    contexts = routing.iter_route_contexts(routes) if hasattr(routing, "iter_route_contexts") else routes
    return sorted(
        [c.path, sorted(c.methods)] for c in contexts
        if isinstance(getattr(c, "original_route", c), routing.APIRoute)
    )

expected = table(
    route for router in capabilities.routes_of(capabilities.in_groups([{group!r}])) for route in router.routes
)
container = app.app.state.container
for name in {services!r}:
    getattr(container, name)
container.metrics.observe_request("GET", "/probe", 200, 0.001)
print(json.dumps({{
    "is_fastapi": isinstance(app.app, FastAPI),
    "handler_is_mangum": isinstance(app.handler, Mangum),
    "lifespan": getattr(app.handler, "lifespan", None),
    "routes": table(app.app.routes),
    "expected_routes": expected,
    "heavy": sorted(m for m in {heavy!r} if m in cold),
    "deferred": sorted(m for m in cold if m.split(".")[0] in {deferred!r}),
    "services": sorted(m for m in cold if re.match(r"stratus\\.(capabilities\\.\\w+|jobs)\\.service$", m)),
    "heavy_after_services": sorted(m for m in {heavy!r} if m in sys.modules),
    "argon2_after_services": "argon2" in sys.modules,
    "metrics_rendered": b"stratus_http_requests_total" in container.metrics.render(),
    "modules": len(cold),
}}))
"""


def _clean_env() -> dict[str, str]:
    """The test's own environment minus anything Settings or boto3 would read, plus the AWS settings;
    the core layer is this checkout's."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(AWS_ENV)
    env["PYTHONPATH"] = str(ROOT / "layers" / "core")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _probe(group: str) -> dict[str, object]:
    code = PROBE.format(
        function_dir=str(FUNCTIONS / group),
        group=group,
        services=SERVICES,
        heavy=HEAVY_MODULES,
        deferred=DEFERRED_LIBRARIES,
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"importing functions/{group}/app.py failed:\n{result.stderr}"
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_every_group_has_an_http_lambda() -> None:
    for group in GROUPS:
        source = (FUNCTIONS / group / "app.py").read_text()
        assert f'http_lambda("{group}")' in source, f"functions/{group}/app.py does not serve group {group}"


@pytest.mark.parametrize("group", GROUPS)
def test_http_lambda_cold_import_is_light_and_builds_its_group(
    group: str, record_property: Callable[[str, object], None]
) -> None:
    report = _probe(group)
    record_property("modules_loaded", report["modules"])

    assert report["is_fastapi"], "app.app must be the FastAPI app"
    assert report["handler_is_mangum"], "app.handler must be the Mangum adapter"
    # With lifespan on, Mangum would run the app's startup and shutdown around every invocation.
    assert report["lifespan"] == "off"
    assert report["routes"] == report["expected_routes"], f"functions/{group} must mount exactly its routes"
    assert report["routes"], f"functions/{group} mounts no routes"

    assert report["heavy"] == [], f"the {group} Lambda imports heavy libraries: {report['heavy']}"
    assert report["services"] == [], (
        f"the {group} Lambda imports services at cold start: {report['services']}"
    )
    assert report["deferred"] == [], (
        f"the {group} Lambda imports at cold start what it should import on first use: {report['deferred']}"
    )
    # Building every service afterwards works and still brings in nothing heavy.
    assert report["heavy_after_services"] == [], report["heavy_after_services"]
    # Every group builds the auth service for its first request; only sign-in hashes passwords.
    assert not report["argon2_after_services"], "building the auth service imported argon2"
    assert report["metrics_rendered"], "the metrics registry, built on first use, must render its counters"
