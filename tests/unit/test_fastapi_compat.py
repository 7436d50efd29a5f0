"""stratus.api.fastapi_compat: FastAPI's functions it replaces still exist (else the saving is silently
gone), and the replacements answer as FastAPI's own do."""

from __future__ import annotations

import subprocess
import sys
import warnings

from fastapi import Request, encoders
from fastapi._compat import shared
from fastapi.dependencies import utils

from stratus.api import fastapi_compat
from stratus.api.deps import get_jobs


def test_install_replaces_the_probes_and_the_signature_reader_once() -> None:
    fastapi_compat.install()
    patched = (
        utils.get_typed_signature,
        shared.is_pydantic_v1_model_class,
        shared.is_pydantic_v1_model_instance,
        getattr(encoders, "is_pydantic_v1_model_instance"),  # noqa: B009 (not re-exported for mypy)
    )
    assert all(getattr(f, "_stratus_patched", False) for f in patched)
    fastapi_compat.install()  # idempotent: nothing is wrapped twice
    assert utils.get_typed_signature is patched[0]


def test_signatures_are_read_once_and_typed() -> None:
    fastapi_compat.install()
    first = utils.get_typed_signature(get_jobs)
    assert utils.get_typed_signature(get_jobs) is first
    # Typed as FastAPI types them: string annotations evaluated.
    (request,) = first.parameters.values()
    assert request.name == "request" and request.annotation is Request


def test_v1_models_are_still_refused_once_pydantic_v1_is_imported() -> None:
    probe = """
import sys, warnings
from stratus.api import fastapi_compat
fastapi_compat.install()
from fastapi._compat import shared
import pydantic
class V2(pydantic.BaseModel):
    x: int
assert not shared.annotation_is_pydantic_v1(V2) and "pydantic.v1" not in sys.modules
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydantic import v1
class V1(v1.BaseModel):
    x: int
assert shared.annotation_is_pydantic_v1(V1) and shared.is_pydantic_v1_model_instance(V1(x=1))
print("ok")
"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr
