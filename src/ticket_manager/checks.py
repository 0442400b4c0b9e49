"""Health checks of everything the service depends on, shared by `flask check` and the demo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from ticket_manager import health
from ticket_manager.config import ConfigError
from ticket_manager.extensions import db, get_settings
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.graph.sign_in import token_provider
from ticket_manager.http import build_session
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraError, JiraRejectedError
from ticket_manager.pipeline.create_screens import unfillable
from ticket_manager.pipeline.service_requests import OPTIONAL_REQUEST_FIELDS

EXPECTED_FAILURES = (ConfigError, GraphError, SignInError, JiraError)


@dataclass(frozen=True)
class CheckResult:
    """One dependency and what was found."""

    name: str
    ok: bool
    detail: str


def run_checks(app: Flask, *, send_test: str | None = None) -> list[CheckResult]:
    """Check the database, the sign-in, each mailbox and each Jira board, in that order.

    ``send_test``: an address each mailbox sends a short test email to, which proves Send As
    (reading a mailbox does not prove that it may send).
    """
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
        found = health.database(app)
        results.append(CheckResult("database", found.ok, found.detail))
        db.session.remove()
        signed_in = health.microsoft(app, settings, fresh=True)
        results.append(
            CheckResult("microsoft sign-in", signed_in.ok, _sign_in_detail(settings, signed_in))
        )

    session = build_session(settings.ca_bundle)
    tokens: TokenProvider | None = None
    if signed_in.ok:
        tokens = token_provider(settings)
    if tokens is not None:
        graph = GraphClient(settings.graph_url, tokens.access_token, session, max_attempts=3)
        for mailbox in settings.mailboxes:
            if check(
                f"mailbox {mailbox}",
                lambda mailbox=mailbox: _describe_mailbox(graph, mailbox),
            ):
                note = _delegated_notifications_note(settings, tokens, graph, mailbox)
                if note:
                    results.append(CheckResult(f"notifications {mailbox}", True, note))
                if send_test:
                    check(
                        f"sending as {mailbox}",
                        lambda mailbox=mailbox: _send_test(graph, mailbox, send_test),
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
                lambda board=board: _describe_route(jira, settings, board.name),
            )
    return results


def _describe_route(jira: JiraClient, settings, board_name: str) -> str:
    """Where a board's mail goes; for a service desk, its request type and customers."""
    project_key = jira.project_key_for_board(board_name)
    desk = jira.service_desks.for_project(project_key)
    if desk is None:
        screen = jira.create_screen(project_key, settings.ticket_type)
        if screen is None:
            return f"files into project {project_key} (create screen not readable here)"
        email_fields = {"summary", "description", "labels", "priority", "reporter"}
        missing = unfillable(screen, email_fields, settings.custom_fields)
        if missing:
            raise JiraRejectedError(
                f"project {project_key}: the create screen of {settings.ticket_type} requires "
                f"fields the service cannot fill: {', '.join(missing)} (set JIRA_CUSTOM_FIELDS)"
            )
        left_out = sorted({"labels", "priority"} - set(screen))
        note = f" (not on its create screen: {', '.join(left_out)})" if left_out else ""
        return f"files into project {project_key}{note}"
    request_type = jira.service_desks.request_type(desk, settings.request_type)
    fillable = {"summary", "description", *OPTIONAL_REQUEST_FIELDS}
    cannot_fill = [f.name for f in request_type.required if f.id not in fillable]
    if cannot_fill:
        raise JiraRejectedError(
            f"service desk {project_key}: request type {request_type.name!r} requires fields "
            f"the service cannot fill: {', '.join(cannot_fill)}"
        )
    required = ", ".join(f.name for f in request_type.required) or "none"
    customers = (
        "the service account can create customers"
        if jira.service_desks.can_create_customers()
        else "the service account cannot create customers: senders who are not customers "
        "yet get requests raised by the service account"
    )
    return (
        f"service desk {project_key} (id {desk.id}): customer requests of type "
        f"{request_type.name!r} (required fields: {required}); {customers}"
    )


def _delegated_notifications_note(settings, tokens: TokenProvider, graph, mailbox: str):
    """With a delegated sign-in, Graph subscribes only to the signed-in person's own mailbox."""
    if not settings.notification_url or settings.auth_flow == "credentials":
        return None
    person = (tokens.signed_in_username() or "").lower()
    if person and person in graph.own_addresses([mailbox]):
        return None
    return (
        f"no change notifications: a delegated sign-in ({person or 'unknown'}) cannot subscribe "
        f"to a mailbox other than its own; polling every {settings.poll_interval} s "
        "(O365_AUTH_FLOW=credentials gives notifications)"
    )


def _send_test(graph: GraphClient, mailbox: str, to: str) -> str:
    graph.send_test_mail(mailbox, to)
    return f"a test email went to {to} (not kept in Sent Items)"


def _describe_mailbox(graph: GraphClient, mailbox: str) -> str:
    """What MAILBOX resolved to (object id, UPN, aliases), then whether its Inbox reads."""
    identity = graph.resolve_mailbox(mailbox)
    folder = graph.get_folder(mailbox)
    inbox = f"inbox readable: {folder['total']} messages, {folder['unread']} unread"
    return f"{identity.describe()}; {inbox}"


def _sign_in_detail(settings, found: health.Health) -> str:
    if not found.ok:
        return found.detail
    return f"token acquired ({settings.auth_flow} flow, tenant {settings.tenant_id})"
