"""Accounts made through the real API, so tests start from state a user could build."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

PASSWORD = "securepassword123"  # seed 003's example password


@dataclass
class Account:
    email: str
    password: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(client: httpx.AsyncClient, *, name: str = "John Doe", **extra: str) -> Account:
    email = extra.pop("email", f"{uuid.uuid4().hex[:10]}@example.com")
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": name, **extra}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(email, PASSWORD, body["_id"], body["access_token"], body["refresh_token"])
