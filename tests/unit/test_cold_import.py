"""The API Lambda's cold start: importing functions/api/app.py (which builds the whole container) must not
pull in any heavy ML or data library. Runs in a fresh interpreter, as a Lambda container would, with
STRATUS_RUNTIME=aws and fake AWS resource names: boto3 clients and the MongoDB client connect lazily, so
nothing is contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API_DIR = ROOT / "functions" / "api"

# Never imported by the API Lambda: they belong in the worker container image (or nowhere near a request).
HEAVY_MODULES = (
    "torch",
    "transformers",
    "diffusers",
    "sagemaker",
    "pandas",
    "numpy",
    "scipy",
    "sklearn",
    "pyarrow",
    "PIL",
    "tensorflow",
    "jax",
)

# The minimum Settings needs for runtime "aws" (see Settings._refuse_default_secrets), plus the queue that
# composition.build_aws_ports requires. STRATUS_ENV=development accepts the embedded default secrets, so no
# Secrets Manager ARN is set and nothing is fetched at import.
AWS_ENV = {
    "STRATUS_RUNTIME": "aws",
    "STRATUS_ENV": "development",
    "STRATUS_LOG_LEVEL": "WARNING",
    "STRATUS_STATE_DIR": "/tmp/stratus-cold-import-test",
    "MONGODB_URI": "mongodb://localhost:1/?serverSelectionTimeoutMS=100",
    "STRATUS_ARTIFACTS_BUCKET": "stratus-test-artifacts",
    "STRATUS_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stratus-test-jobs",
    "STRATUS_EVENT_BUS_NAME": "stratus-test",
    "STRATUS_JOB_BACKEND": "sagemaker",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}

PROBE = f"""
import json, sys, time
sys.path.insert(0, {str(API_DIR)!r})
started = time.perf_counter()
import app
elapsed = time.perf_counter() - started
from mangum import Mangum
print(json.dumps({{
    "import_s": elapsed,
    "handler_is_mangum": isinstance(app.handler, Mangum),
    "lifespan": getattr(app.handler, "lifespan", None),
    "heavy": sorted(m for m in {list(HEAVY_MODULES)!r} if m in sys.modules),
    "modules": len(sys.modules),
}}))
"""


def _clean_env() -> dict[str, str]:
    """The test's own environment minus anything Settings or boto3 would read, plus the AWS settings."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(AWS_ENV)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_api_handler_cold_import_pulls_in_no_heavy_library(
    record_property: Callable[[str, object], None],
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"importing functions/api/app.py failed:\n{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    record_property("cold_import_s", round(report["import_s"], 3))
    record_property("modules_loaded", report["modules"])
    print(f"\nfunctions/api/app.py cold import: {report['import_s']:.3f} s, {report['modules']} modules")

    assert report["handler_is_mangum"], "app.handler must be the Mangum adapter"
    # With lifespan on, Mangum would run the app's startup and shutdown around every invocation.
    assert report["lifespan"] == "off"
    assert report["heavy"] == [], f"the API Lambda imports heavy libraries: {report['heavy']}"
