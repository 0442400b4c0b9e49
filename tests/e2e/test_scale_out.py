"""Several workers on one database: one owner per mailbox, one ticket per email, whatever dies.

The workers run as real `handle-incoming-email` processes against the emulators and one
PostgreSQL database; the leases and claims underneath are also tested directly, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade

from ticket_manager import create_app
from ticket_manager.clock import as_utc
from ticket_manager.extensions import db
from ticket_manager.models import (
    Lease,
    LedgerMessage,
    MessageState,
    OutboundMessage,
    OutboundState,
    WorkerProcess,
)
from ticket_manager.pipeline import leases
from ticket_manager.pipeline.ownership import Ownership, mailbox_lease

MAILBOXES = ["support@example.com", "sales@example.com", "billing@example.com"]
EMAILS_PER_MAILBOX = 20
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# -- helpers -------------------------------------------------------------------------------------


class WorkerRun:
    """One `flask o365 handle-incoming-email` process, logging JSON lines to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log_file = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self, name: str) -> list[dict]:
        found = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("event") == name:
                    found.append(entry)
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        self.log_file.close()
        return code


@pytest.fixture
def start_worker(tmp_path):
    """Start worker processes; any still running at the end of the test is killed."""
    runs: list[WorkerRun] = []

    def start(env: dict[str, str]) -> WorkerRun:
        run = WorkerRun(env, tmp_path / f"worker-{len(runs) + 1}.log")
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(timeout=10)
        run.log_file.close()


@pytest.fixture
def three_mailboxes(tmp_path):
    """The emulators with three monitored mailboxes."""
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(mailboxes=MAILBOXES), state_dir=tmp_path / "three") as running:
        yield running


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def mailbox_owners(harness) -> dict[str, int]:
    """Mailbox → pid of the worker holding its lease, for leases that have not lapsed."""
    with harness.app.app_context():
        rows = db.session.query(Lease).filter(Lease.name.like("mailbox:%")).all()
        moment = leases.now()
        owners = {
            row.name.removeprefix("mailbox:"): int(row.owner.split(":")[1])
            for row in rows
            if as_utc(row.expires_at) > moment
        }
        db.session.remove()
    return owners


def spread_over(harness, runs: list[WorkerRun]) -> dict[str, int] | None:
    """The owners once every mailbox is owned and every worker owns one."""
    owners = mailbox_owners(harness)
    if len(owners) == len(MAILBOXES) and set(owners.values()) == {r.pid for r in runs}:
        return owners
    return None


def deliver_all(sandbox) -> None:
    for n in range(EMAILS_PER_MAILBOX):
        for mailbox in MAILBOXES:
            sandbox.graph.deliver(
                mailbox,
                sender=f"Customer {n} <customer{n}.{mailbox.split('@')[0]}@example.com>",
                subject=f"{mailbox} email {n}",
                body=f"Email {n} to {mailbox}.",
            )


def all_done(harness) -> bool:
    rows = harness.rows()
    with harness.app.app_context():
        sent = db.session.query(OutboundMessage).filter_by(state=OutboundState.SENT).count()
        db.session.remove()
    total = len(MAILBOXES) * EMAILS_PER_MAILBOX
    return (
        len(rows) == total
        and all(r.state == MessageState.TICKET_CREATED for r in rows)
        and sent == total
    )


def acknowledged_keys(sandbox, mailbox: str) -> list[str]:
    """The ticket keys of the acknowledgements the mailbox sent, one per email sent."""
    keys = []
    for message in sandbox.graph.sent_messages(mailbox):
        for header in message.get("internetMessageHeaders") or []:
            if header["name"].lower() == "x-ticket-manager":
                kind, _, ticket = header["value"].partition("; ticket=")
                assert kind == "acknowledgement"
                keys.append(ticket)
    return keys


