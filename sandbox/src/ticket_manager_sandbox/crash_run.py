"""Kill -9 the real worker at random moments against the emulators; check nothing was lost.

The claim of the pipeline is that a crash at any point loses no email and makes nothing
twice. This runs ``python -m ticket_manager o365 handle-incoming-email`` as a separate
process against emulators that live in the calling process (so they outlive every kill),
SIGKILLs it after a random delay counted from its first request, starts it again, and
repeats until every email has its outcome. Replies to tickets already opened arrive while
it runs, so comments are made under fire too. Then it checks, from what the emulators hold:
one Jira issue per email that should open a ticket, its recorded rejection for each one a
rule refuses, one comment per reply, one acknowledgement per ticket, and nothing else.

Only time is ever helped along: after a run that finished nothing, because what is left
waits for the claim of a killed worker to lapse or for a retry time, the run moves those
times to now (no worker runs then), as waiting would have.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, select, update

from ticket_manager.app import create_app
from ticket_manager.extensions import db
from ticket_manager.models import (
    LedgerMessage,
    MessageState,
    OutboundMessage,
    OutboundState,
)
from ticket_manager.pipeline.ledger import FINAL_STATES
from ticket_manager.pipeline.outbox import LOOP_HEADER
from ticket_manager.pipeline.tickets import SOURCE_PROPERTY
from ticket_manager_sandbox.controls import SandboxControls
from ticket_manager_sandbox.sandbox import Sandbox

DONE_OUTBOX_STATES = (OutboundState.SENT, OutboundState.SKIPPED)


@dataclass
class CrashPlan:
    """How many emails, how they are mixed, and how hard the worker is hit."""

    emails: int = 40
    seed: int = 0
    reply_share: float = 0.25  # tickets that get a reply, which must become a comment
    reject_every: int = 8  # every n-th email is one a rule refuses
    latency: float = 0.02  # added to every emulated call, plus up to latency_jitter more
    latency_jitter: float = 0.03
    max_kill_delay: float = 1.5  # seconds after the worker's first request
    max_runs: int = 300
    deadline: float = 900.0  # seconds for the whole run
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class CrashReport:
    """What a run did, and every broken promise it found (``problems``)."""

    seed: int
    emails: int
    replies: int
    rejected: int
    runs: int = 0
    kills: int = 0
    kills_mid_request: int = 0  # kills with an emulated call in the 100 ms before
    seconds: float = 0.0
    tickets: int = 0
    comments: int = 0
    acknowledgements: int = 0
    orphan_drafts: int = 0
    fast_forwards: int = 0
    worker_exits: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Email:
    number: int
    message_id: str
    sender: str
    expected: str  # "ticket", "comment", or the rule that rejects it
    replies_to: _Email | None = None


class CrashRun:
    """One seeded run of the kill loop over ``plan.emails`` emails, on ``database_url``."""

    def __init__(self, plan: CrashPlan, sandbox: Sandbox, database_url: str, workdir: Path):
        self.plan = plan
        self.sandbox = sandbox
        self.database_url = database_url
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mailbox = sandbox.accounts.mailboxes[0]
        self.random = random.Random(plan.seed)  # the kill delays
        self.reply_random = random.Random(plan.seed + 1)  # which tickets get a reply
        self.emails: list[_Email] = []
        self.env = {
            **sandbox.environment(),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JIRA_SUPPORT_BOARD": "support",
            "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
            "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
            "EMAIL_WHITELISTED_DOMAINS": "example.com",
            "EMAIL_MAX_PER_SENDER_PER_DAY": "0",
            "EMAIL_MAX_PER_DOMAIN_PER_HOUR": "0",
            "EMAIL_MAX_PER_MAILBOX_PER_HOUR": "0",
            "EMAIL_ACKNOWLEDGE": "true",
            "JIRA_RECOVERY_DELAY": "0",
            "O365_POLL_INTERVAL": "1",
            "LOG_LEVEL": "INFO",
            **plan.extra_env,
        }
        self.app = None

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> CrashReport:
        """The kill loop until every email has its outcome, then the verdict."""
        started = time.monotonic()
        self.app = create_app(self.env)
        with self.app.app_context():
            upgrade()
        self._deliver_originals()
        replies_wanted = round(self.plan.reply_share * self._count("ticket"))
        report = CrashReport(
            seed=self.plan.seed,
            emails=self.plan.emails,
            replies=replies_wanted,
            rejected=len([e for e in self.emails if e.expected not in ("ticket", "comment")]),
        )
        controls = [self.sandbox.identity.controls, self.sandbox.graph.controls]
        controls.append(self.sandbox.jira.controls)
        for each in controls:
            each.set_latency(self.plan.latency, self.plan.latency_jitter)
        idle_runs = 0  # runs in a row that finished nothing: the next kill comes later
        try:
            while report.runs < self.plan.max_runs:
                if time.monotonic() - started > self.plan.deadline:
                    report.problems.append(f"not done after {self.plan.deadline:.0f} s")
                    break
                delivered = self._deliver_replies(replies_wanted)
                if not delivered and self._is_done(replies_wanted):
                    break
                progress_before = self._progress()
                self._run_and_kill(report, controls, replies_wanted, idle_runs)
                if self._progress() != progress_before:
                    idle_runs = 0
                elif self._fast_forward():
                    report.fast_forwards += 1
                else:
                    idle_runs += 1
            else:
                report.problems.append(f"not done after {self.plan.max_runs} runs")
        finally:
            for each in controls:
                each.clear_faults()
        report.seconds = round(time.monotonic() - started, 2)
        report.problems.extend(self.verify(report))
        self.close()
        return report

    def close(self) -> None:
        """Let go of the database connections (verify() opens them again if asked)."""
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    def _run_and_kill(
        self,
        report: CrashReport,
        controls: list[SandboxControls],
        replies_wanted: int,
        idle_runs: int,
    ) -> None:
        """Start the worker, wait for its first request, kill it a random moment later.

        The moment is at most ``max_kill_delay`` seconds away, doubled for each run in a row
        that finished nothing, so that the work late in a round (relaying, sending) is also
        reached and interrupted. Meanwhile replies arrive for the tickets the worker opens.
        """
        before = sum(c.total for c in controls)
        running = threading.Event()
        running.set()

        def feed_replies() -> None:
            while running.is_set():
                self._deliver_replies(replies_wanted)
                time.sleep(0.25)

        feeder = threading.Thread(target=feed_replies, name="replies", daemon=True)
        log_path = self.workdir / f"worker-{self.plan.seed}-{report.runs:03d}.log"
        with open(log_path, "w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email"],
                env={**_inherited(), **self.env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        report.runs += 1
        feeder.start()
        try:
            limit = time.monotonic() + 60
            while sum(c.total for c in controls) == before and process.poll() is None:
                if time.monotonic() > limit:
                    break
                time.sleep(0.01)
            delay = self.random.uniform(0.0, self.plan.max_kill_delay * 2 ** min(idle_runs, 5))
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                report.kills += 1
                if _busy(controls, time.time() - 0.1):
                    report.kills_mid_request += 1
        finally:
            if process.poll() is None:  # interrupted (a test's timeout): never leave it running
                process.kill()
            process.wait()  # reaped, so that its pid no longer looks alive to the next worker
            running.clear()
            feeder.join()
        if process.returncode != -signal.SIGKILL:
            tail = log_path.read_text(errors="replace")[-2000:]
            report.worker_exits.append(f"exit {process.returncode}: {tail}")

    # -- the mail --------------------------------------------------------------------------

    def _deliver_originals(self) -> None:
        for n in range(self.plan.emails):
            sender = f"person{n % 25}@example.com"
            headers = {}
            expected = "ticket"
            if self.plan.reject_every and n % self.plan.reject_every == self.plan.reject_every - 1:
                if (n // self.plan.reject_every) % 2 == 0:
                    headers = {"Auto-Submitted": "auto-replied"}
                    expected = "auto-reply"
                else:
                    sender = f"person{n % 25}@elsewhere.test"
                    expected = "domain-not-allowed"
            email = _Email(n, f"<crash-{self.plan.seed}-{n}@example.com>", sender, expected)
            self.sandbox.graph.deliver(
                self.mailbox,
                subject=f"Request {n}: the printer on floor {n % 7} is jammed",
                body=f"<p>Hello,</p><p>request number {n}.</p>",
                html=True,
                sender=f"Person {n} <{sender}>",
                headers=headers,
                message_id=email.message_id,
            )
            self.emails.append(email)

    def _deliver_replies(self, wanted: int) -> int:
        """Reply to tickets that exist by now; returns how many were delivered."""
        replied = {e.replies_to.number for e in self.emails if e.replies_to is not None}
        missing = wanted - len(replied)
        if missing <= 0:
            return 0
        created = self.ledger_states()
        candidates = [
            e
            for e in self.emails
            if e.expected == "ticket"
            and e.number not in replied
            and created.get(e.message_id, (None, None))[0] == MessageState.TICKET_CREATED
        ]
        self.reply_random.shuffle(candidates)
        for original in candidates[:missing]:
            reply = _Email(
                len(self.emails),
                f"<crash-{self.plan.seed}-reply-{original.number}@example.com>",
                original.sender,
                "comment",
                replies_to=original,
            )
            self.sandbox.graph.deliver(
                self.mailbox,
                subject=f"RE: Request {original.number}",
                body=f"Still jammed, see request {original.number}.",
                sender=f"Person {original.number} <{original.sender}>",
                message_id=reply.message_id,
                in_reply_to=original.message_id,
                references=[original.message_id],
            )
            self.emails.append(reply)
        return min(missing, len(candidates))

    def _count(self, expected: str) -> int:
        return len([e for e in self.emails if e.expected == expected])

    # -- the database ----------------------------------------------------------------------

    def ledger_states(self) -> dict[str, tuple[MessageState, str | None]]:
        """Each recorded Message-ID's state and ticket key."""
        with self.app.app_context():
            rows = db.session.execute(
                select(
                    LedgerMessage.internet_message_id,
                    LedgerMessage.state,
                    LedgerMessage.ticket_key,
                )
            ).all()
            db.session.remove()
        return {mid: (state, key) for mid, state, key in rows}

    def _progress(self) -> tuple:
        with self.app.app_context():
            final = db.session.scalar(
                select(func.count())
                .select_from(LedgerMessage)
                .where(LedgerMessage.state.in_(FINAL_STATES))
            )
            sent = db.session.scalar(
                select(func.count())
                .select_from(OutboundMessage)
                .where(OutboundMessage.state.in_(DONE_OUTBOX_STATES))
            )
            db.session.remove()
        return final, sent

    def _is_done(self, replies_wanted: int) -> bool:
        if self._count("comment") < replies_wanted:
            return False
        states = self.ledger_states()
        if any(states.get(e.message_id, (None,))[0] not in FINAL_STATES for e in self.emails):
            return False
        with self.app.app_context():
            waiting = db.session.scalar(
                select(func.count())
                .select_from(OutboundMessage)
                .where(OutboundMessage.state.not_in(DONE_OUTBOX_STATES))
            )
            db.session.remove()
        return waiting == 0

    def _fast_forward(self) -> bool:
        """Expire the claims of killed workers and bring retry times to now; True if any."""
        moment = datetime.now(UTC)
        with self.app.app_context():
            changed = 0
            for model in (LedgerMessage, OutboundMessage):
                changed += db.session.execute(
                    update(model)
                    .where(model.claimed_until > moment)
                    .values(claimed_until=moment)
                    .execution_options(synchronize_session=False)
                ).rowcount
                changed += db.session.execute(
                    update(model)
                    .where(model.next_attempt_at > moment)
                    .values(next_attempt_at=moment)
                    .execution_options(synchronize_session=False)
                ).rowcount
            db.session.commit()
            db.session.remove()
        return changed > 0

    # -- the verdict -----------------------------------------------------------------------

    def verify(self, report: CrashReport | None = None) -> list[str]:
        """Every broken promise, from what Jira, the mailbox and the ledger hold now.

        With ``report``, also fills in what was counted (tickets, comments, ...).
        """
        problems: list[str] = []
        states = self.ledger_states()
        issues = {i["key"]: i for i in self.sandbox.jira.issues()}
        raw_issues = {key: self.sandbox.jira.store.find_issue(key) for key in issues}
        by_source: dict[str, list[str]] = {}
        for key, raw in raw_issues.items():
            source = (raw.get("properties") or {}).get(SOURCE_PROPERTY) or {}
            by_source.setdefault(source.get("internetMessageId") or "?", []).append(key)
        comments_by_source: Counter[str] = Counter()
        comment_issue: dict[str, str] = {}
        for key, raw in raw_issues.items():
            for comment in raw.get("comments") or []:
                source = (comment.get("properties") or {}).get(SOURCE_PROPERTY) or {}
                message_id = source.get("internetMessageId") or "?"
                comments_by_source[message_id] += 1
                comment_issue[message_id] = key

        for email in self.emails:
            state, ticket_key = states.get(email.message_id, (None, None))
            keys = by_source.get(email.message_id, [])
            if email.expected == "ticket":
                if state != MessageState.TICKET_CREATED:
                    problems.append(f"{email.message_id}: ended {state}, not ticket_created")
                if len(keys) != 1:
                    problems.append(f"{email.message_id}: {len(keys)} Jira issues {keys}")
                elif ticket_key != keys[0]:
                    problems.append(f"{email.message_id}: ledger {ticket_key}, Jira {keys[0]}")
            elif email.expected == "comment":
                expected_key = states.get(email.replies_to.message_id, (None, None))[1]
                if state != MessageState.COMMENTED or ticket_key != expected_key:
                    problems.append(
                        f"{email.message_id}: ended {state} on {ticket_key}, "
                        f"not a comment on {expected_key}"
                    )
                if comments_by_source[email.message_id] != 1:
                    problems.append(
                        f"{email.message_id}: {comments_by_source[email.message_id]} comments"
                    )
                elif comment_issue[email.message_id] != expected_key:
                    problems.append(f"{email.message_id}: comment on the wrong issue")
                if keys:
                    problems.append(f"{email.message_id}: a reply opened issues {keys}")
            else:
                if state != MessageState.REJECTED:
                    problems.append(f"{email.message_id}: ended {state}, not rejected")
                if keys:
                    problems.append(f"{email.message_id}: rejected mail opened issues {keys}")
        known = {e.message_id for e in self.emails}
        strays = {mid: keys for mid, keys in by_source.items() if mid not in known}
        if strays:
            problems.append(f"issues from no delivered email: {strays}")

        acknowledged: Counter[str] = Counter()
        for sent in self.sandbox.graph.sent_messages(self.mailbox):
            for header in sent.get("internetMessageHeaders") or []:
                if header["name"].lower() == LOOP_HEADER.lower():
                    kind, _, ticket = header["value"].partition("; ticket=")
                    if kind == "acknowledgement":
                        acknowledged[ticket] += 1
        ticket_keys = {
            states[e.message_id][1]
            for e in self.emails
            if e.expected == "ticket" and e.message_id in states and states[e.message_id][1]
        }
        for key in sorted(ticket_keys):
            if acknowledged[key] != 1:
                problems.append(f"{key}: {acknowledged[key]} acknowledgements")
        extra = set(acknowledged) - ticket_keys
        if extra:
            problems.append(f"acknowledgements for no ticket: {sorted(extra)}")

        if report is not None:
            report.tickets = len(issues)
            report.comments = sum(comments_by_source.values())
            report.acknowledgements = sum(acknowledged.values())
            report.orphan_drafts = len(self.sandbox.graph.messages(self.mailbox, "drafts"))
        return problems


def _busy(controls: list[SandboxControls], since: float) -> bool:
    """Whether an emulated call was answered after ``since`` (epoch seconds)."""
    return any(c.requests and c.requests[-1].at >= since for c in controls)


def _inherited() -> dict[str, str]:
    """What the worker takes from this process: where programs and this code are found."""
    found = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "PYTHONPATH" in os.environ:
        found["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return found
