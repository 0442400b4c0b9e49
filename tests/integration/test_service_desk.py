"""Jira Service Management projects: emails become customer requests, on Cloud and Data Center."""

from __future__ import annotations

import pytest

from ticket_manager.models import MessageState
from ticket_manager_sandbox.samples import PIXEL_PNG
from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

HELPDESK = {
    "JIRA_HELPDESK_BOARD": "project:HD",
    "JIRA_BOARDS": "JIRA_HELPDESK_BOARD",
    "JIRA_DEFAULT_BOARD": "JIRA_HELPDESK_BOARD",
}
ERIN = "Erin Example <erin@example.com>"


@pytest.fixture(params=["Cloud", "Server"])
def jsm(request, tmp_path):
    """A Jira (Cloud, then Data Center) with a service desk HD and its "Emailed request" type."""
    with Sandbox(
        SandboxAccounts(jira_deployment=request.param), state_dir=tmp_path / "jsm"
    ) as sandbox:
        sandbox.desk = sandbox.jira.add_service_desk("HD", "Help desk")
        yield sandbox


@pytest.fixture
def helpdesk(jsm, make_pipeline):
    """The pipeline filing into the service desk through ``project:HD``."""
    return make_pipeline(jsm, **HELPDESK)


def sent(harness) -> list[dict]:
    return harness.sandbox.graph.sent_messages(harness.mailbox)


def test_an_email_becomes_a_customer_request_raised_for_the_sender(helpdesk):
    # The sender becomes a customer of the desk and the request's reporter; Cc'd people
    # become request participants; the acknowledgement carries the portal link.
    helpdesk.deliver(sender=ERIN, cc=["Frank Friend <frank@example.com>"])
    helpdesk.run_once()
    [issue] = helpdesk.issues()
    assert issue["key"] == "HD-1"
    assert issue["reporter"] == "erin@example.com"
    assert issue["request"]["participants"] == ["frank@example.com"]
    assert issue["labels"] == []  # the request type's form has no labels field
    jira = helpdesk.sandbox.jira
    customers = {jira.store.users[u]["email"] for u in helpdesk.sandbox.desk.customers}
    assert customers == {"erin@example.com", "frank@example.com"}
    [row] = helpdesk.rows()
    assert row.state == MessageState.TICKET_CREATED and row.reason is None
    [ack] = sent(helpdesk)
    assert "/servicedesk/customer/portal/1/HD-1" in ack["body"]["content"]


def test_a_site_that_forbids_customer_creation_gets_the_request_from_the_service_account(
    helpdesk,
):
    # Customers may not be created: the service account raises the request, the sender
    # is named in the description, and the ledger says why.
    helpdesk.sandbox.jira.service_desks.customer_creation_allowed = False
    helpdesk.deliver(sender=ERIN, cc=["frank@example.com"])
    helpdesk.run_once()
    [issue] = helpdesk.issues()
    assert issue["reporter"] == "ticket-bot@example.com"
    assert "*From:* Erin Example" in issue["description"]
    assert issue["request"]["participants"] == []
    [row] = helpdesk.rows()
    assert row.state == MessageState.TICKET_CREATED
    assert "does not let it create customers" in row.reason


def test_an_existing_customer_is_not_created_again(helpdesk):
    # A sender who already is a customer is raised for as is: no second account.
    jira = helpdesk.sandbox.jira
    jira.add_customer(helpdesk.sandbox.desk, "erin@example.com", "Erin Example")
    helpdesk.deliver(sender=ERIN)
    helpdesk.run_once()
    [issue] = helpdesk.issues()
    assert issue["reporter"] == "erin@example.com"
    assert sum(u["email"] == "erin@example.com" for u in jira.store.users.values()) == 1


def test_a_request_type_with_a_required_field_fails_naming_it(jsm, make_pipeline):
    # A required field the service cannot fill fails the email with the field's name.
    jsm.jira.add_request_type(
        jsm.desk,
        "Hardware",
        custom={"customfield_10050": {"name": "Asset tag", "required": True}},
    )
    harness = make_pipeline(jsm, JIRA_REQUEST_TYPE="Hardware", **HELPDESK)
    harness.deliver(sender=ERIN)
    harness.run_once()
    [row] = harness.rows()
    assert row.state == MessageState.FAILED
    assert "Asset tag" in row.last_error
    assert harness.issues() == []


def test_labels_and_priority_go_only_where_the_request_type_shows_them(jsm, make_pipeline):
    # A request type whose form has labels and priority receives them.
    jsm.jira.add_request_type(
        jsm.desk, "Incident", fields=("summary", "description", "labels", "priority")
    )
    harness = make_pipeline(jsm, JIRA_REQUEST_TYPE="Incident", **HELPDESK)
    harness.deliver(sender=ERIN, subject="[bug] Server down", importance="high")
    harness.run_once()
    [issue] = harness.issues()
    assert issue["labels"] == ["ticket", "bug"]
    assert issue["priority"] == "High"


