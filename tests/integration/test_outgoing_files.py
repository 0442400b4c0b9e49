"""Files of Jira comments reach the customer by email: large ones too, each once, never lost."""

from __future__ import annotations

import os

import pytest

from ticket_manager.extensions import db
from ticket_manager.models import OutboundMessage, OutboundState

REQUESTER = "carol.customer@example.com"
MB = 1_000_000


@pytest.fixture
def harness(make_pipeline, sandbox):
    """The pipeline, with the requester's own mailbox emulated so that what arrives is seen."""
    sandbox.graph.add_mailbox(REQUESTER)
    built = make_pipeline()
    built.deliver(sender=f"Carol <{REQUESTER}>")
    built.run_once()
    return built


def comment_with_file(harness, name: str, data: bytes, text: str = "See the file.") -> str:
    """An agent attaches a file in Jira and shows it in a comment (ADF media)."""
    jira = harness.sandbox.jira
    [issue] = harness.issues()
    stored = jira.store.find_issue(issue["key"])
    agent = jira.store.find_user("alice.agent@example.com")
    jira.store.add_attachment(stored, agent["id"], name, data, "application/pdf", jira.clock())
    media = {"type": "media", "attrs": {"type": "file", "id": f"m-{name}", "alt": name}}
    body = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}]},
            {"type": "mediaSingle", "content": [media]},
        ],
    }
    jira.store.add_comment(stored, agent["id"], body, jira.clock())
    return issue["key"]


def received(harness, text: str) -> list[tuple[str, bytes]]:
    """The files of each email with ``text`` in the requester's inbox, as Graph gives them."""
    from ticket_manager.pipeline.worker import Services

    with harness.app.app_context():
        graph = Services(harness.settings).graph
        found = []
        for item in graph.list_messages(REQUESTER, fields=("id", "body")):
            if text in item["body"]["content"]:
                files = graph.list_attachments(REQUESTER, item["id"])
                found.append([(f.name, f.content) for f in files])
        return found


def outbound_rows(harness) -> list[OutboundMessage]:
    with harness.app.app_context():
        rows = db.session.query(OutboundMessage).filter_by(kind="comment").all()
        db.session.expunge_all()
        return rows


@pytest.mark.parametrize("size", [5 * MB, 20 * MB])
def test_a_large_file_of_a_comment_arrives_intact(harness, size):
    # A 5 MB or 20 MB file shown in a Jira comment arrives attached to the customer's email.
    data = os.urandom(size)
    comment_with_file(harness, "report.pdf", data)
    harness.run_once()
    assert received(harness, "See the file.") == [[("report.pdf", data)]]


def make_due(harness) -> None:
    """Time passes: emails waiting for a retry are due now."""
    from datetime import UTC, datetime, timedelta

    with harness.app.app_context():
        for row in db.session.query(OutboundMessage).filter(OutboundMessage.kind == "comment"):
            row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()


def drafts(harness) -> list[dict]:
    return harness.sandbox.graph.messages(harness.mailbox, "drafts")


def test_an_email_whose_file_upload_failed_waits_for_its_file(harness):
    # Graph refuses the file for a while: no email goes without it; later it goes, with it.
    data = os.urandom(200_000)
    comment_with_file(harness, "photo.jpg", data)
    harness.sandbox.graph.controls.fail_next(
        6, status=503, retry_after=0, path_contains="/attachments", method="POST"
    )
    harness.run_once()
    assert received(harness, "See the file.") == []
    [row] = outbound_rows(harness)
    assert row.state == OutboundState.DRAFTED
    harness.sandbox.graph.controls.clear_faults()
    make_due(harness)
    harness.run_once()
    assert received(harness, "See the file.") == [[("photo.jpg", data)]]
    assert drafts(harness) == []


def test_a_large_file_whose_upload_failed_waits_for_its_file(harness):
    # An upload session that fails half way: the email waits, then goes with the whole file.
    data = os.urandom(9 * MB)
    comment_with_file(harness, "scan.pdf", data)
    harness.sandbox.graph.controls.fail_next(
        3, status=500, retry_after=0, path_contains="/AttachmentSessions/", method="PUT"
    )
    harness.run_once()
    assert received(harness, "See the file.") == []
    harness.sandbox.graph.controls.clear_faults()
    make_due(harness)
    harness.run_once()
    assert received(harness, "See the file.") == [[("scan.pdf", data)]]


