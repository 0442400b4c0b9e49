"""Keep a Graph change-notification subscription alive for each mailbox.

Notifications only shorten the wait before the next delta round; polling stays the safety
net, so a subscription that cannot be created or renewed is logged and the worker goes on.
Graph allows Outlook message subscriptions of at most 10,080 minutes; we ask for a little
less, follow a lower limit when Graph names one ("...can only be N minutes in the future"),
and renew well before the end.

A delegated sign-in can subscribe only to the signed-in person's own mailbox: on a shared
mailbox Graph refuses. That is said once (a status item on the mailbox), the worker polls,
and asks again only every few hours, in case the configuration changed.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from ticket_manager.clock import as_utc, now
from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.client import GraphClient, Subscription
from ticket_manager.graph.errors import (
    GraphError,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRequestError,
)
from ticket_manager.pipeline.sync import mailbox_state

log = logging.getLogger("ticket_manager.subscriptions")

# Graph's limit for Outlook messages is 10,080 minutes; a few minutes less leaves room for
# the clocks of both sides.
SUBSCRIPTION_LIFETIME = timedelta(minutes=10_070)
RENEW_BEFORE = timedelta(hours=24)
# How often a refused delegated subscription on a shared mailbox is asked for again.
SHARED_MAILBOX_RETRY = timedelta(hours=6)
_LIFETIME_LIMIT = re.compile(r"can only be (\d+) minutes in the future", re.IGNORECASE)


def ensure_subscription(graph: GraphClient, settings: Settings, address: str) -> None:
    """Create or renew the mailbox's subscription when it is missing or expires soon."""
    if not settings.notification_url:
        return
    state = mailbox_state(address)
    moment = now()
    expires_at = as_utc(state.subscription_expires_at)
    if state.subscription_id and expires_at and expires_at - moment > RENEW_BEFORE:
        return
    retry_at = as_utc(state.subscription_retry_at)
    if retry_at and retry_at > moment:
        return
    try:
        if state.subscription_id:
            try:
                renewed = _within_limit(
                    lambda expires: graph.renew_subscription(state.subscription_id, expires)
                )
                state.subscription_expires_at = renewed.expires
                db.session.commit()
                log.info("subscription renewed", extra={"mailbox": address})
                return
            except GraphNotFoundError:
                log.info("subscription gone: creating a new one", extra={"mailbox": address})
        client_state = secrets.token_urlsafe(32)
        created = _within_limit(
            lambda expires: graph.create_subscription(
                address,
                notification_url=settings.notification_url,
                client_state=client_state,
                expires=expires,
            )
        )
    except GraphPermissionError as exc:
        db.session.rollback()
        if settings.auth_flow == "credentials":
            _polling_only(address, exc)
            return
        _refused_on_shared_mailbox(address, settings, exc)
        return
    except GraphError as exc:
        db.session.rollback()
        _polling_only(address, exc)
        return
    state = mailbox_state(address)
    state.subscription_id = created.id
    state.subscription_client_state = client_state
    state.subscription_expires_at = created.expires
    state.subscription_error = None
    state.subscription_retry_at = None
    db.session.commit()
    log.info("subscription created", extra={"mailbox": address})


def _within_limit(call: Callable[[datetime], Subscription]) -> Subscription:
    """Ask for SUBSCRIPTION_LIFETIME; when Graph names a lower maximum, ask again with it."""
    try:
        return call(now() + SUBSCRIPTION_LIFETIME)
    except GraphRequestError as exc:
        limit = _LIFETIME_LIMIT.search(str(exc))
        if limit is None:
            raise
        minutes = int(limit.group(1))
        log.info("subscription lifetime limited by Graph", extra={"minutes": minutes})
        return call(now() + timedelta(minutes=minutes))


def _polling_only(address: str, exc: GraphError) -> None:
    log.warning(
        "no change notifications: polling only", extra={"mailbox": address, "error": str(exc)}
    )


def _refused_on_shared_mailbox(address: str, settings: Settings, exc: GraphError) -> None:
    """A status item, said once; the next request for a subscription comes hours later."""
    state = mailbox_state(address)
    first = state.subscription_error is None
    state.subscription_error = (
        f"a delegated sign-in ({settings.auth_flow} flow) cannot subscribe to change "
        "notifications on a mailbox other than the signed-in person's own (a shared mailbox): "
        f"new mail is picked up by polling every {settings.poll_interval} s. For notifications "
        "use O365_AUTH_FLOW=credentials, or leave O365_NOTIFICATION_URL empty to silence this. "
        f"(Graph: {exc})"
    )[:2000]
    state.subscription_retry_at = now() + SHARED_MAILBOX_RETRY
    db.session.commit()
    if first:
        log.warning(
            "no change notifications on a shared mailbox with a delegated sign-in: polling only",
            extra={"mailbox": address, "error": str(exc)},
        )
