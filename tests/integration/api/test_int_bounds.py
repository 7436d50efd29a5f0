"""Integers a client sends are bounded before they reach MongoDB, which stores int64 (and takes int64
skip/limit): a larger one is a 422 naming the field, never a 500 from the driver.

List endpoints and integer fields are read from the OpenAPI document, so new ones are covered too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from stratus.api.pagination import MAX_OFFSET, MAX_PAGE, MAX_PAGE_SIZE
from stratus.schemas.common import INT64_MAX
from tests.integration.api.accounts import Account

Schema = dict[str, Any]
TOO_BIG = {"offset": INT64_MAX + 1, "page": 10**19}
LARGEST = {"offset": MAX_OFFSET, "page": MAX_PAGE}
# Seed 001's paged dataset list is the one list route left out of the OpenAPI document.
HIDDEN_LISTS = [("/datasets", "page")]


def _document(app: FastAPI) -> Schema:
    document: Schema = app.openapi()
    return document


def _paged_lists(app: FastAPI) -> list[tuple[str, str]]:
    """(path, parameter) for every GET with an `offset` or `page` query parameter."""
    found = [
        (path, parameter["name"])
        for path, operations in _document(app)["paths"].items()
        for method, operation in operations.items()
        if method == "get"
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] in TOO_BIG
    ]
    return found + HIDDEN_LISTS


def _url(path: str) -> str:
    # Query parameters are validated before the handler looks a resource up: any well-formed id will do.
    return re.sub(r"\{[^}]+\}", str(ObjectId()), path)


async def test_the_enumeration_finds_the_lists(app: FastAPI) -> None:
    lists = set(_paged_lists(app))
    for path in (
        "/api/models",
        "/api/datasets",
        "/api/files",
        "/api/apikeys",
        "/api/webhooks",
        "/api/finetune",
    ):
        assert {(path, "offset"), (path, "page")} <= lists
    assert {("/models", "page"), ("/api/datasets/{dataset_id}/rows", "offset")} <= lists


async def test_every_list_refuses_a_skip_beyond_int64(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    for path, parameter in _paged_lists(app):
        response = await client.get(_url(path), headers=alice.headers, params={parameter: TOO_BIG[parameter]})
        assert response.status_code == 422, (path, parameter, response.text)
        assert [d["field"] for d in response.json()["details"]] == [parameter], (path, response.text)


async def test_every_list_answers_at_its_largest_accepted_skip(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    # The bounds are tight enough that the largest accepted value still reaches the database safely.
    for path, parameter in _paged_lists(app):
        params = {parameter: LARGEST[parameter], "limit": MAX_PAGE_SIZE}
        response = await client.get(_url(path), headers=alice.headers, params=params)
        # A path naming a resource answers 404 (the id is made up); a plain list answers an empty page.
        assert response.status_code == (404 if "{" in path else 200), (path, parameter, response.text)


def _integers(document: Schema, schema: Schema, where: str, seen: set[str]) -> Iterator[tuple[str, Schema]]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _integers(document, document["components"]["schemas"][name], where, seen | {name})
        return
    if schema.get("type") == "integer":
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for variant in schema.get(key, []):
            yield from _integers(document, variant, where, seen)
    for name, prop in schema.get("properties", {}).items():
        yield from _integers(document, prop, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _integers(document, schema[key], f"{where}[]", seen)


def _client_integers(app: FastAPI) -> Iterator[tuple[str, Schema]]:
    """Every integer a client can send: query, path and header parameters, and request bodies."""
    document = _document(app)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from _integers(document, parameter["schema"], f"{where} {parameter['name']}", set())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from _integers(document, content["schema"], f"{where} body", set())


def _within_int64(schema: Schema) -> bool:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    # FastAPI writes bounds as doubles (2**63 - 1 becomes 9.223372036854776e18): compare as doubles.
    return low is not None and high is not None and low >= -float(INT64_MAX) and high <= float(INT64_MAX)


async def test_every_integer_a_client_sends_is_bounded_to_int64(app: FastAPI) -> None:
    integers = list(_client_integers(app))
    assert len(integers) > 20  # the walk reaches into bodies (hyperparameters, pagination...)
    unbounded = [where for where, schema in integers if not _within_int64(schema)]
    assert unbounded == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/training/start", {"dataset_id": "0" * 24, "target": "b", "seed": 2**64}, "seed"),
        ("/training/start", {"dataset_id": "0" * 24, "target": "b", "seed": 2**32}, "seed"),
        ("/api/training/start", {"dataset_id": "0" * 24, "save_steps": 2**64}, "save_steps"),
        ("/api/datasets/uploads", {"filename": "big.csv", "size": 2**64}, "size"),
        ("/api/models", {"name": "m", "base_model": "b", "accuracy": 10**400}, "accuracy"),
    ],
)
async def test_a_body_integer_beyond_its_bound_is_422_naming_it(
    client: httpx.AsyncClient, alice: Account, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
