"""The Stratus container job: one entrypoint (`python -m stratus_worker`) for every job backend.

The local backend runs it as a subprocess on CPU; SageMaker and AWS Batch run it in the worker image on
GPU. The job comes from the environment (`STRATUS_JOB_*`, see `stratus.adapters.job_env`), progress and
the result leave as events (`events`), artifacts go to object storage (`storage`).
"""
