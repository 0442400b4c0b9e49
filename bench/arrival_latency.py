"""Benchmark: from an email's arrival in the mailbox to its ticket in Jira, p50 and p99.

The real worker (`python -m ticket_manager o365 handle-incoming-email`, its own process)
runs against the emulators (a spawned child process, as the real services are) on a SQLite
database, with the default configuration, acknowledgements included. Emails arrive one at
a time, at random (exponential) intervals. Two modes, each with a fresh sandbox, database
and worker:

- ``polling``: delta polling only, every O365_POLL_INTERVAL seconds (default 2);
- ``notifications``: O365_NOTIFICATION_URL set; the app's notification endpoint is served
  over HTTPS from this process (a certificate of the sandbox CA, which the emulated Graph
  trusts), Graph POSTs a change notification per new email, the endpoint marks the mailbox
  for a sync, and the worker, which looks for that mark every second while it waits, starts
  a delta round. Polling goes on as well.

Arrival is when the emulated Graph had stored the email (its ``deliver`` returned); the
ticket's time is the issue's ``created`` at the emulated Jira. Both are this machine's clock.
Before the emails, the mailbox is left idle for ``--idle`` seconds, and the Graph requests
the worker makes meanwhile (as the emulated quota counts them) are scaled to 10 minutes.

    .venv/bin/python bench/arrival_latency.py [--emails 120] [--mean-interval 1.5]
        [--mode both|polling|notifications] [--seed 1] [--idle 60]

Writes bench/results/arrival_latency.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import shlex
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import requests
from flask_migrate import upgrade
from harness import free_port, load_average, machine
from werkzeug.serving import make_server

from ticket_manager import create_app
from ticket_manager.config import DEFAULTS
from ticket_manager.extensions import db
from ticket_manager.models import Mailbox
from ticket_manager_sandbox.sandbox import Sandbox
from ticket_manager_sandbox.server import QuietRequestHandler

RESULTS = Path(__file__).parent / "results" / "arrival_latency.json"
NUMBER = re.compile(r"#(\d+)\b")


def serve_sandbox(connection, state_dir: str) -> None:
    """In a child process: the emulators, delivering emails when told to, until "stop".

    Commands: ``("deliver", subject, sender)`` answers the time the email was stored;
    ``"issues"`` answers ``[(summary, created as a Unix time)]``; ``"notifications"``
    answers the notification POSTs made, by the receiver's status.
    """
    with Sandbox(state_dir=Path(state_dir)) as sandbox:
        mailbox = sandbox.accounts.mailboxes[0]
        # The certificate the emulators serve with (for 127.0.0.1), to serve the app's
        # notification endpoint with: the emulated Graph trusts the sandbox CA.
        pem = sandbox.ca._server_cert.private_key_and_cert_chain_pem.bytes()
        connection.send((sandbox.environment(), pem))
        while (command := connection.recv()) != "stop":
            if command[0] == "deliver":
                _, subject, sender = command
                sandbox.graph.deliver(
                    mailbox, subject=subject, body="Hello, something is broken.", sender=sender
                )
                connection.send(time.time())
            elif command == "issues":
                with sandbox.jira.store.lock:
                    connection.send(
                        [
                            (issue["summary"], issue["created"].timestamp())
                            for issue in sandbox.jira.store.issues.values()
                        ]
                    )
            elif command == "notifications":
                connection.send(dict(Counter(d.status for d in sandbox.graph.notifications)))


class NotificationEndpoint:
    """The app served over HTTPS on 127.0.0.1, as its notification URL."""

    def __init__(self, app, pem: bytes, workdir: Path) -> None:
        chain = workdir / "endpoint.pem"
        chain.write_bytes(pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(chain))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}/api/tickets/v3/graph/notifications"
        self._server = make_server(
            "127.0.0.1",
            self.port,
            app,
            threaded=True,
            request_handler=QuietRequestHandler,
            ssl_context=context,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def mailbox_ready(app, notifications: bool) -> bool:
    """The worker's first round is done (and, with notifications, it has subscribed)."""
    with app.app_context():
        try:
            row = db.session.query(Mailbox).one_or_none()
            if row is None or row.last_sync_at is None:
                return False
            return bool(row.subscription_id) or not notifications
        finally:
            db.session.remove()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure_idle(sandbox_env: dict, seconds: float) -> dict:
    """Graph requests an idle mailbox costs: counted by the emulated quota over ``seconds``."""
    url = sandbox_env["O365_GRAPH_URL"].removesuffix("/v1.0") + "/_sandbox/quota"
    verify = sandbox_env["REQUESTS_CA_BUNDLE"]

    def used() -> int:
        return sum(requests.get(url, verify=verify, timeout=30).json()["usage"].values())

    before = used()
    time.sleep(seconds)
    spent = used() - before
    per_window = spent * 600 / seconds
    return {
        "seconds": seconds,
        "requests": spent,
        "requests_per_10_minutes": round(per_window),
        "share_of_10000": round(per_window / 10_000, 4),
    }


