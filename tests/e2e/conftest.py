"""One `stratus serve` per e2e module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import ServeProcess, free_port


@pytest.fixture(scope="module")
def stratus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = ServeProcess(tmp_path_factory.mktemp("state"), free_port())
    server.start()
    yield server
    returncode, output = server.stop()
    assert returncode == 0, output
    assert "Stratus listening on" in output and "Stratus stopped" in output
