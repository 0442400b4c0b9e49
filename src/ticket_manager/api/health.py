"""``/health/live`` and ``/health/ready``: for load balancers and orchestrators, no token needed.

Ready answers 503 only when this process cannot serve (database unreachable or at another
schema revision). A failing Microsoft sign-in or a stale mailbox sync is reported as
``degraded`` with 200: the API still works, and taking it out of service would not help.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager import health
from ticket_manager.api.access import ApiBlueprint, optional_principal, public
from ticket_manager.api.runtime import settings
from ticket_manager.api.schemas import HealthSchema
from ticket_manager.clock import as_utc, now
from ticket_manager.extensions import db
from ticket_manager.models import Mailbox

blp = ApiBlueprint("health", __name__, url_prefix="/health", description="Liveness and readiness.")

# Who may read the mailboxes, sign-in and sync errors from /health/ready.
DETAILS_SCOPE = "metrics:read"


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
    sync. 503 only when the database cannot be used. Without a token that has `metrics:read`
    the answer says only `ok` or `failing`: the mailboxes and their errors are not public.
    """
    checks = {"database": _database()}
    if not may_read_details():
        failing = checks["database"] != "ok"
        body = {"status": "failing" if failing else "ok", "checks": {}, "mailboxes": []}
        return body, 503 if failing else 200
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


def may_read_details() -> bool:
    """Whether the caller sent a token that may read the service's state (``metrics:read``)."""
    principal = optional_principal()
    return principal is not None and principal.allows(DETAILS_SCOPE)


def _database() -> str:
    found = health.database(current_app._get_current_object())
    # Anyone may ask: the reason without where the database is (that is behind /status).
    return "ok" if found.ok else found.detail.replace(health.database_url(), "the database")


def _sign_in_state() -> str:
    found = health.microsoft(current_app._get_current_object(), settings())
    return found.state if found.state != health.FAILING else f"failing: {found.detail}"


def _mailboxes() -> list[dict]:
    try:
        rows = {m.address: m for m in db.session.scalars(select(Mailbox))}
    except SQLAlchemyError:  # the database went away since it was checked
        db.session.rollback()
        rows = {}
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
