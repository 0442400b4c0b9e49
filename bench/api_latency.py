"""Benchmark: latency and throughput of the REST API's ticket reads, with 100,000 tickets.

Seeds a database with tickets spread over two years (bulk inserts), serves the API with
gunicorn (2 workers) as in production, then measures

- latency: p50/p95/p99 of sequential requests over HTTP for the first page of
  ``GET /tickets``, a page 200 pages deep (by its cursor), ``status=Done&category=bug`` and
  ``GET /tickets/{key}`` with random keys (goal: p99 under 50 ms);
- throughput: requests/s of ``GET /tickets/{key}`` with wrk, rotating keys, beside a trivial
  endpoint of the same app (``/health/live``) and a bare Flask app served the same way, for
  the sync and gthread worker classes (goal: at least 1,000 requests/s): the best of three
  runs, with the CPU time each request cost the workers (and the PostgreSQL backends).

SQLite is a file in a temporary directory; PostgreSQL a throw-away database on the server of
``BENCH_POSTGRES_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres), skipped
when that server does not answer.

    .venv/bin/python bench/api_latency.py [--tickets 100000] [--database sqlite|postgresql|both]

Writes bench/results/api_latency.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask
from flask_migrate import upgrade
from harness import free_port, load_average, throwaway_postgres
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from ticket_manager import create_app
from ticket_manager.api.keys import create_key
from ticket_manager.extensions import db
from ticket_manager.models import Ticket, TicketWatcher

RESULTS = Path(__file__).parent / "results" / "api_latency.json"
GUNICORN = Path(sys.executable).with_name("gunicorn")
PREFIX = "/api/tickets/v3"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
GOAL_P99_MS = 50
GOAL_REQUESTS_PER_SECOND = 1000
NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
BATCH = 5000
PAGE_SIZE = 25
DEEP_PAGES = 200
WARM_UP_REQUESTS = 20
APP = "ticket_manager.app:create_app()"
BARE_APP = "api_latency:bare_app()"
WORKER_CLASSES = {"sync": ["-k", "sync"], "gthread": ["-k", "gthread", "--threads", "4"]}

# (value, ..., weight): how tickets spread over boards, categories, statuses and priorities.
BOARDS = (("support", "SUP", 80), ("it", "IT", 20))
CATEGORIES = (("general", 40), ("bug", 20), ("access", 15), ("hardware", 15), ("billing", 10))
STATUSES = (
    ("Done", "done", 55),
    ("To Do", "new", 15),
    ("In Progress", "indeterminate", 15),
    ("Waiting for customer", "indeterminate", 10),
    ("Closed", "done", 5),
)
PRIORITIES = (("Low", 20), ("Medium", 55), ("High", 20), ("Highest", 5))
AGENTS = tuple(f"agent{n}@example.com" for n in range(20))
REQUESTERS = tuple(f"customer{n}@example{n % 40}.com" for n in range(5000))
# A few busy requesters (the busiest has about 3% of the tickets) and many occasional ones.
REQUESTER_WEIGHTS = tuple(itertools.accumulate(1 / (rank + 5) for rank in range(len(REQUESTERS))))


# -- the data ---------------------------------------------------------------------------------


def pick(rng: random.Random, table: tuple) -> tuple:
    """One row of ``table``, by the weight in its last column."""
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def ticket_row(ticket_id: int, key: str, board: str, project: str, rng: random.Random) -> dict:
    """A ``tickets`` row as the pipeline or the API would have written it."""
    category = pick(rng, CATEGORIES)[0]
    status, status_category, _ = pick(rng, STATUSES)
    created = NOW - timedelta(seconds=rng.randrange(2 * 365 * 86400))
    # Most tickets change within days of their creation; the newest may not have yet.
    updated = min(NOW, created + timedelta(seconds=rng.expovariate(1 / (3 * 86400))))
    by_email = rng.random() < 0.85
    assignee = rng.choice(AGENTS) if rng.random() < 0.9 else None
    return {
        "id": ticket_id,
        "key": key,
        "mailbox": f"{board}@example.com" if by_email else None,
        "source": "email" if by_email else "api",
        "requester": rng.choices(REQUESTERS, cum_weights=REQUESTER_WEIGHTS)[0],
        "summary": f"Request {ticket_id}: {category} problem reported",
        "board": board,
        "project_key": project,
        "category": category,
        "labels": f"ticket {category}",
        "priority": pick(rng, PRIORITIES)[0],
        "status": status,
        "status_category": status_category,
        "assignee_email": assignee,
        "assignee_name": assignee.split("@")[0].title() if assignee else None,
        "deleted_in_jira": False,
        "created_at": created,
        "jira_updated_at": updated,
        "updated_at": updated,
    }


def seed(app: Flask, count: int, rng: random.Random) -> list[str]:
    """``count`` tickets, a fifth of them with 1 to 3 watchers, in batches of core inserts."""
    numbers = {project: 0 for _board, project, _weight in BOARDS}
    keys: list[str] = []
    with app.app_context():
        connection = db.session.connection()
        tickets, watchers = [], []
        for ticket_id in range(1, count + 1):
            board, project, _ = pick(rng, BOARDS)
            numbers[project] += 1
            key = f"{project}-{numbers[project]}"
            tickets.append(ticket_row(ticket_id, key, board, project, rng))
            if rng.random() < 0.2:
                for email in rng.sample(AGENTS, rng.randint(1, 3)):
                    watchers.append({"ticket_id": ticket_id, "email": email})
            keys.append(key)
            if len(tickets) == BATCH or ticket_id == count:
                connection.execute(insert(Ticket.__table__), tickets)
                tickets = []
        for start in range(0, len(watchers), BATCH):
            connection.execute(insert(TicketWatcher.__table__), watchers[start : start + BATCH])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does within a minute of a bulk load (statistics, visibility map).
            autocommit = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with autocommit as connection:
                connection.execute(text("VACUUM ANALYZE"))
    return keys


def postgres_available() -> bool:
    engine = create_engine(POSTGRES_ADMIN_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception:  # whatever the reason, PostgreSQL is skipped
        return False
    finally:
        engine.dispose()


# -- the servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn(app: str, env: dict, worker_class: str, cwd: Path) -> Iterator[tuple[int, int]]:
    """``app`` served by 2 gunicorn workers on a free port: yields the port and master pid."""
    port = free_port()
    command = [
        str(GUNICORN),
        "-w",
        "2",
        *WORKER_CLASSES[worker_class],
        "--bind",
        f"127.0.0.1:{port}",
        "--pythonpath",
        str(Path(__file__).parent),
        app,
    ]
    # The working directory is a temporary one: no .env of the checkout is read.
    process = subprocess.Popen(  # noqa: S603 - the command is built here, no outside input
        command, env={**os.environ, **env}, cwd=cwd, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/")
                connection.getresponse().read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {shlex.join(command)}") from None
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(30)


def bare_app() -> Flask:
    """The floor: a Flask app that answers "ok", served the same way."""
    app = Flask("bare")
    app.add_url_rule("/ok", "ok", lambda: "ok")
    return app


# -- latency ----------------------------------------------------------------------------------


class Client:
    """Sequential GETs over one HTTP connection (reopened when the server closes it)."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[float, dict]:
        started = time.perf_counter()
        self.connection.request("GET", PREFIX + path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        return elapsed, json.loads(body)


def percentiles(samples: list[float]) -> dict:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "requests": len(samples),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p95_ms": round(cuts[94] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


def deep_cursor(client: Client) -> tuple[str | None, int]:
    """The cursor ``DEEP_PAGES`` pages in (or of the last page), followed as a client would."""
    cursor, depth = None, 0
    while depth < DEEP_PAGES:
        query = {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
        _, page = client.get("/tickets?" + urlencode(query))
        if page["next_cursor"] is None:
            break
        cursor, depth = page["next_cursor"], depth + 1
    return cursor, depth


def measure_latency(port: int, token: str, keys: list[str], requests: int, rng) -> dict:
    """p50/p95/p99 of each read, each after a warm-up."""
    client = Client(port, token)
    cursor, depth = deep_cursor(client)
    cases = {
        "GET /tickets (first page)": lambda: f"/tickets?limit={PAGE_SIZE}",
        f"GET /tickets (page {depth + 1}, by cursor)": lambda: (
            "/tickets?" + urlencode({"limit": PAGE_SIZE, "cursor": cursor})
        ),
        "GET /tickets?status=Done&category=bug": lambda: (
            f"/tickets?status=Done&category=bug&limit={PAGE_SIZE}"
        ),
        "GET /tickets/{key} (random keys)": lambda: f"/tickets/{rng.choice(keys)}",
    }
    results = {}
    for name, path in cases.items():
        for _ in range(WARM_UP_REQUESTS):
            client.get(path())
        results[name] = percentiles([client.get(path())[0] for _ in range(requests)])
    return results


# -- throughput -------------------------------------------------------------------------------


def wrk_script(directory: Path, token: str, keys: list[str], rng) -> Path:
    """A wrk script that sends the bearer token and walks a shuffled sample of the keys."""
    sample = rng.sample(keys, min(len(keys), 2000))
    script = directory / "tickets.lua"
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f"local keys = {{{', '.join(json.dumps(k) for k in sample)}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  return wrk.format("GET", "{PREFIX}/tickets/" .. keys[n % #keys + 1])\n'
        "end\n"
    )
    return script


def run_wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict:
    # One wrk thread leaves the most CPU to the server; it sends far more than 1,000/s.
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(  # noqa: S603 - the command is built here, no outside input
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    return {
        "requests_per_second": round(rate, 1),
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else None,
        "non_2xx": int(failed.group(1)) if failed else 0,
        "socket_errors": errors.group(1).strip() if errors else None,
    }


def worker_pids(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def database_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving ``url``'s database (none for SQLite)."""
    if not url.startswith("postgresql"):
        return []
    engine = create_engine(POSTGRES_ADMIN_URL)
    try:
        with engine.connect() as connection:
            return list(
                connection.scalars(
                    text("select pid from pg_stat_activity where datname = :name"),
                    {"name": make_url(url).database},
                )
            )
    finally:
        engine.dispose()


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk_with_cpu(url, seconds, connections, script, server, database_url=None, runs=1) -> dict:
    """The best of ``runs`` wrk runs after a warm-up, with the CPU time each request cost.

    The best run is the one least disturbed by whatever else the machine was doing; every
    run's rate is kept beside it.
    """
    run_wrk(url, 2, connections, script)
    workers = worker_pids(server)
    backends = database_pids(database_url) if database_url else []
    results = []
    for _ in range(runs):
        before = cpu_seconds(workers), cpu_seconds(backends)
        result = run_wrk(url, seconds, connections, script)
        served = result["requests_per_second"] * seconds
        result["app_cpu_ms_per_request"] = round(
            (cpu_seconds(workers) - before[0]) / served * 1000, 3
        )
        if backends:
            result["database_cpu_ms_per_request"] = round(
                (cpu_seconds(backends) - before[1]) / served * 1000, 3
            )
        results.append(result)
    best = max(results, key=lambda r: r["requests_per_second"])
    return {**best, "every_run_requests_per_second": [r["requests_per_second"] for r in results]}


def measure_throughput(env: dict, cwd: Path, script: Path, args) -> dict:
    """Requests/s of GET /tickets/{key}, /health/live and a bare Flask app, per worker class."""
    url = env["SQLALCHEMY_DATABASE_URI"]
    wrk = {"seconds": args.wrk_seconds, "connections": args.connections, "runs": args.wrk_runs}
    results = {}
    for worker_class in WORKER_CLASSES:
        with gunicorn(APP, env, worker_class, cwd) as (port, pid):
            base = f"http://127.0.0.1:{port}{PREFIX}"
            ticket = wrk_with_cpu(base, script=script, server=pid, database_url=url, **wrk)
            live = wrk_with_cpu(f"{base}/health/live", script=None, server=pid, **wrk)
        with gunicorn(BARE_APP, {}, worker_class, cwd) as (port, pid):
            bare = wrk_with_cpu(f"http://127.0.0.1:{port}/ok", script=None, server=pid, **wrk)
        results[worker_class] = {
            "GET /tickets/{key}": ticket,
            "GET /health/live": live,
            "bare Flask": bare,
            "ticket_to_live": round(ticket["requests_per_second"] / live["requests_per_second"], 2),
            "ticket_to_bare": round(ticket["requests_per_second"] / bare["requests_per_second"], 2),
        }
    return results


# -- the run ----------------------------------------------------------------------------------


def run_database(kind: str, args, rng: random.Random) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        database = (
            contextlib.nullcontext(f"sqlite:///{directory / 'bench.db'}")
            if kind == "sqlite"
            else throwaway_postgres("tm_bench", POSTGRES_ADMIN_URL)
        )
        with database as url:
            env = {
                "SQLALCHEMY_DATABASE_URI": url,
                "API_RATE_LIMIT": "off",
                "ATLASSIAN_URL": "https://example.atlassian.net",
            }
            app = create_app(env)
            with app.app_context():
                upgrade()
            started = time.perf_counter()
            keys = seed(app, args.tickets, rng)
            seeded = time.perf_counter() - started
            with app.app_context():
                _row, token = create_key("bench", ["tickets:read"], "bench@example.com")
                db.engine.dispose()
            print(f"{kind}: {args.tickets} tickets seeded in {seeded:.1f} s", file=sys.stderr)
            with gunicorn(APP, env, "sync", directory) as (port, _pid):
                latency = measure_latency(port, token, keys, args.requests, rng)
            script = wrk_script(directory, token, keys, rng)
            throughput = measure_throughput(env, directory, script, args)
    return {
        "database": kind,
        "tickets": args.tickets,
        "seed_seconds": round(seeded, 1),
        "latency_server": f"gunicorn -w 2 -k sync '{APP}'",
        "latency": latency,
        "throughput": throughput,
    }


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "arch": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=500, help="per latency case")
    parser.add_argument("--wrk-seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--wrk-runs", type=int, default=3, help="the best one counts")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (Debian: apt-get install wrk)")
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if "postgresql" in kinds and not postgres_available():
        print(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: skipped", file=sys.stderr)
        kinds.remove("postgresql")
    report = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([".venv/bin/python", "bench/api_latency.py", *sys.argv[1:]]),
        "arguments": vars(args),
        "goals": {"p99_ms": GOAL_P99_MS, "requests_per_second": GOAL_REQUESTS_PER_SECOND},
        "load_average_before": load_average(),
    }
    rng = random.Random(20261101)
    report["runs"] = [run_database(kind, args, rng) for kind in kinds]
    report["load_average_after"] = load_average()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_tables(report)


def print_tables(report: dict) -> None:
    print("| database | request | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for run in report["runs"]:
        for name, r in run["latency"].items():
            print(
                f"| {run['database']} | `{name}` | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |"
            )
    print()
    print(
        "| database | worker class | `/tickets/{key}` req/s | CPU ms/request (app + database) "
        "| `/health/live` req/s | bare Flask req/s |"
    )
    print("|---|---|---|---|---|---|")
    for run in report["runs"]:
        for worker_class, r in run["throughput"].items():
            ticket = r["GET /tickets/{key}"]
            cpu = f"{ticket['app_cpu_ms_per_request']}"
            if "database_cpu_ms_per_request" in ticket:
                cpu += f" + {ticket['database_cpu_ms_per_request']}"
            print(
                f"| {run['database']} | {worker_class} | {ticket['requests_per_second']} | {cpu} "
                f"| {r['GET /health/live']['requests_per_second']} "
                f"| {r['bare Flask']['requests_per_second']} |"
            )
    print(
        f"\nload average before {report['load_average_before']}, "
        f"after {report['load_average_after']}"
    )


if __name__ == "__main__":
    main()
