"""Who is calling, apart from the service that resolves it: every router's authentication dependency
(stratus.api.security) names it, and importing it must not import the token and password libraries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from bson import ObjectId

from stratus.errors import Forbidden


class Principal(NamedTuple):
    """Who is calling: a user, through a session token or an API key (possibly bound to one model)."""

    user_id: ObjectId
    via: Literal["token", "api_key"]
    jti: str | None = None
    family: str | None = None
    token_expires_at: datetime | None = None
    api_key_id: str | None = None
    model_id: str | None = None

    @property
    def is_model_scoped(self) -> bool:
        return self.model_id is not None

    def require_unscoped(self) -> None:
        if self.model_id is not None:
            raise Forbidden(f"This API key may only call model {self.model_id}", code="API_KEY_SCOPE")

    def require_model(self, model_id: str) -> None:
        if self.model_id is not None and self.model_id != model_id:
            raise Forbidden(f"This API key may only call model {self.model_id}", code="API_KEY_SCOPE")
