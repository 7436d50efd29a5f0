"""The base of the API's request and response models.

`defer_build`: a model's validator and serializer are built when first needed, not when its class is
defined. FastAPI builds what each route needs when the route is declared (from the model's fields), so a
model's own validator is only built if code calls it (`model_validate`, `model_dump`, the constructor).
That halves the schema work an HTTP Lambda's cold import does (bench/cold_import.py), and a group's
Lambda never builds the models only other groups' routes use.

Schema modules do not use `from __future__ import annotations`: with it, pydantic compiles and evaluates
every field's annotation string when the class is defined (a fifth of a deferred model's cost); without
it the interpreter has already evaluated them. A method returning its own class says `Self`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(defer_build=True)
