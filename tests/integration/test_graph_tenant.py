"""Microsoft 365 as real tenants are: delta partial items, token generations, mailbox identity,
subscriptions, Send As and the errors Graph really returns, over real HTTPS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticket_manager.models import MessageState
from ticket_manager_sandbox.graph_delta import DELTA_GENERATIONS


def _delta_requests(graph) -> list:
    return [r for r in graph.controls.requests if r.path.endswith("/delta")]


def test_our_own_marking_of_processed_email_makes_no_ledger_row(pipeline):
    # 100 processed emails (marked read and categorised by us), then a round whose delta items
    # are partial updates: no phantom row, and no request per email.
    for n in range(100):
        pipeline.deliver(
            subject=f"Case {n}", sender=f"c{n}@example.com", message_id=f"<case-{n}@example.com>"
        )
    pipeline.run_once()
    rows = pipeline.rows()
    assert len(rows) == 100
    assert {r.state for r in rows} == {MessageState.TICKET_CREATED}

    graph = pipeline.sandbox.graph
    graph.controls.reset_log()
    pipeline.run_once()
    rows = pipeline.rows()
    assert len(rows) == 100
    assert all(r.internet_message_id.startswith("<case-") for r in rows)
    message_calls = [r for r in graph.controls.requests if "/messages" in r.path]
    assert len(message_calls) == len(_delta_requests(graph)) == 1


def test_a_replay_after_a_crash_survives_graph_forgetting_old_delta_tokens(pipeline):
    # A worker that keeps crashing before it stores its new delta link uses the same old link
    # again and again; once Graph keeps only newer generations, that link answers 410 and the
    # full resync makes each email a ticket once.
    pipeline.deliver(subject="First", message_id="<first@example.com>")
    pipeline.run_once()
    graph = pipeline.sandbox.graph
    pipeline.deliver(subject="Second", message_id="<second@example.com>")
    for _ in range(DELTA_GENERATIONS):  # rounds that crashed before storing their new link
        _walk_without_storing(pipeline)
    graph.controls.reset_log()
    pipeline.run_once()

    assert _delta_requests(graph)[0].status == 410
    assert sorted(i["summary"] for i in pipeline.issues()) == ["First", "Second"]
    assert len(pipeline.rows()) == 2


def _walk_without_storing(pipeline) -> None:
    """Walk the stored delta link as a crashed round did: the new link is never stored."""
    from ticket_manager.extensions import db
    from ticket_manager.pipeline.sync import mailbox_state
    from ticket_manager.pipeline.worker import Services

    with pipeline.app.app_context():
        link = mailbox_state(pipeline.mailbox).delta_link
        db.session.remove()
        assert link
        graph = Services(pipeline.settings).graph
        for _page in graph.delta_pages(pipeline.mailbox, delta_link=link):
            pass


# -- mailbox identity: UPN and SMTP address differ ---------------------------------------------

HELPDESK = "helpdesk@example.com"
HELPDESK_UPN = "hd-svc@example.onmicrosoft.com"
HELPDESK_ALIAS = "it-help@example.com"


def _hybrid_mailbox(sandbox) -> None:
    """A mailbox whose UPN is not its primary SMTP address, with an alias, as in hybrid tenants."""
    sandbox.graph.add_mailbox(HELPDESK, upn=HELPDESK_UPN, aliases=[HELPDESK_ALIAS])


def test_a_mailbox_configured_by_its_smtp_address_is_read_by_its_object_id(sandbox, make_pipeline):
    # MAILBOX holds the primary SMTP address, which Graph does not take in a path (its UPN
    # differs): the mailbox is resolved once and its mail becomes a ticket.
    _hybrid_mailbox(sandbox)
    pipeline = make_pipeline(MAILBOX=HELPDESK)
    sandbox.graph.deliver(HELPDESK, subject="VPN down", body="Help", sender="bob@example.com")
    pipeline.run_once()

    assert [i["summary"] for i in pipeline.issues()] == ["VPN down"]
    paths = [r.path for r in sandbox.graph.controls.requests if "/users/" in r.path]
    user_id = sandbox.graph.mailbox(HELPDESK).user_id
    mail_paths = [p for p in paths if "/messages" in p or "/mailFolders" in p]
    assert mail_paths and all(f"/users/{user_id}/" in p for p in mail_paths)
    assert sum(1 for r in sandbox.graph.controls.requests if r.path.endswith(HELPDESK)) == 1


def test_mail_from_an_alias_of_the_monitored_mailbox_is_our_own(sandbox, make_pipeline):
    # An email whose From is an alias (proxy address) of the monitored mailbox looped back:
    # it is rejected as our own, and the alias is never made a participant.
    _hybrid_mailbox(sandbox)
    pipeline = make_pipeline(MAILBOX=HELPDESK)
    sandbox.graph.deliver(
        HELPDESK,
        subject="Your request",
        body="We got it",
        sender=f"IT Help <{HELPDESK_ALIAS}>",
        to=[HELPDESK],
    )
    pipeline.run_once()

    [row] = pipeline.rows()
    assert row.state == MessageState.REJECTED
    assert row.rule == "own-mailbox"
    assert HELPDESK_ALIAS in row.reason
    assert pipeline.issues() == []


def test_flask_check_shows_what_the_mailbox_resolved_to(sandbox, make_pipeline):
    # `flask check` names the object id, the UPN and the aliases the configured address has.
    _hybrid_mailbox(sandbox)
    pipeline = make_pipeline(MAILBOX=HELPDESK)
    from ticket_manager.checks import run_checks

    [found] = [r for r in run_checks(pipeline.app) if r.name == f"mailbox {HELPDESK}"]
    assert found.ok
    line = found.detail
    assert sandbox.graph.mailbox(HELPDESK).user_id in line
    assert HELPDESK_UPN in line and HELPDESK_ALIAS in line
    assert "inbox readable" in line


def test_graph_refuses_an_smtp_address_that_is_not_the_upn_in_a_path(sandbox, sandbox_env):
    # The emulator answers as Graph does: ErrorInvalidUser for mail, ResourceNotFound for the
    # user, while the UPN and a proxyAddresses filter find the mailbox.
    _hybrid_mailbox(sandbox)
    session = _app_session(sandbox_env)
    base = sandbox.graph_url.rstrip("/")
    answer = session.get(f"{base}/users/{HELPDESK}/mailFolders/inbox")
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "ErrorInvalidUser")
    answer = session.get(f"{base}/users/{HELPDESK}")
    assert (answer.status_code, answer.json()["error"]["code"]) == (
        404,
        "Request_ResourceNotFound",
    )
    assert session.get(f"{base}/users/{HELPDESK_UPN}/mailFolders/inbox").status_code == 200
    found = session.get(
        f"{base}/users",
        params={
            "$filter": f"proxyAddresses/any(x:x eq 'smtp:{HELPDESK_ALIAS}')",
            "$select": "id,userPrincipalName,mail,proxyAddresses",
        },
    ).json()["value"]
    assert [u["userPrincipalName"] for u in found] == [HELPDESK_UPN]
    assert f"smtp:{HELPDESK_ALIAS}" in found[0]["proxyAddresses"]


def _app_session(env: dict):
    """A requests session carrying the app's access token from the emulated identity platform."""
    from ticket_manager.config import load_settings
    from ticket_manager.graph.auth import TokenProvider
    from ticket_manager.http import build_session

    settings = load_settings(env)
    session = build_session(settings.ca_bundle)
    session.headers["Authorization"] = f"Bearer {TokenProvider(settings, session).access_token()}"
    return session