def assert_one_ticket_and_one_acknowledgement_per_email(harness) -> None:
    sandbox = harness.sandbox
    issues = sandbox.jira.issues()
    expected = {f"{m} email {n}" for m in MAILBOXES for n in range(EMAILS_PER_MAILBOX)}
    summaries = Counter(issue["summary"] for issue in issues)
    assert set(summaries) == expected
    assert max(summaries.values()) == 1, [s for s, count in summaries.items() if count > 1]

    rows = harness.rows()
    assert len(rows) == len(expected)
    assert all(row.state == MessageState.TICKET_CREATED for row in rows)
    assert len({row.ticket_key for row in rows}) == len(rows)

    by_mailbox = defaultdict(set)
    for row in rows:
        by_mailbox[row.mailbox].add(row.ticket_key)
    for mailbox in MAILBOXES:
        sent = acknowledged_keys(sandbox, mailbox)
        assert len(sent) == len(set(sent)), f"{mailbox} acknowledged a ticket twice"
        assert set(sent) == by_mailbox[mailbox]


def cluster_env(harness) -> dict[str, str]:
    return {**harness.env, "O365_POLL_INTERVAL": "1", "LOG_FORMAT": "json"}


# -- several worker processes --------------------------------------------------------------------


@on_postgresql
def test_two_workers_share_three_mailboxes_and_make_each_ticket_once(
    make_pipeline, three_mailboxes, start_worker
):
    # Two workers on one PostgreSQL database split the mailboxes; 60 emails make 60 tickets
    # and 60 acknowledgements, each mailbox's by the worker that owns it.
    harness = make_pipeline(target_sandbox=three_mailboxes)
    env = cluster_env(harness)
    runs = [start_worker(env), start_worker(env)]
    owners = wait_until(lambda: spread_over(harness, runs), 30, "the mailboxes to be spread")
    assert sorted(Counter(owners.values()).values()) == [1, 2]

    deliver_all(three_mailboxes)
    wait_until(lambda: all_done(harness), 60, "every email to be ticketed and acknowledged")
    assert_one_ticket_and_one_acknowledgement_per_email(harness)

    created_by = defaultdict(set)
    for run in runs:
        for event in run.events("ticket created"):
            created_by[event["mailbox"]].add(run.pid)
        assert run.events("ticket created"), "each worker made tickets"
    assert {m: pids for m, pids in created_by.items()} == {m: {p} for m, p in owners.items()}

    assert [run.stop() for run in runs] == [0, 0]
    with harness.app.app_context():  # a clean stop gives everything back
        assert db.session.query(Lease).count() == 0
        assert db.session.query(WorkerProcess).count() == 0
        db.session.remove()


@on_postgresql
def test_a_killed_worker_s_mailboxes_pass_to_the_other_within_seconds(
    make_pipeline, three_mailboxes, start_worker
):
    # kill -9 of a worker in the middle of its creates: the other takes its mailboxes within
    # seconds, adopts the issues it created but never recorded, and every email has one ticket.
    harness = make_pipeline(target_sandbox=three_mailboxes)
    env = cluster_env(harness)
    runs = [start_worker(env), start_worker(env)]
    owners = wait_until(lambda: spread_over(harness, runs), 30, "the mailboxes to be spread")
    victim, survivor = runs
    victim_mailboxes = {m for m, pid in owners.items() if pid == victim.pid}

    inner = three_mailboxes.jira.app.wsgi_app
    creates = Counter()
    killed_at: list[float] = []
    lock = threading.Lock()

    def kill_in_the_middle(environ, start_response):
        summary = None
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/issue"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            summary = json.loads(body)["fields"]["summary"]
        response = inner(environ, start_response)  # the issue exists from here on
        if summary and summary.split()[0] in victim_mailboxes:
            with lock:
                creates["victim"] += 1
                if creates["victim"] == 5 and not killed_at:
                    victim.process.kill()  # SIGKILL: no clean-up, no commit
                    killed_at.append(time.monotonic())
        return response

    three_mailboxes.jira.app.wsgi_app = kill_in_the_middle
    deliver_all(three_mailboxes)
    wait_until(lambda: killed_at, 30, "the victim's fifth create")
    assert victim.process.wait(timeout=10) == -signal.SIGKILL

    def survivor_owns_all():
        owners = mailbox_owners(harness)
        return len(owners) == len(MAILBOXES) and set(owners.values()) == {survivor.pid}

    wait_until(survivor_owns_all, 60, "the survivor to own every mailbox")

    wait_until(lambda: all_done(harness), 60, "every email to be ticketed and acknowledged")
    assert_one_ticket_and_one_acknowledgement_per_email(harness)
    assert survivor.stop() == 0


