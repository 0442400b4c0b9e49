"""Conversations people can trust: only participants continue a ticket, replies reach them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ticket_manager.extensions import db
from ticket_manager.models import MessageState, Ticket

CAROL = "Carol <carol.customer@example.com>"
EVE = "Eve <eve@example.com>"


def open_ticket(pipeline, **email) -> tuple[str, dict]:
    """Carol writes in; returns the new ticket's key and her email as the mailbox has it."""
    email.setdefault("sender", CAROL)
    email.setdefault("subject", "Printer jammed")
    pipeline.deliver(**email)
    pipeline.run_once()
    [issue] = pipeline.issues()
    [original] = pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")
    return issue["key"], original


def sent(pipeline) -> list[dict]:
    return pipeline.sandbox.graph.sent_messages(pipeline.mailbox)


def addresses(people: list[dict]) -> list[str]:
    return [p["emailAddress"]["address"].lower() for p in people]


def participants(pipeline, key: str) -> set[str]:
    with pipeline.app.app_context():
        ticket = db.session.scalar(select(Ticket).where(Ticket.key == key))
        found = ticket.participant_set()
        db.session.remove()
        return found


def agent_answers(pipeline, key: str, text: str) -> dict:
    """An agent comments in Jira; returns the email that relayed it."""
    pipeline.sandbox.jira.add_comment_as(key, "alice.agent@example.com", text)
    pipeline.run_once()
    [relay] = [m for m in sent(pipeline) if text in m["body"]["content"]]
    return relay


def assert_stranger_kept_out(pipeline, key: str) -> None:
    """No comment by Eve on Carol's ticket, Eve no participant, Carol still gets the answer."""
    issues = {i["key"]: i for i in pipeline.issues()}
    assert issues[key]["comments"] == []
    [own] = [i for k, i in issues.items() if k != key]
    assert key in own["description"]  # Eve's ticket names the one she referred to
    assert participants(pipeline, key) == {"carol.customer@example.com"}
    relay = agent_answers(pipeline, key, "Please try the blue lever.")
    assert addresses(relay["toRecipients"]) == ["carol.customer@example.com"]
    assert addresses(relay["ccRecipients"]) == []
    for email in sent(pipeline):
        people = addresses(email["toRecipients"] + email["ccRecipients"])
        if "eve@example.com" in people:
            assert email["subject"].startswith(f"RE: [{own['key']}]")
            assert "blue lever" not in email["body"]["content"]