@pytest.fixture
def slow_harness(make_pipeline, sandbox):
    """As ``harness``, with a read timeout of one second, so that a held answer times out."""
    sandbox.graph.add_mailbox(REQUESTER)
    built = make_pipeline(HTTP_READ_TIMEOUT="1")
    built.deliver(sender=f"Carol <{REQUESTER}>")
    built.run_once()
    return built


def test_a_reply_draft_whose_answer_was_lost_is_not_made_twice(slow_harness):
    # Graph made the draft but its answer came too late: the draft is found, not made again.
    comment_with_file(slow_harness, "note.txt", b"hello")
    graph = slow_harness.sandbox.graph
    graph.controls.slow_next(1, delay=3, path_contains="/createReply")
    slow_harness.run_once()
    make_due(slow_harness)
    slow_harness.run_once()
    assert received(slow_harness, "See the file.") == [[("note.txt", b"hello")]]
    assert drafts(slow_harness) == []  # no second draft left behind


def test_a_file_whose_answer_was_lost_is_not_attached_twice(slow_harness):
    # Graph added the file but its answer came too late: the draft's files are listed first.
    comment_with_file(slow_harness, "note.txt", b"hello")
    slow_harness.sandbox.graph.controls.slow_next(
        1, delay=3, path_contains="/attachments", method="POST"
    )
    slow_harness.run_once()
    make_due(slow_harness)
    slow_harness.run_once()
    assert received(slow_harness, "See the file.") == [[("note.txt", b"hello")]]


def test_a_file_too_large_for_email_is_named_instead(make_pipeline, sandbox):
    # Over EMAIL_MAX_ATTACHMENT_SIZE a file is not attached; the email names it.
    sandbox.graph.add_mailbox(REQUESTER)
    built = make_pipeline(EMAIL_MAX_ATTACHMENT_SIZE="1MB")
    built.deliver(sender=f"Carol <{REQUESTER}>")
    built.run_once()
    comment_with_file(built, "video.mp4", os.urandom(2 * MB))
    built.run_once()
    assert received(built, "See the file.") == [[]]
    [email] = [m for m in sandbox.graph.sent_messages(built.mailbox) if "See the file" in str(m)]
    assert "Too large to attach" in email["body"]["content"]
    assert "video.mp4" in email["body"]["content"]


def test_a_webhook_naming_a_foreign_attachment_host_is_not_followed(make_pipeline, sandbox, serve):
    # A signed webhook whose attachment URL is on another host: nothing is fetched from (or
    # sent to) that host, Jira's credentials stay home; the comment itself is still emailed.
    import hashlib
    import hmac
    import json

    import requests
    from flask import Flask, request

    seen: list[dict] = []
    foreign = Flask("foreign")

    @foreign.route("/<path:path>", methods=["GET", "POST", "HEAD"])
    def record(path):
        seen.append({"path": path, "authorization": request.headers.get("Authorization")})
        return b"stolen"

    from ticket_manager_sandbox.server import EmulatorServer

    # Served with the sandbox's own CA, so that the service would trust it if it asked.
    foreign_server = EmulatorServer(foreign, ca=sandbox.ca).start()
    foreign_url = foreign_server.base_url
    sandbox.graph.add_mailbox(REQUESTER)
    harness = make_pipeline(JIRA_WEBHOOK_SECRET="s3cret", JIRA_POLL_INTERVAL="0")
    harness.deliver(sender=f"Carol <{REQUESTER}>")
    harness.run_once()
    [issue] = harness.issues()
    jira = sandbox.jira
    comment = jira.add_comment_as(issue["key"], "alice.agent@example.com", "See the file.")
    event = jira.comment_event(sandbox.jira_url, issue["key"], comment["id"])
    event["comment"]["body"] += " [^evil.pdf]"
    event["issue"]["fields"]["attachment"] = [
        {
            "filename": "evil.pdf",
            "size": 6,
            "mimeType": "application/pdf",
            "content": f"{foreign_url}/rest/api/2/attachment/content/1",
        }
    ]
    body = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    url = serve(harness.app, tls=False) + "/api/tickets/v3/jira/webhook"
    answer = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature": signature},
        timeout=30,
    )
    assert answer.status_code == 202
    harness.run_once()
    foreign_server.stop()
    assert seen == []
    assert received(harness, "See the file.") == [[]]
