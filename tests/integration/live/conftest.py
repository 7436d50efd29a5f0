"""Live-update fixtures: the connections collection on the test database, two users with a job each,
and LiveUpdates over the local hub (built here until the composition root wires it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.db.repositories.connections import ConnectionRepository
from stratus.local.runtime import LocalPorts
from stratus.security import api_keys
from stratus.services.live import LiveUpdates


@dataclass
class User:
    user_id: ObjectId
    token: str
    job_id: str


async def _user(container: Container, name: str) -> User:
    user, pair = await container.auth.register(
        email=f"{uuid.uuid4().hex[:10]}@example.com", password="securepassword123", name=name, username=None
    )
    job = await container.job_repo.collection.insert_one({"user_id": user["_id"], "status": "running"})
    return User(user["_id"], pair.access_token, str(job.inserted_id))


async def model_bound_credentials(container: Container, user: User) -> list[str]:
    """A key bound to one of the user's models, and the access token of a session opened with it."""
    key = api_keys.generate()
    await container.api_key_repo.create(
        user_id=user.user_id,
        model_id=ObjectId(),
        name="bound",
        key_hash=api_keys.digest(key),
        prefix=api_keys.visible_prefix(key),
    )
    _, session = await container.auth.login_with_api_key(key, client_ip="127.0.0.1")
    return [key, session.access_token]


@pytest.fixture
async def alice(container: Container) -> User:
    return await _user(container, "Alice")


@pytest.fixture
async def bob(container: Container) -> User:
    return await _user(container, "Bob")


@pytest.fixture
async def connections(container: Container) -> ConnectionRepository:
    repo = ConnectionRepository(container.database.db)
    await repo.ensure_indexes()
    return repo


@pytest.fixture
def live(container: Container, ports: LocalPorts, connections: ConnectionRepository) -> LiveUpdates:
    async def job_owner(user_id: ObjectId, job_id: str) -> bool:
        if not ObjectId.is_valid(job_id):
            return False
        found = await container.job_repo.collection.find_one({"_id": ObjectId(job_id), "user_id": user_id})
        return found is not None

    return LiveUpdates(connections, ports.notifier, job_owner=job_owner)
