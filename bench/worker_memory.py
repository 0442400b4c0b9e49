"""Benchmark: peak memory (RSS) of the real worker process.

Runs `python -m ticket_manager o365 handle-incoming-email` as a child process against the
emulators (in a process of their own) and a fresh SQLite database, with the default
configuration (acknowledgements on). The peak is the kernel's high-water mark of the
worker's resident set (`ru_maxrss` from wait4, the same as VmHWM in /proc/PID/status).

- One pass (`--once`) with no email (what the process costs by itself), one plain email,
  one email carrying a 25 MB attachment (once with the default `JIRA_MAX_ATTACHMENT_SIZE`
  of 10MB: named in the description, not uploaded; once raised to 30MB: uploaded), four such
  emails at once (processed concurrently), and 250, 500 and 1,000 plain emails waiting in
  one delta round.
- One long-running worker (`O365_POLL_INTERVAL=1`, stopped with SIGTERM) fed 6,000 plain
  emails in batches of 500: after each batch has become tickets and acknowledgements, its
  VmRSS and VmHWM are read from /proc (VmRSS is also sampled every 0.1 s). The emulated
  Graph request quota is off for this one (18,000 requests in a few minutes).

    .venv/bin/python bench/worker_memory.py [--emails 1000] [--long-emails 6000] \
        [--batch 500] [--attachment-mb 25] [--attachment-emails 4]

Writes bench/results/worker_memory.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from flask_migrate import upgrade
from harness import SpawnedEmulators, load_average, machine

from ticket_manager import create_app
from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage, MessageState, OutboundMessage, OutboundState
from ticket_manager_sandbox.sandbox import Sandbox

RESULTS = Path(__file__).parent / "results" / "worker_memory.json"
ATTACHMENT_RESULTS = Path(__file__).parent / "results" / "worker_memory_attachments.json"
MB = 1024 * 1024
WORKER_TIMEOUT = 300.0  # seconds any one worker run may take before it is killed


def serve_sandbox(connection, state_dir: str) -> None:
    """In a child process: the emulators, delivering mail when asked, until told to stop."""
    with Sandbox(state_dir=Path(state_dir)) as sandbox:
        mailbox = sandbox.accounts.mailboxes[0]
        connection.send(sandbox.environment())
        while True:
            command, arguments = connection.recv()
            if command == "stop":
                return
            if command == "deliver":
                first, count = arguments["first"], arguments["count"]
                for n in range(first, first + count):
                    sandbox.graph.deliver(
                        mailbox,
                        subject=f"Request {n}",
                        body=f"Hello, request number {n}.",
                        sender=f"Person {n % 50} <person{n % 50}@example.com>",
                    )
                connection.send(count)
            elif command == "deliver_attachment":
                size, count = arguments["bytes"], arguments["count"]
                for n in range(count):
                    sandbox.graph.deliver(
                        mailbox,
                        subject=f"Logs of crash {n}",
                        body="The dump is attached.",
                        sender=f"Person {n} <person{n}@example.com>",
                        attachments=[("crash.dump", os.urandom(size), "application/octet-stream")],
                    )
                connection.send(count)
            elif command == "quota_off":
                # Exchange Online's 10,000 Graph requests per 10 minutes, if the emulator has
                # it: 6,000 emails with acknowledgements (3 requests each) would spend it.
                quota = getattr(sandbox.graph, "set_request_quota", None)
                if quota is not None:
                    quota(None)
                connection.send(quota is not None)
            elif command == "issues":
                issues = sandbox.jira.issues()
                connection.send(
                    {
                        "issues": len(issues),
                        "attachments": [a["size"] for i in issues for a in i["attachments"]],
                        "descriptions_naming_dump": sum(
                            "crash.dump" in (i.get("description") or "") for i in issues
                        ),
                    }
                )


class Emulators(SpawnedEmulators):
    """The sandbox of ``serve_sandbox`` in a spawned process."""

    def __init__(self, state_dir: str) -> None:
        super().__init__(serve_sandbox, state_dir)


def worker_env(sandbox_env: dict, database: str, **extra: str) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **sandbox_env,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "JIRA_SUPPORT_BOARD": "support",
        "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
        "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
        "EMAIL_WHITELISTED_DOMAINS": "example.com",
        "EMAIL_MAX_PER_SENDER_PER_DAY": "0",
        "EMAIL_MAX_PER_DOMAIN_PER_HOUR": "0",
        "EMAIL_MAX_PER_MAILBOX_PER_HOUR": "0",
        "LOG_FORMAT": "json",
        **extra,
    }


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a live process, in MB (empty once it is gone)."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


class WorkerProcess:
    """`python -m ticket_manager o365 handle-incoming-email`, its log in a file, RSS sampled."""

    def __init__(self, env: dict, log_path: Path, *, once: bool) -> None:
        command = [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email"]
        if once:
            command.append("--once")
        self.log_path = log_path
        self.log_file = log_path.open("w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.samples: list[tuple[float, float]] = []  # (seconds since start, VmRSS MB)
        self.max_rss_kb = 0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _sample(self) -> None:
        while not self._done.wait(0.1):
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((round(time.monotonic() - self.started, 2), round(rss, 1)))

    def wait(self, timeout: float = WORKER_TIMEOUT) -> int:
        """Reap the process (killing it after ``timeout``); its peak RSS is in max_rss_kb."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(self.pid, 0)
                break
            time.sleep(0.05)
        self._done.set()
        self._sampler.join(5)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.max_rss_kb = usage.ru_maxrss
        self.seconds = round(time.monotonic() - self.started, 2)
        self.log_file.close()
        return self.process.returncode

    def alive(self) -> bool:
        """Still running (an exited process is left unreaped, for wait4 and its rusage)."""
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.pid, flags) is None

    def stop(self) -> int:
        """SIGTERM, then reap (the Popen object is never asked: it would reap it first)."""
        os.kill(self.pid, signal.SIGTERM)
        return self.wait(30)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


