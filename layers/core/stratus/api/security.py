"""Authentication and rate-limit dependencies, as Annotated aliases routers declare.

`CurrentUser`: a signed-in user, or an API key that is not bound to a model.
`CurrentPrincipal`: also admits model-bound API keys; endpoints that serve one model check the binding.
"""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Depends, Request

from stratus.api.deps import ContainerDep
from stratus.errors import Unauthenticated
from stratus.observability.context import user_id_var
from stratus.security import api_keys
from stratus.services.auth import Principal
from stratus.services.rate_limit import Limit


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


async def _principal(request: Request, container: ContainerDep) -> Principal:
    credential = bearer_credential(request)
    if credential is None:
        raise Unauthenticated("Authentication required", code="AUTHENTICATION_REQUIRED")
    principal = await container.auth.authenticate(credential)
    user_id = str(principal.user_id)
    user_id_var.set(user_id)
    request.state.user_id = user_id
    return principal


async def _unscoped_principal(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require_unscoped()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
CurrentUser = Annotated[Principal, Depends(_unscoped_principal)]


def _caller_identity(request: Request, container: ContainerDep) -> tuple[str, Limit]:
    """Who the limit applies to, without a database read: a JWT's subject, an API key's digest, or the IP."""
    settings = container.settings
    user_limit = Limit(settings.rate_limit_user, settings.rate_limit_user_window_s)
    credential = bearer_credential(request)
    if credential and credential.startswith(api_keys.PREFIX):
        return f"rl:key:{api_keys.digest(credential)[:24]}", user_limit
    if credential:
        try:
            subject = jwt.decode(
                credential,
                settings.jwt_secret.get_secret_value(),
                algorithms=["HS256"],
                options={"verify_exp": False},
            ).get("sub")
        except jwt.PyJWTError:
            subject = None
        if subject:
            return f"rl:user:{subject}", user_limit
    return f"rl:ip:{client_ip(request)}", Limit(
        settings.rate_limit_anonymous, settings.rate_limit_anonymous_window_s
    )


async def enforce_rate_limit(request: Request, container: ContainerDep) -> None:
    key, limit = _caller_identity(request, container)
    decision = await container.rate_limiter.hit(key, limit)
    # The middleware copies these onto the response, whatever its status.
    request.state.rate_limit_headers = decision.headers()
    container.rate_limiter.enforce(decision)


RateLimit = Depends(enforce_rate_limit)
