"""Which ticket an email continues, if any: the threading rules, in the order they apply.

1. A ticket key in the subject (``[SUP-12]``, ``RE: ... (SUP-12)``) of a ticket this service
   opened, **if the sender already took part** in that ticket's emails (as requester, in To
   or Cc) or the email also threads to it by headers or conversation. A pasted key from a
   stranger is not trusted: the email becomes a new ticket, which mentions the key.
2. ``In-Reply-To`` / ``References`` naming the Message-ID of an email of the ticket (the
   first one, a later one, or one the service sent).
3. The Graph ``conversationId`` of an email of the ticket (Outlook keeps it across
   reply-all, even when the key was dropped from the subject).
"""

from __future__ import annotations

import re
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
    """The ticket an email belongs to, and which rule said so."""

    ticket: Ticket
    how: str


def keys_in_subject(subject: str) -> list[str]:
    return list(dict.fromkeys(KEY_IN_TEXT.findall(subject or "")))


def referenced_ids(message: MailMessage) -> list[str]:
    """Message-IDs named by In-Reply-To and References, nearest first."""
    ids = MESSAGE_ID.findall(message.header("in-reply-to") or "")
    references = MESSAGE_ID.findall(message.header("references") or "")
    return list(dict.fromkeys([*ids, *reversed(references)]))


def find_thread(message: MailMessage) -> ThreadMatch | None:
    """The ticket this email continues, by the rules above; None for a new conversation."""
    by_headers = _ticket_by_references(message)
    by_conversation = _ticket_by_conversation(message)
    sender = sender_address(message)
    for key in keys_in_subject(message.subject):
        ticket = db.session.scalar(select(Ticket).where(Ticket.key == key))
        if ticket is None:
            continue
        trusted = sender in ticket.participant_set() or key in {
            t.key for t in (by_headers, by_conversation) if t is not None
        }
        if trusted:
            return ThreadMatch(ticket, "subject-key")
    if by_headers is not None:
        return ThreadMatch(by_headers, "references")
    if by_conversation is not None:
        return ThreadMatch(by_conversation, "conversation")
    return None


def _ticket_by_references(message: MailMessage) -> Ticket | None:
    ids = referenced_ids(message)
    if not ids:
        return None
    key = db.session.scalar(
        select(LedgerMessage.ticket_key)
        .where(
            LedgerMessage.mailbox == message.mailbox.lower(),
            LedgerMessage.internet_message_id.in_(ids),
            LedgerMessage.ticket_key.is_not(None),
        )
        .order_by(LedgerMessage.id.desc())
        .limit(1)
    ) or db.session.scalar(
        select(OutboundMessage.ticket_key)
        .where(OutboundMessage.internet_message_id.in_(ids))
        .order_by(OutboundMessage.id.desc())
        .limit(1)
    )
    return _ticket(key)


def _ticket_by_conversation(message: MailMessage) -> Ticket | None:
    if not message.conversation_id:
        return None
    key = db.session.scalar(
        select(LedgerMessage.ticket_key)
        .where(
            LedgerMessage.mailbox == message.mailbox.lower(),
            LedgerMessage.conversation_id == message.conversation_id,
            LedgerMessage.ticket_key.is_not(None),
        )
        .order_by(LedgerMessage.id.desc())
        .limit(1)
    )
    return _ticket(key)


def _ticket(key: str | None) -> Ticket | None:
    if key is None:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.key == key))


def participants_of(message: MailMessage, own_mailboxes: tuple[str, ...]) -> set[str]:
    """Everyone on the email but the monitored mailboxes: they may continue the ticket."""
    own = {m.lower() for m in own_mailboxes}
    people = [message.from_, message.sender, *message.to, *message.cc, *message.reply_to]
    return {p.address.lower() for p in people if p and p.address and p.address.lower() not in own}
