"""Benchmark: several `handle-incoming-email` workers sharing one PostgreSQL database.

Every case gets a fresh throw-away PostgreSQL database and fresh emulators, which run in a
process of their own (as in pipeline_throughput.py) and hold --mailboxes mailboxes. The
workers are real `python -m ticket_manager o365 handle-incoming-email` processes; they start,
share the mailboxes out (fair shares, see pipeline/ownership.py), and only then are the same
--emails plain emails delivered, spread evenly over the mailboxes, from 50 senders each.
Acknowledgements are on, as by default.

1. Throughput with 1, 2, ... --workers-max workers: emails/s from the first delivery until
   every email is a ticket and its acknowledgement has been sent.
2. The scale-out promise, with --workers-max workers: once --kill-at of the tickets exist in
   Jira, the worker owning the most mailboxes is SIGKILLed right after one of its Jira
   creates (so an issue exists that it never recorded). Measured: the seconds until every
   mailbox has a live owner again. Checked at the emulators: exactly one Jira issue per
   email, counted per summary and per source Message-ID, and exactly one acknowledgement per
   ticket, sent from its own mailbox; none missing.

Should the victim make no create between --kill-at and --kill-at + 20 % of the tickets (it
may be sending its acknowledgements), it is killed there and then; the results say which.
Every case is checked the same way; the script exits 1 if any check fails. The workers run
with the defaults otherwise, the Jira comment poller included (a pass every 60 s).

    .venv/bin/python bench/scale_out.py [--emails 1000] [--mailboxes 5] [--workers-max 3]
        [--kill-at 0.3] [--timeout 300] [--logs DIR]

The throw-away databases are made on the server named by TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test). Writes bench/results/scale_out.json
(keyed by case, with the machine, the command and the load average) and prints Markdown
tables.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from flask_migrate import upgrade
from harness import throwaway_postgres
from sqlalchemy import func, select

from ticket_manager import create_app
from ticket_manager.clock import as_utc
from ticket_manager.extensions import db
from ticket_manager.models import (
    Lease,
    LedgerMessage,
    MessageState,
    OutboundMessage,
    OutboundState,
)
from ticket_manager.pipeline import leases
from ticket_manager.pipeline.outbox import LOOP_HEADER
from ticket_manager.pipeline.tickets import SOURCE_PROPERTY
from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

RESULTS = Path(__file__).parent / "results" / "scale_out.json"
SENDERS_PER_MAILBOX = 50
SPREAD_TIMEOUT = 60.0  # seconds for the workers to share the mailboxes out
TAKEOVER_TIMEOUT = 60.0  # seconds for the survivors to own every mailbox again
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the emails ------------------------------------------------------------------------------------


def email_set(mailboxes: list[str], count: int) -> list[dict]:
    """The emails of every case: round robin over the mailboxes; subject = Jira summary."""
    emails = []
    for n in range(count):
        mailbox = mailboxes[n % len(mailboxes)]
        local = mailbox.split("@")[0]
        person = (n // len(mailboxes)) % SENDERS_PER_MAILBOX
        emails.append(
            {
                "mailbox": mailbox,
                "subject": f"{mailbox} email {n}",
                "body": f"Hello, request number {n} to {mailbox}.",
                "sender": f"Person {person} <person{person}.{local}@example.com>",
                "message_id": f"<scale-out-{n}@example.com>",
            }
        )
    return emails


# -- the emulators, in a process of their own ------------------------------------------------------


class SandboxHost:
    """In the emulators' process: what the benchmark asks of them, one command at a time."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._jira_app = sandbox.jira.app.wsgi_app
        sandbox.jira.app.wsgi_app = self._watch_creates
        self._lock = threading.Lock()
        self._victim: tuple[int, set[str], int] | None = None  # pid, its mailboxes, issues
        self._kill: dict | None = None

    def deliver(self, mailboxes: list[str], count: int) -> int:
        for email in email_set(mailboxes, count):
            self.sandbox.graph.deliver(
                email["mailbox"],
                subject=email["subject"],
                body=email["body"],
                sender=email["sender"],
                message_id=email["message_id"],
            )
        return count

    def issue_count(self) -> int:
        return len(self.sandbox.jira.store.issues)

    def arm_kill(self, pid: int, mailboxes: list[str], after_issues: int) -> None:
        """SIGKILL ``pid`` right after it creates an issue, once ``after_issues`` exist."""
        with self._lock:
            self._victim = (pid, set(mailboxes), after_issues)

    def kill_report(self) -> dict | None:
        """When the victim was killed (monotonic, system-wide on Linux) and after what."""
        with self._lock:
            return self._kill

    def disarm(self) -> dict | None:
        """Kill no one from now on; returns the kill if there was one."""
        with self._lock:
            self._victim = None
            return self._kill

    def tally(self) -> dict:
        """Every issue (key, summary, source Message-ID) and every acknowledgement sent."""
        issues = [
            {
                "key": issue["key"],
                "summary": issue["summary"],
                "source": (issue["properties"].get(SOURCE_PROPERTY) or {}).get("internetMessageId"),
            }
            for issue in self.sandbox.jira.issues()
        ]
        acknowledged = {}
        for mailbox in self.sandbox.accounts.mailboxes:
            keys = []
            for message in self.sandbox.graph.sent_messages(mailbox):
                for header in message.get("internetMessageHeaders") or []:
                    if header["name"].lower() == LOOP_HEADER.lower():
                        kind, _, ticket = header["value"].partition("; ticket=")
                        keys.append(ticket if kind == "acknowledgement" else f"{kind}?")
            acknowledged[mailbox] = keys
        return {"issues": issues, "acknowledged": acknowledged}

    def _watch_creates(self, environ, start_response):
        """WSGI middleware of the Jira emulator: the kill happens here, after a create."""
        summary = None
        if (
            self._victim is not None
            and environ["REQUEST_METHOD"] == "POST"
            and environ["PATH_INFO"].endswith("/issue")
        ):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            summary = json.loads(body)["fields"]["summary"]
        response = self._jira_app(environ, start_response)  # the issue exists from here on
        if summary:
            with self._lock:
                issues = self.issue_count()
                if self._victim is not None:
                    pid, mailboxes, after = self._victim
                    if summary.split()[0] in mailboxes and issues >= after:
                        self._victim = None  # once, whatever happens
                        with suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)  # no clean-up, no commit
                            self._kill = {
                                "at": time.monotonic(),
                                "issues": issues,
                                "during_create": True,
                            }
        return response


