"""Conversations both ways: follow-ups become comments, Jira comments go back by email."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from ticket_manager.extensions import db
from ticket_manager.models import MessageState, OutboundMessage, OutboundState
from ticket_manager_sandbox.samples import PIXEL_PNG


def first_ticket(pipeline, **email) -> tuple[str, dict]:
    """Deliver an email, run the worker, return the new ticket's key and the sent email."""
    pipeline.deliver(**email)
    pipeline.run_once()
    [issue] = pipeline.issues()
    return issue["key"], pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")[0]


def sent(pipeline) -> list[dict]:
    return pipeline.sandbox.graph.sent_messages(pipeline.mailbox)


def header(message: dict, name: str) -> str | None:
    for item in message.get("internetMessageHeaders") or []:
        if item["name"].lower() == name.lower():
            return item["value"]
    return None


# -- acknowledgements ---------------------------------------------------------------------------


def test_the_requester_gets_an_acknowledgement_in_the_same_thread(pipeline):
    # A new ticket is acknowledged by a reply with the key, the summary and a link.
    key, original = first_ticket(
        pipeline, subject="Printer jammed", sender="Carol <carol.customer@example.com>"
    )
    [ack] = sent(pipeline)
    assert ack["subject"] == f"RE: [{key}] Printer jammed"
    assert [r["emailAddress"]["address"] for r in ack["toRecipients"]] == [
        "carol.customer@example.com"
    ]
    assert key in ack["body"]["content"]
    assert f"https://tickets.example.com/browse/{key}" in ack["body"]["content"]
    assert header(ack, "In-Reply-To") == original["internetMessageId"]
    assert header(ack, "X-Ticket-Manager").startswith("acknowledgement")
    pipeline.run_once()
    assert len(sent(pipeline)) == 1  # never twice


def test_acknowledgements_can_be_turned_off(make_pipeline):
    # EMAIL_ACKNOWLEDGE=false: the ticket is made, nothing is sent.
    harness = make_pipeline(EMAIL_ACKNOWLEDGE="false")
    harness.deliver()
    harness.run_once()
    assert len(harness.issues()) == 1
    assert sent(harness) == []


def test_a_user_template_replaces_the_built_in_one(make_pipeline, tmp_path):
    # A template in EMAIL_TEMPLATES_DIR wins over the built-in one of the same name.
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "acknowledgement.html").write_text("<p>Got it: {{ ticket_key }} ({{ summary }})</p>")
    harness = make_pipeline(EMAIL_TEMPLATES_DIR=str(folder))
    harness.deliver(subject="Custom please")
    harness.run_once()
    [ack] = sent(harness)
    assert "Got it: SUP-1 (Custom please)" in ack["body"]["content"]


def test_an_acknowledgement_interrupted_after_sending_is_not_sent_again(pipeline):
    # The draft is sent but the process dies before recording it: the retry sees the draft
    # is gone and records the email as sent instead of sending a second one.
    pipeline.sandbox.graph.controls.fail_next(6, status=503, retry_after=0, path_contains="/send")
    pipeline.deliver()
    from ticket_manager.pipeline.worker import Services

    pipeline.run_once()  # send failed once: the row keeps its draft
    with pipeline.app.app_context():
        row = db.session.query(OutboundMessage).one()
        assert row.state == OutboundState.DRAFTED and row.draft_id
        services = Services(pipeline.settings)
        services.graph.send_draft(row.mailbox, row.draft_id)  # the send "before the crash"
        row.next_attempt_at = None  # due now
        db.session.commit()
        db.session.remove()
    pipeline.run_once()
    assert len(sent(pipeline)) == 1
    with pipeline.app.app_context():
        assert db.session.query(OutboundMessage).one().state == OutboundState.SENT


# -- email → Jira follow-ups ---------------------------------------------------------------------


def test_a_reply_with_the_key_in_the_subject_becomes_a_comment(pipeline):
    # The requester answers with "[SUP-1]" in the subject: a comment with the new part only.
    key, _ = first_ticket(pipeline, sender="Carol <carol.customer@example.com>")
    pipeline.deliver(
        subject=f"RE: [{key}] Printer jammed",
        sender="Carol <carol.customer@example.com>",
        body="It works again, thanks!\r\n\r\n> Hello, the printer is jammed.",
    )
    pipeline.run_once()
    [issue] = pipeline.issues()
    [comment] = issue["comments"]
    assert "It works again, thanks!" in comment["body"]
    assert "carol.customer@example.com" in comment["body"]
    assert "the printer is jammed" not in comment["body"]
    assert pipeline.rows()[-1].state == MessageState.COMMENTED
    assert pipeline.rows()[-1].ticket_key == key


