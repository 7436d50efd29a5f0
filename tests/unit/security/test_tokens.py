"""JWT issuing and checking: every claim that matters is verified."""

from __future__ import annotations

import time

import jwt
import pytest

from stratus.errors import Unauthenticated
from stratus.security.tokens import TokenCodec

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4  # 64+ bytes: long enough for HS512 too


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(SECRET, access_ttl_s=600, refresh_ttl_s=3600)


def test_round_trip_keeps_subject_family_and_scope(codec: TokenCodec) -> None:
    issued = codec.issue("u1", "access", family="fam1", api_key_id="k1", model_id="m1")
    claims = codec.decode(issued.token, "access")
    assert (claims.sub, claims.family, claims.api_key_id, claims.model_id) == ("u1", "fam1", "k1", "m1")
    assert (claims.expires_at - claims.issued_at).total_seconds() == 600


def test_each_token_has_its_own_jti(codec: TokenCodec) -> None:
    a, b = (codec.issue("u1", "refresh", family="f") for _ in range(2))
    assert a.claims.jti != b.claims.jti


def test_type_confusion_is_refused(codec: TokenCodec) -> None:
    refresh = codec.issue("u1", "refresh", family="f").token
    with pytest.raises(Unauthenticated, match="access token is required"):
        codec.decode(refresh, "access")


@pytest.mark.parametrize(
    "forge",
    [
        lambda c: jwt.encode(c, key=None, algorithm="none"),
        lambda c: jwt.encode(c, "wrong-secret-0123456789abcdef0123456789", algorithm="HS256"),
        lambda c: jwt.encode({**c, "iss": "someone-else"}, SECRET, algorithm="HS256"),
        lambda c: jwt.encode({k: v for k, v in c.items() if k != "exp"}, SECRET, algorithm="HS256"),
        lambda c: jwt.encode({**c, "exp": int(time.time()) - 5}, SECRET, algorithm="HS256"),
        lambda c: jwt.encode(c, SECRET, algorithm="HS512"),
    ],
    ids=["alg-none", "wrong-key", "wrong-issuer", "no-exp", "expired", "other-alg"],
)
def test_forged_or_stale_tokens_are_unauthenticated(codec: TokenCodec, forge) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time())
    claims = {
        "iss": "stratus",
        "sub": "u1",
        "type": "access",
        "jti": "j",
        "fam": "f",
        "iat": now,
        "exp": now + 60,
    }
    with pytest.raises(Unauthenticated):
        codec.decode(forge(claims), "access")
