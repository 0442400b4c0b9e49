"""Flask extensions, created unbound and attached to an app by :func:`create_app`.

The checked settings live here too, in ``app.extensions``, so that code below the factory
reads them without importing it (as Flask's tutorial reads ``current_app.config``).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from ticket_manager.config import Settings

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SETTINGS_EXTENSION = "ticket_manager.settings"
MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate(directory=MIGRATIONS_DIR)


def get_settings(app: Flask) -> Settings:
    """The checked settings of ``app`` (put there by :func:`create_app`)."""
    return app.extensions[SETTINGS_EXTENSION]


def app_cache(name: str) -> dict:
    """A cache that belongs to the current app, not to the process (every app is named alike)."""
    return current_app.extensions.setdefault(f"ticket_manager.cache.{name}", {})
