"""The Stratus Python client: `Client` (sync) and `AsyncClient`, over httpx. Importable without the server's
dependencies (FastAPI, pymongo, ...): it needs httpx, and websockets to follow jobs live (without it,
following polls the job's event log).

    from stratus.client import Client

    with Client("http://127.0.0.1:8000") as stratus:
        stratus.login("me@example.com", "password")
        dataset = stratus.upload_dataset("customers.csv", dataset_type="classification")
        job = stratus.train(dataset["id"], epochs=10)
        for message in stratus.follow(job):
            print(message["type"], message["data"])
        model_id = stratus.get_job(job["job_id"])["model_id"]
        print(stratus.predict(model_id, [{"x1": 1.0, "x2": 2.0, "color": "red"}]))
"""

from stratus.client._async import AsyncClient
from stratus.client._core import (
    ApiError,
    AuthenticationError,
    JobFailed,
    RetryPolicy,
    StratusError,
    job_id_of,
)
from stratus.client._sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "JobFailed",
    "RetryPolicy",
    "StratusError",
    "job_id_of",
]
