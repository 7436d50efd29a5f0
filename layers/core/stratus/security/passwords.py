"""Password hashing with argon2id, and the rules a new password must meet."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from stratus.errors import ValidationFailed

if TYPE_CHECKING:
    from argon2 import PasswordHasher as Argon2Hasher

MIN_PASSWORD_LENGTH = 6  # seed 003 documents "Minimum 6 characters"
MAX_PASSWORD_LENGTH = 256  # bounds the hashing cost of a hostile request

# The most used passwords of recent public breach compilations; trivially guessed, so refused.
COMMON_PASSWORDS = frozenset(
    {
        "123456", "1234567", "12345678", "123456789", "1234567890", "654321", "111111", "000000",
        "123123", "121212", "112233", "666666", "555555", "777777", "888888", "7777777",
        "password", "password1", "passw0rd", "p@ssw0rd", "qwerty", "qwerty1", "qwerty123",
        "qwertyuiop", "1q2w3e4r", "1q2w3e", "123qwe", "qwe123", "abc123", "abcdef", "iloveyou",
        "admin", "admin123", "welcome", "welcome1", "letmein", "monkey", "dragon", "princess",
        "sunshine", "football", "baseball", "master", "shadow", "superman", "trustno1",
        "lovely", "zaq12wsx", "asdfgh", "asdfghjkl", "changeme", "secret", "login",
    }
)  # fmt: skip


def check_password_rules(password: str, *, field: str = "password") -> None:
    problem = None
    if len(password) < MIN_PASSWORD_LENGTH:
        problem = f"must be at least {MIN_PASSWORD_LENGTH} characters"
    elif len(password) > MAX_PASSWORD_LENGTH:
        problem = f"must be at most {MAX_PASSWORD_LENGTH} characters"
    elif password.lower() in COMMON_PASSWORDS:
        problem = "is too common; choose a less guessable password"
    if problem:
        raise ValidationFailed(
            f"Password {problem}", code="WEAK_PASSWORD", details=[{"field": field, "message": problem}]
        )


class PasswordHasher:
    """argon2id at OWASP's minimum profile (19 MiB, 2 passes, 1 lane): ~20-40 ms on a Lambda vCPU,
    which keeps login cheap for users and costly for offline guessing.

    argon2 is imported, and the dummy hash computed, on the first hash or verify: every HTTP Lambda
    builds the auth service to authenticate requests, but only the one serving sign-in uses passwords."""

    def __init__(self, *, time_cost: int = 2, memory_cost_kib: int = 19 * 1024, parallelism: int = 1) -> None:
        self._time_cost = time_cost
        self._memory_cost_kib = memory_cost_kib
        self._parallelism = parallelism

    @cached_property
    def _hasher(self) -> Argon2Hasher:
        from argon2 import PasswordHasher as Argon2Hasher

        return Argon2Hasher(
            time_cost=self._time_cost, memory_cost=self._memory_cost_kib, parallelism=self._parallelism
        )

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the account does not exist, so timing does not reveal registered emails.
        return self._hasher.hash("stratus-timing-equaliser")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        # Read first whatever the account: the first verify in a process then costs the same for an
        # account that exists and one that does not.
        dummy = self._dummy_hash
        try:
            return self._hasher.verify(password_hash or dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