def serve_sandbox(connection, mailboxes: list[str], state_dir: str) -> None:
    """The emulators' process: serve them and answer commands until told to stop."""
    with Sandbox(SandboxAccounts(mailboxes=mailboxes), state_dir=Path(state_dir)) as sandbox:
        host = SandboxHost(sandbox)
        connection.send(sandbox.environment())
        while True:
            command, args = connection.recv()
            if command == "stop":
                break
            try:
                connection.send(("ok", getattr(host, command)(*args)))
            except Exception:
                connection.send(("error", traceback.format_exc()))


class Emulators:
    """The emulators' process, seen from the benchmark: ``call(command, *args)``."""

    def __init__(self, mailboxes: list[str], state_dir: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=serve_sandbox, args=(child, mailboxes, str(state_dir)), daemon=True
        )

    def __enter__(self) -> Emulators:
        self.process.start()
        self.env = self._receive(60)
        return self

    def __exit__(self, *exc_info) -> None:
        with suppress(OSError):
            self.connection.send(("stop", ()))
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, command: str, *args, timeout: float = 60):
        self.connection.send((command, args))
        status, value = self._receive(timeout)
        if status == "error":
            raise RuntimeError(f"emulators failed to {command}:\n{value}")
        return value

    def _receive(self, timeout: float):
        if not self.connection.poll(timeout):
            raise TimeoutError(f"the emulators did not answer within {timeout} s")
        return self.connection.recv()


# -- the workers -----------------------------------------------------------------------------------


