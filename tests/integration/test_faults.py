"""Faults of the services around the worker: outages, throttling, slowness, dropped
connections, expired sync state and subscriptions, a database that drops its connections.

Each test makes one fault with the emulators' knobs (``fail_next``, ``slow_next``,
``reset_next``, Graph's own expiry of delta tokens and subscriptions) and checks what a user
would see: every email becomes one ticket, one acknowledgement, nothing twice.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from ticket_manager.config import load_settings
from ticket_manager.extensions import db
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.client import GraphClient
from ticket_manager.http import build_session
from ticket_manager.models import (
    LedgerMessage,
    Mailbox,
    MessageState,
    OutboundMessage,
    OutboundState,
)
from ticket_manager.pipeline.outbox import LOOP_HEADER
from ticket_manager.pipeline.tickets import SOURCE_PROPERTY
from ticket_manager.pipeline.worker import Worker

CREATE_ISSUE = r"/rest/api/3/issue$"
ADD_COMMENT = r"/rest/api/3/issue/[^/]+/comment$"


def wait_until(
    condition: Callable[[], bool],
    timeout: float = 60,
    what: str = "",
    state: Callable[[], object] | None = None,
) -> None:
    """Poll ``condition``; on timeout, fail saying what was awaited and, if given, the state."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            seen = f"; state: {state()}" if state else ""
            raise AssertionError(f"timed out waiting for {what or condition}{seen}")
        time.sleep(0.1)


def queue_state(harness) -> list[tuple]:
    """Every ledger and outbox row not done yet, with its claim and retry time."""
    unfinished = [
        ("message", r.state, r.claimed_by, r.claimed_until, r.next_attempt_at, r.last_error)
        for r in harness.rows()
        if r.state not in (MessageState.TICKET_CREATED, MessageState.REJECTED)
    ]
    unsent = [
        ("email", r.state, r.claimed_by, r.claimed_until, r.next_attempt_at, r.last_error)
        for r in outbox_rows(harness)
        if r.state != OutboundState.SENT
    ]
    return unfinished + unsent


def issues_by_source(harness) -> Counter[str]:
    """How many Jira issues carry each email's Message-ID in their source property."""
    found: Counter[str] = Counter()
    for issue in harness.issues():
        raw = harness.sandbox.jira.store.find_issue(issue["key"])
        found[(raw["properties"].get(SOURCE_PROPERTY) or {}).get("internetMessageId")] += 1
    return found


def comments_by_source(harness) -> Counter[str]:
    found: Counter[str] = Counter()
    for issue in harness.issues():
        for comment in harness.sandbox.jira.store.find_issue(issue["key"])["comments"]:
            source = comment["properties"].get(SOURCE_PROPERTY) or {}
            found[source.get("internetMessageId")] += 1
    return found


def acknowledgements(harness) -> Counter[str]:
    """Acknowledgements sent, by ticket key, as the emulated mailbox recorded them."""
    sent: Counter[str] = Counter()
    for message in harness.sandbox.graph.sent_messages(harness.mailbox):
        for header in message.get("internetMessageHeaders") or []:
            if header["name"] == LOOP_HEADER and header["value"].startswith("acknowledgement;"):
                sent[header["value"].partition("ticket=")[2]] += 1
    return sent


def retry_time_has_come(harness) -> None:
    """Move every retry time to now: what waiting for it would do."""
    with harness.app.app_context():
        past = datetime.now(UTC) - timedelta(seconds=1)
        for model in (LedgerMessage, OutboundMessage):
            db.session.execute(update(model).values(next_attempt_at=past))
        db.session.commit()
        db.session.remove()


def utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back (they are UTC); PostgreSQL aware ones."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rows_in(harness, state: MessageState) -> list[LedgerMessage]:
    return [r for r in harness.rows() if r.state == state]


def outbox_rows(harness) -> list[OutboundMessage]:
    with harness.app.app_context():
        rows = db.session.query(OutboundMessage).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


class RunningWorker:
    """The long-running worker in a thread of the test, polling every second."""

    def __init__(self, harness) -> None:
        self.worker = Worker(harness.app, harness.settings, list(harness.settings.mailboxes))
        self.thread = threading.Thread(target=self.worker.run, name="test-worker", daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc_info) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


# -- Jira down -----------------------------------------------------------------------------


