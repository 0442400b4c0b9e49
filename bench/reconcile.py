"""Benchmark: `check-for-missing-tickets` over a mailbox of 10,000 emails, 50 ms per call.

The emulators run in a process of their own; the mailbox holds 10,000 plain emails from 50
senders, received over the last 6 days. A `handle-incoming-email --once` pass at 0 ms
(acknowledgements and the Jira comment poller off, and the emulated Graph request quota off:
10,000 emails would spend Exchange Online's 10,000 requests per 10 minutes) turns them all
into tickets. Then, with the quota back (a fresh window) and 50 ms added to every emulated
Graph, Jira and identity call, the real command is timed as a child process
(`python -m ticket_manager o365 check-for-missing-tickets -d 7`, with and without
`--dry-run`), and the emulators count what it asked:

1. nothing missing (the common case);
2. 100 more emails delivered while no worker ran, received at moments spread over the same
   6 days: the check must find exactly those and make each one ticket.

Afterwards, at 0 ms: Jira must hold one issue per email (by the source Message-ID property),
a worker pass must add none, and the check must find nothing missing.

    .venv/bin/python bench/reconcile.py [--emails 10000] [--missing 100] [--latency 0.05] \
        [--repeat 3]

The repeatable cases (all but the one that makes the tickets) run ``--repeat`` times; the
figures are those of the median run.

Writes bench/results/reconcile.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask_migrate import upgrade
from harness import SpawnedEmulators, load_average, machine

from ticket_manager import create_app
from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage
from ticket_manager_sandbox.sandbox import Sandbox

RESULTS = Path(__file__).parent / "results" / "reconcile.json"
SOURCE_PROPERTY = "ticket-manager.source"
SPREAD = timedelta(days=6)  # the emails' received times: over the last 6 days
DAYS = 7  # the check looks this far back
COMMAND_TIMEOUT = 600.0


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
                now = datetime.now(UTC)
                for n, age in arguments["emails"]:
                    sandbox.graph.deliver(
                        mailbox,
                        subject=f"Request {n}",
                        body=f"Hello, request number {n}.",
                        sender=f"Person {n % 50} <person{n % 50}@example.com>",
                        received=now - timedelta(seconds=age),
                    )
                connection.send(len(arguments["emails"]))
            elif command == "issues":
                store = sandbox.jira.store
                with store.lock:
                    sources = Counter(
                        (issue["properties"].get(SOURCE_PROPERTY) or {}).get("internetMessageId")
                        for issue in store.issues.values()
                    )
                connection.send(
                    {
                        "issues": sum(sources.values()),
                        "distinct_sources": len(sources),
                        "doubled": sum(1 for count in sources.values() if count > 1),
                    }
                )


class Emulators(SpawnedEmulators):
    """The sandbox of ``serve_sandbox`` in a spawned process, with Graph's quota route."""

    def __init__(self, state_dir: str) -> None:
        super().__init__(serve_sandbox, state_dir)

    def graph_quota(self, method: str, body: dict | None = None) -> dict | None:
        """Graph's request quota (Exchange Online's 10,000 requests per 10 minutes per app and
        mailbox) through ``/_sandbox/quota``; None where the emulator has no quota."""
        base = self.env["O365_GRAPH_URL"].removesuffix("/v1.0")
        response = self.session.request(method, f"{base}/_sandbox/quota", json=body, timeout=60)
        return response.json() if response.ok else None


def run_cli(env: dict, arguments: list[str], log_path: Path) -> dict:
    """Run one `python -m ticket_manager ...` command: wall time, peak RSS, exit code, output."""
    command = [sys.executable, "-m", "ticket_manager", *arguments]
    out_path = log_path.with_suffix(".out")
    started_at = time.time()
    started = time.monotonic()
    with log_path.open("w") as log, out_path.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, env=env, stdout=out, stderr=log, stdin=subprocess.DEVNULL
        )
        # Reaped with wait4 for its rusage (the peak RSS); Popen is never asked to wait.
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > COMMAND_TIMEOUT:
                os.kill(process.pid, signal.SIGKILL)
                os.wait4(process.pid, 0)
                process.returncode = -9
                raise RuntimeError(f"{' '.join(arguments)}: not done in {COMMAND_TIMEOUT} s")
            time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "code": process.returncode,
        "seconds": round(time.monotonic() - started, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "started_at": started_at,
        "stdout": out_path.read_text(errors="replace"),
    }