def ledger_counts(app) -> tuple[int, int]:
    """(emails that became tickets, acknowledgements still to send)."""
    with app.app_context():
        try:
            tickets = (
                db.session.query(LedgerMessage).filter_by(state=MessageState.TICKET_CREATED).count()
            )
            unsent = (
                db.session.query(OutboundMessage)
                .filter(OutboundMessage.state != OutboundState.SENT)
                .count()
            )
        finally:
            db.session.remove()
    return tickets, unsent


def prepared_database(env: dict):
    app = create_app({k: v for k, v in env.items() if k != "PATH"})
    with app.app_context():
        upgrade()
        db.session.remove()
    return app


def once_case(
    label: str, emails: int, attached: int = 0, attachment: int = 0, mix=(), **extra: str
) -> dict:
    """A fresh sandbox and database, the mail delivered, then one `--once` pass.

    ``mix``: more ``(count, bytes)`` groups of emails with one attachment each.
    """
    groups = [(attached, attachment), *mix]
    attached = sum(count for count, _ in groups)
    attachment = max(size for _, size in groups)
    with tempfile.TemporaryDirectory() as tmp:
        emulators = Emulators(f"{tmp}/s")
        try:
            if emails:
                emulators.ask("deliver", first=0, count=emails)
            for count, size in groups:
                if count:
                    emulators.ask("deliver_attachment", bytes=size, count=count)
            env = worker_env(emulators.env, f"{tmp}/bench.db", **extra)
            app = prepared_database(env)
            worker = WorkerProcess(env, Path(tmp) / "worker.log", once=True)
            code = worker.wait()
            if code != 0:
                raise RuntimeError(f"{label}: worker exited {code}\n{worker.tail()}")
            tickets, unsent = ledger_counts(app)
            with app.app_context():
                db.engine.dispose()
            jira = emulators.ask("issues")
        finally:
            emulators.close()
    expected = emails + attached
    if tickets != expected or unsent:
        raise RuntimeError(f"{label}: {tickets} of {expected} tickets, {unsent} unsent")
    return {
        "case": label,
        "emails": expected,
        "attachment_bytes": attachment,
        "settings": extra,
        "peak_rss_mb": round(worker.max_rss_kb / 1024, 1),
        "last_sampled_rss_mb": worker.samples[-1][1] if worker.samples else None,
        "seconds": worker.seconds,
        "jira_issues": jira["issues"],
        "jira_attachment_bytes": jira["attachments"],
        "descriptions_naming_the_file": jira["descriptions_naming_dump"],
    }