def test_jira_down_for_a_while_then_back_makes_every_ticket_once(make_pipeline):
    # While Jira answers 503 the emails fail with a retry time; once it is back each
    # becomes exactly one ticket with one acknowledgement.
    harness = make_pipeline(O365_POLL_INTERVAL="1", JIRA_POLL_INTERVAL="0")
    jira = harness.sandbox.jira.controls
    harness.deliver(subject="Before the outage")
    with RunningWorker(harness):
        wait_until(lambda: len(harness.issues()) == 1, what="the first ticket")
        jira.fail_next(100_000, status=503, retry_after=1, path_contains="/rest/")
        outage_started = datetime.now(UTC)
        for n in range(4):
            harness.deliver(subject=f"During the outage {n}", sender=f"p{n}@example.com")
        wait_until(lambda: len(rows_in(harness, MessageState.FAILED)) == 4, what="4 failures")
        first_back_off = outage_started + timedelta(seconds=29)  # 30 s, at least Retry-After
        for row in rows_in(harness, MessageState.FAILED):
            assert "503" in row.last_error
            assert utc(row.next_attempt_at) >= first_back_off
            assert row.ticket_key is None
        assert len(harness.issues()) == 1

        jira.clear_faults()
        retry_time_has_come(harness)
        wait_until(
            lambda: (
                len(rows_in(harness, MessageState.TICKET_CREATED)) == 5
                and all(r.state == OutboundState.SENT for r in outbox_rows(harness))
                and len(outbox_rows(harness)) == 5
            ),
            what="5 tickets and their acknowledgements",
        )
    by_source = issues_by_source(harness)
    assert len(by_source) == 5 and set(by_source.values()) == {1}
    assert sorted(acknowledgements(harness).values()) == [1] * 5


def test_jira_down_when_the_worker_starts_is_waited_out(make_pipeline):
    # A worker that cannot reach Jira at start records why and takes the mail up later.
    harness = make_pipeline(JIRA_POLL_INTERVAL="0")
    harness.deliver(subject="Sent while Jira was down")
    harness.sandbox.jira.controls.fail_next(100, status=503, retry_after=0, path_contains="/rest/")
    harness.run_once()
    assert harness.issues() == []
    with harness.app.app_context():
        [mailbox] = db.session.query(Mailbox).all()
        assert "503" in mailbox.last_sync_error
        db.session.remove()
    harness.sandbox.jira.controls.clear_faults()
    harness.run_once()
    assert list(issues_by_source(harness).values()) == [1]


# -- Graph throttling ------------------------------------------------------------------------


@pytest.fixture
def graph_client(sandbox_env) -> GraphClient:
    settings = load_settings(sandbox_env)
    session = build_session(settings.ca_bundle)
    return GraphClient(settings.graph_url, TokenProvider(settings, session).access_token, session)


def test_a_429_storm_on_delta_and_message_fetches_is_waited_out_as_told(sandbox, graph_client):
    # Graph throttles the delta query and the message fetches with Retry-After: the client
    # waits what it is told, each throttled call is repeated exactly once, and it finishes.
    mailbox = sandbox.accounts.mailboxes[0]
    ids = [
        sandbox.graph.deliver(mailbox, subject=f"Mail {n}", body="x", sender="a@example.com")
        for n in range(3)
    ]
    graph = sandbox.graph.controls
    graph.fail_next(2, status=429, retry_after=1, path_contains="/delta")
    graph.fail_next(2, status=429, retry_after=1, path_pattern=r"/users/[^/]+/messages/[^/]+$")
    graph.reset_log()

    pages = list(graph_client.delta_pages(mailbox, page_size=50))
    message = graph_client.get_message(mailbox, sandbox.graph.immutable_id(mailbox, ids[0]))

    assert sum(len(p.messages) for p in pages) == 3
    assert message.subject == "Mail 0"
    log = [r for r in graph.requests if "/messages" in r.path]  # not the mailbox's resolution
    assert [r.status for r in log] == [429, 429, 200, 429, 429, 200]
    for throttled, retried in itertools.pairwise(log):
        if throttled.status == 429:
            assert retried.at - throttled.at >= 0.95  # Retry-After: 1 was honoured


def test_a_429_storm_during_a_round_loses_nothing(pipeline):
    # Throttled delta pages and attachment fetches in the middle of a round: every email
    # still becomes one ticket with its file, and only the throttled calls were repeated.
    for n in range(3):
        pipeline.deliver(
            subject=f"With a file {n}",
            sender=f"p{n}@example.com",
            attachments=[(f"log{n}.txt", b"line\n" * 10, "text/plain")],
        )
    graph = pipeline.sandbox.graph.controls
    graph.fail_next(2, status=429, retry_after=1, path_contains="/delta")
    graph.fail_next(3, status=429, retry_after=1, path_contains="/attachments")
    pipeline.run_once()
    assert sorted(issues_by_source(pipeline).values()) == [1, 1, 1]
    assert all(len(i["attachments"]) == 1 for i in pipeline.issues())
    log = graph.requests
    assert len([r for r in log if r.status == 429]) == 5
    fetches = [r for r in log if r.path.endswith("/attachments") and r.status == 200]
    # Two successful listings per email (the files' sizes, then their content): nothing
    # fetched twice.
    assert len(fetches) == 6


