"""Fixtures for the AWS adapter tests: fake credentials, moto's in-process mock, and a real moto HTTP server
for the flows (presigned URLs) that leave boto3."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.conftest import AWS_REGION, fake_aws_credentials

REGION = AWS_REGION


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every adapter test runs with fake credentials, mocked or not (Stubber tests too)."""
    fake_aws_credentials(monkeypatch)


@pytest.fixture
def aws(mocked_aws: None) -> None:
    """moto's mock of every AWS service (state is fresh per test), under the name these tests use."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A real moto server on a free local port (its endpoint URL), for plain HTTP clients."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
