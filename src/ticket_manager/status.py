"""The service's health at a glance: for `flask o365 status`, ``GET /status`` and the dashboard.

Everything a person needs to know whether mail is flowing: the database, the Microsoft 365
sign-in (and when its token expires), Jira, and per mailbox the last sync, the subscription,
the backlog and the failures. ``problems`` lists what needs a person, in plain words with
what to do; an empty list means all is well.

Each dependency's health is decided by :mod:`ticket_manager.health` (cached for a minute per
app), so the dashboard and monitoring can poll freely and agree with `flask check`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager import health
from ticket_manager.clock import as_utc, now
from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage, Mailbox, MessageState

# A subscription this close to its end is shown as expiring (the worker renews earlier).
EXPIRING = timedelta(hours=1)

# One dependency: ``ok``, ``failing``, ``not configured`` or ``unknown``, with details.
DependencyStatus = health.Health


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
    # Status items the worker recorded: why there is no subscription, why nothing is sent.
    subscription_error: str | None = None
    send_error: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class CredentialStatus:
    """A credential that expires: the client secret, or the delegated sign-in."""

    credential: str
    expires_at: datetime
    days_left: int


@dataclass
class ServiceStatus:
    generated_at: datetime
    database: DependencyStatus
    microsoft: DependencyStatus
    jira: DependencyStatus
    mailboxes: list[MailboxStatus]
    problems: list[str]
    ticket_browse_url: str | None = None
    credentials: list[CredentialStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def collect_status(settings: Settings, *, remote: bool = True) -> ServiceStatus:
    """Gather the status; ``remote=False`` skips the Microsoft and Jira checks.

    Every dependency is checked even when another fails: during an outage the status is
    the place that says which part is down.
    """
    app = current_app._get_current_object()
    database = health.database(app)
    problems: list[str] = []
    if database.state != health.OK:
        problems.append(f"Database: {database.detail}")
    not_checked = DependencyStatus(health.UNKNOWN, "not checked")
    microsoft = health.microsoft(app, settings) if remote else not_checked
    jira = health.jira(app, settings) if remote else not_checked
    if microsoft.state == health.FAILING:
        problems.append(f"Microsoft 365 sign-in: {microsoft.detail}")
    if jira.state == health.FAILING:
        problems.append(f"Jira: {jira.detail}")
    mailboxes: list[MailboxStatus] = []
    if database.state == health.OK:
        try:
            mailboxes = [_mailbox(settings, address) for address in settings.mailboxes]
        except SQLAlchemyError as exc:  # the database went away between two queries
            problems.append(
                f"Database: {health.describe_database_error(exc, health.database_url())}"
            )
        finally:
            db.session.rollback()
    for mailbox in mailboxes:
        problems.extend(f"{mailbox.address}: {p}" for p in mailbox.problems)
    moment = now()
    credentials = []
    if database.state == health.OK or settings.auth_flow == "credentials":
        for expiry in health.expiries(settings):
            credentials.append(
                CredentialStatus(expiry.credential, expiry.expires_at, expiry.days_left(moment))
            )
            warning = expiry.warning(moment)
            if warning:
                problems.append(f"Microsoft 365 sign-in: {warning}")
    browse = f"{settings.atlassian_url.rstrip('/')}/browse/" if settings.atlassian_url else None
    return ServiceStatus(
        moment, database, microsoft, jira, mailboxes, problems, browse, credentials
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
        subscription_error=row.subscription_error if row else None,
        send_error=row.send_error if row else None,
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
    if status.subscription_error:
        problems.append(f"no change notifications: {status.subscription_error}")
    elif status.subscription in ("missing", "expired"):
        problems.append(
            f"change-notification subscription {status.subscription}: new mail waits for "
            "the next poll until the worker renews it"
        )
    if status.send_error:
        problems.append(f"acknowledgements and replies wait: {status.send_error}")
    if status.failed_for_good:
        count = status.failed_for_good
        messages = "1 message" if count == 1 else f"{count} messages"
        problems.append(
            f"{messages} failed all {settings.max_attempts} attempts (PROCESSING_MAX_ATTEMPTS) "
            "and wait for a person: see `flask o365 list-failed`, then retry"
        )
