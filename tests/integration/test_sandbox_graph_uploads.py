"""The Graph emulator's size limits and upload sessions, as Exchange answers them."""

from __future__ import annotations

import base64

import pytest
import requests

from ticket_manager_sandbox.graph import GraphEmulator

SUPPORT = "support@example.com"
TOKENS = {"app-token": {"roles": ["Mail.ReadWrite", "Mail.Send"], "oid": "app-oid"}}
MB = 1_000_000


@pytest.fixture
def graph() -> GraphEmulator:
    return GraphEmulator(token_validator=TOKENS.get, mailboxes=[SUPPORT])


@pytest.fixture
def draft(base, http) -> str:
    created = http.post(f"{base}/users/{SUPPORT}/messages", json={"subject": "Files"})
    assert created.status_code == 201
    return f"{base}/users/{SUPPORT}/messages/{created.json()['id']}"


def file_body(size: int) -> dict:
    content = base64.b64encode(b"x" * size).decode()
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "f.bin",
        "contentBytes": content,
    }


def test_an_attachment_post_of_3_mb_or_more_is_refused(draft, http):
    # "Under 3 MB" in one POST: a 2.9 MB file is added, a 3 MB one is refused.
    assert http.post(f"{draft}/attachments", json=file_body(2_900_000)).status_code == 201
    refused = http.post(f"{draft}/attachments", json=file_body(3 * MB))
    assert refused.status_code == 413
    assert len(http.get(f"{draft}/attachments").json()["value"]) == 1


def test_a_request_over_4_mb_is_refused(draft, http):
    # Any request body over 4 MB is refused before it is read.
    refused = http.post(f"{draft}/attachments", json=file_body(3_200_000))
    assert refused.status_code == 413
    assert refused.json()["error"]["message"] == "The maximum request length supported is 4MB."


def test_an_upload_session_takes_ranges_in_order_without_a_bearer_token(draft, http):
    # createUploadSession, then PUTs of byte ranges to the uploadUrl: 200 with the next
    # expected byte, 201 with a Location at the end; a bearer token or a gap is refused.
    data = bytes(range(256)) * 20_000  # 5.12 MB
    item = {"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": len(data)}}
    session = http.post(f"{draft}/attachments/createUploadSession", json=item)
    assert session.status_code == 201
    assert session.json()["nextExpectedRanges"] == ["0-"]
    url = session.json()["uploadUrl"]

    def put(start: int, end: int, **headers):
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        headers["Content-Type"] = "application/octet-stream"
        return requests.put(url, data=data[start:end], headers=headers, timeout=30)

    assert put(0, 10, Authorization="Bearer app-token").status_code == 401
    first = put(0, 4_000_000)
    assert first.status_code == 200
    assert first.json()["nextExpectedRanges"] == ["4000000"]
    assert put(4_000_001, len(data)).status_code == 416
    last = put(4_000_000, len(data))
    assert last.status_code == 201
    assert "Attachments(" in last.headers["Location"]
    [listed] = http.get(f"{draft}/attachments").json()["value"]
    assert listed["name"] == "big.bin"
    assert base64.b64decode(listed["contentBytes"]) == data


def test_upload_sessions_are_for_3_to_150_mb(draft, http):
    # A file under 3 MB or over 150 MB gets no upload session.
    for size in (2 * MB, 151 * MB):
        item = {"AttachmentItem": {"attachmentType": "file", "name": "f.bin", "size": size}}
        assert http.post(f"{draft}/attachments/createUploadSession", json=item).status_code == 400
