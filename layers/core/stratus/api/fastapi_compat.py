"""Two cold-start savings in FastAPI, installed by `create_app` before any router is imported (FastAPI
builds a route when it is declared). Together they are about a fifth of what an HTTP Lambda's cold
import pays above the bare fastapi+mangum+pymongo+boto3 baseline (bench/cold_import.py).

1. FastAPI reads the typed signature of a dependency again for every route that uses it, evaluating its
string annotations each time (and twice when an annotation names a type-checking-only import): every
route here uses the same authentication, rate-limit and service providers. A function's signature does
not change, so it is read once per function.

2. FastAPI asks of every route parameter and response model, when the route is built, whether it is a
`pydantic.v1` model, and of every response it encodes whether it is a `pydantic.v1` instance, only to
refuse one (v1 models are no longer supported). To answer, it imports `pydantic.v1`: ~30 ms of an HTTP
Lambda's cold start, for a module nothing here uses. No object can be a v1 model unless `pydantic.v1` has
been imported, so the probes answer False until it is, and FastAPI's own answer after.

If a FastAPI release renames these functions, nothing is patched and FastAPI behaves as it ships
(tests/unit/test_cold_import.py notices pydantic.v1; tests/unit/test_fastapi_compat.py both).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

_PATCHED = "_stratus_patched"


def _only_once_imported(probe: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def probe_if_imported(obj: Any) -> bool:
        return "pydantic.v1" in sys.modules and probe(obj)

    setattr(probe_if_imported, _PATCHED, True)
    return probe_if_imported


def _once_per_callable(read: Callable[[Any], inspect.Signature]) -> Callable[[Any], inspect.Signature]:
    signatures: dict[Any, inspect.Signature] = {}

    def typed_signature(call: Any) -> inspect.Signature:
        try:
            return signatures[call]
        except KeyError:
            signature = signatures[call] = read(call)
            return signature
        except TypeError:  # an unhashable callable: read it every time, as FastAPI does
            return read(call)

    setattr(typed_signature, _PATCHED, True)
    return typed_signature


def install() -> None:
    from fastapi import encoders
    from fastapi._compat import shared
    from fastapi.dependencies import utils

    typed = getattr(utils, "get_typed_signature", None)
    if callable(typed) and not getattr(typed, _PATCHED, False):
        utils.get_typed_signature = _once_per_callable(typed)  # type: ignore[assignment]

    for module, name in (
        (shared, "is_pydantic_v1_model_class"),  # called by annotation_is_pydantic_v1 through the module
        (shared, "is_pydantic_v1_model_instance"),
        (encoders, "is_pydantic_v1_model_instance"),  # imported by name into the encoder
    ):
        probe = getattr(module, name, None)
        if callable(probe) and not getattr(probe, _PATCHED, False):
            setattr(module, name, _only_once_imported(probe))
