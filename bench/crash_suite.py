"""Crash suite: kill -9 the worker at random moments over many emails and seeds.

For each seed, a fresh sandbox (emulators in this process, 20-50 ms added to every call) and
a fresh database; the real worker runs as its own process and is SIGKILLed after a random
delay again and again until every email has its outcome (see
``ticket_manager_sandbox.crash_run``). A seed passes when every email ended as exactly one
ticket, one comment or its recorded rejection, with one acknowledgement per ticket.

    .venv/bin/python bench/crash_suite.py [--emails 200] [--seeds 20] [--database sqlite]

``--database postgresql`` makes a throw-away database per seed on the server named by
TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Writes its results under the database's name in bench/results/crash_suite.json (a run on
the other database is kept) and prints a Markdown table; exits 1 if a seed failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from harness import throwaway_postgres

from ticket_manager_sandbox.crash_run import CrashPlan, CrashRun
from ticket_manager_sandbox.sandbox import Sandbox

RESULTS = Path(__file__).parent / "results" / "crash_suite.json"


@contextmanager
def database(kind: str, workdir: Path):
    """A fresh, empty database for one seed."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'crash.db'}"
        return
    with throwaway_postgres("tm_crash") as url:
        yield url


def run_seed(seed: int, args: argparse.Namespace) -> dict:
    plan = CrashPlan(emails=args.emails, seed=seed, max_kill_delay=args.max_kill_delay)
    with tempfile.TemporaryDirectory(prefix="crash-suite-") as tmp:
        workdir = Path(tmp)
        with (
            Sandbox(state_dir=workdir / "sandbox") as sandbox,
            database(args.database, workdir) as url,
        ):
            report = CrashRun(plan, sandbox, url, workdir / "logs").run()
    result = report.as_dict()
    result["worker_exits"] = [e[:500] for e in result["worker_exits"]]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--max-kill-delay", type=float, default=1.5)
    args = parser.parse_args()

    started = time.monotonic()
    seeds = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result = run_seed(seed, args)
        seeds.append(result)
        verdict = "ok" if not result["problems"] and not result["worker_exits"] else "FAILED"
        print(
            f"seed {seed}: {verdict}, {result['kills']} kills "
            f"({result['kills_mid_request']} mid-request), {result['runs']} runs, "
            f"{result['seconds']} s",
            file=sys.stderr,
        )
    failed = [s["seed"] for s in seeds if s["problems"] or s["worker_exits"]]
    totals = {
        key: sum(s[key] for s in seeds)
        for key in (
            "kills",
            "kills_mid_request",
            "tickets",
            "comments",
            "acknowledgements",
            "rejected",
            "orphan_drafts",
        )
    }
    report = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores",
        "command": f"python bench/crash_suite.py --emails {args.emails} --seeds {args.seeds} "
        f"--database {args.database}",
        "database": args.database,
        "emails_per_seed": args.emails,
        "seeds": len(seeds),
        "failed_seeds": failed,
        "totals": totals,
        "seconds": round(time.monotonic() - started, 1),
        "runs": seeds,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.database] = report
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        "| database | emails x seeds | kills (mid-request) | tickets | comments "
        "| acknowledgements | rejected | lost or doubled | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.database} | {args.emails} x {len(seeds)} | {totals['kills']} "
        f"({totals['kills_mid_request']}) | {totals['tickets']} | {totals['comments']} "
        f"| {totals['acknowledgements']} | {totals['rejected']} "
        f"| {'none' if not failed else f'seeds {failed}'} | {report['seconds'] / 60:.1f} |"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
