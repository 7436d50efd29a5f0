"""Task requests that are refused before any worker is involved, and the built-in model registry."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.accounts import Account


@pytest.mark.parametrize(
    ("path", "body", "status", "field_or_code"),
    [
        ("/tasks/classification", {"text": "   "}, 422, "text"),
        ("/tasks/ner", {}, 422, "text"),
        ("/tasks/qa", {"question": "What is BERT?"}, 422, "context"),
        ("/tasks/summarization", {"text": "x", "max_length": 10, "min_length": 50}, 422, "min_length"),
        ("/tasks/embeddings", {"text": []}, 422, "text"),
        ("/tasks/generation", {"prompt": "hi", "temperature": 5}, 422, "temperature"),
        (
            "/api/tasks/ner",
            {"text": "John", "model_name": "dbmdz/bert-large-cased-finetuned-conll03-english"},
            404,
            "MODEL_NOT_FOUND",
        ),
        (
            "/api/tasks/ner",
            {"text": "John", "model_name": "HuggingFaceTB/SmolLM2-135M-Instruct"},
            422,
            "WRONG_TASK",
        ),
    ],
)
async def test_bad_task_requests(
    client: httpx.AsyncClient,
    alice: Account,
    path: str,
    body: dict[str, object],
    status: int,
    field_or_code: str,
) -> None:
    response = await client.post(path, headers=alice.headers, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    if status == 404:
        assert error["code"] == field_or_code
        assert "spacy/en_core_web_sm" in error["details"]["available"]
    elif error.get("code") == "WRONG_TASK":
        assert error["code"] == field_or_code
    else:
        assert field_or_code in {d["field"] for d in error["details"]}
    # Refused requests do not count against the quota.
    assert (await client.get("/api/auth/me", headers=alice.headers)).json()["queries_used"] == 0


async def test_model_info_and_builtin_listing(client: httpx.AsyncClient, alice: Account) -> None:
    info = await client.get("/models/sentence-transformers/all-MiniLM-L6-v2/info", headers=alice.headers)
    assert info.status_code == 200
    body = info.json()
    assert body["tasks"] == ["embeddings", "classification"] and body["dimension"] == 384
    assert body["max_sequence_length"] == 256 and body["status"] == "available"
    ner = (await client.get("/models/en_core_web_sm/info", headers=alice.headers)).json()
    assert {"PERSON", "ORG", "GPE"} <= set(ner["labels"])
    missing = await client.get("/models/distilbert-base-uncased/info", headers=alice.headers)
    assert missing.status_code == 404 and "available" in missing.json()["details"]

    builtin = (await client.get("/models?source=builtin", headers=alice.headers)).json()
    assert builtin["total"] == 8  # 3 NLP models, 5 recognition and audio models
    qa = (await client.get("/models?source=builtin&task=qa", headers=alice.headers)).json()
    assert [m["name"] for m in qa["models"]] == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
