"""Database engine settings that make SQLite safe to share between the worker and the API."""

from __future__ import annotations

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
    """WAL lets readers (the API) work while the worker writes; foreign keys are off by default."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
