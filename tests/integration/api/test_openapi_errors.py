"""The OpenAPI document describes the one error shape the API sends, for every operation."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
from bson import ObjectId

from tests.integration.api.accounts import Account

ERROR = "#/components/schemas/ErrorResponse"
VALIDATION_ERROR = "#/components/schemas/ValidationErrorResponse"


def _schema_ref(response: dict[str, Any]) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"])


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def _assert_documented(document: dict[str, Any], response: httpx.Response, path: str, method: str) -> None:
    """The body matches the schema the document gives for this operation and status."""
    documented = document["paths"][path][method]["responses"][str(response.status_code)]
    schema = {"$ref": _schema_ref(documented), "components": document["components"]}
    jsonschema.validate(response.json(), schema)


async def test_every_operation_declares_its_errors_in_the_one_shape(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert _schema_ref(responses["500"]) == ERROR, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert _schema_ref(responses["422"]) == VALIDATION_ERROR, (method, path)
            if path.startswith("/api/") and path not in ("/api/auth/register", "/api/auth/login"):
                for status in ("401", "403", "404", "429"):
                    assert _schema_ref(responses[status]) == ERROR, (method, path, status)


async def test_a_422_from_the_domain_has_the_same_detail_list_as_one_from_fastapi(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    # The password's strength is checked by the domain, the email's form by FastAPI.
    weak = await client.post(
        "/api/auth/register", json={"email": "weak@example.com", "password": "12345", "name": "X"}
    )
    malformed = await client.post(
        "/api/auth/register", json={"email": "not-an-email", "password": "securepassword123", "name": "X"}
    )
    for response, field in ((weak, "password"), (malformed, "email")):
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["detail"][0]["loc"][-1] == field
        assert body["details"][0]["field"] == field
        _assert_documented(document, response, "/api/auth/register", "post")
    assert weak.json()["code"] == "WEAK_PASSWORD"
    assert weak.json()["detail"][0]["type"] == "weak_password"


async def test_error_bodies_match_the_document(client: httpx.AsyncClient, alice: Account) -> None:
    document = await _document(client)
    unknown = str(ObjectId())
    cases = [
        (await client.get("/api/datasets"), "/api/datasets", "get", 401),
        (
            await client.get(f"/api/datasets/{unknown}", headers=alice.headers),
            "/api/datasets/{dataset_id}",
            "get",
            404,
        ),
        (
            await client.get("/api/datasets/not-an-id", headers=alice.headers),
            "/api/datasets/{dataset_id}",
            "get",
            422,
        ),
        (
            await client.post(
                "/api/apikeys", content=b"{", headers={**alice.headers, "Content-Type": "application/json"}
            ),
            "/api/apikeys",
            "post",
            400,
        ),
        (
            await client.post(
                "/api/apikeys", content=b"x", headers={**alice.headers, "Content-Type": "text/plain"}
            ),
            "/api/apikeys",
            "post",
            415,
        ),
    ]
    for response, path, method, status in cases:
        assert response.status_code == status, response.text
        _assert_documented(document, response, path, method)
    assert cases[0][0].headers["WWW-Authenticate"] == "Bearer"
