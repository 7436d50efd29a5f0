"""Account fixtures: Alice and Bob, registered through the API."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.accounts import Account, register


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await register(client, name="Alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await register(client, name="Bob")
