"""Seed 004's files: upload with content-detected type, signed download URL, list, delete."""

from __future__ import annotations

import httpx

from tests.integration.api.accounts import Account

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"


async def test_upload_get_download_list_delete(client: httpx.AsyncClient, alice: Account) -> None:
    # The client lies about the type; the content decides.
    uploaded = await client.post(
        "/api/files/upload", headers=alice.headers, files={"file": ("document.pdf", PDF, "image/png")}
    )
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert (body["filename"], body["size"], body["mime_type"]) == (
        "document.pdf",
        len(PDF),
        "application/pdf",
    )
    download = await client.get(body["url"])
    assert download.status_code == 200 and download.content == PDF

    tampered = await client.get(body["url"].replace("signature=", "signature=0"))
    assert tampered.status_code == 403

    listed = (await client.get("/api/files?limit=50&offset=0", headers=alice.headers)).json()
    assert listed["total"] == 1 and listed["limit"] == 50 and listed["files"][0]["id"] == body["id"]
    detail = await client.get(f"/api/files/{body['id']}", headers=alice.headers)
    assert detail.json()["mime_type"] == "application/pdf"

    deleted = await client.delete(f"/api/files/{body['id']}", headers=alice.headers)
    assert deleted.json() == {"message": "File deleted successfully"}
    assert (await client.get(body["url"])).status_code == 404
    assert (await client.get(f"/api/files/{body['id']}", headers=alice.headers)).status_code == 404


async def test_empty_and_oversized_files(
    client: httpx.AsyncClient, alice: Account, container: object
) -> None:
    empty = await client.post("/api/files/upload", headers=alice.headers, files={"file": ("e.txt", b"")})
    assert empty.status_code == 400 and empty.json()["detail"] == "File is empty"