def test_a_tight_request_quota_slows_the_pipeline_but_loses_nothing(pipeline, caplog):
    # Graph's per-mailbox request quota (10,000 per 10 minutes, scaled down to 4 per second)
    # runs out several times in one pass: every throttled call waits out its Retry-After, and
    # each email still becomes one ticket, marked in the mailbox, with one acknowledgement.
    # (19 calls, 4 let in per second: no call is refused more than 4 times, and the client
    # makes up to 6 attempts.)
    emails = 6
    for n in range(emails):
        pipeline.deliver(subject=f"Under the quota {n}", sender=f"p{n}@example.com")
    graph = pipeline.sandbox.graph
    graph.set_request_quota(4, window=1)
    graph.controls.reset_log()

    pipeline.run_once()

    by_source = issues_by_source(pipeline)
    assert len(by_source) == emails and set(by_source.values()) == {1}
    assert sorted(acknowledgements(pipeline).values()) == [1] * emails
    assert {r.state for r in pipeline.rows()} == {MessageState.TICKET_CREATED}
    assert [r.state for r in outbox_rows(pipeline)] == [OutboundState.SENT] * emails
    tickets = sorted(f"Ticket {i['key']}" for i in pipeline.issues())
    inbox = graph.messages(pipeline.mailbox, "inbox")
    assert sorted(c for m in inbox for c in m["categories"]) == tickets
    assert [r for r in graph.controls.requests if r.status == 429]  # the quota did run out
    assert not [r for r in caplog.records if r.getMessage() == "email not marked"]


# -- slow answers ------------------------------------------------------------------------------


def test_a_graph_answer_slower_than_the_timeout_is_retried(sandbox, sandbox_env):
    # A delta page that comes after the read timeout is a transient failure: retried.
    settings = load_settings(sandbox_env)
    session = build_session(settings.ca_bundle)
    tokens = TokenProvider(settings, session)
    graph = GraphClient(settings.graph_url, tokens.access_token, session, timeout=(5, 0.5))
    mailbox = sandbox.accounts.mailboxes[0]
    sandbox.graph.deliver(mailbox, subject="Slow", body="x", sender="a@example.com")
    sandbox.graph.controls.slow_next(1, 1.5, path_contains="/delta")
    pages = list(graph.delta_pages(mailbox))
    assert [m.subject for p in pages for m in p.messages] == ["Slow"]
    wait_until(
        lambda: len([r for r in sandbox.graph.controls.requests if "/delta" in r.path]) == 2,
        timeout=5,
        what="the slow answer and the retry",
    )


def test_jira_slow_to_answer_a_create_it_made_gets_no_second_ticket(make_pipeline):
    # Jira creates the issue but answers after the read timeout: the next attempt finds the
    # issue by its source property instead of creating another.
    harness = make_pipeline(HTTP_READ_TIMEOUT="1", JIRA_POLL_INTERVAL="0")
    harness.deliver(subject="Slow Jira")
    harness.sandbox.jira.controls.slow_next(1, 2.5, path_pattern=CREATE_ISSUE, method="POST")
    harness.run_once()
    [row] = harness.rows()
    assert row.state == MessageState.FAILED
    assert "Timeout" in row.last_error
    wait_until(lambda: len(harness.issues()) == 1, what="Jira to create it, answering late")

    retry_time_has_come(harness)
    harness.run_once()
    [issue] = harness.issues()
    [row] = harness.rows()
    assert row.state == MessageState.TICKET_CREATED and row.ticket_key == issue["key"]
    assert acknowledgements(harness) == {issue["key"]: 1}


# -- dropped connections -----------------------------------------------------------------------