def test_attachments_land_on_the_request_as_the_customer_s(helpdesk):
    # The email's files go to the request through the service desk (temporary files, then
    # the request's attachment call), so the customer sees them in the portal.
    helpdesk.deliver(sender=ERIN, attachments=[("screen.png", PIXEL_PNG, "image/png")])
    helpdesk.run_once()
    [issue] = helpdesk.issues()
    assert [a["filename"] for a in issue["attachments"]] == ["screen.png"]
    paths = [r.path for r in helpdesk.sandbox.jira.controls.requests]
    assert any(p.endswith("/attachTemporaryFile") for p in paths)
    assert any(p.endswith("/HD-1/attachment") for p in paths)


def test_a_customer_reply_is_a_public_comment_and_a_stranger_s_is_a_request_of_its_own(helpdesk):
    # The requester's follow-up is a public request comment saying who wrote it; mail from
    # someone who is neither requester nor participant never joins the request (it opens a
    # request of its own that names HD-1).
    helpdesk.deliver(sender=ERIN)
    helpdesk.run_once()
    helpdesk.deliver(sender=ERIN, subject="RE: [HD-1] Printer jammed", body="Still broken.")
    helpdesk.run_once()
    helpdesk.deliver(
        sender="Mallory <mallory@example.com>",
        subject="RE: [HD-1] Printer jammed",
        body="I saw it too.",
    )
    helpdesk.run_once()
    issues = {i["key"]: i for i in helpdesk.issues()}
    [comment] = issues["HD-1"]["comments"]
    assert "Still broken." in comment["body"] and comment["public"] is True
    assert "*From:* Erin Example" in comment["body"]
    assert "Refers to:* HD-1" in issues["HD-2"]["description"].replace("\\", "")
    assert "I saw it too." in issues["HD-2"]["description"]
    assert [r.state for r in helpdesk.rows()] == [
        MessageState.TICKET_CREATED,
        MessageState.COMMENTED,
        MessageState.TICKET_CREATED,
    ]


def test_an_agent_s_internal_note_is_not_emailed_and_a_public_reply_is(helpdesk):
    # Agents' public comments reach the customer; internal notes never do.
    helpdesk.deliver(sender=ERIN)
    helpdesk.run_once()
    jira = helpdesk.sandbox.jira
    jira.add_comment_as("HD-1", "alice.agent@example.com", "Internal: check the toner", False)
    jira.add_comment_as("HD-1", "alice.agent@example.com", "We replaced the toner.", True)
    helpdesk.run_once()
    bodies = [m["body"]["content"] for m in sent(helpdesk)]
    assert any("We replaced the toner." in b for b in bodies)
    assert not any("check the toner" in b for b in bodies)


def _route_line(harness):
    from ticket_manager.checks import run_checks

    return next(r for r in run_checks(harness.app) if r.name.startswith("board project:HD"))


def test_flask_check_reports_the_service_desk_request_type_and_customer_creation(
    jsm, make_pipeline
):
    # `flask check` names the desk, the request type and its required fields, and whether
    # the service account can create customers.
    harness = make_pipeline(jsm, **HELPDESK)
    line = _route_line(harness)
    assert line.ok, line.detail
    assert "service desk HD" in line.detail
    assert "'Emailed request' (required fields: Summary)" in line.detail
    assert "can create customers" in line.detail
    jsm.jira.service_desks.customer_creation_allowed = False
    assert "cannot create customers" in _route_line(harness).detail


def test_flask_check_names_a_required_field_it_cannot_fill(jsm, make_pipeline):
    # A request type requiring a custom field fails the check line, naming the field.
    jsm.jira.add_request_type(
        jsm.desk, "Hardware", custom={"customfield_10050": {"name": "Asset tag", "required": True}}
    )
    harness = make_pipeline(jsm, JIRA_REQUEST_TYPE="Hardware", **HELPDESK)
    line = _route_line(harness)
    assert not line.ok
    assert "Asset tag" in line.detail


def test_someone_newly_cc_d_on_a_follow_up_becomes_a_request_participant(helpdesk):
    # A reply that adds a colleague on Cc makes them a participant of the request.
    helpdesk.deliver(sender=ERIN)
    helpdesk.run_once()
    helpdesk.deliver(
        sender=ERIN,
        subject="RE: [HD-1] Printer jammed",
        body="Adding Gus.",
        cc=["Gus Colleague <gus@example.com>"],
    )
    helpdesk.run_once()
    assert helpdesk.sandbox.jira.request_participants("HD-1") == ["gus@example.com"]
