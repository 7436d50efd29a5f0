"""Authentication and rate-limit dependencies, as Annotated aliases routers declare.

`CurrentUser`: a signed-in user, or an API key that is not bound to a model.
`CurrentPrincipal`: also admits model-bound API keys; endpoints that serve one model check the binding.
`RateLimit`: per API key or user for a credential that checks out, else per IP. `AnonymousRateLimit`: per IP
always, for the endpoints that open sessions (register, login, refresh).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from stratus.api.deps import AppSettings, Auth, Limiter
from stratus.capabilities.identity.principal import Principal
from stratus.errors import Unauthenticated
from stratus.observability.context import user_id_var
from stratus.security import api_keys
from stratus.services.rate_limit import Limit, RateLimiter
from stratus.settings import Settings


def bearer_credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def client_ip(request: Request) -> str:
    # Behind API Gateway, Mangum fills `client` from requestContext.http.sourceIp; X-Forwarded-For is
    # client-controlled and therefore not trusted here.
    return request.client.host if request.client else "unknown"


async def _principal(request: Request, auth: Auth) -> Principal:
    credential = bearer_credential(request)
    if credential is None:
        raise Unauthenticated("Authentication required", code="AUTHENTICATION_REQUIRED")
    cached_key = getattr(request.state, "api_key_principal", None)
    cached_claims = getattr(request.state, "access_claims", None)
    principal: Principal
    if cached_key is not None and cached_key[0] == credential:
        # The rate-limit dependency already looked this key up for this request.
        principal = cached_key[1]
    elif cached_claims is not None and cached_claims[0] == credential:
        # ... or already decoded and verified this token; its revocation is checked here.
        principal = await auth.authenticate_claims(cached_claims[1])
    else:
        principal = await auth.authenticate(credential)
    user_id = str(principal.user_id)
    user_id_var.set(user_id)
    request.state.user_id = user_id
    return principal


async def _unscoped_principal(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require_unscoped()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
CurrentUser = Annotated[Principal, Depends(_unscoped_principal)]


async def _caller_identity(request: Request, auth: Auth, settings: AppSettings) -> tuple[str, Limit, bool]:
    """Who the limit applies to: an API key that exists, the user of a valid access token, or else the IP.

    Only a credential that checks out earns its own bucket; anything else (no credential, a made-up `sk-`
    value, an expired or forged token) counts against the caller's IP, so inventing credentials cannot buy
    more requests. The last item says whether the bucket is a user's, counted in batches (`hit_batched`);
    the per-IP bucket, a guard against anonymous abuse, is counted exactly. An API key costs one indexed read; the principal it yields is kept on the request for
    the authentication dependency, so the request reads the key once. Access tokens are checked without a
    database read (their revocation is checked where they authenticate); their verified claims are kept
    on the request the same way, so the token is decoded once."""
    user_limit = Limit(settings.rate_limit_user, settings.rate_limit_user_window_s)
    credential = bearer_credential(request)
    if credential and credential.startswith(api_keys.PREFIX):
        if api_keys.looks_like_key(credential):
            try:
                principal = await auth.authenticate_api_key(credential)
            except Unauthenticated:
                pass
            else:
                request.state.api_key_principal = (credential, principal)
                return f"rl:key:{api_keys.digest(credential)[:24]}", user_limit, True
    elif credential:
        claims = auth.access_claims(credential)
        if claims is not None:
            request.state.access_claims = (credential, claims)
            return f"rl:user:{claims.sub}", user_limit, True
    return _ip_identity(request, settings)


def _ip_identity(request: Request, settings: Settings) -> tuple[str, Limit, bool]:
    limit = Limit(settings.rate_limit_anonymous, settings.rate_limit_anonymous_window_s)
    return f"rl:ip:{client_ip(request)}", limit, False


async def _apply(request: Request, limiter: RateLimiter, key: str, limit: Limit, batched: bool) -> None:
    decision = await (limiter.hit_batched(key, limit) if batched else limiter.hit(key, limit))
    # The middleware copies these onto the response, whatever its status.
    request.state.rate_limit_headers = decision.headers()
    limiter.enforce(decision)


async def enforce_rate_limit(request: Request, auth: Auth, limiter: Limiter, settings: AppSettings) -> None:
    await _apply(request, limiter, *await _caller_identity(request, auth, settings))


async def enforce_anonymous_rate_limit(request: Request, limiter: Limiter, settings: AppSettings) -> None:
    """For endpoints anyone may call (register, login, refresh): always the IP's bucket, whatever
    credential the request carries, so that holding one account's token does not lift the per-IP limit on
    making accounts or trying passwords."""
    await _apply(request, limiter, *_ip_identity(request, settings))


RateLimit = Depends(enforce_rate_limit)
AnonymousRateLimit = Depends(enforce_anonymous_rate_limit)