def test_a_reply_all_without_the_key_threads_by_its_headers(pipeline):
    # A reply to the acknowledgement that dropped the key still finds its ticket.
    key, _ = first_ticket(pipeline)
    [ack] = sent(pipeline)
    pipeline.deliver(
        subject="RE: Printer jammed",
        body="One more detail: it is model X-200.",
        in_reply_to=ack["internetMessageId"],
        cc=["bob.agent@example.com"],
    )
    pipeline.run_once()
    [issue] = pipeline.issues()
    [comment] = issue["comments"]
    assert comment["body"].count("X-200") == 1
    watchers = pipeline.sandbox.jira.store.find_issue(key)["watchers"]
    emails = {pipeline.sandbox.jira.store.users[w]["email"] for w in watchers}
    assert "bob.agent@example.com" in emails


def test_a_follow_up_brings_its_attachments(pipeline):
    # Files of a follow-up land on the ticket; a same-named different file gets a new name.
    key, _ = first_ticket(pipeline, attachments=[("screen.png", PIXEL_PNG, "image/png")])
    pipeline.deliver(
        subject=f"RE: [{key}] Printer jammed",
        body="Another screenshot.",
        attachments=[("screen.png", PIXEL_PNG + b"more", "image/png")],
    )
    pipeline.run_once()
    names = sorted(a["filename"] for a in pipeline.issues()[0]["attachments"])
    assert names == ["screen (2).png", "screen.png"]


def test_a_key_pasted_by_a_stranger_opens_a_new_ticket(pipeline):
    # Someone who never took part names SUP-1 in a new email: no comment on someone else's
    # ticket; a ticket of its own.
    key, _ = first_ticket(pipeline, sender="Carol <carol.customer@example.com>")
    pipeline.deliver(subject=f"About {key}: me too", sender="Eve <eve@example.com>")
    pipeline.run_once()
    issues = {i["key"]: i for i in pipeline.issues()}
    assert len(issues) == 2
    assert issues[key]["comments"] == []


def test_an_unknown_key_in_the_subject_opens_a_new_ticket(pipeline):
    # A key this service never created (another project's) is just text.
    pipeline.deliver(subject="Re: [OPS-77] outage")
    pipeline.run_once()
    [issue] = pipeline.issues()
    assert issue["summary"] == "Re: [OPS-77] outage"


def test_a_follow_up_to_a_deleted_ticket_opens_a_new_one_that_names_it(pipeline):
    # The ticket was deleted in Jira: the follow-up becomes a new ticket that says so.
    key, _ = first_ticket(pipeline)
    pipeline.sandbox.jira.delete_issue(key)
    pipeline.deliver(subject=f"RE: [{key}] Printer jammed", body="Still broken.")
    pipeline.run_once()
    [issue] = pipeline.issues()
    assert issue["key"] != key
    assert f"{key}, which no longer exists in Jira" in issue["description"]
    assert pipeline.rows()[-1].state == MessageState.TICKET_CREATED


def test_an_auto_reply_to_our_acknowledgement_makes_no_loop(pipeline):
    # The requester's out-of-office answers our acknowledgement: nothing is created or sent.
    key, _ = first_ticket(pipeline)
    [ack] = sent(pipeline)
    pipeline.deliver(
        subject=f"Automatic reply: RE: [{key}] Printer jammed",
        body="I am away.",
        in_reply_to=ack["internetMessageId"],
        headers={"Auto-Submitted": "auto-replied"},
    )
    pipeline.run_once()
    assert pipeline.issues()[0]["comments"] == []
    assert len(sent(pipeline)) == 1
    assert pipeline.rows()[-1].rule == "auto-reply"


# -- Jira → email ---------------------------------------------------------------------------------