class WorkerRun:
    """One `handle-incoming-email` process, logging JSON lines to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        inherited = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if "PYTHONPATH" in os.environ:
            inherited["PYTHONPATH"] = os.environ["PYTHONPATH"]
        with log_path.open("w") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email"],
                env={**inherited, **env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM, as a supervisor stops it; SIGKILL if it has not exited 20 s later."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def events(self) -> Counter[str]:
        """How many times each WARNING or ERROR event was logged."""
        found: Counter[str] = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                    found[entry.get("event", "?")] += 1
            elif line.strip():
                found["(not JSON) " + line[:120]] += 1
        return found


@contextmanager
def workers(count: int, env: dict[str, str], log_dir: Path):
    """Start ``count`` workers; whatever happens, none is left running afterwards."""
    runs = [WorkerRun(env, log_dir / f"worker-{n + 1}.log") for n in range(count)]
    try:
        yield runs
    finally:
        for run in runs:
            run.kill()


# -- the database ----------------------------------------------------------------------------------


def mailbox_owners(app) -> dict[str, int]:
    """Mailbox → pid of the worker holding its lease, for leases that have not lapsed."""
    with app.app_context():
        rows = db.session.query(Lease).filter(Lease.name.like("mailbox:%")).all()
        moment = leases.now()
        owners = {
            row.name.removeprefix("mailbox:"): int(row.owner.split(":")[1])
            for row in rows
            if as_utc(row.expires_at) > moment
        }
        db.session.remove()
    return owners


def progress(app) -> tuple[int, int]:
    """(emails that are tickets, acknowledgements sent), from the database."""
    with app.app_context():
        tickets = db.session.scalar(
            select(func.count())
            .select_from(LedgerMessage)
            .where(LedgerMessage.state == MessageState.TICKET_CREATED)
        )
        sent = db.session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(
                OutboundMessage.kind == "acknowledgement",
                OutboundMessage.state == OutboundState.SENT,
            )
        )
        db.session.remove()
    return tickets, sent


def ledger_rows(app) -> dict[str, tuple[str, MessageState, str | None]]:
    """Message-ID → (mailbox, state, ticket key)."""
    with app.app_context():
        rows = db.session.execute(
            select(
                LedgerMessage.internet_message_id,
                LedgerMessage.mailbox,
                LedgerMessage.state,
                LedgerMessage.ticket_key,
            )
        ).all()
        db.session.remove()
    return {mid: (mailbox.lower(), state, key) for mid, mailbox, state, key in rows}


# -- measuring -------------------------------------------------------------------------------------


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something true; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class Meter:
    """CPU used by some processes and by the whole machine since it was made.

    A process that is gone by the reading (the killed worker) is left out of its group.
    """

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.started = {name: {p: cpu_seconds(p) for p in ps} for name, ps in pids.items()}
        self.machine = machine_cpu()

    def read(self) -> dict:
        busy, total = machine_cpu()
        figures = {}
        for name, started in self.started.items():
            now = {p: cpu_seconds(p) for p in started}
            used = sum(now[p] - started[p] for p in started if now[p])
            figures[f"{name}_cpu_seconds"] = round(used, 1)
        share = (busy - self.machine[0]) / max(total - self.machine[1], 1)
        figures["machine_busy_share"] = round(share, 2)
        return figures


def spread_out(app, runs: list[WorkerRun], mailboxes: list[str]) -> dict[str, int] | None:
    """The owners once every mailbox is owned, every worker owns one, none above its share."""
    owners = mailbox_owners(app)
    per_worker = Counter(owners.values())
    if (
        len(owners) == len(mailboxes)
        and set(per_worker) <= {r.pid for r in runs}
        and len(per_worker) == min(len(runs), len(mailboxes))
        and max(per_worker.values()) <= math.ceil(len(mailboxes) / len(runs))
    ):
        return owners
    return None


def worker_env(emulators: Emulators, url: str, mailboxes: list[str]) -> dict[str, str]:
    return {
        **emulators.env,
        "SQLALCHEMY_DATABASE_URI": url,
        "MAILBOX": ",".join(mailboxes),
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
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }


# -- the checks ------------------------------------------------------------------------------------


def verify(emails: list[dict], tally: dict, rows: dict) -> tuple[dict, list[str]]:
    """What Jira and the mailboxes hold against the emails sent; (counts, problems)."""
    problems: list[str] = []
    by_summary = Counter(issue["summary"] for issue in tally["issues"])
    by_source: dict[str | None, list[str]] = {}
    for issue in tally["issues"]:
        by_source.setdefault(issue["source"], []).append(issue["key"])

    expected_summaries = {e["subject"] for e in emails}
    duplicates = sum(n - 1 for s, n in by_summary.items() if n > 1 and s in expected_summaries)
    missing = sorted(expected_summaries - set(by_summary))
    strays = sorted(set(by_summary) - expected_summaries)
    if duplicates:
        doubled = [s for s, n in by_summary.items() if n > 1]
        problems.append(f"{duplicates} duplicate issues: {doubled[:10]}")
    if missing:
        problems.append(f"{len(missing)} emails without an issue: {missing[:10]}")
    if strays:
        problems.append(f"issues from no email: {strays[:10]}")

    ticket_of: dict[str, str] = {}  # ticket key → mailbox it came from
    for email in emails:
        mid = email["message_id"]
        keys = by_source.get(mid, [])
        mailbox, state, key = rows.get(mid, (None, None, None))
        if len(keys) != 1:
            problems.append(f"{mid}: {len(keys)} issues with this source Message-ID {keys}")
        if state != MessageState.TICKET_CREATED:
            problems.append(f"{mid}: ended {state}, not ticket_created")
        elif len(keys) == 1 and key != keys[0]:
            problems.append(f"{mid}: the ledger says {key}, Jira {keys[0]}")
        if key:
            ticket_of[key] = email["mailbox"]
    if None in by_source:
        problems.append(f"issues without a source Message-ID: {by_source[None][:10]}")

    acknowledged: Counter[str] = Counter()
    for mailbox, keys in tally["acknowledged"].items():
        for key in keys:
            acknowledged[key] += 1
            if ticket_of.get(key) not in (None, mailbox):
                problems.append(f"{key} acknowledged from {mailbox}, not {ticket_of[key]}")
    twice = sorted(k for k, n in acknowledged.items() if n > 1)
    unacknowledged = sorted(set(ticket_of) - set(acknowledged))
    unknown = sorted(set(acknowledged) - set(ticket_of))
    if twice:
        problems.append(f"{len(twice)} tickets acknowledged more than once: {twice[:10]}")
    if unacknowledged:
        problems.append(f"{len(unacknowledged)} tickets never acknowledged: {unacknowledged[:10]}")
    if unknown:
        problems.append(f"acknowledgements of no ticket (or not acknowledgements): {unknown[:10]}")

    counts = {
        "tickets": len(tally["issues"]),
        "duplicates": duplicates,
        "missing": len(missing),
        "acknowledgements": sum(acknowledged.values()),
        "acknowledgements_twice": len(twice),
        "acknowledgements_missing": len(unacknowledged),
    }
    if len(problems) > 50:
        problems[50:] = [f"... and {len(problems) - 50} more problems"]
    return counts, problems


# -- the cases -------------------------------------------------------------------------------------


def run_case(args: argparse.Namespace, name: str, worker_count: int, kill: bool = False) -> dict:
    """Fresh database and emulators; start the workers, deliver, wait, check."""
    mailboxes = [f"desk{n + 1}@example.com" for n in range(args.mailboxes)]
    emails = email_set(mailboxes, args.emails)
    result: dict = {
        "workers": worker_count,
        "mailboxes": len(mailboxes),
        "emails": len(emails),
        "acknowledge": True,
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }
    problems: list[str] = []
    with ExitStack() as stack:
        try:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scale-out-")))
            url = stack.enter_context(throwaway_postgres("tm_scale"))
            emulators = stack.enter_context(Emulators(mailboxes, tmp / "sandbox"))
            env = worker_env(emulators, url, mailboxes)
            app = create_app(env)
            with app.app_context():
                upgrade()
            stack.callback(dispose, app)
            log_dir = Path(args.logs) / name.replace(" ", "-") if args.logs else tmp
            log_dir.mkdir(parents=True, exist_ok=True)
            runs = stack.enter_context(workers(worker_count, env, log_dir))
            measure(args, result, problems, app, emulators, runs, mailboxes, emails, kill)
        except Exception as exc:  # recorded, and everything started is stopped all the same
            problems.append(f"{exc.__class__.__name__}: {exc}")
    result["problems"] = problems
    return result


def measure(args, result, problems, app, emulators, runs, mailboxes, emails, kill) -> None:
    """Wait for the mailboxes to be shared out, deliver, (kill,) wait for the end, check."""
    owners = wait_for(
        lambda: spread_out(app, runs, mailboxes), SPREAD_TIMEOUT, "the mailboxes to be spread"
    )
    result["mailboxes_per_worker"] = sorted(Counter(owners.values()).values(), reverse=True)
    victim = None
    if kill:  # the worker with the most mailboxes
        victim = max(runs, key=lambda r: Counter(owners.values())[r.pid])
        result["victim_mailboxes"] = sorted(m for m, pid in owners.items() if pid == victim.pid)
        after = math.ceil(args.kill_at * len(emails))
        emulators.call("arm_kill", victim.pid, result["victim_mailboxes"], after)
    survivors = [r for r in runs if r is not victim]

    meter = Meter({"workers": [r.pid for r in runs], "emulators": [emulators.pid]})
    started = time.monotonic()
    emulators.call("deliver", mailboxes, len(emails), timeout=120)
    result["delivery_seconds"] = round(time.monotonic() - started, 2)
    if victim is not None:
        result.update(
            kill_and_take_over(
                args, app, emulators, victim, result["victim_mailboxes"], survivors, started
            )
        )
        if result["takeover_seconds"] is None:
            problems.append(result.pop("takeover_error"))

    tickets_at = None
    while True:
        tickets, sent = progress(app)
        if tickets_at is None and tickets == len(emails):
            tickets_at = time.monotonic()
        if tickets == len(emails) and sent == len(emails):
            break
        if time.monotonic() - started > args.timeout:
            problems.append(
                f"after {args.timeout:.0f} s only {tickets} tickets and {sent} "
                "acknowledgements sent"
            )
            break
        time.sleep(0.25)
    seconds = time.monotonic() - started
    result.update(meter.read())
    result["seconds"] = round(seconds, 2)
    result["seconds_to_tickets"] = round(tickets_at - started, 2) if tickets_at else None
    result["emails_per_second"] = round(len(emails) / seconds, 1)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]

    exits = [run.stop() for run in survivors]
    if any(code != 0 for code in exits):
        problems.append(f"workers exited {exits} on SIGTERM")
    events: Counter[str] = Counter()
    for run in runs:
        events.update(run.events())
    result["warnings_logged"] = dict(events)

    counts, found = verify(emails, emulators.call("tally"), ledger_rows(app))
    result.update(counts)
    problems.extend(found)


def kill_and_take_over(args, app, emulators, victim, victim_mailboxes, survivors, started) -> dict:
    """Wait for the kill (after one of the victim's creates), then for its mailboxes to pass."""

    def killed():
        report = emulators.call("kill_report")
        if report:
            return report
        # Safety net: the victim has made no issue since the threshold (it may be sending its
        # acknowledgements); kill it from here.
        issues = emulators.call("issue_count")
        if issues >= (args.kill_at + 0.2) * args.emails:
            report = emulators.call("disarm")
            if report is None:
                victim.process.kill()
                report = {"at": time.monotonic(), "issues": issues, "during_create": False}
        return report

    report = wait_for(killed, args.timeout, "the victim's kill")
    # Reaped at once: until then a killed process is a zombie, which still looks alive.
    victim_exit = victim.process.wait(timeout=10)
    survivor_pids = {r.pid for r in survivors}

    def taken_over():
        owners = mailbox_owners(app)
        if len(owners) == args.mailboxes and set(owners.values()) <= survivor_pids:
            return owners
        return None

    found = {
        "killed_after_issues": report["issues"],
        "killed_after_seconds": round(report["at"] - started, 2),
        "killed_during_create": report["during_create"],
        "victim_exit": victim_exit,
    }
    try:
        owners = wait_for(taken_over, TAKEOVER_TIMEOUT, "every mailbox to have a live owner")
    except TimeoutError as exc:
        found.update(takeover_seconds=None, takeover_error=str(exc))
        return found
    # time.monotonic() is the system-wide CLOCK_MONOTONIC: comparable with the emulators'.
    found["takeover_seconds"] = round(time.monotonic() - report["at"], 2)
    names = {r.pid: f"survivor {n + 1}" for n, r in enumerate(survivors)}
    found["new_owners"] = {m: names[owners[m]] for m in victim_mailboxes}
    found["mailboxes_per_worker_after"] = sorted(Counter(owners.values()).values(), reverse=True)
    return found


def dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# -- the report ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--mailboxes", type=int, default=5)
    parser.add_argument("--workers-max", type=int, default=3)
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of tickets made")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per case")
    parser.add_argument("--logs", help="keep the workers' logs in this folder")
    args = parser.parse_args()

    started = time.monotonic()
    cases: dict[str, dict] = {}
    for count in range(1, args.workers_max + 1):
        name = f"{count} worker{'s' if count > 1 else ''}"
        cases[name] = run_case(args, name, count)
        print(f"{name}: {summary_line(cases[name])}", file=sys.stderr)
    cases["kill"] = run_case(args, "kill", args.workers_max, kill=True)
    print(f"kill: {summary_line(cases['kill'])}", file=sys.stderr)

    failed = [name for name, case in cases.items() if case["problems"]]
    report = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores",
        "command": f"python bench/scale_out.py --emails {args.emails} "
        f"--mailboxes {args.mailboxes} --workers-max {args.workers_max} "
        f"--kill-at {args.kill_at}",
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "seconds": round(time.monotonic() - started, 1),
        "failed_cases": failed,
        "cases": cases,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    print_tables(cases)
    for name in failed:
        print(f"\n{name} FAILED:\n- " + "\n- ".join(cases[name]["problems"][:20]))
    return 1 if failed else 0


