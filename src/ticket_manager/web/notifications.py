"""Receive Microsoft Graph change notifications: they only ask the worker to sync now.

Graph first checks the endpoint with a ``validationToken`` query, which must be echoed as
text/plain within 10 seconds. Later POSTs carry notifications; each is trusted only if its
``clientState`` matches the secret stored for that subscription, and then it merely sets
``sync_requested_at`` on the mailbox: the delta query, not the notification, says what
changed. Lifecycle notifications ask for a renewal or a new subscription.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from ticket_manager.api.problems import Problem
from ticket_manager.clock import now
from ticket_manager.extensions import db
from ticket_manager.models import Mailbox

log = logging.getLogger("ticket_manager.notifications")

NOTIFICATIONS_PATH = "/graph/notifications"

blueprint = Blueprint("graph_notifications", __name__)


@blueprint.post(NOTIFICATIONS_PATH)
def receive_notifications() -> Response:
    """Validation handshake, change notifications and lifecycle notifications from Graph."""
    token = request.args.get("validationToken")
    if token is not None:
        return Response(token, status=200, mimetype="text/plain")
    notifications = _notifications(request.get_json(silent=True))
    subscribed = {
        m.subscription_id: m
        for m in db.session.scalars(select(Mailbox).where(Mailbox.subscription_id.is_not(None)))
    }
    accepted = ignored = 0
    for notification in notifications:
        if _handle(notification, subscribed):
            accepted += 1
        else:
            ignored += 1
    db.session.commit()
    if ignored:
        # One line per POST, however many entries were forged: a flood is not a log flood.
        log.warning(
            "notifications ignored: unknown subscription or wrong clientState",
            extra={"rejected": ignored, "seen": accepted},
        )
    # 202 whatever we did: Graph retries non-2xx answers, and a forged post deserves nothing.
    log.debug("notifications handled", extra={"seen": accepted})
    return Response(status=202)


def _notifications(payload) -> list:
    """The ``value`` array of a notification POST; a body of another shape is a 400."""
    if not isinstance(payload, dict) or not isinstance(payload.get("value", []), list):
        raise Problem(
            400, "bad-request", 'A notification body is a JSON object with a "value" array.'
        )
    from ticket_manager.extensions import get_settings

    entries = payload.get("value", [])
    most = get_settings(current_app).notification_max_entries
    if len(entries) > most:
        log.warning("notification post refused: too many entries", extra={"seen": len(entries)})
        raise Problem(
            413,
            "payload-too-large",
            f"A notification POST holds at most {most} entries (O365_NOTIFICATION_MAX_ENTRIES).",
        )
    return entries


def _handle(notification, subscribed: dict[str, Mailbox]) -> bool:
    if not isinstance(notification, dict):
        return False
    subscription_id = notification.get("subscriptionId")
    given = notification.get("clientState")
    if not isinstance(subscription_id, str) or not isinstance(given, str) or not given:
        return False
    mailbox = subscribed.get(subscription_id)
    expected = mailbox.subscription_client_state if mailbox else None
    if not expected or not hmac.compare_digest(expected, given):
        return False
    event = notification.get("lifecycleEvent")
    if event == "reauthorizationRequired":
        mailbox.subscription_expires_at = now()  # the worker renews it at its next pass
    elif event == "subscriptionRemoved":
        mailbox.subscription_id = None
        mailbox.subscription_expires_at = None
    mailbox.sync_requested_at = now()
    log.info(
        "notification received",
        extra={"mailbox": mailbox.address, "state": event or notification.get("changeType")},
    )
    return True
