"""What every job backend hands the worker container, so one worker entrypoint runs on all of them."""

from __future__ import annotations

import json

from stratus.ports.jobs import JobSpec

# The detail-type of the state events the local backend emits (SageMaker and Batch emit their own).
JOB_STATE_CHANGE = "Stratus Job State Change"


def job_environment(spec: JobSpec) -> dict[str, str]:
    """The worker's environment: `spec.env` plus the STRATUS_JOB_* variables, which always win."""
    return {
        **spec.env,
        "STRATUS_JOB_ID": spec.job_id,
        "STRATUS_JOB_KIND": spec.kind,
        "STRATUS_JOB_PARAMS": json.dumps(spec.params, separators=(",", ":"), sort_keys=True),
        # SageMaker uploads /opt/ml/model to its OutputDataConfig itself; Batch and local workers need the prefix.
        "STRATUS_OUTPUT_PREFIX": spec.output_prefix,
    }