def test_a_connection_dropped_after_jira_created_the_issue_makes_one_ticket(pipeline):
    # The connection breaks after Jira created the issue: the create is not repeated blindly,
    # and the next attempt adopts the issue.
    pipeline.deliver(subject="Lost answer")
    jira = pipeline.sandbox.jira.controls
    jira.reset_next(1, path_pattern=CREATE_ISSUE, method="POST", after_processing=True)
    pipeline.run_once()
    [row] = pipeline.rows()
    assert row.state == MessageState.FAILED
    assert "ConnectionError" in row.last_error
    assert len(pipeline.issues()) == 1

    retry_time_has_come(pipeline)
    pipeline.run_once()
    [issue] = pipeline.issues()
    assert pipeline.rows()[0].ticket_key == issue["key"]
    assert acknowledgements(pipeline) == {issue["key"]: 1}


def test_a_connection_dropped_after_jira_added_the_comment_makes_one_comment(pipeline):
    # A reply's comment is added but its answer lost: the retry finds the comment.
    original = "<original-drop@example.com>"
    pipeline.deliver(subject="Printer", message_id=original)
    pipeline.run_once()
    [issue] = pipeline.issues()
    reply = "<reply-drop@example.com>"
    pipeline.deliver(
        subject="RE: Printer", message_id=reply, in_reply_to=original, references=[original]
    )
    pipeline.sandbox.jira.controls.reset_next(
        1, path_pattern=ADD_COMMENT, method="POST", after_processing=True
    )
    pipeline.run_once()
    assert comments_by_source(pipeline)[reply] == 1
    assert {r.internet_message_id: r.state for r in pipeline.rows()}[reply] == MessageState.FAILED

    retry_time_has_come(pipeline)
    pipeline.run_once()
    assert comments_by_source(pipeline)[reply] == 1
    row = {r.internet_message_id: r for r in pipeline.rows()}[reply]
    assert row.state == MessageState.COMMENTED and row.ticket_key == issue["key"]


def test_dropped_graph_connections_are_retried(pipeline):
    # Graph connections closed without an answer, before or after Graph acted, are retried:
    # the round finishes and the email is marked.
    pipeline.deliver(subject="Flaky network")
    graph = pipeline.sandbox.graph.controls
    graph.reset_next(1, path_contains="/delta")
    graph.reset_next(1, method="PATCH", path_contains="/messages/", after_processing=True)
    pipeline.run_once()
    [issue] = pipeline.issues()
    [email] = pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")
    assert email["categories"] == [f"Ticket {issue['key']}"]
    assert [r.status for r in graph.requests if "/delta" in r.path][:2] == [0, 200]


def test_a_jira_that_refuses_connections_for_a_moment_gets_the_create_retried(sandbox, sandbox_env):
    # Jira is restarting (connection refused): the create never reached it, so the client
    # tries again after a back-off, and the issue is made once.
    from ticket_manager.jira.client import JiraClient
    from ticket_manager_sandbox.server import EmulatorServer

    client = JiraClient(load_settings(sandbox_env))
    project = client.project_key_for_board("support")
    server = sandbox.servers["jira"]
    port = server.port
    server.stop()
    restarted: list[EmulatorServer] = []

    def come_back() -> None:
        time.sleep(1.0)
        restarted.append(EmulatorServer(server.app, ca=sandbox.ca, port=port).start())

    threading.Thread(target=come_back, daemon=True).start()
    try:
        key = client.create_issue(
            {
                "project": {"key": project},
                "summary": "While Jira restarts",
                "issuetype": {"name": "Task"},
            },
            {},
        )
    finally:
        wait_until(lambda: restarted, timeout=10, what="Jira to come back")
        sandbox.servers["jira"] = restarted[0]
    assert [i["key"] for i in sandbox.jira.issues()] == [key]


def test_dropped_graph_connections_while_acknowledging_send_one_email(pipeline):
    # The answers to "create the reply" and to "send it" are both lost after Graph acted:
    # the requester still gets exactly one acknowledgement.
    pipeline.deliver(subject="Acknowledge me once")
    graph = pipeline.sandbox.graph.controls
    graph.reset_next(1, path_pattern=r"/createReply$", method="POST", after_processing=True)
    graph.reset_next(1, path_pattern=r"/send$", method="POST", after_processing=True)
    pipeline.run_once()
    assert len([r for r in graph.requests if r.status == 0]) == 2  # both answers were lost
    [issue] = pipeline.issues()
    assert acknowledgements(pipeline) == {issue["key"]: 1}
    retry_time_has_come(pipeline)
    pipeline.run_once()
    assert acknowledgements(pipeline) == {issue["key"]: 1}
    assert [r.state for r in outbox_rows(pipeline)] == [OutboundState.SENT]


# -- Graph's sync state and subscriptions ----------------------------------------------------


