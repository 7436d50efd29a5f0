"""Worker fixtures: one torch thread, and a harness that runs kinds in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.unit.worker.harness import Harness


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and CI machines have few cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)
