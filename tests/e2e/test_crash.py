"""Kill -9 at random moments: the worker loses no email and makes nothing twice.

The worker runs as its own process (``python -m ticket_manager o365 handle-incoming-email``)
against the emulators of this process, which outlive every kill; see
``ticket_manager_sandbox.crash_run`` for the loop and the checks, and
``bench/crash_suite.py`` for the long version (200 emails, 20 seeds).
"""

from __future__ import annotations

import pytest

from ticket_manager.pipeline.tickets import SOURCE_PROPERTY
from ticket_manager_sandbox.crash_run import CrashPlan, CrashRun

# (database, seed): three seeds on SQLite, one on PostgreSQL.
RUNS = [("sqlite", 101), ("sqlite", 202), ("sqlite", 303), ("postgresql", 404)]


# A run ends by itself within CrashPlan.deadline (it then reports "not done"): a loaded machine
# may need longer than the suite's per-test timeout.
@pytest.mark.timeout(CrashPlan.deadline + 60)
@pytest.mark.parametrize(
    ("database_url", "seed"), RUNS, indirect=["database_url"], ids=[f"{d}-{s}" for d, s in RUNS]
)
def test_random_kills_lose_nothing_and_make_nothing_twice(sandbox, database_url, seed, tmp_path):
    # 40 emails, acknowledged, some answered by a reply and some refused by a rule, while the
    # worker is SIGKILLed again and again: each ends as one ticket, one comment or its recorded
    # rejection, and each ticket has one acknowledgement.
    plan = CrashPlan(emails=40, seed=seed, max_kill_delay=1.2)
    report = CrashRun(plan, sandbox, database_url, tmp_path / "logs").run()

    assert report.problems == []
    assert report.worker_exits == []  # every run ended by our kill, none by a crash
    assert report.kills >= 3
    assert report.kills_mid_request >= 1  # kills landed inside the processing
    assert report.tickets == 40 - report.rejected
    assert report.comments == report.replies > 0
    assert report.acknowledgements == report.tickets


@pytest.mark.timeout(CrashPlan.deadline + 60)
def test_the_checks_see_a_duplicate(sandbox, tmp_path):
    # The verdict is not blind: a second issue for one email, or a second comment for one
    # reply, is reported.
    plan = CrashPlan(emails=4, seed=7, reply_share=0.5, max_kill_delay=2)
    run = CrashRun(plan, sandbox, f"sqlite:///{tmp_path / 'crash.db'}", tmp_path / "logs")
    assert run.run().problems == []

    first = next(e for e in run.emails if e.expected == "ticket")
    source = {"mailbox": run.mailbox, "internetMessageId": first.message_id}
    sandbox.jira.add_issue("SUP", "A copy", properties={SOURCE_PROPERTY: source})
    reply = next(e for e in run.emails if e.expected == "comment")
    key = run.ledger_states()[reply.message_id][1]
    issue = sandbox.jira.store.find_issue(key)
    copy = dict(issue["comments"][-1])
    issue["comments"].append(copy)

    problems = run.verify()
    assert any(first.message_id in p and "2 Jira issues" in p for p in problems), problems
    assert any(reply.message_id in p and "2 comments" in p for p in problems), problems


def test_kills_while_sending_never_spend_an_emails_attempt_budget(make_pipeline):
    # Every kill during sending leaves an email claimed by a dead process. However many kills
    # there were, freeing those claims gives their attempts back, and the email is sent.
    import subprocess
    from datetime import UTC, datetime, timedelta

    from ticket_manager.extensions import db
    from ticket_manager.models import OutboundMessage
    from ticket_manager.pipeline import leases
    from ticket_manager.pipeline.outbox import MAX_ATTEMPTS, enqueue

    harness = make_pipeline(EMAIL_ACKNOWLEDGE="false")
    harness.deliver(subject="Acknowledge me despite the crashes")
    harness.run_once()
    [issue] = harness.issues()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with harness.app.app_context():
        # What MAX_ATTEMPTS killed runs leave: the acknowledgement, claimed by the last one.
        enqueue("acknowledgement", issue["key"], harness.mailbox, f"ack:{issue['key']}", {})
        row = db.session.query(OutboundMessage).one()
        row.attempts = MAX_ATTEMPTS
        row.claimed_by = f"{leases.HOST}:{gone.pid}:00000000"
        row.claimed_until = datetime.now(UTC) + timedelta(minutes=5)
        db.session.commit()
        db.session.remove()

    harness.run_once()
    sent = [
        m
        for m in harness.sandbox.graph.sent_messages(harness.mailbox)
        if any(h["value"].startswith("acknowledgement;") for h in m["internetMessageHeaders"])
    ]
    assert len(sent) == 1
    assert issue["key"] in sent[0]["subject"]