def print_tables(cases: dict[str, dict]) -> None:
    def cell(case: dict, key: str) -> str:
        value = case.get(key)
        return "-" if value is None else str(value)

    print("| workers | mailboxes | emails | emails/s | seconds | worker CPU s | load before |")
    print("|---|---|---|---|---|---|---|")
    for case in cases.values():
        killed = " (1 killed)" if "victim_mailboxes" in case else ""
        load = case["load_average_before"][0]
        print(
            f"| {case['workers']}{killed} | {case['mailboxes']} | {case['emails']} "
            f"| {cell(case, 'emails_per_second')} | {cell(case, 'seconds')} "
            f"| {cell(case, 'workers_cpu_seconds')} | {load} |"
        )
    kill = cases["kill"]
    print(
        "\n| victim's mailboxes | killed after | takeover s | tickets | duplicates | missing "
        "| acknowledgements (twice, missing) |"
    )
    print("|---|---|---|---|---|---|---|")
    moment = (
        f"{cell(kill, 'killed_after_issues')} issues, {cell(kill, 'killed_after_seconds')} s"
        + (", in a create" if kill.get("killed_during_create") else "")
    )
    print(
        f"| {len(kill.get('victim_mailboxes', []))} | {moment} "
        f"| {cell(kill, 'takeover_seconds')} | {cell(kill, 'tickets')} "
        f"| {cell(kill, 'duplicates')} | {cell(kill, 'missing')} "
        f"| {cell(kill, 'acknowledgements')} ({cell(kill, 'acknowledgements_twice')}, "
        f"{cell(kill, 'acknowledgements_missing')}) |"
    )


def summary_line(case: dict) -> str:
    verdict = "ok" if not case["problems"] else f"FAILED ({len(case['problems'])} problems)"
    return f"{verdict}, {case.get('emails_per_second')} emails/s, {case.get('seconds')} s"


if __name__ == "__main__":
    sys.exit(main())