@on_sqlite
def test_a_second_worker_on_sqlite_is_refused_at_once(make_pipeline, start_worker):
    # SQLite takes one worker: a second is refused with a one-line reason; other commands
    # still run alongside, and once the first has stopped a worker starts again.
    harness = make_pipeline(O365_POLL_INTERVAL="60")
    first = start_worker({**harness.env, "LOG_FORMAT": "json"})
    wait_until(lambda: first.events("worker started"), 30, "the first worker to start")

    second = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **harness.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    [line] = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
    assert line == (
        f"Error: another worker (pid {first.pid} on {socket.gethostname()}) is running on this "
        "SQLite database; SQLite supports one worker: use PostgreSQL "
        "(SQLALCHEMY_DATABASE_URI=postgresql+psycopg://...) to run several"
    )
    assert first.process.poll() is None  # the first one goes on

    listing = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "o365", "list-failed"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **harness.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr

    assert first.stop() == 0
    again = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email", "--once"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **harness.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr


# -- the lease and claim helpers, on SQLite and PostgreSQL ----------------------------------------


@pytest.fixture
def app(database_url):
    """An app on a fresh, migrated database, with its context pushed."""
    application = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with application.app_context():
        upgrade()
        yield application
        db.session.remove()
        db.engine.dispose()


LONG = timedelta(minutes=1)


def lapse_lease(name: str) -> None:
    """Move a lease's end into the past, as if its term had run out (instead of waiting)."""
    db.session.query(Lease).filter_by(name=name).update({"expires_at": leases.now() - LONG})
    db.session.commit()


def lease_end(name: str):
    return as_utc(db.session.get(Lease, name).expires_at)


def test_a_lease_has_one_owner_until_it_lapses_then_another_may_take_it(app):
    # Taking a held lease fails; re-taking one's own renews it; a lapsed one can be taken.
    assert leases.acquire("mailbox:a", LONG, owner="w1")
    assert not leases.acquire("mailbox:a", LONG, owner="w2")
    assert leases.acquire("mailbox:a", LONG, owner="w1")
    assert leases.taken(["mailbox:a", "mailbox:b"], owner="w2") == {"mailbox:a": "w1"}
    assert leases.taken(["mailbox:a"], owner="w1") == {}

    lapse_lease("mailbox:a")
    assert leases.taken(["mailbox:a"], owner="w2") == {}
    assert leases.acquire("mailbox:a", LONG, owner="w2")
    assert leases.renew(["mailbox:a"], LONG, owner="w1") == set()  # w1 lost it
    assert leases.renew(["mailbox:a"], LONG, owner="w2") == {"mailbox:a"}
    assert not leases.acquire("mailbox:a", LONG, owner="w1")


def test_renewing_keeps_a_lease_past_its_first_term(app):
    # A lease renewed in time ends a new term later, and is held past its first term's end.
    assert leases.acquire("mailbox:a", timedelta(seconds=1), owner="w1")
    first_end = lease_end("mailbox:a")
    assert leases.renew(["mailbox:a", "mailbox:never-taken"], LONG, "w1") == {"mailbox:a"}
    assert lease_end("mailbox:a") >= first_end + LONG - timedelta(seconds=1)
    assert not leases.acquire("mailbox:a", LONG, owner="w2")


