"""Internal notes stay in Jira on every kind of Jira, by the poller and by the webhook."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

SECRET = "webhook-shared-secret"
KINDS = {
    # kind: (Jira deployment, project type)
    "cloud-service-management": ("Cloud", "service_desk"),
    "data-center-service-management": ("Server", "service_desk"),
    "cloud-software": ("Cloud", "software"),
    "data-center-software": ("Server", "software"),
}


@pytest.fixture(params=list(KINDS))
def kind_of_jira(request, sandbox, tmp_path):
    """The sandbox with its support project made into one kind of Jira project."""
    deployment, project_type = KINDS[request.param]
    if deployment == "Cloud":
        sandbox.jira.set_project_type("SUP", project_type)
        yield sandbox
        return
    with Sandbox(SandboxAccounts(jira_deployment="Server"), state_dir=tmp_path / "s") as server:
        server.jira.set_project_type("SUP", project_type)
        yield server


def open_ticket(harness) -> str:
    harness.deliver(sender="Carol <carol.customer@example.com>")
    harness.run_once()
    [issue] = harness.issues()
    return issue["key"]


def relayed_bodies(harness) -> list[str]:
    sent = harness.sandbox.graph.sent_messages(harness.mailbox)
    return [m["body"]["content"] for m in sent]


def post_webhook(url: str, event: dict) -> requests.Response:
    body = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature}
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_the_poller_mails_public_comments_and_never_internal_notes(make_pipeline, kind_of_jira):
    # Polling Jira: an internal note (JSM) or a restricted comment (Software) is never mailed.
    harness = make_pipeline(kind_of_jira)
    key = open_ticket(harness)
    jira = kind_of_jira.jira
    jira.add_comment_as(key, "alice.agent@example.com", "Only for agents", public=False)
    jira.add_comment_as(key, "alice.agent@example.com", "Please restart it.")
    harness.run_once()
    bodies = relayed_bodies(harness)
    assert sum("Please restart it." in b for b in bodies) == 1
    assert not any("Only for agents" in b for b in bodies)


def test_the_webhook_mails_public_comments_and_never_internal_notes(
    make_pipeline, kind_of_jira, serve
):
    # Jira's webhook: the event carries no property, yet a DC internal note is not mailed.
    harness = make_pipeline(kind_of_jira, JIRA_WEBHOOK_SECRET=SECRET, JIRA_POLL_INTERVAL="0")
    key = open_ticket(harness)
    jira = kind_of_jira.jira
    url = serve(harness.app, tls=False) + "/api/tickets/v3/jira/webhook"
    note = jira.add_comment_as(key, "alice.agent@example.com", "Only for agents", public=False)
    answer = jira.add_comment_as(key, "alice.agent@example.com", "Please restart it.")
    for comment in (note, answer):
        event = jira.comment_event(kind_of_jira.jira_url, key, comment["id"])
        assert post_webhook(url, event).status_code == 202
    harness.run_once()
    bodies = relayed_bodies(harness)
    assert sum("Please restart it." in b for b in bodies) == 1
    assert not any("Only for agents" in b for b in bodies)


def test_the_webhook_asks_jira_to_retry_when_it_cannot_tell(make_pipeline, tmp_path, serve):
    # Data Center: Jira cannot be asked whether the comment is internal, so the webhook answers
    # 503 and queues nothing (Jira retries); once Jira answers, the public comment goes out.
    accounts = SandboxAccounts(jira_deployment="Server")
    with Sandbox(accounts, state_dir=tmp_path / "s") as server:
        server.jira.set_project_type("SUP", "service_desk")
        harness = make_pipeline(server, JIRA_WEBHOOK_SECRET=SECRET, JIRA_POLL_INTERVAL="0")
        key = open_ticket(harness)
        url = serve(harness.app, tls=False) + "/api/tickets/v3/jira/webhook"
        answer = server.jira.add_comment_as(key, "alice.agent@example.com", "Please restart it.")
        event = server.jira.comment_event(server.jira_url, key, answer["id"])
        server.jira.controls.fail_next(10, status=503, retry_after=0, path_contains="/comment/")
        assert post_webhook(url, event).status_code == 503
        harness.run_once()
        assert not any("Please restart it." in b for b in relayed_bodies(harness))
        server.jira.controls.clear_faults()
        assert post_webhook(url, event).status_code == 202
        harness.run_once()
        assert sum("Please restart it." in b for b in relayed_bodies(harness)) == 1
