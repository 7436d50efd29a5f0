"""The brute-force guard on logins: failures are limited per account and per IP, and the limit holds
against guesses sent all at once; successful logins do not use it up."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from stratus.composition import Container
from stratus.services.rate_limit import Limit
from stratus.settings import Settings
from tests.integration.api.accounts import PASSWORD, Account

PER_ACCOUNT = 10  # settings.login_failures_per_account


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One window for the whole test, so a window boundary cannot reset the counts halfway through.
    settings.login_failure_window_s = 10**9
    return settings


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_parallel_guesses_get_no_more_tries_than_sequential_ones(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # WHEN twenty wrong passwords for one account arrive at once
    responses = await asyncio.gather(*(_login(client, alice.email, f"guess-{i}") for i in range(20)))
    # THEN only the account's limit of them were tried; the rest were refused untried
    statuses = [r.status_code for r in responses]
    # (At most the limit: the counter is one atomic update per attempt, but a concurrent first upsert
    # of the window's counter can be seen as one more attempt than it was, never as fewer.)
    assert set(statuses) == {401, 429}
    assert 1 <= statuses.count(401) <= PER_ACCOUNT
    # AND the account stays locked, even for the right password
    assert (await _login(client, alice.email, PASSWORD)).status_code == 429


async def test_parallel_api_key_guesses_are_limited_per_ip(
    client: httpx.AsyncClient, container: Container
) -> None:
    per_ip = container.settings.login_failures_per_ip
    guesses = [client.post("/auth/login", json={"api_key": "sk-" + f"{i:048d}"}) for i in range(per_ip + 5)]
    statuses = sorted(r.status_code for r in await asyncio.gather(*guesses))
    assert set(statuses) <= {401, 429}
    assert 1 <= statuses.count(401) <= per_ip and statuses.count(429) >= 5


async def test_successful_logins_do_not_use_up_the_failure_limit(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    settings = container.settings
    account = Limit(settings.login_failures_per_account, settings.login_failure_window_s)
    # GIVEN a user who signs in successfully more often than the failure limit
    for _ in range(PER_ACCOUNT + 2):
        assert (await _login(client, alice.email, PASSWORD)).status_code == 200
    # THEN none of it was counted against the account
    decision = await container.rate_limiter.check(f"login:acct:{alice.email}", account)
    assert decision.remaining == PER_ACCOUNT - 1
    # AND the full budget of failures is still there, after which the account is locked
    for _ in range(PER_ACCOUNT):
        assert (await _login(client, alice.email, "wrong-pass")).status_code == 401
    assert (await _login(client, alice.email, PASSWORD)).status_code == 429


async def test_a_successful_api_key_login_is_not_counted(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    settings = container.settings
    per_ip = Limit(settings.login_failures_per_ip, settings.login_failure_window_s)
    key = (await client.post("/api/apikeys", headers=alice.headers, json={"name": "cli"})).json()["key"]
    for _ in range(3):
        assert (await client.post("/auth/login", json={"api_key": key})).status_code == 200
    decision = await container.rate_limiter.check("login:ip:127.0.0.1", per_ip)
    assert decision.remaining == per_ip.requests - 1