def test_a_strangers_reply_by_subject_only_opens_a_ticket_of_its_own(pipeline):
    # "RE: <Carol's subject>" from Eve lands in Carol's Exchange conversation: still no comment.
    key, original = open_ticket(pipeline)
    pipeline.deliver(subject="RE: Printer jammed", sender=EVE, body="Mine too! What's the PIN?")
    pipeline.run_once()
    strangers = [m for m in pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")]
    assert {m["conversationId"] for m in strangers} == {original["conversationId"]}
    assert_stranger_kept_out(pipeline, key)


def test_a_strangers_reply_by_references_opens_a_ticket_of_its_own(pipeline):
    # Eve knows the Message-ID of Carol's email: naming it in In-Reply-To is not enough.
    key, original = open_ticket(pipeline)
    pipeline.deliver(
        subject="About your printer",
        sender=EVE,
        in_reply_to=original["internetMessageId"],
        cc=["mallory@example.com"],
    )
    pipeline.run_once()
    assert_stranger_kept_out(pipeline, key)
    assert "mallory@example.com" not in participants(pipeline, key)


def test_a_strangers_reply_by_key_opens_a_ticket_of_its_own(pipeline):
    # Eve answers with the key in the subject, the same subject as our acknowledgement.
    key, _ = open_ticket(pipeline)
    pipeline.deliver(subject=f"RE: [{key}] Printer jammed", sender=EVE, body="Any news?")
    pipeline.run_once()
    assert_stranger_kept_out(pipeline, key)


def test_a_strangers_reply_by_conversation_opens_a_ticket_of_its_own(pipeline):
    # Eve's email joins the Exchange conversation through a Message-ID the service never saw.
    thread = "<earlier-thread@example.com>"
    key, original = open_ticket(pipeline, in_reply_to=thread)
    pipeline.deliver(subject="Something else", sender=EVE, in_reply_to=thread)
    pipeline.run_once()
    inbox = pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")
    assert {m["conversationId"] for m in inbox} == {original["conversationId"]}
    assert_stranger_kept_out(pipeline, key)


def test_a_colleague_a_participant_puts_in_cc_may_reply(pipeline):
    # Carol copies Dave in; Dave's own reply is then a comment, and answers Cc him.
    key, _ = open_ticket(pipeline)
    pipeline.deliver(
        subject=f"RE: [{key}] Printer jammed",
        sender=CAROL,
        cc=["Dave <dave@example.com>"],
        body="Adding Dave, who uses it most.",
    )
    pipeline.run_once()
    pipeline.deliver(
        subject=f"RE: [{key}] Printer jammed",
        sender="Dave <dave@example.com>",
        body="It jams on page two.",
    )
    pipeline.run_once()
    [issue] = pipeline.issues()
    assert [("page two" in c["body"]) for c in issue["comments"]] == [False, True]
    assert participants(pipeline, key) == {"carol.customer@example.com", "dave@example.com"}
    relay = agent_answers(pipeline, key, "A new roller is on its way.")
    assert addresses(relay["toRecipients"]) == ["carol.customer@example.com"]
    assert addresses(relay["ccRecipients"]) == ["dave@example.com"]


def test_a_watcher_added_in_jira_may_reply(pipeline):
    # An agent adds Bob as a watcher in Jira: Bob's email continues the ticket.
    key, _ = open_ticket(pipeline)
    jira = pipeline.sandbox.jira
    [bob] = [u for u, v in jira.store.users.items() if v["email"] == "bob.agent@example.com"]
    jira.store.find_issue(key)["watchers"].append(bob)
    pipeline.deliver(subject=f"RE: [{key}] Printer jammed", sender="bob.agent@example.com")
    pipeline.run_once()
    [issue] = pipeline.issues()
    assert len(issue["comments"]) == 1
    assert "bob.agent@example.com" in participants(pipeline, key)


def test_answers_go_to_the_requester_after_a_staff_reply_from_outlook(make_pipeline):
    # An agent answered from Outlook (the copy in Sent Items is the thread's newest email):
    # the next relayed comment still goes to Carol, not to the support mailbox.
    from ticket_manager.pipeline.worker import Services

    harness = make_pipeline(O365_SENT_ITEMS_AS_COMMENTS="true")
    key, original = open_ticket(harness)
    with harness.app.app_context():
        graph = Services(harness.settings).graph
        draft = graph.create_reply_draft(
            harness.mailbox,
            original["id"],
            reply_all=False,
            message={"body": {"contentType": "text", "content": "We ordered a drum."}},
        )
        graph.send_draft(harness.mailbox, draft.id)
    harness.run_once()
    assert any("We ordered a drum." in c["body"] for c in harness.issues()[0]["comments"])
    relay = agent_answers(harness, key, "The drum has arrived.")
    assert addresses(relay["toRecipients"]) == ["carol.customer@example.com"]
    assert harness.mailbox.lower() not in addresses(relay["ccRecipients"])
    assert relay["conversationId"] == original["conversationId"]


def test_our_acknowledgement_in_sent_items_without_headers_is_no_comment(make_pipeline):
    # Exchange keeps no headers on the Sent Items copy: our acknowledgement is still ours.
    harness = make_pipeline(O365_SENT_ITEMS_AS_COMMENTS="true")
    key, _ = open_ticket(harness)
    harness.run_once()
    [copy] = harness.sandbox.graph.messages(harness.mailbox, "sentitems")
    assert "internetMessageHeaders" not in copy
    assert harness.issues()[0]["comments"] == []
    [row] = [r for r in harness.rows() if r.folder == "sentitems"]
    assert (row.state, row.rule) == (MessageState.REJECTED, "own-mailbox")
    assert key in copy["subject"]


def test_the_requester_is_kept_when_jira_names_another_reporter(pipeline):
    # Zoe is no Jira user (the reporter is the service account): she stays the requester.
    key, _ = open_ticket(pipeline, sender="Zoe <zoe.nojira@example.com>")
    pipeline.sandbox.jira.add_comment_as(key, "alice.agent@example.com", "Looking into it.")
    pipeline.run_once()  # the poller refreshes the ticket from Jira
    with pipeline.app.app_context():
        ticket = db.session.scalar(select(Ticket).where(Ticket.key == key))
        assert (ticket.requester, ticket.requester_name) == ("zoe.nojira@example.com", "Zoe")
        db.session.remove()
    [relay] = [m for m in sent(pipeline) if "Looking into it." in m["body"]["content"]]
    assert addresses(relay["toRecipients"]) == ["zoe.nojira@example.com"]


@pytest.mark.parametrize("concurrency", ["1", "16"])
def test_a_backlog_of_an_original_and_its_replies_makes_one_ticket(make_pipeline, concurrency):
    # After an outage the original and two replies arrive in one batch: one ticket, two
    # comments, in the order they were received.
    harness = make_pipeline(PROCESSING_CONCURRENCY=concurrency)
    start = datetime.now(UTC) - timedelta(hours=2)
    first = harness.deliver(sender=CAROL, message_id="<backlog-1@example.com>", received=start)
    assert first
    for n in (2, 3):
        harness.deliver(
            sender=CAROL,
            subject="RE: Printer jammed",
            body=f"Reply number {n}.",
            message_id=f"<backlog-{n}@example.com>",
            in_reply_to=f"<backlog-{n - 1}@example.com>",
            references=[f"<backlog-{m}@example.com>" for m in range(1, n)],
            received=start + timedelta(minutes=n),
        )
    harness.run_once()
    [issue] = harness.issues()
    bodies = [c["body"] for c in issue["comments"]]
    assert len(bodies) == 2
    assert "Reply number 2." in bodies[0] and "Reply number 3." in bodies[1]
    assert [r.state for r in harness.rows() if r.folder == "inbox"].count(
        MessageState.COMMENTED
    ) == 2


def test_our_own_email_back_in_the_inbox_without_its_marker_is_ours(pipeline):
    # A gateway that strips X- headers bounces our acknowledgement back: no loop, no comment.
    key, _ = open_ticket(pipeline)
    [ack] = sent(pipeline)
    pipeline.deliver(
        subject=ack["subject"],
        sender=CAROL,
        body="Your ticket is open.",
        message_id=ack["internetMessageId"],
    )
    pipeline.run_once()
    assert pipeline.issues()[0]["comments"] == []
    assert (pipeline.rows()[-1].rule, len(sent(pipeline))) == ("own-mailbox", 1)
    assert key in ack["subject"]


def test_the_api_shows_the_requester_beside_jiras_reporter(api):
    # Zoe is no Jira user: Jira's reporter is the service account, the requester is Zoe,
    # and ?requester= finds her ticket.
    api.pipeline.deliver(sender="Zoe <zoe.nojira@example.com>", subject="Invoice missing")
    api.pipeline.run_once()
    client = api.client("tickets:read", user=None)
    [ticket] = client.get("/tickets", params={"requester": "ZOE.nojira@example.com"}).json()[
        "items"
    ]
    assert ticket["requester"] == {"email": "zoe.nojira@example.com", "name": "Zoe"}
    [issue] = api.sandbox.jira.issues()
    fresh = client.get(f"/tickets/{ticket['key']}").json()
    assert fresh["requester"]["email"] == "zoe.nojira@example.com"
    assert fresh["reporter"] == issue["reporter"] != "zoe.nojira@example.com"
    assert (
        client.get("/tickets", params={"reporter": "zoe.nojira@example.com"}).json()["items"] == []
    )


def test_check_for_missing_tickets_keeps_a_conversation_in_order(pipeline):
    # Mail the worker never saw: the original becomes the ticket, its replies its comments.
    from ticket_manager.pipeline.reconcile import Reconciler
    from ticket_manager.pipeline.worker import Services

    start = datetime.now(UTC) - timedelta(hours=3)
    pipeline.deliver(sender=CAROL, message_id="<missed-1@example.com>", received=start)
    for n in (2, 3):
        pipeline.deliver(
            sender=CAROL,
            subject="RE: Printer jammed",
            body=f"Missed reply {n}.",
            message_id=f"<missed-{n}@example.com>",
            in_reply_to=f"<missed-{n - 1}@example.com>",
            received=start + timedelta(minutes=n),
        )
    with pipeline.app.app_context():
        reconciler = Reconciler(pipeline.app, pipeline.settings, Services(pipeline.settings))
        report = reconciler.find_missing(pipeline.mailbox, timedelta(days=1))
        outcomes = reconciler.process(pipeline.mailbox, report, progress=lambda _n: None)
        db.session.remove()
    assert outcomes == {"ticket_created": 1, "commented": 2}
    [issue] = pipeline.issues()
    assert ["Missed reply 2." in c["body"] for c in issue["comments"]] == [True, False]


@pytest.mark.parametrize("everyone", ["false", "true"])
def test_the_acknowledgement_copies_the_others_only_when_asked(make_pipeline, everyone):
    # The acknowledgement goes To the requester; EMAIL_ACKNOWLEDGE_ALL adds the other people
    # of the email in Cc, never the support mailbox itself.
    harness = make_pipeline(EMAIL_ACKNOWLEDGE_ALL=everyone)
    open_ticket(harness, cc=["Dave <dave@example.com>"])
    [ack] = sent(harness)
    assert addresses(ack["toRecipients"]) == ["carol.customer@example.com"]
    expected = ["dave@example.com"] if everyone == "true" else []
    assert addresses(ack["ccRecipients"]) == expected
