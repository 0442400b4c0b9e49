"""GET /messages and POST /messages/{id}/retry against a real pipeline run."""

from __future__ import annotations

import pytest

from ticket_manager.models import MessageState

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_the_ledger_shows_outcomes_and_filters(api):
    pipeline = api.pipeline
    pipeline.deliver(subject="Printer jammed")
    pipeline.deliver(subject="Spam", sender="Mallory <malicious@example.com>")
    pipeline.deliver(subject="Elsewhere", sender="Eve <eve@elsewhere.test>")
    pipeline.run_once()
    client = api.client("messages:read")

    page = client.get("/messages").json()
    assert page["total"] == 3
    states = {m["subject"]: (m["state"], m["rule"]) for m in page["items"]}
    assert states == {
        "Printer jammed": ("ticket_created", None),
        "Spam": ("rejected", "blocked-sender"),
        "Elsewhere": ("rejected", "domain-not-allowed"),
    }
    rejected = client.get("/messages", params={"state": "rejected"}).json()
    assert rejected["total"] == 2
    by_rule = client.get("/messages", params={"rule": "blocked-sender"}).json()["items"]
    assert [m["sender"] for m in by_rule] == ["malicious@example.com"]
    first, second = (
        client.get("/messages", params={"limit": 2}).json(),
        None,
    )
    second = client.get("/messages", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    ids = [m["id"] for m in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    assert second["next_cursor"] is None

    one = client.get(f"/messages/{by_rule[0]['id']}").json()
    assert one["reason"] and one["internet_message_id"]
    missing = client.get("/messages/999999")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"


def test_retry_requeues_a_failed_message_and_force_waives_the_rules(api):
    pipeline = api.pipeline
    pipeline.deliver(subject="Elsewhere", sender="Eve <eve@elsewhere.test>")
    pipeline.deliver(subject="Printer jammed")
    pipeline.sandbox.jira.controls.fail_next(
        40, status=400, retry_after=None, path_contains="/rest/api/3/issue"
    )
    pipeline.run_once()
    rows = {r.subject: r for r in pipeline.rows()}
    assert rows["Elsewhere"].state == MessageState.REJECTED
    assert rows["Printer jammed"].state == MessageState.FAILED
    reader = api.client("messages:read")
    writer = api.client("messages:write")
    assert reader.post(f"/messages/{rows['Printer jammed'].id}/retry").status_code == 403

    pipeline.sandbox.jira.controls.clear_faults()
    retried = writer.post(f"/messages/{rows['Printer jammed'].id}/retry", json={})
    assert retried.status_code == 202, retried.text
    assert retried.json()["state"] == "pending" and retried.json()["attempts"] == 0

    refused = writer.post(f"/messages/{rows['Elsewhere'].id}/retry")
    assert refused.status_code == 409
    assert "force" in refused.json()["detail"]
    forced = writer.post(f"/messages/{rows['Elsewhere'].id}/retry", json={"force": True})
    assert forced.status_code == 202, forced.text

    pipeline.run_once()
    rows = {r.subject: r for r in pipeline.rows()}
    assert rows["Printer jammed"].state == MessageState.TICKET_CREATED
    assert rows["Elsewhere"].state == MessageState.TICKET_CREATED
    assert len(pipeline.issues()) == 2
    done = writer.post(f"/messages/{rows['Elsewhere'].id}/retry", json={"force": True})
    assert done.status_code == 409
