"""Base class of every repository: one collection, its indexes, and driver errors translated here."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, ParamSpec, TypeVar

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from stratus.errors import Conflict, DependencyFailed, DomainError, ServiceUnavailable

P = ParamSpec("P")
R = TypeVar("R")

_UNREACHABLE = (
    ServerSelectionTimeoutError,
    ConnectionFailure,
    AutoReconnect,
    NetworkTimeout,
    ExecutionTimeout,
)


def translate_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn driver exceptions into domain errors so nothing above the data layer knows about pymongo."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except DomainError:
            raise
        except DuplicateKeyError as e:
            raise Conflict("Resource already exists", code="DUPLICATE") from e
        except _UNREACHABLE as e:
            raise ServiceUnavailable(
                "Database unavailable, please retry shortly", code="DATABASE_UNAVAILABLE"
            ) from e
        except PyMongoError as e:
            raise DependencyFailed("Database error", code="DATABASE_ERROR") from e

    return wrapper


class Repository:
    """Subclasses name their collection and indexes; every public coroutine gets error translation."""

    collection_name: ClassVar[str]
    indexes: ClassVar[Sequence[IndexModel]] = ()

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.collection: AsyncCollection[dict[str, Any]] = db[self.collection_name]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(member):
                setattr(cls, name, translate_errors(member))

    @translate_errors
    async def ensure_indexes(self) -> None:
        """Idempotent: MongoDB ignores an index that already exists with the same spec."""
        if self.indexes:
            await self.collection.create_indexes(list(self.indexes))