def test_an_expired_delta_token_resyncs_without_duplicates(pipeline):
    # Graph forgets the sync state (410 syncStateNotFound): the full resync sees old mail
    # again; only what is new becomes a ticket or a comment, and nothing is acknowledged twice.
    first = "<first-410@example.com>"
    pipeline.deliver(subject="First", message_id=first)
    pipeline.deliver(subject="Second", sender="bob@example.com")
    pipeline.run_once()
    pipeline.sandbox.graph.expire_delta_tokens(pipeline.mailbox)
    pipeline.deliver(subject="Third", sender="carol@example.com")
    pipeline.deliver(subject="RE: First", in_reply_to=first, references=[first])
    pipeline.run_once()

    gone = [r for r in pipeline.sandbox.graph.controls.requests if r.status == 410]
    assert len(gone) == 1
    assert sorted(issues_by_source(pipeline).values()) == [1, 1, 1]
    assert sum(comments_by_source(pipeline).values()) == 1
    assert sorted(acknowledgements(pipeline).values()) == [1, 1, 1]
    assert len(pipeline.rows()) == 4


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


def subscription_row(harness) -> Mailbox:
    with harness.app.app_context():
        row = db.session.query(Mailbox).one()
        db.session.expunge(row)
        db.session.remove()
        return row


def test_a_subscription_gone_at_renewal_is_created_again(notified, sandbox):
    # Graph answers 404 to the renewal of a subscription that expired on its side: the worker
    # makes a new one, and notifications reach the app again.
    notified.run_once()
    old = subscription_row(notified).subscription_id
    sandbox.graph.expire_subscription(old)
    with notified.app.app_context():
        row = db.session.query(Mailbox).one()
        row.subscription_expires_at = datetime.now(UTC) + timedelta(hours=1)  # due for renewal
        db.session.commit()
        db.session.remove()
    notified.run_once()
    new = subscription_row(notified)
    assert new.subscription_id and new.subscription_id != old
    assert utc(new.subscription_expires_at) > datetime.now(UTC) + timedelta(days=6)
    renewals = [
        r.status
        for r in sandbox.graph.controls.requests
        if r.method == "PATCH" and "/subscriptions/" in r.path
    ]
    assert renewals == [404]
    notified.deliver(subject="Notify the new subscription")
    assert sandbox.graph.wait_for_notifications(10)
    assert subscription_row(notified).sync_requested_at is not None


# -- the database ------------------------------------------------------------------------------


def drop_every_connection(admin_url: str, database: str) -> int:
    """What a PostgreSQL restart does to the worker: every session of its database ends."""
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": database},
                ).all()
            )
    finally:
        admin.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_dropping_every_connection_mid_round_loses_nothing(
    make_pipeline, database_url, postgres_server_url, caplog
):
    # Every database connection is cut, three times, while emails are processed: the worker
    # goes on, and each email still becomes one ticket with one acknowledgement.
    from sqlalchemy.engine import make_url

    harness = make_pipeline(O365_POLL_INTERVAL="1", JIRA_POLL_INTERVAL="0")
    harness.sandbox.jira.controls.set_latency(0.05)
    for n in range(20):
        harness.deliver(subject=f"Under a database restart {n}", sender=f"p{n}@example.com")
    database = make_url(database_url).database
    running = RunningWorker(harness)
    with running:
        wait_until(lambda: len(harness.issues()) >= 2, what="the first tickets")
        dropped = 0

        def done() -> tuple[int, int]:
            """Emails ticketed and acknowledgements sent: grows as the worker goes on."""
            retry_time_has_come(harness)  # failures wait 30 s and more: let that time pass
            sent = [r for r in outbox_rows(harness) if r.state == OutboundState.SENT]
            return len(rows_in(harness, MessageState.TICKET_CREATED)), len(sent)

        def finished() -> bool:
            return done() == (20, 20)

        for _ in range(3):
            before = done()
            dropped += drop_every_connection(postgres_server_url, database)
            # The worker reconnects and goes on (or has finished) before the next cut.
            wait_until(lambda b=before: finished() or done() != b, what="work after a cut")
        assert dropped >= 3

        wait_until(
            finished,
            timeout=60,
            what="20 tickets and their acknowledgements",
            state=lambda: queue_state(harness),
        )
        assert running.thread.is_alive()
    failures = [r for r in caplog.records if r.getMessage() == "message failed"]
    assert all(r.levelname == "WARNING" for r in failures)  # transient, retried
    assert all(r.error.startswith("database error") for r in failures)
    by_source = issues_by_source(harness)
    assert len(by_source) == 20 and set(by_source.values()) == {1}
    assert sorted(acknowledgements(harness).values()) == [1] * 20
