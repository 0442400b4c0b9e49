"""Which ticket an email continues, if any: the threading rules, in the order they apply.

1. A ticket key in the subject (``[SUP-12]``, ``RE: ... (SUP-12)``) of a ticket this service
   opened.
2. ``In-Reply-To`` / ``References`` naming the Message-ID of an email of the ticket (the
   first one, a later one, or one the service sent).
3. The Graph ``conversationId`` of an email of the ticket (Outlook keeps it across
   reply-all, even when the key was dropped from the subject; Exchange also puts a
   reply-prefixed email with the same subject into it, whoever sends it).

Whatever rule matched, only a participant (pipeline/participants.py) continues the ticket:
for anyone else the match only says which ticket the email referred to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from ticket_manager.extensions import db
from ticket_manager.graph.messages import MailMessage
from ticket_manager.models import LedgerMessage, OutboundMessage, Ticket
from ticket_manager.pipeline.rules import sender_address

KEY_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]{0,9}-[1-9][0-9]{0,9})(?![A-Za-z0-9-])")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class ThreadMatch:
    """The ticket an email refers to, which rule said so, and whether its sender may continue it.

    ``participant`` false: the sender is not a participant; the email must not become a
    comment (it opens a ticket of its own that names this one).
    """

    ticket: Ticket
    how: str
    participant: bool = True


def keys_in_subject(subject: str) -> list[str]:
    return list(dict.fromkeys(KEY_IN_TEXT.findall(subject or "")))


def referenced_ids(message: MailMessage) -> list[str]:
    """Message-IDs named by In-Reply-To and References, nearest first."""
    ids = MESSAGE_ID.findall(message.header("in-reply-to") or "")
    references = MESSAGE_ID.findall(message.header("references") or "")
    return list(dict.fromkeys([*ids, *reversed(references)]))


def find_thread(
    message: MailMessage,
    *,
    staff: bool = False,
    is_participant: Callable[[Ticket, str | None], bool] | None = None,
) -> ThreadMatch | None:
    """The ticket this email continues (or only refers to), by the rules above.

    ``staff``: the email is the mailbox's own (Sent Items): staff continue any ticket.
    ``is_participant`` decides for everyone else (default: the stored participants).
    """
    candidates = [
        *[(t, "subject-key") for t in _tickets_by_key(message)],
        *[(t, "references") for t in _tickets_by_references(message)],
        *[(t, "conversation") for t in _tickets_by_conversation(message)],
    ]
    if not candidates:
        return None
    if staff:
        # Staff answer someone: the ticket whose participants the email is addressed to.
        addressed = {p.address.lower() for p in (*message.to, *message.cc) if p and p.address}
        for ticket, how in candidates:
            if addressed & ticket.participant_set():
                return ThreadMatch(ticket, how)
        ticket, how = candidates[0]
        return ThreadMatch(ticket, how)
    sender = sender_address(message)
    check = is_participant or (lambda ticket, address: address in ticket.participant_set())
    seen: set[str] = set()
    for ticket, how in candidates:
        if ticket.key in seen:
            continue
        seen.add(ticket.key)
        if check(ticket, sender):
            return ThreadMatch(ticket, how)
    ticket, how = candidates[0]
    return ThreadMatch(ticket, how, participant=False)


def _tickets_by_key(message: MailMessage) -> list[Ticket]:
    keys = keys_in_subject(message.subject)
    if not keys:
        return []
    found = {t.key: t for t in db.session.scalars(select(Ticket).where(Ticket.key.in_(keys)))}
    return [found[k] for k in keys if k in found]


def _tickets_by_references(message: MailMessage) -> list[Ticket]:
    ids = referenced_ids(message)
    if not ids:
        return []
    keys = [
        *db.session.scalars(
            select(LedgerMessage.ticket_key)
            .where(
                LedgerMessage.mailbox == message.mailbox.lower(),
                LedgerMessage.internet_message_id.in_(ids),
                LedgerMessage.ticket_key.is_not(None),
            )
            .order_by(LedgerMessage.id)
        ),
        *db.session.scalars(
            select(OutboundMessage.ticket_key)
            .where(OutboundMessage.internet_message_id.in_(ids))
            .order_by(OutboundMessage.id)
        ),
    ]
    return _tickets(keys)


def _tickets_by_conversation(message: MailMessage) -> list[Ticket]:
    """The tickets of the conversation, the one it started with first."""
    if not message.conversation_id:
        return []
    keys = db.session.scalars(
        select(LedgerMessage.ticket_key)
        .where(
            LedgerMessage.mailbox == message.mailbox.lower(),
            LedgerMessage.conversation_id == message.conversation_id,
            LedgerMessage.ticket_key.is_not(None),
        )
        .order_by(LedgerMessage.id)
    )
    return _tickets(list(keys))


def _tickets(keys: list[str]) -> list[Ticket]:
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    found = {t.key: t for t in db.session.scalars(select(Ticket).where(Ticket.key.in_(keys)))}
    return [found[k] for k in keys if k in found]


def sent_by_us(mailbox: str, internet_message_id: str | None) -> bool:
    """Is this one of the emails the service sent (an acknowledgement, a relayed comment)?

    By its stored Message-ID: Exchange keeps no headers on the Sent Items copy, so the
    ``X-Ticket-Manager`` marker cannot be relied on there.
    """
    if not internet_message_id:
        return False
    found = db.session.scalar(
        select(OutboundMessage.id)
        .where(
            OutboundMessage.mailbox == mailbox.lower(),
            OutboundMessage.internet_message_id == internet_message_id,
        )
        .limit(1)
    )
    return found is not None
