"""The service's health at a glance: for `flask o365 status`, ``GET /status`` and the dashboard.

Everything a person needs to know whether mail is flowing: the database, the Microsoft 365
sign-in (and when its token expires), Jira, and per mailbox the last sync, the subscription,
the backlog and the failures. ``problems`` lists what needs a person, in plain words with
what to do; an empty list means all is well.

Checks that reach Microsoft or Jira are cached for a minute per process, so the dashboard
and monitoring can poll freely.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from ticket_manager.clock import as_utc, now
from ticket_manager.config import ConfigError, Settings
from ticket_manager.extensions import MIGRATIONS_DIR, app_cache, db
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.jira.errors import JiraError
from ticket_manager.models import LedgerMessage, Mailbox, MessageState

REMOTE_CHECK_SECONDS = 60
# A subscription this close to its end is shown as expiring (the worker renews earlier).
EXPIRING = timedelta(hours=1)
_cache_lock = threading.Lock()


@dataclass
class DependencyStatus:
    """One dependency: ``ok``, ``failing``, or ``not configured``; with details."""

    state: str
    detail: str = ""
    account: str | None = None
    expires_at: datetime | None = None


@dataclass
class MailboxStatus:
    address: str
    last_sync_at: datetime | None
    last_sync_age_seconds: int | None
    last_sync_error: str | None
    subscription: str
    subscription_expires_at: datetime | None
    backlog: int
    failed: int
    failed_for_good: int
    problems: list[str] = field(default_factory=list)


@dataclass
class ServiceStatus:
    generated_at: datetime
    database: DependencyStatus
    microsoft: DependencyStatus
    jira: DependencyStatus
    mailboxes: list[MailboxStatus]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def collect_status(settings: Settings, *, remote: bool = True) -> ServiceStatus:
    """Gather the status; ``remote=False`` skips the Microsoft and Jira checks."""
    database = _database()
    problems: list[str] = []
    if database.state != "ok":
        problems.append(f"Database: {database.detail}")
        unknown = DependencyStatus("unknown", "the database is not usable")
        return ServiceStatus(now(), database, unknown, unknown, [], problems)
    microsoft = _cached("microsoft", lambda: _microsoft(settings), remote)
    jira = _cached("jira", lambda: _jira(settings), remote)
    if microsoft.state == "failing":
        problems.append(f"Microsoft 365 sign-in: {microsoft.detail}")
    if jira.state == "failing":
        problems.append(f"Jira: {jira.detail}")
    mailboxes = [_mailbox(settings, address) for address in settings.mailboxes]
    for mailbox in mailboxes:
        problems.extend(f"{mailbox.address}: {p}" for p in mailbox.problems)
    db.session.rollback()
    return ServiceStatus(now(), database, microsoft, jira, mailboxes, problems)


def _cached(key: str, check, remote: bool) -> DependencyStatus:
    """A remote check's result, reused by this app for REMOTE_CHECK_SECONDS."""
    if not remote:
        return DependencyStatus("unknown", "not checked")
    with _cache_lock:
        hit = app_cache("status").get(key)
        if hit and time.monotonic() - hit[0] < REMOTE_CHECK_SECONDS:
            return hit[1]  # type: ignore[return-value]
    result = check()
    with _cache_lock:
        app_cache("status")[key] = (time.monotonic(), result)
    return result


def _database() -> DependencyStatus:
    try:
        version = db.session.execute(text("select version_num from alembic_version")).scalar()
    except Exception as exc:  # whatever the database says is itself the finding
        db.session.rollback()
        return DependencyStatus(
            "failing",
            f"not usable ({exc.__class__.__name__}): check SQLALCHEMY_DATABASE_URI, and create "
            "the schema with `flask db upgrade`",
        )
    head = ScriptDirectory(MIGRATIONS_DIR).get_current_head()
    if version != head:
        return DependencyStatus(
            "failing",
            f"schema revision {version or 'none'}, the code needs {head}: run `flask db upgrade`",
        )
    return DependencyStatus("ok", f"schema revision {version}")


