"""Sending held for a mailbox that may not send (ErrorSendAsDenied): one status item, no loop.

With a delegated sign-in on a shared mailbox, Full Access opens the mailbox but sending also
needs Send As or Send on Behalf; without them every send answers 403 ErrorSendAsDenied.
Retrying each email would only repeat that, so the first denial holds the mailbox's outgoing
email (the tickets exist; their acknowledgements wait, unsent and unspent) and records a status
item saying what to grant. One email is tried again every SEND_AS_RETRY, and the first that
goes releases the others.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from ticket_manager.clock import as_utc, now
from ticket_manager.extensions import db
from ticket_manager.graph.errors import GraphError
from ticket_manager.models import Mailbox

log = logging.getLogger("ticket_manager.outbox")

SEND_AS_DENIED = "ErrorSendAsDenied"
SEND_AS_RETRY = timedelta(hours=1)


def is_send_as_denied(exc: Exception) -> bool:
    return isinstance(exc, GraphError) and (exc.code or "") == SEND_AS_DENIED


def held_mailboxes() -> list[str]:
    """Mailboxes whose sending is held until their next try."""
    return list(
        db.session.scalars(
            select(Mailbox.address).where(
                Mailbox.send_error.is_not(None), Mailbox.send_retry_at > now()
            )
        )
    )


def held_until(mailbox: str):
    """When the mailbox's sending may be tried again, if it is held now."""
    row = db.session.scalar(select(Mailbox).where(Mailbox.address == mailbox.lower()))
    until = as_utc(row.send_retry_at) if row is not None and row.send_error else None
    return until if until and until > now() else None


def hold_sending(mailbox: str, exc: GraphError, auth_flow: str) -> None:
    """Record the status item (logged once) and hold the mailbox's sending for a while."""
    row = db.session.scalar(select(Mailbox).where(Mailbox.address == mailbox.lower()))
    if row is None:
        row = Mailbox(address=mailbox.lower())
        db.session.add(row)
    first = row.send_error is None
    who = "the signed-in person" if auth_flow != "credentials" else "the app"
    row.send_error = (
        f"Graph refused to send as {mailbox} (ErrorSendAsDenied): give {who} Send As (or Send "
        f"on Behalf) on the mailbox, besides Full Access; Exchange can take up to an hour to "
        f"apply it. Check with `flask check --send-test ADDRESS`. (Graph: {exc})"
    )[:2000]
    row.send_retry_at = now() + SEND_AS_RETRY
    db.session.commit()
    if first:
        log.error("sending refused: Send As missing", extra={"mailbox": mailbox, "error": str(exc)})


def sending_works(mailbox: str) -> None:
    """An email went: the status item, if any, is cleared."""
    row = db.session.scalar(select(Mailbox).where(Mailbox.address == mailbox.lower()))
    if row is not None and row.send_error is not None:
        row.send_error = None
        row.send_retry_at = None
        db.session.commit()
        log.info("sending works again", extra={"mailbox": mailbox})
