"""Benchmark: requests per email and throughput of the email-to-ticket pipeline.

Delivers emails from 50 senders into the emulated mailbox, runs one worker pass (including
the Jira comment poller's first pass), and counts what the emulated Graph and Jira were
asked. In the same run: plain emails at 0 ms and with 50 ms added to every emulated call, each
at concurrency 1 and at the default concurrency (what overlapping the work buys); then
acknowledgements on; then every email with two attachments (a 20 KB PDF and a 2 KB text
file), with acknowledgements off and on.

    .venv/bin/python bench/pipeline_throughput.py [--emails 1000] [--latency 0.05]

Writes bench/results/pipeline_throughput.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from flask_migrate import upgrade
from harness import control, machine

from ticket_manager import create_app
from ticket_manager.extensions import db, get_settings
from ticket_manager.http import build_session
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline.worker import Worker
from ticket_manager_sandbox.sandbox import Sandbox

RESULTS = Path(__file__).parent / "results" / "pipeline_throughput.json"


def sample_attachments(n: int) -> list[tuple[str, bytes, str]]:
    """Two files of a typical support email: a small PDF and a log excerpt."""
    pdf = b"%PDF-1.4\n" + bytes((n + i) % 256 for i in range(20_000)) + b"\n%%EOF\n"
    log = (f"request {n}: error at step 3\n" * 80).encode()
    return [(f"invoice-{n}.pdf", pdf, "application/pdf"), (f"log-{n}.txt", log, "text/plain")]


def serve_sandbox(connection, emails: int, state_dir: str, attachments: bool) -> None:
    """In a child process: the emulators with ``emails`` waiting, until told to stop."""
    with Sandbox(state_dir=Path(state_dir)) as sandbox:
        mailbox = sandbox.accounts.mailboxes[0]
        for n in range(emails):
            sandbox.graph.deliver(
                mailbox,
                subject=f"Request {n}",
                body=f"Hello, request number {n}.",
                sender=f"Person {n % 50} <person{n % 50}@example.com>",
                attachments=sample_attachments(n) if attachments else None,
            )
        connection.send(sandbox.environment())
        connection.recv()


def run_case(
    emails: int,
    latency: float,
    concurrency: int,
    acknowledge: bool = False,
    attachments: bool = False,
) -> dict:
    """A fresh sandbox (in its own process, as the real services are) and a fresh database."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        process = context.Process(
            target=serve_sandbox, args=(child, emails, f"{tmp}/s", attachments)
        )
        process.start()
        try:
            sandbox_env = parent.recv()
            env = {
                **sandbox_env,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db",
                "JIRA_SUPPORT_BOARD": "support",
                "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
                "EMAIL_WHITELISTED_DOMAINS": "example.com",
                "EMAIL_MAX_PER_SENDER_PER_DAY": "0",
                "EMAIL_MAX_PER_DOMAIN_PER_HOUR": "0",
                "EMAIL_MAX_PER_MAILBOX_PER_HOUR": "0",
                "PROCESSING_CONCURRENCY": str(concurrency),
                "EMAIL_ACKNOWLEDGE": "true" if acknowledge else "false",
            }
            app = create_app(env)
            with app.app_context():
                upgrade()
            session = build_session(env["REQUESTS_CA_BUNDLE"])
            control(session, env, "reset-log", {})
            control(session, env, "faults", {"latency": latency})
            started = time.perf_counter()
            Worker(app, get_settings(app), [env["MAILBOX"]]).run(once=True)
            elapsed = time.perf_counter() - started
            counts = control(session, env, "counts")
            with app.app_context():
                created = (
                    db.session.query(LedgerMessage)
                    .filter_by(state=MessageState.TICKET_CREATED)
                    .count()
                )
                db.engine.dispose()
        finally:
            parent.send("stop")
            process.join(30)
    assert created == emails, f"only {created} of {emails} emails became tickets"
    return {
        "emails": emails,
        "latency_ms": latency * 1000,
        "concurrency": concurrency,
        "acknowledgements": acknowledge,
        "attachments": 2 if attachments else 0,
        "seconds": round(elapsed, 2),
        "emails_per_second": round(emails / elapsed, 1),
        "graph_requests_per_email": round(counts["graph"]["total"] / emails, 3),
        "jira_requests_per_email": round(counts["jira"]["total"] / emails, 3),
        "token_requests": counts["identity"]["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    default_concurrency = get_settings(create_app({})).processing_concurrency
    cases = [
        run_case(args.emails, 0.0, 1),
        run_case(args.emails, 0.0, default_concurrency),
        run_case(args.emails, args.latency, 1),
        run_case(args.emails, args.latency, default_concurrency),
        run_case(args.emails, 0.0, default_concurrency, acknowledge=True),
        run_case(args.emails, 0.0, default_concurrency, attachments=True),
        run_case(args.emails, args.latency, default_concurrency, attachments=True),
        run_case(args.emails, 0.0, default_concurrency, acknowledge=True, attachments=True),
    ]
    speedup = round(cases[2]["seconds"] / cases[3]["seconds"], 2)
    report = {
        "machine": machine(),
        "command": f"python bench/pipeline_throughput.py --emails {args.emails} "
        f"--latency {args.latency}",
        "cases": cases,
        "speedup_with_latency": speedup,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        "| latency | concurrency | acks | attachments | emails/s | s "
        "| Graph req/email | Jira req/email |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in cases:
        print(
            f"| {c['latency_ms']:.0f} ms | {c['concurrency']} "
            f"| {'on' if c['acknowledgements'] else 'off'} | {c['attachments']} "
            f"| {c['emails_per_second']} "
            f"| {c['seconds']} | {c['graph_requests_per_email']} "
            f"| {c['jira_requests_per_email']} |"
        )
    print(f"\nspeed-up at {args.latency * 1000:.0f} ms latency: {speedup}x")


if __name__ == "__main__":
    main()
