"""JWT access and refresh tokens (HS256, PyJWT) with every claim checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt

from stratus.errors import Unauthenticated

TokenType = Literal["access", "refresh"]
_REQUIRED = ["exp", "iat", "sub", "jti", "type"]
ISSUER = "stratus"


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    type: TokenType
    jti: str
    family: str
    issued_at: datetime
    expires_at: datetime
    api_key_id: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenCodec:
    def __init__(self, secret: str, *, access_ttl_s: int, refresh_ttl_s: int) -> None:
        self._secret = secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s

    def issue(
        self,
        user_id: str,
        token_type: TokenType,
        *,
        family: str,
        api_key_id: str | None = None,
        model_id: str | None = None,
    ) -> IssuedToken:
        now = datetime.now(UTC).replace(microsecond=0)
        ttl = self.access_ttl_s if token_type == "access" else self.refresh_ttl_s
        claims = TokenClaims(
            sub=user_id,
            type=token_type,
            jti=uuid.uuid4().hex,
            family=family,
            issued_at=now,
            expires_at=now + timedelta(seconds=ttl),
            api_key_id=api_key_id,
            model_id=model_id,
        )
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": claims.sub,
            "type": claims.type,
            "jti": claims.jti,
            "fam": claims.family,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
        }
        if api_key_id:
            payload["key"] = api_key_id
            payload["mdl"] = model_id
        return IssuedToken(jwt.encode(payload, self._secret, algorithm="HS256"), claims)

    def decode(self, token: str, expected_type: TokenType) -> TokenClaims:
        """Signature, algorithm (HS256 only, so `alg=none` fails), expiry, issuer and type all checked."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthenticated("Token has expired", code="TOKEN_EXPIRED") from e
        except jwt.PyJWTError as e:
            raise Unauthenticated("Invalid or expired token", code="INVALID_TOKEN") from e
        if payload.get("type") != expected_type:
            raise Unauthenticated(f"An {expected_type} token is required", code="WRONG_TOKEN_TYPE")
        return TokenClaims(
            sub=str(payload["sub"]),
            type=expected_type,
            jti=str(payload["jti"]),
            family=str(payload.get("fam") or payload["jti"]),
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            api_key_id=payload.get("key"),
            model_id=payload.get("mdl"),
        )
