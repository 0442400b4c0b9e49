"""``/health/live`` and ``/health/ready``: for load balancers and orchestrators, no token needed.

Ready answers 503 only when this process cannot serve (database unreachable or at another
schema revision). A failing Microsoft sign-in or a stale mailbox sync is reported as
``degraded`` with 200: the API still works, and taking it out of service would not help.
"""

from __future__ import annotations

import threading
import time

from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from ticket_manager.api.access import ApiBlueprint, public
from ticket_manager.api.runtime import settings
from ticket_manager.api.schemas import HealthSchema
from ticket_manager.clock import as_utc, now
from ticket_manager.config import ConfigError
from ticket_manager.extensions import MIGRATIONS_DIR, app_cache, db
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.models import Mailbox

blp = ApiBlueprint("health", __name__, url_prefix="/health", description="Liveness and readiness.")

# A sign-in check reaches the identity platform: its result is reused for this long.
SIGN_IN_CACHE_SECONDS = 60
_sign_in_lock = threading.Lock()
_revisions: list[set[str]] = []


@blp.route("/live", methods=["GET"])
@public
@blp.response(200, HealthSchema)
def live():
    """Liveness

    200 while the process answers requests.
    """
    return {"status": "ok", "checks": {}, "mailboxes": []}


@blp.route("/ready", methods=["GET"])
@public
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database cannot be used.")
def ready():
    """Readiness

    The database and its schema revision, the Microsoft sign-in, and each mailbox's last
    sync. 503 only when the database cannot be used.
    """
    checks = {"database": _database()}
    mailboxes = []
    if checks["database"] == "ok":
        checks["microsoft_sign_in"] = _sign_in_state()
        mailboxes = _mailboxes()
    status = "ok"
    if checks["database"] != "ok":
        status = "failing"
    elif any(value not in ("ok", "not configured") for value in checks.values()) or any(
        m["last_sync_error"] for m in mailboxes
    ):
        status = "degraded"
    body = {"status": status, "checks": checks, "mailboxes": mailboxes}
    return body, 503 if status == "failing" else 200


def _database() -> str:
    try:
        version = db.session.execute(text("select version_num from alembic_version")).scalar()
    except Exception as exc:  # any failure here is the finding itself
        db.session.rollback()
        return f"unreachable ({exc.__class__.__name__})"
    finally:
        db.session.rollback()
    scripts = ScriptDirectory(MIGRATIONS_DIR)
    head = scripts.get_current_head() or ""
    if not _revisions:
        _revisions.append({r.revision for r in scripts.walk_revisions()})
    if version == head:
        return "ok"
    if version and version not in _revisions[0]:
        # Newer code migrated the database during a rolling upgrade; migrations are additive,
        # so this process keeps serving until it is replaced.
        return "ok"
    return f"schema revision {version or 'none'}, the code needs {head}"


def _sign_in_state() -> str:
    config = settings()
    try:
        config.require_microsoft()
    except ConfigError:
        return "not configured"
    with _sign_in_lock:
        cached = app_cache("sign_in").get("state")
        if cached and time.monotonic() - cached[0] < SIGN_IN_CACHE_SECONDS:
            return cached[1]
        from ticket_manager.graph.sign_in import token_provider

        try:
            token_provider(config).access_token()
            state = "ok"
        except (SignInError, GraphError) as exc:
            state = f"failing: {exc}"
        app_cache("sign_in")["state"] = (time.monotonic(), state)
        return state


def _mailboxes() -> list[dict]:
    rows = {m.address: m for m in db.session.scalars(select(Mailbox))}
    moment = now()
    result = []
    for address in settings().mailboxes:
        row = rows.get(address.lower())
        last = as_utc(row.last_sync_at) if row else None
        result.append(
            {
                "address": address,
                "last_sync_at": last,
                "last_sync_age_seconds": int((moment - last).total_seconds()) if last else None,
                "last_sync_error": row.last_sync_error if row else None,
            }
        )
    db.session.rollback()
    return result
