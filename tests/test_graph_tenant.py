"""Microsoft 365 as real tenants are: delta partial items, token generations, mailbox identity,
subscriptions, Send As and the errors Graph really returns, over real HTTPS."""

from __future__ import annotations

from ticket_manager.models import MessageState
from ticket_manager.sandbox.graph_delta import DELTA_GENERATIONS


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
