"""The foundation's HTTP surface: health, readiness, metrics, OpenAPI, and the one error shape."""

from __future__ import annotations

import httpx
import pytest
import yaml
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from stratus.api.routing import StratusRoute
from stratus.db.ids import ObjectIdStr

ERROR_FIELDS = {"detail", "error", "message", "code", "status_code", "request_id"}


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() >= ERROR_FIELDS
    assert body["status_code"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_welcome_message_matches_seed_001(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json()["message"] == "Welcome to the Deep Learning Platform"


async def test_health_reports_version_and_uptime(client: httpx.AsyncClient) -> None:
    body = (await client.get("/health")).json()
    assert body["status"] == "healthy"
    assert body["version"]
    assert isinstance(body["uptime"], int)
    assert body["timestamp"].endswith("Z")


async def test_health_db_reports_connected_with_latency(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/db")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "connected"
    assert body["latency_ms"] >= 0


async def test_ready_lists_each_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "services": {"database": "connected", "storage": "connected", "queue": "connected"},
    }


async def test_metrics_count_requests_per_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get("/health")
    text = (await client.get("/metrics")).text
    assert 'stratus_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert 'stratus_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}' in text


async def test_openapi_is_served_as_json_yaml_and_docs(client: httpx.AsyncClient) -> None:
    as_json = (await client.get("/openapi.json")).json()
    as_yaml = yaml.safe_load((await client.get("/openapi.yaml")).text)
    assert as_json == as_yaml
    assert "/health/db" in as_json["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "trace-123"})
    assert given.headers["x-request-id"] == "trace-123"
    generated = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32


async def test_unknown_route_is_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    body = assert_error_shape(await client.get("/no/such/route"), 404)
    assert body["error"] == "not_found"
    assert body["code"] == "RESOURCE_NOT_FOUND"


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    assert_error_shape(await client.delete("/health"), 405)


class _Probe(BaseModel):
    name: str = Field(min_length=1)
    rate: float = Field(gt=0, lt=1)


@pytest.fixture
async def probe_client(app: FastAPI) -> httpx.AsyncClient:
    """The app plus a router that exercises body parsing and failure paths the real routers share."""
    router = APIRouter(route_class=StratusRoute)

    @router.post("/_probe/{item_id}")
    async def probe(item_id: ObjectIdStr, body: _Probe) -> dict[str, str]:
        return {"item_id": item_id, "name": body.name}

    @router.get("/_boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_malformed_json_is_400(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/_probe/507f1f77bcf86cd799439011", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    body = assert_error_shape(response, 400)
    assert body["code"] == "MALFORMED_JSON"


async def test_wrong_content_type_is_415(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/_probe/507f1f77bcf86cd799439011", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    body = assert_error_shape(response, 415)
    assert "application/json" in str(body["message"])


async def test_validation_error_names_the_field(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/_probe/507f1f77bcf86cd799439011", json={"name": "x", "rate": 3})
    body = assert_error_shape(response, 422)
    assert body["details"] == [{"field": "rate", "message": "Input should be less than 1"}]
    assert body["detail"][0]["loc"] == ["body", "rate"]  # seed 003's FastAPI-style list
    assert "rate" in str(body["message"])


async def test_bad_object_id_in_path_is_422_naming_it(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/_probe/not-an-id", json={"name": "x", "rate": 0.5})
    body = assert_error_shape(response, 422)
    assert body["details"][0]["field"] == "item_id"


async def test_unexpected_error_is_500_without_internals(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.get("/_boom")
    body = assert_error_shape(response, 500)
    assert body["error"] == "internal_error"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