# -- change notifications ------------------------------------------------------------------------


@pytest.fixture
def notified(sandbox, make_pipeline):
    """The app served over HTTPS as the notification URL, so that Graph can subscribe it."""
    import socket

    from ticket_manager_sandbox.server import EmulatorServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"https://127.0.0.1:{port}/api/tickets/v3/graph/notifications"
    harness = make_pipeline(O365_NOTIFICATION_URL=url, JIRA_POLL_INTERVAL="0")
    server = EmulatorServer(harness.app, ca=sandbox.ca, port=port).start()
    yield harness
    server.stop()


def _mailbox_row(harness):
    from ticket_manager.extensions import db
    from ticket_manager.models import Mailbox

    with harness.app.app_context():
        row = db.session.query(Mailbox).one()
        db.session.expunge(row)
        db.session.remove()
        return row


def _subscription_posts(sandbox) -> list[int]:
    return [
        r.status
        for r in sandbox.graph.controls.requests
        if r.method == "POST" and r.path.endswith("/subscriptions")
    ]


def test_a_lower_subscription_lifetime_named_by_graph_is_followed(notified, sandbox):
    # Graph answers 400 ExtensionError "...can only be 4230 minutes in the future": the
    # worker asks again with 4230 minutes and gets its subscription.
    sandbox.graph.subscription_max_minutes = 4230
    notified.run_once()

    assert _subscription_posts(sandbox) == [400, 201]
    row = _mailbox_row(notified)
    expires = row.subscription_expires_at.replace(tzinfo=UTC)
    assert row.subscription_id
    assert timedelta(minutes=4200) < expires - datetime.now(UTC) <= timedelta(minutes=4230)


