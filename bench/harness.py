"""What the benchmarks share: the machine they ran on, emulators in a process of their own,
their control routes, and throw-away PostgreSQL databases.

The scripts are run as ``python bench/NAME.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ticket_manager.http import build_session

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def machine() -> str:
    """The line each results file and table states: architecture, Python, cores."""
    return (
        f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores"
    )


def load_average() -> list[float]:
    """The machine's load over 1, 5 and 15 minutes: how shared it was during a run."""
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(prefix: str, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``admin_url``, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def control(session: requests.Session, env: dict, path: str, body: dict | None = None) -> dict:
    """Call every emulator's ``/_sandbox/`` route ``path``; returns their answers by name."""
    bases = {
        "identity": env["O365_AUTHORITY_HOST"],
        "graph": env["O365_GRAPH_URL"].removesuffix("/v1.0"),
        "jira": env["ATLASSIAN_URL"],
    }
    answers = {}
    for name, base in bases.items():
        url = f"{base}/_sandbox/{path}"
        if body is None:
            answers[name] = session.get(url, timeout=60).json()
        else:
            response = session.post(url, json=body, timeout=60)
            answers[name] = response.json() if response.content else {}
    return answers


class SpawnedEmulators:
    """The sandbox served by ``target(connection, *args)`` in a spawned process.

    The emulators get a core's worth of Python to themselves, as the real services would.
    ``target`` sends the sandbox's environment first, then answers ``(command, arguments)``
    messages until it receives ``"stop"``.
    """

    def __init__(self, target: Callable, *args) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args))
        self.process.start()
        if not self.connection.poll(60):
            raise RuntimeError("the emulators did not start within 60 s")
        self.env: dict = self.connection.recv()
        self.session = build_session(self.env["REQUESTS_CA_BUNDLE"])

    def ask(self, command: str, timeout: float = 300.0, **arguments):
        """Have the emulators' process run ``command`` (deliver mail, count issues...)."""
        self.connection.send((command, arguments))
        if not self.connection.poll(timeout):
            raise RuntimeError(f"the emulators did not answer {command!r} within {timeout} s")
        return self.connection.recv()

    def control(self, path: str, body: dict | None = None) -> dict:
        return control(self.session, self.env, path, body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(("stop", {}))
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)
