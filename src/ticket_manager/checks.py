"""Health checks of everything the service depends on, shared by `flask check` and the demo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import text

from ticket_manager.config import ConfigError
from ticket_manager.extensions import MIGRATIONS_DIR, db, get_settings
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.graph.sign_in import token_provider
from ticket_manager.http import build_session
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraError


class SchemaOutOfDate(Exception):
    """The database exists but its schema is older (or newer) than the code."""


EXPECTED_FAILURES = (ConfigError, GraphError, SignInError, JiraError, SchemaOutOfDate)


@dataclass(frozen=True)
class CheckResult:
    """One dependency and what was found."""

    name: str
    ok: bool
    detail: str


def run_checks(app: Flask) -> list[CheckResult]:
    """Check the database, the sign-in, each mailbox and each Jira board, in that order."""
    settings = get_settings(app)
    results: list[CheckResult] = []

    def check(name: str, probe: Callable[[], str]) -> bool:
        try:
            results.append(CheckResult(name, True, probe()))
            return True
        except EXPECTED_FAILURES as exc:
            detail = exc.format_message() if isinstance(exc, ConfigError) else str(exc)
            results.append(CheckResult(name, False, detail))
            return False

    with app.app_context():

        def database() -> str:
            where = db.engine.url.render_as_string(hide_password=True)
            revision = db.session.execute(text("select version_num from alembic_version"))
            version = revision.scalar_one_or_none()
            db.session.rollback()
            head = ScriptDirectory(MIGRATIONS_DIR).get_current_head()
            if version != head:
                raise SchemaOutOfDate(
                    f"{where}: schema revision {version or 'none'}, the code needs {head}: "
                    "run `flask db upgrade`"
                )
            return f"{where}, schema revision {version}"

        try:
            check("database", database)
        except Exception as exc:  # any database failure is itself the finding
            results.append(
                CheckResult(
                    "database",
                    False,
                    f"{exc.__class__.__name__}: run "
                    "`flask db upgrade` and check SQLALCHEMY_DATABASE_URI",
                )
            )
        db.session.remove()

    session = build_session(settings.ca_bundle)
    tokens: TokenProvider | None = None

    def sign_in() -> str:
        nonlocal tokens
        # The delegated sign-in lives in the database: read it as the worker does.
        tokens = token_provider(settings)
        tokens.access_token()
        return f"token acquired ({settings.auth_flow} flow, tenant {settings.tenant_id})"

    if check("microsoft sign-in", sign_in) and tokens is not None:
        graph = GraphClient(settings.graph_url, tokens.access_token, session, max_attempts=3)
        for mailbox in settings.mailboxes:
            check(
                f"mailbox {mailbox}",
                lambda mailbox=mailbox: _describe_inbox(graph.get_folder(mailbox)),
            )

    jira: JiraClient | None = None

    def connect_jira() -> str:
        nonlocal jira
        jira = JiraClient(settings)
        me = jira.myself()
        kind = "Cloud, REST v3" if jira.is_cloud else "Server/Data Center, REST v2"
        return f"signed in as {me.get('emailAddress') or me.get('name')} ({kind})"

    if check("jira", connect_jira) and jira is not None:
        for board in settings.boards:
            check(
                f"board {board.name} ({board.setting})",
                lambda board=board: f"files into project {jira.project_key_for_board(board.name)}",
            )
    return results


def _describe_inbox(folder: dict) -> str:
    return f"inbox readable: {folder['total']} messages, {folder['unread']} unread"
