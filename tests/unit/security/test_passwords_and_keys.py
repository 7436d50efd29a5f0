"""Password rules and hashing; API key format and storage form."""

from __future__ import annotations

import pytest

from stratus.errors import ValidationFailed
from stratus.security import api_keys
from stratus.security.passwords import PasswordHasher, check_password_rules


@pytest.mark.parametrize("password", ["securepassword123", "test123", "password123", "pass-word"])
def test_seed_example_passwords_are_accepted(password: str) -> None:
    check_password_rules(password)


@pytest.mark.parametrize(
    ("password", "reason"), [("12345", "at least 6"), ("password", "too common"), ("QWERTY", "too common")]
)
def test_short_and_common_passwords_name_the_field(password: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason) as refused:
        check_password_rules(password)
    assert refused.value.details == [{"field": "password", "message": refused.value.details[0]["message"]}]


def test_argon2_hash_verifies_and_rejects() -> None:
    hasher = PasswordHasher()
    stored = hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, "correct horse")
    assert not hasher.verify(stored, "wrong horse")
    # An unknown account is verified against a dummy hash: False, never an exception.
    assert not hasher.verify(None, "anything")


def test_first_verify_costs_the_same_whether_or_not_the_account_exists() -> None:
    # The dummy hash is computed on first use (not when the auth service is built): the first verify of
    # a process must compute it for a known account too, or its timing would tell the two apart.
    stored = PasswordHasher().hash("correct horse")
    for password_hash in (stored, None):
        hasher = PasswordHasher()
        assert "_dummy_hash" not in vars(hasher)
        hasher.verify(password_hash, "correct horse")
        assert "_dummy_hash" in vars(hasher), f"first verify of {password_hash!r} skipped the dummy hash"


def test_api_keys_are_random_and_stored_as_digest() -> None:
    key = api_keys.generate()
    assert api_keys.looks_like_key(key) and key != api_keys.generate()
    assert api_keys.digest(key) != key and len(api_keys.digest(key)) == 64
    assert api_keys.visible_prefix(key) == key[:11]
    assert not api_keys.looks_like_key("sk-short")