def run_mode(
    mode: str, emails: int, mean_interval: float, rng: random.Random, idle_seconds: float = 0
) -> dict:
    notifications = mode == "notifications"
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        process = context.Process(target=serve_sandbox, args=(child, f"{tmp}/s"))
        process.start()
        child.close()  # so that a child that died makes recv() raise instead of hang
        endpoint = worker = log_file = None
        try:
            sandbox_env, pem = parent.recv()
            env = {
                **sandbox_env,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db",
                "JIRA_SUPPORT_BOARD": "support",
                "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
                "EMAIL_WHITELISTED_DOMAINS": "example.com",
                "LOG_FORMAT": "json",
            }
            app = create_app(env)
            with app.app_context():
                upgrade()
            if notifications:
                endpoint = NotificationEndpoint(app, pem, workdir)
                endpoint.start()
                env["O365_NOTIFICATION_URL"] = endpoint.url
            log_path = workdir / "worker.log"
            log_file = log_path.open("w")
            worker = subprocess.Popen(
                [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email"],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            wait_until(lambda: mailbox_ready(app, notifications), 120, "the worker's first round")
            idle = measure_idle(sandbox_env, idle_seconds) if idle_seconds else None

            arrived: dict[int, float] = {}
            started = time.time()
            for n in range(emails):
                time.sleep(rng.expovariate(1 / mean_interval))
                parent.send(("deliver", f"Arrival {mode} #{n}", f"person{n}@example.com"))
                arrived[n] = parent.recv()
            last_arrival = time.time()

            def issues() -> list[tuple[str, float]]:
                parent.send("issues")
                return parent.recv()

            poll_interval = float(DEFAULTS["O365_POLL_INTERVAL"])
            wait_until(lambda: len(issues()) >= emails, poll_interval + 120, f"{emails} tickets")
            created: dict[int, list[float]] = {}
            for summary, at in issues():
                match = NUMBER.search(summary)
                if match:
                    created.setdefault(int(match.group(1)), []).append(at)
            parent.send("notifications")
            posted = parent.recv()
        finally:
            if worker is not None:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(timeout=10)
            if log_file is not None:
                log_file.close()
            if endpoint is not None:
                endpoint.stop()
            with contextlib.suppress(OSError):  # the child may be gone already
                parent.send("stop")
            process.join(30)
    duplicates = sum(1 for times in created.values() if len(times) > 1)
    missing = [n for n in arrived if n not in created]
    latencies = [min(created[n]) - arrived[n] for n in arrived if n in created]
    return {
        "mode": mode,
        "poll_interval_seconds": float(DEFAULTS["O365_POLL_INTERVAL"]),
        "notification_url": notifications,
        "emails": emails,
        "mean_interval_seconds": mean_interval,
        "arrivals_seconds": round(last_arrival - started, 1),
        "tickets": len(created),
        "duplicate_tickets": duplicates,
        "missing_tickets": missing,
        "notification_posts_by_status": posted,
        "idle": idle,
        "latency_seconds": {
            "p50": round(percentile(latencies, 50), 3),
            "p90": round(percentile(latencies, 90), 3),
            "p99": round(percentile(latencies, 99), 3),
            "max": round(max(latencies), 3),
            "min": round(min(latencies), 3),
            "mean": round(statistics.fmean(latencies), 3),
        },
        "latencies": [round(value, 3) for value in latencies],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=120, help="per mode")
    parser.add_argument("--mean-interval", type=float, default=1.5, help="seconds")
    parser.add_argument("--mode", choices=("both", "polling", "notifications"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--idle", type=float, default=60, help="seconds of an idle mailbox to count requests over"
    )
    args = parser.parse_args()
    modes = ["polling", "notifications"] if args.mode == "both" else [args.mode]
    rng = random.Random(args.seed)
    report = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([".venv/bin/python", "bench/arrival_latency.py", *sys.argv[1:]]),
        "load_average_before": load_average(),
        "runs": [],
    }
    for mode in modes:
        report["runs"].append(run_mode(mode, args.emails, args.mean_interval, rng, args.idle))
        report["load_average_after_" + mode] = load_average()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def print_table(report: dict) -> None:
    print(
        "| mode | emails | mean interval s | p50 s | p90 s | p99 s | max s | tickets | duplicates "
        "| idle Graph requests per 10 min (share of 10,000) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in report["runs"]:
        lat = run["latency_seconds"]
        name = (
            f"delta polling every {run['poll_interval_seconds']:g} s"
            if run["mode"] == "polling"
            else "change notifications (+ polling)"
        )
        print(
            f"| {name} | {run['emails']} | {run['mean_interval_seconds']} | {lat['p50']} "
            f"| {lat['p90']} | {lat['p99']} | {lat['max']} | {run['tickets']} "
            f"| {run['duplicate_tickets']} | {_idle(run.get('idle'))} |"
        )
    print(f"\nload average before {report['load_average_before']}")


def _idle(idle: dict | None) -> str:
    if not idle:
        return "not measured"
    return f"{idle['requests_per_10_minutes']} ({idle['share_of_10000']:.1%})"


if __name__ == "__main__":
    main()
