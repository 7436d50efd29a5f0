"""POST /models/{id}/predict for image models: what the API refuses before anything reaches the
inference worker (the predictions themselves are in tests/e2e/test_image_training_flow.py)."""

from __future__ import annotations

import base64
import random

import httpx

from stratus.capabilities.training import images
from tests.integration.api.accounts import Account
from tests.synthetic_images import png, shape_image


async def _model(client: httpx.AsyncClient, account: Account, objective: str | None) -> str:
    body = {"name": f"m-{objective}", "base_model": "efficientnet-lite0"}
    body |= {"objective": objective} if objective else {}
    response = await client.post("/api/models", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


async def test_image_inputs_are_checked_before_the_worker(client: httpx.AsyncClient, alice: Account) -> None:
    model = await _model(client, alice, "image_classification")
    path = f"/models/{model}/predict"
    picture = png(shape_image("circle", random.Random(1)))
    oversized = base64.b64encode(b"\x89PNG" + b"\x00" * images.MAX_PREDICT_IMAGE_BYTES).decode()
    cases = [
        ({"json": {"input": [1, 2]}}, 422, "inputs.0"),
        ({"json": {"input": "%%% not base64"}}, 422, "inputs.0"),
        ({"json": {"inputs": []}}, 422, "image"),
        ({"json": {"input": oversized}}, 413, None),
        ({"files": {"images": ("big.png", b"\x00" * (images.MAX_PREDICT_IMAGE_BYTES + 1))}}, 413, None),
        (
            {"files": [("images", (f"{i}.png", picture)) for i in range(images.MAX_PREDICT_IMAGES + 1)]},
            422,
            "images",
        ),
    ]
    for request, status, field in cases:
        response = await client.post(path, headers=alice.headers, **request)  # type: ignore[arg-type]
        assert response.status_code == status, (request.keys(), response.text)
        if field:
            assert response.json()["details"][0]["field"] == field
    # A valid image gets past the checks: this record has no trained weights.
    valid = await client.post(path, headers=alice.headers, files={"image": ("c.png", picture)})
    assert valid.status_code == 409 and valid.json()["code"] == "MODEL_NOT_PREDICTABLE"


async def test_bodies_by_model_kind_and_media_type(client: httpx.AsyncClient, alice: Account) -> None:
    tabular = await _model(client, alice, None)
    picture = png(shape_image("square", random.Random(2)))
    refused = await client.post(
        f"/models/{tabular}/predict", headers=alice.headers, files={"image": ("s.png", picture)}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "NOT_AN_IMAGE_MODEL"
    text = await client.post(
        f"/models/{tabular}/predict", headers={**alice.headers, "Content-Type": "text/plain"}, content=b"1,2"
    )
    assert text.status_code == 415
    malformed = await client.post(
        f"/models/{tabular}/predict",
        headers={**alice.headers, "Content-Type": "application/json"},
        content=b"{",
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "MALFORMED_JSON"
    unknown = await client.post(f"/models/{tabular}/predict", headers=alice.headers, json={"rows": [1]})
    assert unknown.status_code == 422 and unknown.json()["details"][0]["field"] == "rows"
