"""Graph change notifications: subscription set-up, the handshake, and what a notification does."""

from __future__ import annotations

import socket

import pytest

from ticket_manager.extensions import db
from ticket_manager.models import Mailbox
from ticket_manager_sandbox.server import EmulatorServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(sandbox, make_pipeline):
    """The app itself served over HTTPS, its notification URL known to the configuration."""
    port = free_port()
    url = f"https://127.0.0.1:{port}/api/tickets/v3/graph/notifications"
    harness = make_pipeline(O365_NOTIFICATION_URL=url)
    server = EmulatorServer(harness.app, ca=sandbox.ca, port=port).start()
    yield harness
    server.stop()


def mailbox_row(harness) -> Mailbox:
    with harness.app.app_context():
        row = db.session.query(Mailbox).one()
        db.session.expunge(row)
        return row


def test_the_validation_token_is_echoed_as_plain_text(pipeline):
    # Graph's handshake: POST ?validationToken=... must come back as text/plain, unchanged.
    client = pipeline.app.test_client()
    token = "Validation: Testing client application reachability <&>"
    response = client.post(
        "/api/tickets/v3/graph/notifications", query_string={"validationToken": token}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == token


def test_the_worker_subscribes_and_a_new_email_asks_for_a_sync(served, sandbox):
    # With O365_NOTIFICATION_URL set, the worker subscribes; a new email's notification
    # arrives at the app and wakes the worker.
    worker = served.run_once()
    [subscription] = sandbox.graph.subscriptions()
    assert subscription["changeType"] == "created"
    assert subscription["resource"].lower().endswith("mailfolders('inbox')/messages")
    row = mailbox_row(served)
    assert row.subscription_id == subscription["id"]
    assert row.sync_requested_at is None

    served.deliver(subject="Notify me")
    assert sandbox.graph.wait_for_notifications(10)
    assert [d.status for d in sandbox.graph.notifications] == [202]
    assert mailbox_row(served).sync_requested_at is not None
    worker.ownership.start()  # a worker wakes only for the mailboxes it owns
    worker.ownership.rebalance()
    assert worker._sync_requested() is True
    worker.ownership.stop()
    assert mailbox_row(served).sync_requested_at is None


def test_a_notification_with_the_wrong_client_state_is_ignored(served):
    # A POST that does not carry the subscription's clientState changes nothing.
    served.run_once()
    row = mailbox_row(served)
    client = served.app.test_client()
    response = client.post(
        "/api/tickets/v3/graph/notifications",
        json={
            "value": [
                {
                    "subscriptionId": row.subscription_id,
                    "clientState": "guess",
                    "changeType": "created",
                }
            ]
        },
    )
    assert response.status_code == 202
    assert mailbox_row(served).sync_requested_at is None


def test_reauthorization_required_renews_the_subscription(served, sandbox):
    # A lifecycle "reauthorizationRequired" makes the next pass renew the subscription.
    served.run_once()
    subscription_id = mailbox_row(served).subscription_id
    sandbox.graph.send_lifecycle_notification(subscription_id, "reauthorizationRequired")
    assert sandbox.graph.wait_for_notifications(10)
    served.run_once()
    patches = [
        r
        for r in sandbox.graph.controls.requests
        if r.method == "PATCH" and "subscriptions" in r.path
    ]
    assert len(patches) == 1
    assert mailbox_row(served).subscription_id == subscription_id


def test_a_removed_subscription_is_created_again(served, sandbox):
    # After "subscriptionRemoved" the worker creates a new subscription.
    served.run_once()
    old = mailbox_row(served).subscription_id
    sandbox.graph.send_lifecycle_notification(old, "subscriptionRemoved")
    assert sandbox.graph.wait_for_notifications(10)
    served.run_once()
    new = mailbox_row(served).subscription_id
    assert new and new != old


def test_an_unreachable_notification_url_leaves_polling_working(make_pipeline):
    # If Graph cannot validate the URL, the worker logs it and still turns mail into tickets.
    harness = make_pipeline(O365_NOTIFICATION_URL=f"https://127.0.0.1:{free_port()}/hook")
    harness.deliver(subject="Still polled")
    harness.run_once()
    assert [i["summary"] for i in harness.issues()] == ["Still polled"]
    assert mailbox_row(harness).subscription_id is None
