"""Benchmark: pipeline throughput when Graph enforces its per-mailbox request quota.

Exchange Online lets one app make at most 10,000 Graph requests per 10 minutes on one
mailbox, 4 at a time. The emulated Graph enforces both, the quota scaled down (by default to
100 requests per 6 s: the same rate, 16.7 requests/s, in windows 100 times shorter) so
that a run shows many windows. For acknowledgements off and on, a fresh sandbox (in its own
process, as the real services are) and database, one worker pass over plain emails:

- without the quota, to count the Graph requests the quota charges per email;
- with the quota and a client that does not pace itself (it runs into the quota and waits
  out the 429s, which count against the quota too);
- with the quota and the client's own pacing (O365_REQUEST_BUDGET's default, 9,500 of the
  10,000, and its burst, scaled as the quota is), to measure emails/s and the share of
  requests answered 429.

The ceiling the quota allows is (quota / window) / (Graph requests per email); the run's
own bound is a little higher: the first window is empty at the start, and a sliding window
lets ``quota`` requests in during every ``window`` seconds, so at most
quota * ceil(T / window) requests in T seconds.

    .venv/bin/python bench/graph_quota.py [--emails 600] [--quota 100] [--window 6]

Writes its results under the scaled quota ("100 per 6 s") in bench/results/graph_quota.json
(runs at other scales are kept) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import requests
from flask_migrate import upgrade
from harness import control, load_average, machine

from ticket_manager import create_app
from ticket_manager.config import DEFAULTS
from ticket_manager.extensions import db, get_settings
from ticket_manager.graph.pacing import DEFAULT_BURST, OUTLOOK_QUOTA_REQUESTS, MailboxPacer
from ticket_manager.http import build_session
from ticket_manager.models import LedgerMessage, MessageState, OutboundMessage, OutboundState
from ticket_manager.pipeline.worker import Worker
from ticket_manager_sandbox.sandbox import Sandbox

RESULTS = Path(__file__).parent / "results" / "graph_quota.json"
DEFAULT_BUDGET = int(DEFAULTS["O365_REQUEST_BUDGET"])


def serve_sandbox(connection, emails: int, state_dir: str) -> None:
    """In a child process: the emulators with ``emails`` waiting, until told to stop.

    Answers ``"throttled"`` with the 429s the emulated Graph gave, by error message, and
    ``"unmarked"`` with the number of emails in the Inbox without a "Ticket ..." category.
    """
    sandbox = Sandbox(state_dir=Path(state_dir))
    throttled: Counter[str] = Counter()
    lock = threading.Lock()

    def classify(response):
        if response.status_code == 429:
            error = (response.get_json(silent=True) or {}).get("error") or {}
            with lock:
                throttled[error.get("message", "")] += 1
        return response

    sandbox.graph.app.after_request(classify)
    with sandbox:
        mailbox = sandbox.accounts.mailboxes[0]
        for n in range(emails):
            sandbox.graph.deliver(
                mailbox,
                subject=f"Request {n}",
                body=f"Hello, request number {n}.",
                sender=f"Person {n % 50} <person{n % 50}@example.com>",
            )
        connection.send(sandbox.environment())
        while (command := connection.recv()) != "stop":
            if command == "throttled":
                with lock:
                    connection.send(dict(throttled))
            elif command == "unmarked":
                inbox = sandbox.graph.messages(mailbox, "inbox")
                marked = [any(c.startswith("Ticket ") for c in m["categories"]) for m in inbox]
                connection.send(marked.count(False))


def set_quota(session: requests.Session, env: dict, requests_: int | None, window: float) -> dict:
    """The emulated Graph's own control route for its per-mailbox request quota."""
    base = env["O365_GRAPH_URL"].removesuffix("/v1.0")
    response = session.post(
        f"{base}/_sandbox/quota", json={"requests": requests_, "window": window}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def scaled_pacer(quota: int, window: float) -> MailboxPacer:
    """The product's default pacing (O365_REQUEST_BUDGET 9,500 of 10,000 per 600 s, a burst
    of 200), scaled to the emulated quota as the quota itself is scaled."""
    budget = max(1, round(quota * DEFAULT_BUDGET / OUTLOOK_QUOTA_REQUESTS))
    burst = max(1, round(quota * DEFAULT_BURST / OUTLOOK_QUOTA_REQUESTS))
    return MailboxPacer(budget, window, burst=burst)


def run_case(
    emails: int, acknowledge: bool, quota: int | None, window: float, paced: bool = True
) -> dict:
    """One worker pass over ``emails`` emails, with or without the request quota.

    ``paced``: the Graph client paces itself (the product's default, scaled to the emulated
    quota); otherwise it runs into the quota and waits out the 429s.
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        process = context.Process(target=serve_sandbox, args=(child, emails, f"{tmp}/s"))
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
                "EMAIL_ACKNOWLEDGE": "true" if acknowledge else "false",
            }
            app = create_app(env)
            with app.app_context():
                upgrade()
            settings = get_settings(app)
            session = build_session(env["REQUESTS_CA_BUNDLE"])
            set_quota(session, env, quota, window)
            control(session, env, "reset-log", {})
            worker = Worker(app, settings, [env["MAILBOX"]])
            worker.services.graph.pacer = scaled_pacer(quota, window) if quota and paced else None
            started = time.perf_counter()
            worker.run(once=True)
            elapsed = time.perf_counter() - started
            counts = control(session, env, "counts")
            log = session.get(
                env["O365_GRAPH_URL"].removesuffix("/v1.0") + "/_sandbox/requests", timeout=60
            ).json()
            parent.send("throttled")
            throttled = parent.recv()
            parent.send("unmarked")
            unmarked = parent.recv()
            with app.app_context():
                states = Counter(
                    state.value for (state,) in db.session.query(LedgerMessage.state).all()
                )
                sent = db.session.query(OutboundMessage).filter_by(state=OutboundState.SENT).count()
                # What the pass left for a later one, and why (Graph's refusals included).
                unfinished = LedgerMessage.state.not_in(
                    [MessageState.TICKET_CREATED, MessageState.REJECTED]
                )
                left = [
                    (row.attempts, row.last_error)
                    for row in db.session.query(LedgerMessage).filter(unfinished)
                ] + [
                    (row.attempts, row.last_error)
                    for row in db.session.query(OutboundMessage).filter(
                        OutboundMessage.state != OutboundState.SENT
                    )
                ]
                db.engine.dispose()
        finally:
            parent.send("stop")
            process.join(30)
    graph_total = counts["graph"]["total"]
    refused = sum(1 for r in log if r["status"] == 429)
    admitted = graph_total - refused
    tickets = states.get(MessageState.TICKET_CREATED.value, 0)
    done = tickets if not acknowledge else min(tickets, sent)
    return {
        "emails": emails,
        "acknowledgements": acknowledge,
        "quota": None if quota is None else {"requests": quota, "window_seconds": window},
        "paced": bool(quota and paced),
        "processing_concurrency": settings.processing_concurrency,
        "seconds": round(elapsed, 2),
        "tickets": tickets,
        "acknowledgements_sent": sent,
        "ledger_states": dict(states),
        "emails_per_second": round(done / elapsed, 2),
        "graph_requests": graph_total,
        "graph_requests_admitted": admitted,
        "graph_requests_admitted_per_email": round(admitted / emails, 3),
        "graph_requests_admitted_per_second": round(admitted / elapsed, 2),
        "graph_429": refused,
        "graph_429_share": round(refused / graph_total, 4) if graph_total else 0.0,
        "graph_429_by_message": throttled,
        "left_for_a_later_pass": [{"attempts": a, "last_error": e} for a, e in left],
        # A mark the client gave up on is logged ("email not marked") and never retried.
        "emails_left_unmarked": unmarked,
        "jira_requests_per_email": round(counts["jira"]["total"] / emails, 3),
    }


def compare(baseline: dict, throttled: dict, quota: int, window: float) -> dict:
    """Achieved emails/s against what the quota allows at the baseline's requests per email."""
    per_email = baseline["graph_requests_admitted_per_email"]
    ceiling = quota / window / per_email
    seconds = throttled["seconds"]
    run_bound = quota * math.ceil(seconds / window) / per_email / seconds
    achieved = throttled["emails_per_second"]
    return {
        "graph_requests_per_email_without_quota": per_email,
        "ceiling_emails_per_second": round(ceiling, 2),
        "run_bound_emails_per_second": round(run_bound, 2),
        "achieved_emails_per_second": achieved,
        "ratio_to_ceiling": round(achieved / ceiling, 3),
        "ratio_to_run_bound": round(achieved / run_bound, 3),
        "quota_use": round(throttled["graph_requests_admitted_per_second"] / (quota / window), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=600)
    parser.add_argument("--quota", type=int, default=100, help="requests per window")
    parser.add_argument("--window", type=float, default=6.0, help="seconds")
    args = parser.parse_args()
    report = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([".venv/bin/python", "bench/graph_quota.py", *sys.argv[1:]]),
        "limits": {
            "real": "10,000 requests per 600 s and 4 concurrent, per app id and mailbox",
            "emulated": f"{args.quota} requests per {args.window:g} s and 4 concurrent",
        },
        "load_average_before": load_average(),
        "cases": [],
    }
    for acknowledge in (False, True):
        baseline = run_case(args.emails, acknowledge, None, args.window)
        for paced in (False, True):
            throttled = run_case(args.emails, acknowledge, args.quota, args.window, paced)
            report["cases"].append(
                {
                    "acknowledgements": acknowledge,
                    "paced": paced,
                    "without_quota": baseline,
                    "with_quota": throttled,
                    "result": compare(baseline, throttled, args.quota, args.window),
                }
            )
    report["load_average_after"] = load_average()
    # One entry per scaled quota: a run with another scale keeps the others.
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[f"{args.quota} per {args.window:g} s"] = report
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(report)


def print_table(report: dict) -> None:
    print(f"Quota: {report['limits']['emulated']} (real: {report['limits']['real']})\n")
    print(
        "| acks | client | Graph req/email | emails/s without quota | emails/s with quota "
        "| ceiling emails/s | ratio | run bound | ratio to bound | 429s (share) | unfinished "
        "| unmarked |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in report["cases"]:
        r, base, q = case["result"], case["without_quota"], case["with_quota"]
        unfinished = q["emails"] - min(
            q["tickets"], q["acknowledgements_sent"] if q["acknowledgements"] else q["tickets"]
        )
        print(
            f"| {'on' if case['acknowledgements'] else 'off'} "
            f"| {'paced' if case.get('paced') else 'unpaced'} "
            f"| {r['graph_requests_per_email_without_quota']} | {base['emails_per_second']} "
            f"| {r['achieved_emails_per_second']} | {r['ceiling_emails_per_second']} "
            f"| {r['ratio_to_ceiling']} | {r['run_bound_emails_per_second']} "
            f"| {r['ratio_to_run_bound']} | {q['graph_429']} ({q['graph_429_share']:.1%}) "
            f"| {unfinished} "
            f"| {q['emails_left_unmarked']} |"
        )
    print(
        f"\nload average before {report['load_average_before']}, "
        f"after {report['load_average_after']}"
    )


if __name__ == "__main__":
    main()
