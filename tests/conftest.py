"""Shared fixtures: a real SecantusDB server (MongoDB wire protocol) for the whole session, and per test
a fresh database, the local adapters, the composed container and an HTTP client on the ASGI app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from secantus import SecantusDBServer

from stratus.composition import Container, build_container
from stratus.local.runtime import LocalPorts, build_local_app, build_local_ports
from stratus.settings import Settings
from tests.integration.api.accounts import Account, register

BASE_URL = "http://testserver"
AWS_REGION = "us-east-1"


def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no profile or endpoint override, so nothing can reach a real AWS account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
        "AWS_REGION": AWS_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's mock of every AWS service (fresh per test), with the production boto3 clients
    (stratus.adapters.aws.clients) created anew inside it. Batch jobs do not start containers."""
    from moto import mock_aws

    from stratus.adapters.aws import clients

    fake_aws_credentials(monkeypatch)
    clients.client.cache_clear()
    with mock_aws(config={"batch": {"use_docker": False}}):
        yield
    clients.client.cache_clear()


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    server = SecantusDBServer(storage_path=":memory:", ttl_sweep_seconds=1)
    server.start()
    try:
        yield server.uri + "?retryWrites=false"
    finally:
        server.stop()


@pytest.fixture
def settings(mongo_uri: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        mongodb_uri=mongo_uri,
        mongodb_db=f"test_{uuid.uuid4().hex[:12]}",
        state_dir=tmp_path / "state",
        public_base_url=BASE_URL,
    )


@pytest.fixture
def ports(settings: Settings) -> LocalPorts:
    return build_local_ports(settings)


@pytest.fixture
async def container(settings: Settings, ports: LocalPorts) -> AsyncIterator[Container]:
    container = build_container(settings, ports)
    await container.bootstrap()
    try:
        yield container
    finally:
        await container.database.client.drop_database(settings.mongodb_db)
        await ports.jobs.shutdown()
        await ports.inference.stop()
        await container.close()


@pytest.fixture
def app(container: Container, ports: LocalPorts) -> FastAPI:
    return build_local_app(container, ports)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        yield http


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    """A user registered through the API."""
    return await register(client, name="Alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    """A second, unrelated user (for tenant-isolation checks)."""
    return await register(client, name="Bob")