def long_running_case(emails: int, batch: int) -> dict:
    """One worker that stays up while mail arrives in batches; RSS after each batch."""
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        emulators = Emulators(f"{tmp}/s")
        worker = None
        try:
            emulators.ask("quota_off")
            env = worker_env(emulators.env, f"{tmp}/bench.db", O365_POLL_INTERVAL="1")
            app = prepared_database(env)
            worker = WorkerProcess(env, Path(tmp) / "worker.log", once=False)
            time.sleep(3)  # started, first (empty) round done
            idle = proc_status(worker.pid)
            points.append(
                {"emails": 0, "rss_mb": round(idle["VmRSS"], 1), "hwm_mb": round(idle["VmHWM"], 1)}
            )
            delivered = 0
            while delivered < emails:
                count = min(batch, emails - delivered)
                started = time.monotonic()
                emulators.ask("deliver", first=delivered, count=count)
                delivered += count
                deadline = time.monotonic() + WORKER_TIMEOUT
                while ledger_counts(app) != (delivered, 0):
                    if not worker.alive():
                        raise RuntimeError(f"the worker died\n{worker.tail()}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"batch not done: {ledger_counts(app)}")
                    time.sleep(0.5)
                now = proc_status(worker.pid)
                points.append(
                    {
                        "emails": delivered,
                        "rss_mb": round(now["VmRSS"], 1),
                        "hwm_mb": round(now["VmHWM"], 1),
                        "batch_seconds": round(time.monotonic() - started, 1),
                    }
                )
                print(f"  long-running: {points[-1]}", file=sys.stderr)
            code = worker.stop()
            if code != 0:
                raise RuntimeError(f"worker exited {code} after SIGTERM\n{worker.tail()}")
            with app.app_context():
                db.engine.dispose()
        finally:
            if worker is not None and worker.process.returncode is None:
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(10)
            emulators.close()
    return {
        "case": f"long-running, {emails} emails in batches of {batch}",
        "emails": emails,
        "batch": batch,
        "points": points,
        "peak_rss_mb": round(worker.max_rss_kb / 1024, 1),
        "seconds": worker.seconds,
        "rss_samples_every_0_1_s": worker.samples[::10],  # one a second, for the record
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--long-emails", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--attachment-mb", type=int, default=25)
    parser.add_argument("--attachment-emails", type=int, default=4)
    parser.add_argument(
        "--only-attachments", action="store_true", help="only the cases with attachments"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.monotonic()
    size = args.attachment_mb * MB
    mb = args.attachment_mb
    raised = {"JIRA_MAX_ATTACHMENT_SIZE": f"{mb + 5}MB"}
    counts = sorted({args.emails // 4, args.emails // 2, args.emails})
    many = args.attachment_emails
    plan = [
        ("no email", 0, 0, 0, {}),
        ("1 plain email", 1, 0, 0, {}),
        (f"1 email, {mb} MB attachment, default limit (10MB)", 0, 1, size, {}),
        (f"1 email, {mb} MB attachment, limit {mb + 5}MB", 0, 1, size, raised),
        (f"{many} emails, {mb} MB attachment each, limit {mb + 5}MB", 0, many, size, raised),
        (
            f"mix: 2 emails with {mb} MB, 8 with 3 MB, 8 with 200 KB, limit {mb + 5}MB",
            0,
            2,
            size,
            {**raised, "mix": ((8, 3 * MB), (8, 200 * 1024))},
        ),
        (
            f"{many} emails, {mb} MB attachment each, limit {mb + 5}MB, no memory bound",
            0,
            many,
            size,
            {**raised, "PROCESSING_ATTACHMENT_MEMORY": "0"},
        ),
        (
            "mix as above, no memory bound (PROCESSING_ATTACHMENT_MEMORY=0)",
            0,
            2,
            size,
            {
                **raised,
                "mix": ((8, 3 * MB), (8, 200 * 1024)),
                "PROCESSING_ATTACHMENT_MEMORY": "0",
            },
        ),
        *((f"{n} plain emails", n, 0, 0, {}) for n in counts),
    ]
    if args.only_attachments:
        plan = [case for case in plan if case[2] or case[1] == 0]
    cases = []
    for label, emails, attached, attachment, extra in plan:
        cases.append(once_case(label, emails, attached, attachment, **extra))
        print(f"  {label}: {cases[-1]['peak_rss_mb']} MB", file=sys.stderr)
    long_running = (
        None if args.only_attachments else long_running_case(args.long_emails, args.batch)
    )
    report = {
        "machine": machine(),
        "command": f"python bench/worker_memory.py --emails {args.emails} "
        f"--long-emails {args.long_emails} --batch {args.batch} "
        f"--attachment-mb {args.attachment_mb} --attachment-emails {args.attachment_emails}"
        + (" --only-attachments" if args.only_attachments else ""),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": load_average(),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "once": cases,
        "long_running": long_running,
    }
    results = ATTACHMENT_RESULTS if args.only_attachments else RESULTS
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    print("| one pass (`--once`) | peak RSS MB | seconds | Jira attachments |")
    print("|---|---|---|---|")
    for c in cases:
        sizes = Counter(f"{b / MB:.1f} MB" for b in c["jira_attachment_bytes"])
        files = ", ".join(f"{n} x {size}" for size, n in sizes.items()) or "none"
        if c["attachment_bytes"] and not c["jira_attachment_bytes"]:
            files += f" (named in the description: {c['descriptions_naming_the_file']})"
        print(f"| {c['case']} | {c['peak_rss_mb']} | {c['seconds']} | {files} |")
    if long_running:
        print("\n| long-running worker, emails processed | VmRSS MB | VmHWM (peak so far) MB |")
        print("|---|---|---|")
        for p in long_running["points"]:
            print(f"| {p['emails']:,} | {p['rss_mb']} | {p['hwm_mb']} |")
        print(f"\npeak RSS of the long-running worker: {long_running['peak_rss_mb']} MB")
    print(
        f"load average before/after: {report['load_average_before']} / "
        f"{report['load_average_after']}"
    )


if __name__ == "__main__":
    main()