def _delegated_shared_mailbox(sandbox, make_pipeline, *, notifications: bool = True):
    """A person (agent@example.com) signed in by device code, reading the shared mailbox."""
    from ticket_manager.graph.sign_in import token_provider

    sandbox.identity.register_user("agent@example.com")
    sandbox.identity.device_code_interval = 1
    url = "https://tickets.example.com/api/tickets/v3/graph/notifications"
    pipeline = make_pipeline(
        O365_AUTH_FLOW="device",
        O365_CLIENT_SECRET="",
        SECRET_KEY="Vx3qL9pZt2Rk8mWc4nYh7sBd1fGj6eQa5uTz0oXi",
        O365_NOTIFICATION_URL=url if notifications else "",
    )
    with pipeline.app.app_context():
        tokens = token_provider(pipeline.settings)
        flow = tokens.initiate_device_flow()
        sandbox.identity.approve_device_code(flow["user_code"], upn="agent@example.com")
        tokens.complete_device_flow(flow)
    return pipeline


def test_a_delegated_sign_in_on_a_shared_mailbox_polls_and_says_so_once(sandbox, make_pipeline):
    # Graph refuses a delegated subscription on a shared mailbox: one status item, mail still
    # becomes tickets by polling, and the subscription is not asked for again every round.
    from ticket_manager.status import collect_status

    pipeline = _delegated_shared_mailbox(sandbox, make_pipeline)
    pipeline.deliver(subject="Polled anyway")
    for _ in range(3):
        pipeline.run_once()

    assert [i["summary"] for i in pipeline.issues()] == ["Polled anyway"]
    assert _subscription_posts(sandbox) == [403]
    with pipeline.app.app_context():
        problems = collect_status(pipeline.settings, remote=False).problems
    shared = [p for p in problems if "shared mailbox" in p]
    assert len(shared) == 1
    assert "polling" in shared[0] and "O365_AUTH_FLOW=credentials" in shared[0]
    assert not [p for p in problems if "subscription missing" in p]


def test_flask_check_says_a_delegated_shared_mailbox_gets_no_notifications(sandbox, make_pipeline):
    # `flask check` says once, on its own line, that this configuration polls.
    from ticket_manager.checks import run_checks

    pipeline = _delegated_shared_mailbox(sandbox, make_pipeline)
    with pipeline.app.app_context():  # as under `flask`, which reads the stored sign-in
        results = {r.name: r for r in run_checks(pipeline.app)}
    note = results["notifications support@example.com"]
    assert "cannot subscribe" in note.detail and "agent@example.com" in note.detail
    assert results["mailbox support@example.com"].ok


# -- sending as the mailbox ----------------------------------------------------------------------


def _send_requests(sandbox) -> list[int]:
    return [
        r.status
        for r in sandbox.graph.controls.requests
        if r.method == "POST" and (r.path.endswith("/send") or r.path.endswith("/sendMail"))
    ]


