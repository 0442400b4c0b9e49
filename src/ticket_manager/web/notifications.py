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

from flask import Blueprint, Response, request
from sqlalchemy import select

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
    payload = request.get_json(silent=True) or {}
    accepted = 0
    for notification in payload.get("value") or []:
        if _handle(notification):
            accepted += 1
    db.session.commit()
    # 202 whatever we did: Graph retries non-2xx answers, and a forged post deserves nothing.
    log.debug("notifications handled", extra={"seen": accepted})
    return Response(status=202)


def _handle(notification: dict) -> bool:
    subscription_id = str(notification.get("subscriptionId") or "")
    mailbox = db.session.scalar(select(Mailbox).where(Mailbox.subscription_id == subscription_id))
    expected = mailbox.subscription_client_state if mailbox else None
    given = str(notification.get("clientState") or "")
    if not expected or not hmac.compare_digest(expected, given):
        log.warning("notification ignored: unknown subscription or wrong clientState")
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
