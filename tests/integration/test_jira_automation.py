"""Jira Automation's "Send web request" relays comments for users without admin webhooks."""

from __future__ import annotations

import pytest

from ticket_manager.extensions import db
from ticket_manager.models import OutboundMessage

SECRET = "automation-secret-123"


@pytest.fixture
def automated(make_pipeline):
    return make_pipeline(JIRA_WEBHOOK_SECRET=SECRET, JIRA_POLL_INTERVAL="0")


def post(harness, key: str, comment_id: str, secret: str | None = SECRET):
    headers = {"X-Automation-Secret": secret} if secret else {}
    return harness.app.test_client().post(
        "/api/tickets/v3/jira/automation",
        json={"issue": {"key": key}, "comment": {"id": comment_id}},
        headers=headers,
    )


def comment_emails(harness) -> list[str]:
    with harness.app.app_context():
        rows = db.session.query(OutboundMessage).filter_by(kind="comment").all()
        return [r.dedupe_key for r in rows]


def test_a_rule_s_request_queues_the_public_comment_read_from_jira(automated):
    # The rule names the comment; the service reads it from Jira and emails the customer.
    automated.deliver()
    automated.run_once()
    key = automated.issues()[0]["key"]
    comment = automated.sandbox.jira.add_comment_as(key, "bob.agent@example.com", "On our way.")
    response = post(automated, key, comment["id"])
    assert response.status_code == 202 and response.get_json() == {"queued": True}
    assert post(automated, key, comment["id"]).status_code == 202  # a rule retry: no copy
    automated.run_once()
    sent = automated.sandbox.graph.sent_messages(automated.mailbox)
    assert len([m for m in sent if "On our way." in m["body"]["content"]]) == 1


def test_an_internal_note_named_by_a_rule_is_never_emailed(automated):
    # Whatever the rule sends, an internal comment stays internal (Jira says so).
    automated.deliver()
    automated.run_once()
    key = automated.issues()[0]["key"]
    note = automated.sandbox.jira.add_comment_as(key, "bob.agent@example.com", "Secret", False)
    response = post(automated, key, note["id"])
    assert response.status_code == 202 and response.get_json() == {"queued": False}
    assert comment_emails(automated) == []


def test_a_request_without_the_secret_or_with_a_bad_payload_is_refused(automated):
    # No or a wrong secret is 401; a payload without key and comment id is 400.
    automated.deliver()
    automated.run_once()
    key = automated.issues()[0]["key"]
    comment = automated.sandbox.jira.add_comment_as(key, "bob.agent@example.com", "Hi")
    assert post(automated, key, comment["id"], secret=None).status_code == 401
    assert post(automated, key, comment["id"], secret="wrong").status_code == 401
    assert post(automated, key, "{{comment.id}}").status_code == 400
    assert comment_emails(automated) == []
