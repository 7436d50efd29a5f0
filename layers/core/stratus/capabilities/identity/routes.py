"""Accounts and sessions. Mounted at /api/auth (seeds 003, 004) and at /auth (seeds 000, 001)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, status

from stratus.api.deps import Auth
from stratus.api.routing import StratusRoute
from stratus.api.security import AnonymousRateLimit, CurrentPrincipal, CurrentUser, RateLimit, client_ip
from stratus.capabilities.identity import user_routes
from stratus.capabilities.identity.schemas import (
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    RefreshRequest,
    RegisterResponse,
    TokenResponse,
    UserCreate,
    UserPublic,
)
from stratus.schemas.common import MessageResponse

if TYPE_CHECKING:
    # The service (tokens, password hashing) is imported when the container builds it, on first use.
    from stratus.capabilities.identity.service import TokenPair


def _tokens(pair: TokenPair) -> dict[str, object]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }


def build_router(prefix: str, *, include_in_schema: bool = True) -> APIRouter:
    """The auth routes under `prefix`. Built per prefix (not one router included twice) so each route
    knows its full path, which metrics and logs use as the route label.

    Register, login and refresh are for callers without a session, so they count against the IP's limit
    whatever credential a request carries; logout and /me are limited like any signed-in call."""
    router = APIRouter(
        prefix=prefix, tags=["auth"], route_class=StratusRoute, include_in_schema=include_in_schema
    )

    @router.post(
        "/register",
        status_code=status.HTTP_201_CREATED,
        response_model=RegisterResponse,
        dependencies=[AnonymousRateLimit],
    )
    async def register(body: UserCreate, auth: Auth) -> dict[str, object]:
        """Create an account. The user's fields sit at the top level (seed 003) and under `user` with the
        session's tokens (seed 004)."""
        user, pair = await auth.register(
            email=str(body.email), password=body.password, name=body.name, username=body.username
        )
        return {**user, "user": user, **_tokens(pair)}

    @router.post("/login", response_model=LoginResponse, dependencies=[AnonymousRateLimit])
    async def login(body: LoginRequest, request: Request, auth: Auth) -> dict[str, object]:
        """Sign in with email+password, username+password, or an API key alone."""
        ip = client_ip(request)
        if body.api_key is not None:
            user, pair = await auth.login_with_api_key(body.api_key, client_ip=ip)
        else:
            user, pair = await auth.login_with_password(
                email=str(body.email) if body.email else None,
                username=body.username,
                password=body.password or "",
                client_ip=ip,
            )
        return {**_tokens(pair), "user": user}

    @router.post("/refresh", response_model=TokenResponse, dependencies=[AnonymousRateLimit])
    async def refresh(body: RefreshRequest, auth: Auth) -> dict[str, object]:
        """Exchange a refresh token for a new pair.

        Each refresh token works once; presenting a used one again ends the whole session."""
        return _tokens(await auth.refresh(body.refresh_token))

    @router.post("/logout", response_model=MessageResponse, dependencies=[RateLimit])
    async def logout(
        principal: CurrentPrincipal, auth: Auth, body: LogoutRequest | None = None
    ) -> MessageResponse:
        """Revoke the calling access token and its session's refresh tokens."""
        await auth.logout(principal, body.refresh_token if body else None)
        return MessageResponse(message="Successfully logged out")

    @router.get("/me", response_model=UserPublic, dependencies=[RateLimit])
    async def me(principal: CurrentUser, auth: Auth) -> dict[str, object]:
        """The signed-in user's profile; not for a model-bound API key (403 API_KEY_SCOPE)."""
        return await auth.get_user(principal.user_id)

    return router


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [
        build_router("/api/auth"),
        # Seeds 000 and 001 call the same handlers without the /api prefix.
        build_router("/auth", include_in_schema=False),
        user_routes.router,
    ]
