"""What every job backend hands the worker container, so one worker entrypoint runs on all of them."""

from __future__ import annotations

import json

from stratus.ports.jobs import JobSpec

# The detail-type of the state events the local backend emits (SageMaker and Batch emit their own).
JOB_STATE_CHANGE = "Stratus Job State Change"


# SageMaker caps each environment value at 512 characters. Longer params travel by reference: the
# dispatcher stores them at PARAMS_OBJECT under the output prefix and the worker reads them from there.
MAX_INLINE_PARAMS = 512
PARAMS_OBJECT = "params.json"


def params_key(spec: JobSpec) -> str:
    return f"{spec.output_prefix.rstrip('/')}/{PARAMS_OBJECT}"


def encode_params(spec: JobSpec) -> str:
    return json.dumps(spec.params, separators=(",", ":"), sort_keys=True)


def job_environment(spec: JobSpec) -> dict[str, str]:
    """The worker's environment: `spec.env` plus the STRATUS_JOB_* variables, which always win."""
    env = {
        **spec.env,
        "STRATUS_JOB_ID": spec.job_id,
        "STRATUS_JOB_KIND": spec.kind,
        # SageMaker uploads /opt/ml/model to its OutputDataConfig itself; Batch and local workers need the prefix.
        "STRATUS_OUTPUT_PREFIX": spec.output_prefix,
    }
    encoded = encode_params(spec)
    if len(encoded) <= MAX_INLINE_PARAMS:
        env["STRATUS_JOB_PARAMS"] = encoded
    else:
        env["STRATUS_JOB_PARAMS_KEY"] = params_key(spec)
    return env