def test_send_as_denied_holds_the_acknowledgement_with_one_status_item(sandbox, make_pipeline):
    # The signed-in person has Full Access but no Send As: the ticket exists, its
    # acknowledgement waits (not a retry loop), one status item says what to grant; once
    # Send As is granted and the hour has passed, the acknowledgement goes.
    from ticket_manager.extensions import db
    from ticket_manager.models import Mailbox, OutboundMessage, OutboundState
    from ticket_manager.status import collect_status

    pipeline = _delegated_shared_mailbox(sandbox, make_pipeline, notifications=False)
    sandbox.graph.deny_send_as(pipeline.mailbox)
    pipeline.deliver(subject="No Send As", sender="bob@example.com")
    pipeline.deliver(subject="Still no Send As", sender="carol@example.com")
    pipeline.run_once()
    refused = _send_requests(sandbox)  # the emails already under way when the first is refused
    assert refused and set(refused) == {403}
    for _ in range(2):
        pipeline.run_once()

    assert sorted(i["summary"] for i in pipeline.issues()) == ["No Send As", "Still no Send As"]
    assert _send_requests(sandbox) == refused  # no retry loop
    assert sandbox.graph.sent_messages(pipeline.mailbox) == []
    with pipeline.app.app_context():
        rows = db.session.query(OutboundMessage).all()
        assert {r.state for r in rows} <= {OutboundState.PENDING, OutboundState.DRAFTED}
        assert all(r.attempts == 0 for r in rows)
        problems = collect_status(pipeline.settings, remote=False).problems
    [item] = [p for p in problems if "ErrorSendAsDenied" in p]
    assert "Send As" in item and "Full Access" in item

    sandbox.graph.deny_send_as(pipeline.mailbox, denied=False)
    with pipeline.app.app_context():
        db.session.query(Mailbox).update({Mailbox.send_retry_at: None})
        db.session.query(OutboundMessage).update({OutboundMessage.next_attempt_at: None})
        db.session.commit()
        db.session.remove()
    pipeline.run_once()
    assert len(sandbox.graph.sent_messages(pipeline.mailbox)) == 2
    with pipeline.app.app_context():
        problems = collect_status(pipeline.settings, remote=False).problems
    assert not [p for p in problems if "ErrorSendAsDenied" in p]


def test_flask_check_send_test_shows_send_as_is_missing(sandbox, make_pipeline):
    # `flask check --send-test ADDRESS` sends one email and fails, with Graph's code, when the
    # signed-in person may open the shared mailbox but not send as it.
    from ticket_manager.checks import run_checks

    pipeline = _delegated_shared_mailbox(sandbox, make_pipeline, notifications=False)
    sandbox.graph.deny_send_as(pipeline.mailbox)
    with pipeline.app.app_context():
        results = {r.name: r for r in run_checks(pipeline.app, send_test="bob@example.com")}
    sending = results[f"sending as {pipeline.mailbox}"]
    assert not sending.ok and "ErrorSendAsDenied" in sending.detail
    assert results[f"mailbox {pipeline.mailbox}"].ok

    sandbox.graph.deny_send_as(pipeline.mailbox, denied=False)
    with pipeline.app.app_context():
        results = {r.name: r for r in run_checks(pipeline.app, send_test="bob@example.com")}
    assert results[f"sending as {pipeline.mailbox}"].ok
    [sent] = sandbox.graph.sent_messages(pipeline.mailbox)
    assert "bob@example.com" in str(sent)


# -- the errors Graph really returns -----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "code", "advice"),
    [
        ("on-premises", "MailboxNotEnabledForRESTAPI", "hosted on-premises"),
        ("unlicensed", "ResourceNotFound", "no Exchange Online license"),
        ("access-denied", "ErrorAccessDenied", "application access policy"),
    ],
)
def test_a_mailbox_graph_cannot_serve_is_reported_with_its_own_next_step(
    sandbox, make_pipeline, condition, code, advice
):
    # Each mailbox error Graph gives is recorded with its own next step and Graph's
    # request-id and date, never as "the email is no longer in the mailbox".
    pipeline = make_pipeline()
    sandbox.graph.set_mailbox_condition(pipeline.mailbox, condition)
    pipeline.run_once()

    error = _mailbox_row(pipeline).last_sync_error
    assert code in error and advice in error
    assert "request-id" in error and "date" in error
    assert "no longer in the mailbox" not in error


