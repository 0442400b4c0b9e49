"""Which tickets a caller may see and act on: the one place that decides it.

A key or token bound to a person (``--user``, or an Entra ID delegated token) sees that
person's tickets only: those they asked for (the requester) or take part in (a participant
of the email conversation, or a watcher). ``tickets:all`` (and ``admin``) lift that, for
agents and integrations acting for the whole service desk; an unbound key acts for the
service and is not restricted. A ticket a caller may not see is answered as 404, exactly as a
ticket that does not exist, so that keys cannot be probed for which tickets exist.

Internal notes and emailing the requester are separate powers: ``tickets:internal`` reads
and writes internal notes, ``tickets:notify`` sends a comment to the requester by email.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select, true

from ticket_manager.api.keys import Principal
from ticket_manager.models import Ticket, TicketParticipant, TicketWatcher

ALL_TICKETS = "tickets:all"
INTERNAL_NOTES = "tickets:internal"
NOTIFY_REQUESTER = "tickets:notify"


def sees_every_ticket(principal: Principal) -> bool:
    """True for unbound keys and app-only tokens, and for ``tickets:all`` (or ``admin``)."""
    return principal.user_email is None or principal.allows(ALL_TICKETS)


def people_of(ticket: Ticket) -> set[str]:
    """Everyone a ticket belongs to, by lower-cased email address.

    The requester, the conversation's participants (pipeline/participants.py) and the
    watchers.
    """
    people = {ticket.requester or ""} | ticket.participant_set() | set(ticket.watcher_emails())
    return {p.lower() for p in people if p}


def may_access(principal: Principal, ticket: Ticket) -> bool:
    """Whether ``principal`` may see and act on ``ticket``."""
    if sees_every_ticket(principal):
        return True
    return (principal.user_email or "").lower() in people_of(ticket)


def visible_tickets(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause: the tickets ``principal`` may see (what :func:`may_access` says, in SQL)."""
    if sees_every_ticket(principal):
        return true()
    email = (principal.user_email or "").lower()
    watching = select(TicketWatcher.ticket_id).where(TicketWatcher.email == email)
    taking_part = select(TicketParticipant.ticket_id).where(TicketParticipant.email == email)
    return or_(
        Ticket.requester == email,
        Ticket.id.in_(watching),
        Ticket.id.in_(taking_part),
    )
