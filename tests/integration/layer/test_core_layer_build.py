"""The CoreLayer as `sam build` makes it (layers/core/Makefile, the target SAM runs): every module is
shipped compiled for the runtime's Python with hash-based invalidation, so a Lambda importing its
handler from the layer compiles nothing. Built here for this machine's architecture (x86_64 wheels;
the template builds arm64) with a Python 3.12, the Lambda runtime's version."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # pip installs the layer's requirements

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import importlib.machinery, json, sys
compiled = []
original = importlib.machinery.SourceFileLoader.source_to_code
def counting(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = counting
from stratus.handlers.http import http_lambda
app, handler = http_lambda("platform")
layer = [p for p in compiled if p.startswith(sys.argv[1])]
print(json.dumps({"compiled": layer, "stratus": [m for m in sys.modules if m.startswith("stratus")]}))
"""


def _python312() -> str | None:
    candidates = [
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12"))),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                               capture_output=True, text=True, check=False)  # fmt: skip
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_the_layer_ships_bytecode_and_its_handler_imports_without_compiling(tmp_path: Path) -> None:
    python = _python312()
    if python is None:
        pytest.skip("no Python 3.12 (the Lambda runtime's version) on this machine")
    built = subprocess.run(
        ["make", "-C", str(ROOT / "layers/core"), "build-CoreLayer", f"ARTIFACTS_DIR={tmp_path}",
         f"PYTHON={python}", "PLATFORM=manylinux2014_x86_64"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    site = tmp_path / "python"
    assert (site / "stratus" / "capabilities" / "console" / "templates").is_dir()  # package data too
    assert not list((site / "stratus").rglob("*.cpython-311.pyc"))  # no stale caches of the source tree
    header = (site / "stratus" / "__pycache__" / "settings.cpython-312.pyc").read_bytes()[4:8]
    assert int.from_bytes(header, "little") == 0b01  # hash-based, not checked against the source

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1",
           "STRATUS_RUNTIME": "aws", "STRATUS_ENV": "development", "AWS_DEFAULT_REGION": "us-east-1",
           "MONGODB_URI": "mongodb://localhost:1/?serverSelectionTimeoutMS=100",
           "STRATUS_ARTIFACTS_BUCKET": "b", "STRATUS_EVENT_BUS_NAME": "b", "STRATUS_JOB_BACKEND": "sagemaker",
           "STRATUS_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    imported = subprocess.run([python, "-c", CHILD, str(site)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, check=False, timeout=120)  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]
    report = json.loads(imported.stdout.strip().splitlines()[-1])
    assert len(report["stratus"]) > 20
    assert report["compiled"] == []
