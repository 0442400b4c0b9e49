"""The health of each dependency, decided in one place for every command and page.

`flask check`, `flask o365 status`, ``/health/ready``, ``/status``, the dashboard and the
worker's start all ask here, so they cannot disagree. Each check answers a :class:`Health`
(never raises): monitoring must keep working during the outage it reports. Checks that
reach Microsoft or Jira are cached for a minute in the app's own cache (one per app, so two
apps in one process, as in the tests, never share an answer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager.config import ConfigError, Settings
from ticket_manager.extensions import MIGRATIONS_DIR, db
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.jira.errors import JiraError

REMOTE_CHECK_SECONDS = 60
CACHE_EXTENSION = "ticket_manager.health_cache"

OK = "ok"
FAILING = "failing"
NOT_CONFIGURED = "not configured"
UNKNOWN = "unknown"

# Words in a driver's message that mean "no connection", not "no schema".
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "timed out",
    "no route to host",
    "unable to open database file",
    "server closed the connection",
    "connection reset",
    "password authentication failed",
    "does not exist",  # PostgreSQL: database "x" does not exist (a table is "relation")
)
NO_SCHEMA_ADVICE = (
    "has no schema: run `flask db upgrade` (or fix SQLALCHEMY_DATABASE_URI if this is not "
    "the intended database)"
)
_NO_TABLE = ("no such table", "undefinedtable", 'relation "alembic_version" does not exist')


@dataclass(frozen=True)
class Health:
    """One dependency: ``ok``, ``failing``, ``not configured`` or ``unknown``, and why."""

    state: str
    detail: str = ""
    account: str | None = None
    expires_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.state == OK


class _Cache:
    """Answers of the remote checks, for one app."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, Health]] = {}
        self.revisions: set[str] | None = None


def _cache(app: Flask) -> _Cache:
    return app.extensions.setdefault(CACHE_EXTENSION, _Cache())


def forget(app: Flask) -> None:
    """Drop the cached answers (after a sign-in, or in a test)."""
    with _cache(app).lock:
        _cache(app).entries.clear()


def cached(app: Flask, name: str, check: Callable[[], Health], *, fresh: bool = False) -> Health:
    """``check()``'s answer, reused for REMOTE_CHECK_SECONDS unless ``fresh``."""
    cache = _cache(app)
    with cache.lock:
        hit = cache.entries.get(name)
        if not fresh and hit and time.monotonic() - hit[0] < REMOTE_CHECK_SECONDS:
            return hit[1]
    result = check()
    with cache.lock:
        cache.entries[name] = (time.monotonic(), result)
    return result


def database_url() -> str:
    return db.engine.url.render_as_string(hide_password=True)