def test_an_agents_public_comment_is_emailed_to_the_requester(pipeline):
    # A public comment in Jira goes back as a reply in the thread, once.
    key, _ = first_ticket(pipeline, sender="Carol <carol.customer@example.com>")
    pipeline.sandbox.jira.add_comment_as(key, "alice.agent@example.com", "Try turning it off.")
    pipeline.run_once()
    replies = sent(pipeline)
    assert len(replies) == 2
    relay = replies[1]
    assert "Try turning it off." in relay["body"]["content"]
    assert relay["subject"] == f"RE: [{key}] Printer jammed"
    assert header(relay, "X-Ticket-Manager").startswith("comment")
    pipeline.run_once()
    assert len(sent(pipeline)) == 2


def test_internal_comments_and_our_own_are_never_sent(pipeline):
    # Internal notes and the comments the service made from emails stay in Jira.
    key, _ = first_ticket(pipeline)
    pipeline.sandbox.jira.add_comment_as(key, "alice.agent@example.com", "Internal", public=False)
    pipeline.deliver(subject=f"RE: [{key}] Printer jammed", body="Customer adds this.")
    pipeline.run_once()
    assert len(pipeline.issues()[0]["comments"]) == 2
    assert len(sent(pipeline)) == 1  # the acknowledgement only


def test_the_poller_watermark_survives_a_restart(pipeline):
    # The poller's position is stored: a new worker relays only what is new, each once.
    key, _ = first_ticket(pipeline)
    pipeline.sandbox.jira.add_comment_as(key, "alice.agent@example.com", "First answer.")
    pipeline.run_once()
    from ticket_manager.models import Cursor

    with pipeline.app.app_context():
        assert db.session.get(Cursor, "jira-comments") is not None
    pipeline.sandbox.jira.add_comment_as(key, "bob.agent@example.com", "Second answer.")
    pipeline.run_once()  # a new Worker object: a restart
    bodies = [m["body"]["content"] for m in sent(pipeline)]
    assert sum("First answer." in b for b in bodies) == 1
    assert sum("Second answer." in b for b in bodies) == 1


def test_status_changes_are_announced_when_configured(make_pipeline):
    # EMAIL_NOTIFY_STATUS: resolving the ticket in Jira sends one status email.
    harness = make_pipeline(EMAIL_NOTIFY_STATUS="true")
    harness.deliver()
    harness.run_once()
    [issue] = harness.issues()
    from ticket_manager.pipeline.worker import Services

    with harness.app.app_context():
        jira = Services(harness.settings).jira
        done = next(t for t in jira.jira.transitions(issue["key"]) if t["name"] == "Done")
        jira.jira.transition_issue(issue["key"], done["id"])
    harness.run_once()
    statuses = [m for m in sent(harness) if "is now" in m["body"]["content"]]
    assert len(statuses) == 1
    assert "Done" in statuses[0]["body"]["content"]


# -- the Jira webhook ------------------------------------------------------------------------------

SECRET = "webhook-shared-secret"


def webhook_event(key: str, comment_id: str = "900", author: str = "alice.agent") -> dict:
    return {
        "webhookEvent": "comment_created",
        "issue": {"key": key, "fields": {}},
        "comment": {
            "id": comment_id,
            "author": {
                "accountId": f"acc-{author}",
                "displayName": author.title(),
                "emailAddress": f"{author}@example.com",
            },
            "body": {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "From the webhook"}]}
                ],
            },
            "jsdPublic": True,
        },
    }


@pytest.fixture
def hooked(make_pipeline):
    return make_pipeline(JIRA_WEBHOOK_SECRET=SECRET, JIRA_POLL_INTERVAL="0")


def post_event(harness, event: dict, *, signature: str | None = None, query: str = ""):
    body = json.dumps(event).encode()
    if signature is None:
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature"] = signature
    return harness.app.test_client().post(
        f"/api/tickets/v3/jira/webhook{query}", data=body, headers=headers
    )


def test_a_signed_webhook_queues_the_comment_email(hooked):
    # Jira's signed comment_created event is accepted at once and the email goes out once.
    hooked.deliver()
    hooked.run_once()
    key = hooked.issues()[0]["key"]
    response = post_event(hooked, webhook_event(key))
    assert response.status_code == 202
    assert response.get_json() == {"queued": True}
    assert post_event(hooked, webhook_event(key)).status_code == 202  # Jira retries: no copy
    hooked.run_once()
    relayed = [m for m in sent(hooked) if "From the webhook" in m["body"]["content"]]
    assert len(relayed) == 1