def test_a_released_lease_is_free_at_once_and_only_its_owner_releases_it(app):
    # Release gives a lease back without waiting for it to lapse; others cannot release it.
    assert leases.acquire("mailbox:a", LONG, owner="w1")
    leases.release(["mailbox:a"], owner="w2")
    assert not leases.acquire("mailbox:a", LONG, owner="w2")
    leases.release(["mailbox:a"], owner="w1")
    assert leases.acquire("mailbox:a", LONG, owner="w2")
    leases.release_all_of(["w2"])
    assert db.session.query(Lease).count() == 0


def test_racing_workers_take_a_lease_exactly_once(app):
    # Eight threads ask for the same free lease at the same moment: one gets it.
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def race(owner: str) -> None:
        with app.app_context():
            barrier.wait()
            results.append(leases.acquire("mailbox:race", LONG, owner=owner))
            db.session.remove()

    threads = [threading.Thread(target=race, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def add_ledger_rows(count: int) -> None:
    for n in range(count):
        db.session.add(
            LedgerMessage(
                mailbox="support@example.com",
                internet_message_id=f"<m{n}@example.com>",
                state=MessageState.PENDING,
                attempts=0,
            )
        )
    db.session.commit()


def test_batch_claims_take_each_row_once_and_a_dead_owner_s_rows_come_back(app):
    # Claims skip rows another owner holds, count an attempt, and are freed by owner.
    add_ledger_rows(5)
    pending = LedgerMessage.state == MessageState.PENDING
    assert leases.claim_rows(LedgerMessage, pending, LONG, limit=2, owner="w1") == [1, 2]
    assert leases.claim_rows(LedgerMessage, pending, LONG, owner="w2") == [3, 4, 5]
    assert leases.claim_rows(LedgerMessage, pending, LONG, owner="w3") == []
    assert db.session.get(LedgerMessage, 1).attempts == 1

    leases.unclaim_rows(LedgerMessage, [3], owner="w2")
    assert db.session.get(LedgerMessage, 3).attempts == 0
    assert leases.release_claims_of(["w1"]) == 2
    assert leases.claim_rows(LedgerMessage, pending, LONG, owner="w3") == [1, 2, 3]
    # The dead owner's attempt was given back (a kill is not the row's failure): one counted.
    assert db.session.get(LedgerMessage, 1).attempts == 1


def test_a_lapsed_claim_can_be_taken_again(app):
    # A claim its owner never released (the process died elsewhere) lapses by itself.
    add_ledger_rows(1)
    everything = LedgerMessage.id > 0
    assert leases.claim_rows(LedgerMessage, everything, LONG, owner="w1") == [1]
    assert leases.claim_rows(LedgerMessage, everything, LONG, owner="w2") == []
    db.session.query(LedgerMessage).update({"claimed_until": leases.now() - LONG})  # lapsed
    db.session.commit()
    assert leases.claim_rows(LedgerMessage, everything, LONG, owner="w2") == [1]


def test_a_claim_stranded_by_a_database_failure_is_given_back_before_the_next_claim(app):
    # A row whose failure could not be recorded (the database went away) is free again as
    # soon as its owner claims anything, not when its claim lapses minutes later; a claim the
    # owner took again after a lapse is not the stranded one and stays.
    add_ledger_rows(2)
    everything = LedgerMessage.id > 0
    owner = leases.WORKER_ID
    assert leases.claim_rows(LedgerMessage, everything, LONG, owner=owner) == [1, 2]
    leases.strand(LedgerMessage, 1, LONG)
    db.session.query(LedgerMessage).filter_by(id=2).update(
        {"claimed_until": leases.now() + 2 * LONG}  # as if it lapsed and was claimed again
    )
    db.session.commit()
    leases.strand(LedgerMessage, 2, LONG)

    assert leases.claim_rows(LedgerMessage, everything, LONG, owner=owner) == [1]
    assert db.session.get(LedgerMessage, 1).attempts == 2
    assert db.session.get(LedgerMessage, 2).claimed_by == owner
    assert leases.release_stranded() == 0  # nothing is left to give back


def test_concurrent_batch_claims_never_share_a_row(app):
    # Four threads claim batches of the same 200 rows until none are left: no row twice.
    add_ledger_rows(200)
    taken: dict[str, list[int]] = defaultdict(list)

    def drain(owner: str) -> None:
        with app.app_context():
            while ids := leases.claim_rows(
                LedgerMessage, LedgerMessage.id > 0, LONG, limit=7, owner=owner
            ):
                taken[owner].extend(ids)
            db.session.remove()

    threads = [threading.Thread(target=drain, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [row_id for ids in taken.values() for row_id in ids]
    assert sorted(every) == list(range(1, 201))


def test_a_silent_worker_and_a_vanished_local_process_are_buried_with_their_work(app):
    # A worker whose heartbeat stopped 30 s ago, and one of this host whose process is gone,
    # lose their leases and their claims at the next heartbeat of a live worker.
    finished = subprocess.Popen(["true"])  # a pid that no longer runs
    finished.wait()
    silent = "other-host:1:silent"
    vanished = f"{leases.HOST}:{finished.pid}:vanished"
    long_ago = leases.now() - timedelta(minutes=1)
    db.session.add_all(
        [
            WorkerProcess(
                id=silent, host="other-host", pid=1, started_at=long_ago, heartbeat_at=long_ago
            ),
            WorkerProcess(
                id=vanished,
                host=leases.HOST,
                pid=finished.pid,
                started_at=leases.now(),
                heartbeat_at=leases.now(),
            ),
        ]
    )
    db.session.commit()
    add_ledger_rows(2)
    assert leases.acquire(mailbox_lease("a@example.com"), LONG, owner=silent)
    assert leases.acquire(mailbox_lease("b@example.com"), LONG, owner=vanished)
    assert leases.claim_rows(LedgerMessage, LedgerMessage.id == 1, LONG, owner=silent) == [1]
    assert leases.claim_rows(LedgerMessage, LedgerMessage.id == 2, LONG, owner=vanished) == [2]

    live = Ownership(app, ["a@example.com", "b@example.com"], owner="host-c:3:live")
    live.beat()
    db.session.expire_all()
    assert [w.id for w in db.session.query(WorkerProcess)] == ["host-c:3:live"]
    assert db.session.query(Lease).count() == 0
    assert [row.claimed_by for row in db.session.query(LedgerMessage)] == [None, None]
    assert live.rebalance()
    assert live.held_mailboxes() == ["a@example.com", "b@example.com"]
    live.stop()


def test_workers_share_the_mailboxes_fairly_and_take_over_from_one_that_stops(app):
    # A lone worker owns every mailbox; a second one joins and gets its share; when the first
    # stops, the second takes everything.
    first = Ownership(app, MAILBOXES, owner="host-a:1:first")
    second = Ownership(app, MAILBOXES, owner="host-b:2:second")
    first.start()
    try:
        assert first.rebalance()
        assert first.held_mailboxes() == MAILBOXES
        second.start()
        assert not second.rebalance()  # nothing is free yet
        first.rebalance()  # two live workers: a share of two
        assert first.held_mailboxes() == MAILBOXES[:2]
        assert second.rebalance()
        assert second.held_mailboxes() == MAILBOXES[2:]
        owners = {row.name: row.owner for row in db.session.query(Lease)}
        assert owners[mailbox_lease(MAILBOXES[2])] == "host-b:2:second"
    finally:
        first.stop()
    assert second.rebalance()
    assert second.held_mailboxes() == MAILBOXES
    second.stop()
    assert db.session.query(Lease).count() == 0