def request_breakdown(emulators: Emulators, started_at: float, latency: float) -> dict:
    """From the request logs: when the first call came, and where the calls' time went."""
    logs = emulators.control("requests")
    calls = [(name, entry) for name, entries in logs.items() for entry in entries]
    if not calls:
        return {}
    begins = [entry["at"] - entry["duration_ms"] / 1000 for _, entry in calls]
    by_route: dict[str, dict] = {}
    for name, entry in calls:
        key = f"{name} {entry['method']} {entry['route']}"
        slot = by_route.setdefault(key, {"calls": 0, "server_ms": 0.0})
        slot["calls"] += 1
        slot["server_ms"] += entry["duration_ms"]
    for slot in by_route.values():
        slot["server_ms"] = round(slot["server_ms"], 1)
        slot["server_ms_without_latency"] = round(
            slot["server_ms"] - slot["calls"] * latency * 1000, 1
        )
    return {
        "first_call_after_s": round(min(begins) - started_at, 2),
        "last_call_done_after_s": round(max(entry["at"] for _, entry in calls) - started_at, 2),
        "by_route": by_route,
    }


def ledger_states(app) -> dict[str, int]:
    with app.app_context():
        try:
            rows = (
                db.session.query(LedgerMessage.state, db.func.count())
                .group_by(LedgerMessage.state)
                .all()
            )
        finally:
            db.session.remove()
    return {state.value: count for state, count in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--missing", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each repeatable case")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.monotonic()
    spread = SPREAD.total_seconds()
    check = ["o365", "check-for-missing-tickets", "-d", str(DAYS)]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        emulators = Emulators(f"{tmp}/s")
        try:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                **emulators.env,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db",
                "JIRA_SUPPORT_BOARD": "support",
                "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
                "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
                "EMAIL_WHITELISTED_DOMAINS": "example.com",
                "EMAIL_MAX_PER_SENDER_PER_DAY": "0",
                "EMAIL_MAX_PER_DOMAIN_PER_HOUR": "0",
                "EMAIL_MAX_PER_MAILBOX_PER_HOUR": "0",
                "EMAIL_ACKNOWLEDGE": "false",
                # The worker passes here only set the scene: no Jira comment poller (its first
                # pass over 10,000 new tickets takes minutes on its own).
                "JIRA_POLL_INTERVAL": "0",
            }
            app = create_app({k: v for k, v in env.items() if k != "PATH"})
            with app.app_context():
                upgrade()
                db.session.remove()

            # The mailbox, oldest first, and every email made a ticket by a worker pass at 0 ms
            # (without Graph's request quota: the pass alone would spend it).
            emulators.graph_quota("POST", {"requests": None})
            step = spread / args.emails
            emulators.ask(
                "deliver",
                timeout=600,
                emails=[(n, spread - n * step) for n in range(args.emails)],
            )
            delivered_after = round(time.monotonic() - started, 1)
            first_pass = run_cli(
                env, ["o365", "handle-incoming-email", "--once"], Path(tmp) / "worker-1.log"
            )
            states = ledger_states(app)
            if first_pass["code"] != 0 or states != {"ticket_created": args.emails}:
                raise RuntimeError(f"the worker pass left {states} (exit {first_pass['code']})")
            print(f"  worker pass: {first_pass['seconds']} s", file=sys.stderr)
            quota = emulators.graph_quota("DELETE")

            def timed(label: str, arguments: list[str], listed: int, repeat: int = 1) -> dict:
                """Run the command ``repeat`` times; the figures are of the median run."""
                runs = []
                for attempt in range(repeat):
                    emulators.control("reset-log", {})
                    emulators.control("faults", {"latency": args.latency})
                    try:
                        log = Path(tmp) / f"check-{len(cases)}-{attempt}.log"
                        run = run_cli(env, arguments, log)
                        run["counts"] = emulators.control("counts")
                        run["timeline"] = request_breakdown(
                            emulators, run["started_at"], args.latency
                        )
                    finally:
                        emulators.control("faults", {"latency": 0})
                    if run["code"] != 0:
                        raise RuntimeError(f"{label}: exit {run['code']}\n{run['stdout']}")
                    runs.append(run)
                run = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
                counts, breakdown = run["counts"], run["timeline"]
                case = {
                    "case": label,
                    "command": " ".join(arguments),
                    "listed": listed,
                    "seconds": run["seconds"],
                    "seconds_of_each_run": [r["seconds"] for r in runs],
                    "startup_seconds": breakdown.get("first_call_after_s"),
                    "seconds_from_first_to_last_call": round(
                        breakdown["last_call_done_after_s"] - breakdown["first_call_after_s"], 2
                    ),
                    "graph_requests": counts["graph"]["total"],
                    "jira_requests": counts["jira"]["total"],
                    "token_requests": counts["identity"]["total"],
                    "graph_by_route": counts["graph"]["by_route"],
                    "jira_by_route": counts["jira"]["by_route"],
                    "graph_requests_per_listed_email": round(counts["graph"]["total"] / listed, 4),
                    "timeline": breakdown,
                    "peak_rss_mb": run["peak_rss_mb"],
                    # What it printed, but the list of missing emails.
                    "output": [
                        line
                        for line in run["stdout"].splitlines()
                        if not line.startswith("  missing")
                    ],
                }
                cases.append(case)
                print(f"  {label}: {case['seconds']} s", file=sys.stderr)
                return case

            timed("nothing missing, --dry-run", [*check, "--dry-run"], args.emails, args.repeat)
            timed("nothing missing", check, args.emails, args.repeat)

            # Mail that arrived while no worker ran, received in the past (between the others).
            offset = step / 2
            missing_step = spread / args.missing
            emulators.ask(
                "deliver",
                emails=[
                    (args.emails + n, spread - n * missing_step - offset)
                    for n in range(args.missing)
                ],
            )
            total = args.emails + args.missing
            dry = timed(
                f"{args.missing} missing, --dry-run", [*check, "--dry-run"], total, args.repeat
            )
            if f"{args.missing} missing" not in dry["output"][0]:
                raise RuntimeError(f"the dry run saw: {dry['output']}")
            if ledger_states(app) != {"ticket_created": args.emails}:
                raise RuntimeError("the dry run changed the ledger")
            fixed = timed(f"{args.missing} missing", check, total)
            if f"ticket_created: {args.missing}" not in "\n".join(fixed["output"]):
                raise RuntimeError(f"the check did: {fixed['output']}")

            # Exactly once: the ledger, Jira's issues by source Message-ID, a worker pass after.
            after_check = ledger_states(app)
            jira_after_check = emulators.ask("issues")
            emulators.control("reset-log", {})
            second_pass = run_cli(
                env, ["o365", "handle-incoming-email", "--once"], Path(tmp) / "worker-2.log"
            )
            jira_after_worker = emulators.ask("issues")
            second_pass_counts = emulators.control("counts")
            again = run_cli(env, check, Path(tmp) / "check-again.log")
            verdict = {
                "ledger_after_check": after_check,
                "jira_after_check": jira_after_check,
                "jira_after_a_worker_pass": jira_after_worker,
                "check_again_at_0_ms": again["stdout"].splitlines()[0],
            }
            ok = (
                after_check == {"ticket_created": total}
                and jira_after_check == {"issues": total, "distinct_sources": total, "doubled": 0}
                and jira_after_worker == jira_after_check
                and second_pass["code"] == 0
                and f"{total} in the ledger, 0 missing, 0 unfinished"
                in verdict["check_again_at_0_ms"]
            )
            verdict["exactly_once"] = ok
            with app.app_context():
                db.engine.dispose()
        finally:
            emulators.close()

    report = {
        "machine": machine(),
        "command": f"python bench/reconcile.py --emails {args.emails} --missing {args.missing} "
        f"--latency {args.latency} --repeat {args.repeat}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": load_average(),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "graph_request_quota_during_checks": quota,
        "setup": {
            "deliver_seconds": delivered_after,
            "worker_pass_seconds_at_0_ms": first_pass["seconds"],
            "worker_pass_peak_rss_mb": first_pass["peak_rss_mb"],
            "second_worker_pass_seconds": second_pass["seconds"],
            "second_worker_pass_requests": {
                name: answer["by_route"] for name, answer in second_pass_counts.items()
            },
        },
        "cases": cases,
        "verdict": verdict,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"| `-d {DAYS}`, {args.latency * 1000:.0f} ms per call | emails listed | seconds "
        "| of which start-up | first to last call | Graph requests | Graph req/listed email "
        "| Jira requests | token requests |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        print(
            f"| {c['case']} | {c['listed']:,} | {c['seconds']} | {c['startup_seconds']} "
            f"| {c['seconds_from_first_to_last_call']} | {c['graph_requests']} "
            f"| {c['graph_requests_per_listed_email']} | {c['jira_requests']} "
            f"| {c['token_requests']} |"
        )
    print(f"\nexactly once: {verdict['exactly_once']} ({json.dumps(verdict)})")
    print(
        f"load average before/after: {report['load_average_before']} / "
        f"{report['load_average_after']}"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