def test_a_webhook_with_a_wrong_signature_is_refused(hooked):
    # A forged or unsigned event is refused with 401 and queues nothing.
    hooked.deliver()
    hooked.run_once()
    key = hooked.issues()[0]["key"]
    assert post_event(hooked, webhook_event(key), signature="sha256=00").status_code == 401
    assert post_event(hooked, webhook_event(key), signature="").status_code == 401
    with hooked.app.app_context():
        kinds = [r.kind for r in db.session.query(OutboundMessage)]
    assert kinds == ["acknowledgement"]


def test_jira_server_can_use_the_secret_in_the_url(hooked):
    # Jira Server cannot sign: ?secret= in the webhook URL authenticates it instead.
    hooked.deliver()
    hooked.run_once()
    key = hooked.issues()[0]["key"]
    ok = post_event(hooked, webhook_event(key), signature="", query=f"?secret={SECRET}")
    assert ok.status_code == 202
    bad = post_event(hooked, webhook_event(key, "901"), signature="", query="?secret=nope")
    assert bad.status_code == 401


def test_the_webhook_ignores_comments_by_the_service_account(hooked):
    # The service account's own comments (emails turned comments) are not echoed back.
    hooked.deliver()
    hooked.run_once()
    key = hooked.issues()[0]["key"]
    event = webhook_event(key, author="ticket-bot")
    event["comment"]["author"]["emailAddress"] = "ticket-bot@example.com"
    assert post_event(hooked, event).get_json() == {"queued": False}


def test_a_staff_reply_from_outlook_is_recorded_as_a_comment(make_pipeline):
    # With O365_SENT_ITEMS_AS_COMMENTS, a reply an agent sends from Outlook becomes a comment
    # marked as sent to the customer; our own emails in Sent Items are left alone.
    from ticket_manager.pipeline.worker import Services

    harness = make_pipeline(O365_SENT_ITEMS_AS_COMMENTS="true")
    _key, original = first_ticket(harness, sender="Carol <carol.customer@example.com>")
    with harness.app.app_context():
        graph = Services(harness.settings).graph
        draft = graph.create_reply_draft(
            harness.mailbox,
            graph.list_messages(harness.mailbox, fields=("id",)).__next__()["id"],
            reply_all=False,
            message={"body": {"contentType": "text", "content": "We replaced the drum."}},
        )
        graph.send_draft(harness.mailbox, draft.id)
    harness.run_once()
    [issue] = harness.issues()
    [comment] = issue["comments"]
    assert "We replaced the drum." in comment["body"]
    assert "Sent to the customer by" in comment["body"]
    relayed = [m for m in sent(harness) if "replaced the drum" in m["body"]["content"]]
    assert len(relayed) == 1  # the agent's own email, not a copy relayed by the service
    rules = {r.rule for r in harness.rows() if r.folder == "sentitems"}
    assert rules == {"own-mailbox", None}
    assert original["subject"]


def test_a_relayed_comment_brings_the_small_files_it_shows(hooked):
    # A comment that shows a file of the ticket (ADF media with its name) attaches that file
    # to the email, when it is small enough.
    hooked.deliver(attachments=[("screen.png", PIXEL_PNG, "image/png")])
    hooked.run_once()
    [issue] = hooked.issues()
    [attachment] = issue["attachments"]
    base = hooked.env["ATLASSIAN_URL"]
    event = webhook_event(issue["key"], "902")
    event["comment"]["body"]["content"].append(
        {
            "type": "mediaSingle",
            "content": [
                {"type": "media", "attrs": {"type": "file", "id": "m-1", "alt": "screen.png"}}
            ],
        }
    )
    event["issue"]["fields"]["attachment"] = [
        {
            "filename": "screen.png",
            "size": attachment["size"],
            "mimeType": "image/png",
            "content": f"{base}/rest/api/3/attachment/content/{attachment['id']}",
        }
    ]
    assert post_event(hooked, event).status_code == 202
    hooked.run_once()
    [relay] = [m for m in sent(hooked) if "From the webhook" in m["body"]["content"]]
    from ticket_manager.pipeline.worker import Services

    with hooked.app.app_context():
        graph = Services(hooked.settings).graph
        files = graph.list_attachments(hooked.mailbox, relay["id"])
    assert [(f.name, f.content) for f in files] == [("screen.png", PIXEL_PNG)]
