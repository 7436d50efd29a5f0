"""ObjectId handling at the edge: ids travel as 24-hex strings, live as ObjectIds in the database."""

from __future__ import annotations

from typing import Annotated, Any

from bson import ObjectId
from pydantic import BeforeValidator, StringConstraints

from stratus.errors import NotFound

OBJECT_ID_PATTERN = r"^[0-9a-fA-F]{24}$"

# A path or body field that must look like an ObjectId: a malformed one is a 422 naming the field.
ObjectIdStr = Annotated[str, StringConstraints(pattern=OBJECT_ID_PATTERN)]


def _stringify(value: Any) -> Any:
    return str(value) if isinstance(value, ObjectId) else value


# A field read back from the database: ObjectId in, 24-hex string out.
IdOut = Annotated[str, BeforeValidator(_stringify)]


def oid(value: str | ObjectId, *, what: str = "Resource") -> ObjectId:
    """Parse an id that has already passed validation; anything else cannot exist, so it is not found."""
    if isinstance(value, ObjectId):
        return value
    if not ObjectId.is_valid(value):
        raise NotFound(f"{what} not found")
    return ObjectId(value)
