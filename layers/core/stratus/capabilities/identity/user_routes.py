"""The signed-in user's profile (seed 004)."""

from __future__ import annotations

from fastapi import APIRouter

from stratus.api.deps import Auth
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.identity.schemas import UserPublic, UserUpdate

router = APIRouter(prefix="/api/users", tags=["users"], route_class=StratusRoute, dependencies=[RateLimit])


@router.get("/me", response_model=UserPublic)
async def read_me(principal: CurrentUser, auth: Auth) -> dict[str, object]:
    """The profile is the account's: a model-bound API key may only call its model (403 API_KEY_SCOPE)."""
    return await auth.get_user(principal.user_id)


@router.put("/me", response_model=UserPublic)
async def update_me(body: UserUpdate, principal: CurrentUser, auth: Auth) -> dict[str, object]:
    """Change name and/or email; an email already in use by another account is refused (400)."""
    changes = body.model_dump(exclude_unset=True)
    if "email" in changes:
        changes["email"] = str(changes["email"])
    return await auth.update_profile(principal.user_id, changes)