def test_an_smtp_address_graph_does_not_take_says_to_use_the_upn(sandbox, make_pipeline):
    # Without a directory permission the address is used as given, and ErrorInvalidUser tells
    # the user to write the UPN (or grant User.Read.All).
    _hybrid_mailbox(sandbox)
    sandbox.graph.deny_user_reads = True
    pipeline = make_pipeline(MAILBOX=HELPDESK)
    pipeline.run_once()

    error = _mailbox_row(pipeline).last_sync_error
    assert "ErrorInvalidUser" in error and "write the UPN in MAILBOX" in error
    assert "request-id" in error


def test_a_full_mailbox_keeps_the_ticket_and_says_why_nothing_is_sent(sandbox, make_pipeline):
    # ErrorQuotaExceeded: the ticket is made, the acknowledgement fails with the next step.
    from ticket_manager.extensions import db
    from ticket_manager.models import OutboundMessage

    pipeline = make_pipeline()
    pipeline.deliver(subject="Mailbox full")
    sandbox.graph.set_mailbox_condition(pipeline.mailbox, "quota-exceeded")
    pipeline.run_once()

    assert [i["summary"] for i in pipeline.issues()] == ["Mailbox full"]
    with pipeline.app.app_context():
        [row] = db.session.query(OutboundMessage).all()
        assert "ErrorQuotaExceeded" in row.last_error and "mailbox is full" in row.last_error
        assert "request-id" in row.last_error


EVENT = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:Microsoft Exchange Server 2010\r
BEGIN:VEVENT\r
SUMMARY:Printer maintenance\r
DTSTART:20261208T090000Z\r
DTEND:20261208T100000Z\r
UID:040000008200E00074C5B7101A82E008\r
END:VEVENT\r
END:VCALENDAR\r
"""
CONTACT = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob Builder\r\nEMAIL:bob@example.com\r\nEND:VCARD\r\n"


def test_an_attached_event_and_contact_are_saved_as_ics_and_vcf(pipeline):
    # Outlook items attached to an email reach Jira as the files Graph gives: an event as
    # .ics (iCalendar), a contact as .vcf (vCard), not as .eml.
    message_id = pipeline.deliver(subject="Meeting about the printer")
    graph = pipeline.sandbox.graph
    graph.attach_item(pipeline.mailbox, message_id, "Printer maintenance", EVENT)
    graph.attach_item(pipeline.mailbox, message_id, "Bob Builder", CONTACT)
    pipeline.run_once()

    [issue] = pipeline.issues()
    files = {a["filename"]: a for a in issue["attachments"]}
    assert set(files) == {"Printer maintenance.ics", "Bob Builder.vcf"}
    assert files["Printer maintenance.ics"]["mimeType"].startswith("text/calendar")
    assert files["Bob Builder.vcf"]["size"] == len(CONTACT)


def test_graph_answers_updates_as_partial_items_and_forgets_old_generations(sandbox, sandbox_env):
    # The emulator as Graph documents it: an update of isRead comes back as its id and the
    # changed property only; a delta link older than the kept generations answers 410.
    session = _app_session(sandbox_env)
    mailbox = sandbox.accounts.mailboxes[0]
    base = sandbox.graph_url.rstrip("/") + f"/users/{mailbox}"
    message_id = sandbox.graph.deliver(mailbox, subject="One", body="x", sender="a@example.com")
    url = f"{base}/mailFolders/inbox/messages/delta?$select=subject,isRead,internetMessageId"
    first = session.get(url).json()["@odata.deltaLink"]
    session.patch(f"{base}/messages/{message_id}", json={"isRead": True}).raise_for_status()

    [update] = session.get(first).json()["value"]
    assert set(update) == {"@odata.type", "@odata.etag", "id", "isRead"}
    for _ in range(DELTA_GENERATIONS - 2):  # each use of the link makes a new generation
        session.get(first).raise_for_status()
    assert session.get(first).status_code == 200  # still among the newest generations
    gone = session.get(first)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "syncStateNotFound")