def missing_sqlite_file() -> Path | None:
    """The configured SQLite file when it does not exist (connecting would create it)."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


def database(app: Flask) -> Health:
    """Reachable, and at the code's schema revision (or a newer one: a rolling upgrade).

    A missing SQLite file is reported without connecting: a check never creates a database.
    """
    where = database_url()
    missing = missing_sqlite_file()
    if missing is not None:
        return Health(
            FAILING,
            f"no database file at {missing}: run `flask db upgrade` to create it (or fix "
            "SQLALCHEMY_DATABASE_URI if this is not the intended database)",
        )
    try:
        version = db.session.execute(text("select version_num from alembic_version")).scalar()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return Health(FAILING, describe_database_error(exc, where))
    finally:
        db.session.rollback()
    scripts = ScriptDirectory(MIGRATIONS_DIR)
    head = scripts.get_current_head() or ""
    cache = _cache(app)
    if cache.revisions is None:
        cache.revisions = {r.revision for r in scripts.walk_revisions()}
    if version == head:
        return Health(OK, f"{where}, schema revision {version}")
    if version and version not in cache.revisions:
        # Newer code migrated the database during a rolling upgrade; migrations are additive,
        # so this process keeps serving until it is replaced.
        return Health(OK, f"{where}, schema revision {version} (newer than this code's {head})")
    if not version:
        return Health(FAILING, f"{where} {NO_SCHEMA_ADVICE}")
    return Health(
        FAILING,
        f"{where}: schema revision {version}, the code needs {head}: run `flask db upgrade`",
    )


def describe_database_error(exc: BaseException, where: str) -> str:
    """One line for a database failure, with the advice that fits its cause."""
    original = getattr(exc, "orig", None) or exc
    message = str(original).strip().splitlines()[0] if str(original).strip() else ""
    lowered = f"{original.__class__.__name__} {message}".lower()
    if any(words in lowered for words in _NO_TABLE):
        return f"{where} {NO_SCHEMA_ADVICE}"
    if any(words in lowered for words in _UNREACHABLE):
        return (
            f"cannot connect to the database {where} ({message}): check that the database "
            "server runs and SQLALCHEMY_DATABASE_URI"
        )
    return f"the database {where} is not usable ({original.__class__.__name__}: {message})"


def microsoft(app: Flask, settings: Settings, *, fresh: bool = False) -> Health:
    """Whether a Graph token can be had for the configured flow."""
    return cached(app, "microsoft", lambda: _microsoft(app, settings), fresh=fresh)


def _microsoft(app: Flask, settings: Settings) -> Health:
    try:
        settings.require_microsoft()
    except ConfigError as exc:
        return Health(NOT_CONFIGURED, exc.format_message())
    from ticket_manager.graph.sign_in import token_provider

    if settings.auth_flow != "credentials" and missing_sqlite_file() is not None:
        return Health(FAILING, "the delegated sign-in is stored in the database, which is missing")
    try:
        with app.app_context():
            tokens = token_provider(settings)
            tokens.access_token()
            account = tokens.signed_in_username() if settings.auth_flow != "credentials" else None
            expiry = tokens.access_token_expiry()
    except (SignInError, GraphError) as exc:
        return Health(FAILING, str(exc))
    except SQLAlchemyError as exc:  # the delegated sign-in is stored in the database
        return Health(FAILING, f"the stored sign-in cannot be read: {_first_line(exc)}")
    except Exception as exc:  # anything else is still an answer, never a crash
        return Health(FAILING, f"{exc.__class__.__name__}: {_first_line(exc)}")
    return Health(
        OK,
        f"{settings.auth_flow} flow, tenant {settings.tenant_id}",
        account=account,
        expires_at=expiry,
    )


def jira(app: Flask, settings: Settings, *, fresh: bool = False) -> Health:
    """Whether Jira answers and accepts the configured account."""
    return cached(app, "jira", lambda: _jira(settings), fresh=fresh)


def _jira(settings: Settings) -> Health:
    try:
        settings.require_jira()
    except ConfigError as exc:
        return Health(NOT_CONFIGURED, exc.format_message())
    from ticket_manager.jira.client import JiraClient

    try:
        client = JiraClient(settings, max_retries=0)
        me = client.myself()
    except JiraError as exc:
        return Health(FAILING, str(exc))
    except Exception as exc:  # a network failure the client let through is still an answer
        return Health(FAILING, f"{exc.__class__.__name__}: {_first_line(exc)}")
    kind = "Cloud, REST v3" if client.is_cloud else "Server/Data Center, REST v2"
    account = me.get("emailAddress") or me.get("displayName") or me.get("name")
    return Health(OK, f"{settings.atlassian_url} ({kind})", account=account)


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else exc.__class__.__name__


# -- credentials that expire ------------------------------------------------------------------

# A delegated sign-in's refresh token lapses after this long unused (Microsoft's default).
REFRESH_TOKEN_INACTIVITY = timedelta(days=90)
# Warn this many days ahead, so there is time to renew a secret or sign in again.
EXPIRY_WARNING = timedelta(days=30)


@dataclass(frozen=True)
class Expiry:
    """A credential that stops working at ``expires_at``, and what to do before then."""

    kind: str  # client_secret or refresh_token: the metric's label
    credential: str
    expires_at: datetime
    renew: str

    def days_left(self, moment: datetime) -> int:
        return (self.expires_at - moment).days

    def warning(self, moment: datetime) -> str | None:
        """A problem line when it is expired or due within EXPIRY_WARNING, else None."""
        left = self.expires_at - moment
        if left <= timedelta(0):
            return f"{self.credential} expired on {self.expires_at:%Y-%m-%d}: {self.renew}"
        if left <= EXPIRY_WARNING:
            return (
                f"{self.credential} expires on {self.expires_at:%Y-%m-%d} "
                f"(in {left.days} days): {self.renew}"
            )
        return None


def expiries(settings: Settings) -> list[Expiry]:
    """The client secret (O365_CLIENT_SECRET_EXPIRES) and the stored delegated sign-in."""
    found: list[Expiry] = []
    if settings.client_secret and settings.client_secret_expires is not None:
        found.append(
            Expiry(
                "client_secret",
                "the client secret (O365_CLIENT_SECRET_EXPIRES)",
                datetime.combine(settings.client_secret_expires, dt_time(), tzinfo=UTC),
                "add a new secret to the app registration, then update O365_CLIENT_SECRET "
                "and O365_CLIENT_SECRET_EXPIRES",
            )
        )
    if settings.client_certificate:
        found.append(
            Expiry(
                "client_certificate",
                "the client certificate (O365_CLIENT_CERTIFICATE)",
                _certificate_expiry(settings.client_certificate),
                "upload a new certificate to the app registration, then point "
                "O365_CLIENT_CERTIFICATE at its PEM file",
            )
        )
    if settings.auth_flow != "credentials" and missing_sqlite_file() is None:
        last_used = _stored_sign_in_used_at(settings)
        if last_used is not None:
            found.append(
                Expiry(
                    "refresh_token",
                    "the delegated sign-in (refresh token, 90 days without use)",
                    last_used + REFRESH_TOKEN_INACTIVITY,
                    "keep the worker running, or run `flask o365 authenticate` again",
                )
            )
    return found


def _stored_sign_in_used_at(settings: Settings) -> datetime | None:
    """When the stored sign-in was last refreshed (the cache is saved on every refresh)."""
    from sqlalchemy import select

    from ticket_manager.models import TokenCache

    name = f"{settings.tenant_id}/{settings.client_id}"
    try:
        moment = db.session.scalar(select(TokenCache.updated_at).where(TokenCache.name == name))
    except SQLAlchemyError:
        db.session.rollback()
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _certificate_expiry(path: str) -> datetime:
    from cryptography import x509

    pem = Path(path).read_bytes()
    start = pem.index(b"-----BEGIN CERTIFICATE-----")
    return x509.load_pem_x509_certificate(pem[start:]).not_valid_after_utc