def _microsoft(settings: Settings) -> DependencyStatus:
    try:
        settings.require_microsoft()
    except ConfigError as exc:
        return DependencyStatus("not configured", exc.format_message())
    from ticket_manager.graph.sign_in import token_provider

    try:
        tokens = token_provider(settings)
        tokens.access_token()
    except (SignInError, GraphError) as exc:
        return DependencyStatus("failing", str(exc))
    account = tokens.signed_in_username() if settings.auth_flow != "credentials" else None
    return DependencyStatus(
        "ok",
        f"{settings.auth_flow} flow, tenant {settings.tenant_id}",
        account=account,
        expires_at=tokens.access_token_expiry(),
    )


def _jira(settings: Settings) -> DependencyStatus:
    try:
        settings.require_jira()
    except ConfigError as exc:
        return DependencyStatus("not configured", exc.format_message())
    from ticket_manager.jira.client import JiraClient

    try:
        client = JiraClient(settings, max_retries=0)
        me = client.myself()
    except JiraError as exc:
        return DependencyStatus("failing", str(exc))
    kind = "Cloud" if client.is_cloud else "Server/Data Center"
    return DependencyStatus(
        "ok", f"{settings.atlassian_url} ({kind})", account=me.get("displayName")
    )


def _mailbox(settings: Settings, address: str) -> MailboxStatus:
    moment = now()
    row = db.session.scalar(select(Mailbox).where(Mailbox.address == address.lower()))
    counts = dict(
        db.session.execute(
            select(LedgerMessage.state, func.count())
            .where(LedgerMessage.mailbox == address.lower())
            .where(LedgerMessage.state.in_((MessageState.PENDING, MessageState.FAILED)))
            .group_by(LedgerMessage.state)
        ).all()
    )
    for_good = db.session.scalar(
        select(func.count()).where(
            LedgerMessage.mailbox == address.lower(),
            LedgerMessage.state == MessageState.FAILED,
            LedgerMessage.attempts >= settings.max_attempts,
        )
    )
    failed = counts.get(MessageState.FAILED, 0)
    last = as_utc(row.last_sync_at) if row else None
    status = MailboxStatus(
        address=address,
        last_sync_at=last,
        last_sync_age_seconds=int((moment - last).total_seconds()) if last else None,
        last_sync_error=row.last_sync_error if row else None,
        subscription=_subscription_state(settings, row, moment),
        subscription_expires_at=as_utc(row.subscription_expires_at) if row else None,
        backlog=counts.get(MessageState.PENDING, 0) + failed - (for_good or 0),
        failed=failed,
        failed_for_good=for_good or 0,
    )
    _mailbox_problems(settings, status)
    return status


def _subscription_state(settings: Settings, row: Mailbox | None, moment: datetime) -> str:
    if not settings.notification_url:
        return "off"
    if row is None or not row.subscription_id or row.subscription_expires_at is None:
        return "missing"
    expires = as_utc(row.subscription_expires_at)
    if expires <= moment:
        return "expired"
    return "expiring" if expires - moment < EXPIRING else "active"


def _mailbox_problems(settings: Settings, status: MailboxStatus) -> None:
    problems = status.problems
    if status.last_sync_at is None:
        problems.append("never synchronised: start `flask o365 handle-incoming-email`")
    elif status.last_sync_age_seconds > 3 * settings.poll_interval + 120:
        minutes = status.last_sync_age_seconds // 60
        problems.append(
            f"no sync for {minutes} minutes: is `flask o365 handle-incoming-email` running?"
        )
    if status.last_sync_error:
        problems.append(f"last sync failed: {status.last_sync_error}")
    if status.subscription in ("missing", "expired"):
        problems.append(
            f"change-notification subscription {status.subscription}: new mail waits for "
            "the next poll until the worker renews it"
        )
    if status.failed_for_good:
        count = status.failed_for_good
        messages = "1 message" if count == 1 else f"{count} messages"
        problems.append(
            f"{messages} failed all {settings.max_attempts} attempts (PROCESSING_MAX_ATTEMPTS) "
            "and wait for a person: see `flask o365 list-failed`, then retry"
        )
