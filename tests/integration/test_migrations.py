"""Migrations: `flask db upgrade` builds the schema on SQLite and PostgreSQL, as the models say."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect

from ticket_manager import create_app
from ticket_manager.extensions import db


def test_upgrade_creates_the_schema_and_matches_the_models(database_url):
    # After `db upgrade` the tables exist and the models need no further migration.
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"mailboxes", "messages", "alembic_version"} <= tables
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == []
        db.engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url):
    # Every migration can be undone and redone: a user can roll back a bad upgrade.
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "messages" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_flask_db_upgrade_command_works_from_anywhere(database_url, tmp_path):
    # `ticket-manager db upgrade` run outside the checkout finds the packaged migrations.
    result = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "db", "upgrade"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "SQLALCHEMY_DATABASE_URI": database_url},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(database_url)
    try:
        assert "messages" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
