"""Keep a Graph change-notification subscription alive for each mailbox.

Notifications only shorten the wait before the next delta round; polling stays the safety
net, so a subscription that cannot be created or renewed is logged and the worker goes on.
Graph allows message subscriptions of at most 10,080 minutes; they are renewed well before.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from ticket_manager.clock import as_utc, now
from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import GraphError, GraphNotFoundError
from ticket_manager.pipeline.sync import mailbox_state

log = logging.getLogger("ticket_manager.subscriptions")

SUBSCRIPTION_LIFETIME = timedelta(minutes=10_000)
RENEW_BEFORE = timedelta(hours=24)


def ensure_subscription(graph: GraphClient, settings: Settings, address: str) -> None:
    """Create or renew the mailbox's subscription when it is missing or expires soon."""
    if not settings.notification_url:
        return
    state = mailbox_state(address)
    moment = now()
    expires_at = as_utc(state.subscription_expires_at)
    if state.subscription_id and expires_at and expires_at - moment > RENEW_BEFORE:
        return
    expires = moment + SUBSCRIPTION_LIFETIME
    try:
        if state.subscription_id:
            try:
                renewed = graph.renew_subscription(state.subscription_id, expires)
                state.subscription_expires_at = renewed.expires
                db.session.commit()
                log.info("subscription renewed", extra={"mailbox": address})
                return
            except GraphNotFoundError:
                log.info("subscription gone: creating a new one", extra={"mailbox": address})
        client_state = secrets.token_urlsafe(32)
        created = graph.create_subscription(
            address,
            notification_url=settings.notification_url,
            client_state=client_state,
            expires=expires,
        )
    except GraphError as exc:
        db.session.rollback()
        log.warning(
            "no change notifications: polling only", extra={"mailbox": address, "error": str(exc)}
        )
        return
    state = mailbox_state(address)
    state.subscription_id = created.id
    state.subscription_client_state = client_state
    state.subscription_expires_at = created.expires
    db.session.commit()
    log.info("subscription created", extra={"mailbox": address})
