"""Accounts and sessions: register, the three login shapes, refresh rotation, logout, and resolving
a bearer credential (JWT or API key) to a principal."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from stratus.capabilities.identity.principal import Principal
from stratus.db.ids import oid
from stratus.db.repositories.api_keys import ApiKeyRepository
from stratus.db.repositories.sessions import RefreshTokenRepository, RevocationRepository
from stratus.db.repositories.users import UserRepository
from stratus.errors import InvalidInput, NotFound, Unauthenticated
from stratus.security import api_keys
from stratus.security.passwords import PasswordHasher, check_password_rules
from stratus.security.tokens import TokenClaims, TokenCodec
from stratus.services.rate_limit import Decision, Limit, RateLimiter

BAD_CREDENTIALS = "Incorrect email or password"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True)
class LoginLimits:
    per_account: Limit
    per_ip: Limit


class AuthService:
    def __init__(
        self,
        *,
        users: UserRepository,
        refresh_tokens: RefreshTokenRepository,
        revocations: RevocationRepository,
        api_key_repo: ApiKeyRepository,
        hasher: PasswordHasher,
        codec: TokenCodec,
        limiter: RateLimiter,
        login_limits: LoginLimits,
    ) -> None:
        self._users = users
        self._refresh = refresh_tokens
        self._revocations = revocations
        self._api_keys = api_key_repo
        self._hasher = hasher
        self._codec = codec
        self._limiter = limiter
        self._login_limits = login_limits

    # --- accounts -------------------------------------------------------------------------------

    async def register(
        self, *, email: str, password: str, name: str, username: str | None
    ) -> tuple[dict[str, Any], TokenPair]:
        check_password_rules(password)
        if await self._users.find_by_email(email) is not None:
            raise InvalidInput("Email already registered", code="ALREADY_REGISTERED")
        # argon2 is CPU-bound: off the event loop so other requests keep flowing.
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        user = await self._users.create(
            email=email, password_hash=password_hash, name=name, username=username
        )
        return user, await self._start_session(str(user["_id"]))

    async def get_user(self, user_id: ObjectId) -> dict[str, Any]:
        user = await self._users.get(user_id)
        if user is None:
            raise Unauthenticated("Could not validate credentials", code="USER_GONE")
        return user

    async def update_profile(self, user_id: ObjectId, changes: dict[str, Any]) -> dict[str, Any]:
        if not changes:
            raise InvalidInput("No fields to update", code="NO_CHANGES")
        user = await self._users.update_profile(user_id, changes)
        if user is None:
            raise NotFound("User not found")
        return user

    # --- logins ---------------------------------------------------------------------------------

    async def login_with_password(
        self, *, email: str | None, username: str | None, password: str, client_ip: str
    ) -> tuple[dict[str, Any], TokenPair]:
        attempts = await self._count_attempt(
            (f"login:acct:{email or username}", self._login_limits.per_account),
            (f"login:ip:{client_ip}", self._login_limits.per_ip),
        )
        if email is not None:
            user = await self._users.find_by_email(email)
        else:
            user = await self._users.find_by_username(username or "")
        # Verify even for an unknown account (against a dummy hash): equal timing either way.
        ok = await asyncio.to_thread(self._hasher.verify, user["password_hash"] if user else None, password)
        if not ok or user is None:
            message = BAD_CREDENTIALS if email is not None else "Incorrect username or password"
            raise Unauthenticated(message, code="INVALID_CREDENTIALS")
        await self._uncount_attempt(attempts)
        if self._hasher.needs_rehash(user["password_hash"]):
            await self._users.set_password_hash(
                user["_id"], await asyncio.to_thread(self._hasher.hash, password)
            )
        await self._users.touch_login(user["_id"], datetime.now(UTC))
        return user, await self._start_session(str(user["_id"]))

    async def login_with_api_key(self, key: str, *, client_ip: str) -> tuple[dict[str, Any], TokenPair]:
        """Seed 000's login: an API key alone opens a session with the key's scope."""
        attempts = await self._count_attempt((f"login:ip:{client_ip}", self._login_limits.per_ip))
        record = (
            await self._api_keys.find_by_hash(api_keys.digest(key)) if api_keys.looks_like_key(key) else None
        )
        if record is None:
            raise Unauthenticated("Invalid API key", code="INVALID_API_KEY")
        user = await self.get_user(record["user_id"])
        await self._uncount_attempt(attempts)
        model_id = str(record["model_id"]) if record.get("model_id") else None
        return user, await self._start_session(
            str(user["_id"]), api_key_id=str(record["_id"]), model_id=model_id
        )

    async def _count_attempt(self, *counters: tuple[str, Limit]) -> list[tuple[str, Limit, Decision]]:
        """Count a login attempt as a failure before checking it, then refuse it if over a limit.

        Counting first is what makes the limit hold against parallel guesses: were it checked first and
        counted only once the (deliberately slow) password check failed, every guess sent at once would
        pass the check before any was counted. Every counter is hit before any is enforced, so an attempt
        refused by one still counts against the others. A refused attempt stays counted."""
        attempts = [(key, limit, await self._limiter.hit(key, limit)) for key, limit in counters]
        for _, _, decision in attempts:
            self._limiter.enforce(decision, "Too many failed login attempts")
        return attempts

    async def _uncount_attempt(self, attempts: list[tuple[str, Limit, Decision]]) -> None:
        """A successful login takes its count back: the limits are on failures, so a user who signs in
        often is never locked out by it."""
        for key, limit, decision in attempts:
            await self._limiter.release(key, limit, decision)

    async def _start_session(
        self,
        user_id: str,
        *,
        family: str | None = None,
        api_key_id: str | None = None,
        model_id: str | None = None,
    ) -> TokenPair:
        family = family or uuid.uuid4().hex
        access = self._codec.issue(user_id, "access", family=family, api_key_id=api_key_id, model_id=model_id)
        refresh = self._codec.issue(
            user_id, "refresh", family=family, api_key_id=api_key_id, model_id=model_id
        )
        await self._refresh.record(
            jti=refresh.claims.jti, user_id=user_id, family=family, expires_at=refresh.claims.expires_at
        )
        return TokenPair(access.token, refresh.token, self._codec.access_ttl_s)

    # --- refresh and logout -----------------------------------------------------------------------

    async def refresh(self, refresh_token: str) -> TokenPair:
        claims = self._codec.decode(refresh_token, "refresh")
        if await self._revocations.any_revoked(_revocation_keys(claims, with_jti=False)):
            raise Unauthenticated("Session has been revoked", code="SESSION_REVOKED")
        if claims.api_key_id is not None and not await self._api_key_exists(claims.api_key_id):
            # A session opened with an API key ends with the key. Deleting the key revokes its sessions
            # (above); this also covers a revocation that has expired or a key removed some other way.
            raise Unauthenticated("Session has been revoked", code="SESSION_REVOKED")
        spent = await self._refresh.spend(claims.jti)
        if spent is None:
            # A valid signature on a token we no longer honour: it was used before. Someone holds a copy,
            # so end the whole session for everyone holding any token of it.
            await self._revoke_family(claims.family, reason="refresh token reuse")
            raise Unauthenticated("Refresh token has already been used; session revoked", code="TOKEN_REUSED")
        return await self._start_session(
            claims.sub, family=claims.family, api_key_id=claims.api_key_id, model_id=claims.model_id
        )

    async def logout(self, principal: Principal, refresh_token: str | None = None) -> None:
        expires = principal.token_expires_at or datetime.now(UTC) + timedelta(
            seconds=self._codec.access_ttl_s
        )
        keys = [f"jti:{principal.jti}"] if principal.jti else []
        if principal.family:
            await self._revoke_family(principal.family, reason="logout")
        if refresh_token:
            try:
                claims = self._codec.decode(refresh_token, "refresh")
            except Unauthenticated:
                claims = None
            if claims is not None and claims.sub == str(principal.user_id):
                await self._revoke_family(claims.family, reason="logout")
        if keys:
            await self._revocations.revoke(keys, expires_at=expires, reason="logout")

    async def _revoke_family(self, family: str, *, reason: str) -> None:
        until = datetime.now(UTC) + timedelta(seconds=self._codec.refresh_ttl_s)
        await self._revocations.revoke([f"fam:{family}"], expires_at=until, reason=reason)
        await self._refresh.delete_family(family)

    # --- resolving credentials --------------------------------------------------------------------

    async def authenticate(self, credential: str) -> Principal:
        """A bearer credential: an `sk-` API key or an access JWT (checked against revocations)."""
        if credential.startswith(api_keys.PREFIX):
            return await self.authenticate_api_key(credential)
        claims = self._codec.decode(credential, "access")
        return await self.authenticate_claims(claims)

    async def _api_key_exists(self, key_id: str) -> bool:
        return ObjectId.is_valid(key_id) and await self._api_keys.exists(ObjectId(key_id))

    async def authenticate_claims(self, claims: TokenClaims) -> Principal:
        """An access token already decoded by `access_claims`: what is left to check is its revocation
        (answered from the revocation memo, see `RevocationRepository`)."""
        if await self._revocations.any_revoked(_revocation_keys(claims, with_jti=True), memo=True):
            raise Unauthenticated("Token has been revoked", code="TOKEN_REVOKED")
        return Principal(
            user_id=oid(claims.sub),
            via="token",
            jti=claims.jti,
            family=claims.family,
            token_expires_at=claims.expires_at,
            api_key_id=claims.api_key_id,
            model_id=claims.model_id,
        )

    def access_claims(self, token: str) -> TokenClaims | None:
        """The claims of a valid access token (signature, expiry and type checked, revocations not read):
        enough to choose a rate-limit bucket, and to authorise only after `authenticate_claims`."""
        try:
            return self._codec.decode(token, "access")
        except Unauthenticated:
            return None

    async def authenticate_api_key(self, key: str) -> Principal:
        if not api_keys.looks_like_key(key):
            raise Unauthenticated("Invalid API key", code="INVALID_API_KEY")
        record = await self._api_keys.find_by_hash(api_keys.digest(key))
        if record is None:
            raise Unauthenticated("Invalid API key", code="INVALID_API_KEY")
        return Principal(
            user_id=record["user_id"],
            via="api_key",
            api_key_id=str(record["_id"]),
            model_id=str(record["model_id"]) if record.get("model_id") else None,
        )


def _revocation_keys(claims: TokenClaims, *, with_jti: bool) -> list[str]:
    """The revocation records that end a token: its own id (access tokens), its session (family), and the
    API key the session was opened with, which deleting the key revokes."""
    keys = [f"jti:{claims.jti}"] if with_jti else []
    keys.append(f"fam:{claims.family}")
    if claims.api_key_id:
        keys.append(api_key_revocation(claims.api_key_id))
    return keys


def api_key_revocation(key_id: str) -> str:
    """The revocation record that ends every session opened with an API key."""
    return f"key:{key_id}"
