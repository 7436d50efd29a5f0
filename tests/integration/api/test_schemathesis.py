"""Property-based check of the whole HTTP surface against its own OpenAPI document (schemathesis).

For every documented operation, a few generated requests (valid and invalid) are sent as a signed-in user
through the ASGI app the fixtures build on a real SecantusDB engine. Each response must not be a 5xx, must
use a documented status code and must match the documented schema for that status (errors included).

The cases are derandomized (fixed seed per operation), so a run in CI is repeatable.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, reject, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stratus.composition import build_container
from stratus.local.runtime import build_local_app, build_local_ports
from stratus.settings import Settings
from tests.conftest import BASE_URL
from tests.integration.api.accounts import Account

# A few per operation keeps CI under a few minutes; raise it locally for a deeper search, e.g.
# STRATUS_SCHEMATHESIS_EXAMPLES=100 pytest tests/integration/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("STRATUS_SCHEMATHESIS_EXAMPLES", "4"))

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261101,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # Only the fuzzing phase, bounded by max-examples: the coverage phase enumerates every boundary of
        # every field (hundreds of requests per operation) and the stateful phase chains operations.
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)


def _document() -> dict[str, Any]:
    """The app's OpenAPI document at collection time: schemathesis makes one test per operation from it.
    Building the container opens no connection; the requests go to the app the fixtures build (and
    test_the_checked_document_is_the_served_one makes sure the two documents are the same)."""
    settings = Settings(
        env="test",
        mongodb_uri="mongodb://127.0.0.1:9/?retryWrites=false",
        mongodb_db="openapi",
        state_dir=Path(tempfile.gettempdir()) / "stratus-openapi-unused",
        public_base_url=BASE_URL,
    )
    ports = build_local_ports(settings)
    return build_local_app(build_container(settings, ports), ports).openapi()


DOCUMENT = _document()

schema = (
    schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
    # A valid task request starts the inference worker, a subprocess that loads torch and the models:
    # not an in-process check. Their validation is covered by test_tasks_validation.py.
    .exclude(method="POST", path_regex=r"^/api/tasks/[a-z]+$")
    # A valid download request starts the download worker subprocess, which needs the Hugging Face Hub
    # (tests/integration/jobs/test_model_downloads.py runs it against a fake hub).
    .exclude(method="POST", path="/models/download")
    # A valid chat starts the inference worker too (test_chat_api.py and tests/e2e/test_openai_client.py
    # run it); the /v1 operations answer errors in OpenAI's shape, which the official client checks.
    .exclude(method="POST", path="/api/chat")
    .exclude(path_regex=r"^/v1/(chat|models|embeddings)")
    # A valid generation waits for the generation worker (up to 25 s a call for the OpenAI route):
    # test_media_api.py, test_media_limits.py and the e2e flow cover them.
    .exclude(method="POST", path_regex=r"^/api/(text|image)-to-(image|video)/generate$")
    .exclude(method="POST", path="/v1/images/generations")
)


async def test_the_checked_document_is_the_served_one(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).json() == DOCUMENT


@pytest.fixture
async def event_loop_for_calls() -> asyncio.AbstractEventLoop:
    """The loop the app's database client lives on; the generated test is synchronous (hypothesis), so it
    sends each request by running it on this loop."""
    return asyncio.get_running_loop()


def _httpx_kwargs(case: schemathesis.Case, account: Account) -> dict[str, Any]:
    """The request schemathesis would send with requests, as httpx arguments."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=account.headers)
    request = {k: v for k, v in kwargs.items() if k in {"method", "url", "params", "json"}}
    headers = dict(kwargs.get("headers") or {})
    if kwargs.get("cookies"):
        # httpx deprecates per-request cookies; the header is what a client sends anyway.
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in kwargs["cookies"].items())
    data, files = kwargs.get("data"), kwargs.get("files")
    if files:
        # Encoded by requests itself, so odd generated parts (a number as a file) go out as requests sends them.
        prepared = requests.PreparedRequest()
        prepared.prepare_headers(None)
        prepared.prepare_body(data, files)
        request["content"] = prepared.body
        headers["Content-Type"] = prepared.headers["Content-Type"]
    elif isinstance(data, (bytes, str)):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    request["headers"] = headers
    return request


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_conforms_to_its_openapi_document(
    case: schemathesis.Case,
    client: httpx.AsyncClient,
    alice: Account,
    event_loop_for_calls: asyncio.AbstractEventLoop,
) -> None:
    request = _httpx_kwargs(case, alice)
    try:
        response = event_loop_for_calls.run_until_complete(client.request(**request))
    except httpx.InvalidURL:
        # A client cannot send it: httpx refuses a URL component over 64 KiB (e.g. a 100,000-character
        # `logs` query parameter, which the fine-tune status update also takes in its JSON body).
        reject()
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ],
    )
