"""Database engine settings that make SQLite safe to share between the worker and the API."""

from __future__ import annotations

import os

from sqlalchemy import event
from sqlalchemy.engine import Engine


def engine_options(database_uri: str) -> dict:
    """Engine options per backend: pool health checks, and a lock wait for SQLite.

    The pool is sized for the worker's processing threads (PROCESSING_CONCURRENCY).
    """
    pool = {"pool_size": 10, "max_overflow": 60}
    if database_uri.startswith("sqlite"):
        if ":memory:" in database_uri or database_uri.rstrip("/") == "sqlite:":
            return {"connect_args": {"timeout": 30}}
        return {"connect_args": {"timeout": 30}, **pool}
    return {"pool_pre_ping": True, **pool}


def configure_sqlite(engine: Engine) -> None:
    """WAL lets readers (the API) work while the worker writes; foreign keys are off by default.

    A new database file is created readable by its owner only (0600): it holds every email's
    ledger row, the API keys' digests and the encrypted sign-in. SQLite gives its WAL and
    shared-memory files the database file's permissions.
    """
    if engine.dialect.name != "sqlite":
        return
    path = engine.url.database

    @event.listens_for(engine, "do_connect")
    def _before_connect(_dialect, _record, _cargs, _cparams):
        # Only when something connects: a read-only command that finds no file creates none.
        create_private_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def create_private_file(path: str | None) -> None:
    """Create the SQLite file ``path`` as 0600 unless it exists (or is in memory)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing folder: SQLite's own error says so when the app connects
    os.close(descriptor)
