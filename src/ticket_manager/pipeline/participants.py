"""Who may continue a ticket by email, and who receives its emails: the one place for the rule.

Participants of a ticket are:

- the requester (the sender of the email that opened it, or the API key's person);
- the people in To/Cc of that first email;
- the people a participant later puts in To/Cc of an email of the ticket;
- the people agents add in Jira: the issue's watchers (and, through :func:`added_in_jira`,
  whatever else Jira names, such as Jira Service Management request participants).

A monitored mailbox is never a participant, and replying does not make anyone one: an email
from someone else never becomes a comment (the processor opens a ticket of its own for it,
naming the ticket it referred to), and the To/Cc of such an email are not recorded.
Emails about the ticket go To the requester and Cc the other participants.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ticket_manager.graph.messages import Address, MailMessage
from ticket_manager.jira.client import JiraClient
from ticket_manager.models import Ticket, TicketParticipant

log = logging.getLogger("ticket_manager.pipeline")

REQUESTER = "requester"
FIRST_EMAIL = "first-email"
ADDED = "added"
WATCHER = "watcher"
REQUEST_PARTICIPANT = "request-participant"  # a Jira Service Management request participant


def _address(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


def _own(mailboxes: Iterable[str]) -> set[str]:
    return {m.lower() for m in mailboxes}


def add(
    ticket: Ticket, email: str | None, how: str, name: str | None = None, added_by=None
) -> bool:
    """Record one participant (once); True when they were not one yet."""
    address = _address(email)
    if address is None or address in ticket.participant_set():
        return False
    ticket.participants.append(
        TicketParticipant(email=address, name=name or None, how=how, added_by=added_by)
    )
    return True


def record_requester(ticket: Ticket, email: str | None, name: str | None = None) -> None:
    """The requester: kept by the service and a participant from the start."""
    address = _address(email)
    ticket.requester = address
    if name:
        ticket.requester_name = name
    add(ticket, address, REQUESTER, name)


def _people_on(message: MailMessage, mailboxes: Iterable[str]) -> list[Address]:
    own = _own(mailboxes)
    return [
        person
        for person in (*message.to, *message.cc)
        if person and person.address and person.address.lower() not in own
    ]


def record_first_email(ticket: Ticket, message: MailMessage, mailboxes: Iterable[str]) -> None:
    """The email that opened the ticket: its sender is the requester, its To/Cc take part."""
    sender = message.from_ or message.sender
    if sender is not None and sender.address.lower() not in _own(mailboxes):
        record_requester(ticket, sender.address, sender.name)
    for person in _people_on(message, mailboxes):
        add(ticket, person.address, FIRST_EMAIL, person.name)


def record_follow_up(ticket: Ticket, message: MailMessage, mailboxes: Iterable[str]) -> None:
    """A participant's (or staff's) email: the people they put in To/Cc take part from now on."""
    sender = message.from_ or message.sender
    by = sender.address.lower() if sender and sender.address else None
    for person in _people_on(message, mailboxes):
        add(ticket, person.address, ADDED, person.name, added_by=by)


def is_participant(ticket: Ticket, address: str | None, jira: JiraClient | None = None) -> bool:
    """May ``address`` continue ``ticket``? Asks Jira only for someone not known yet."""
    address = _address(address)
    if address is None:
        return False
    if address in ticket.participant_set():
        return True
    if jira is None or address not in added_in_jira(ticket, jira):
        return False
    add(ticket, address, WATCHER)
    return True


def added_in_jira(ticket: Ticket, jira: JiraClient) -> set[str]:
    """People agents added to the issue in Jira: its watchers.

    The hook for more of Jira's own lists (Jira Service Management request participants):
    add their addresses here and they become participants the same way.
    """
    return {u.email.lower() for u in jira.watchers(ticket.key) if u.email}


def recipients(ticket: Ticket, mailboxes: Iterable[str]) -> tuple[list[dict], list[dict]]:
    """To and Cc of an email about the ticket, as Graph recipients: the requester, the others."""
    own = _own(mailboxes)
    names = {p.email: p.name for p in ticket.participants}
    to = [ticket.requester] if ticket.requester and ticket.requester not in own else []
    cc = sorted(p.email for p in ticket.participants if p.email not in own and p.email not in to)
    return (
        [_recipient(a, names.get(a) or ticket.requester_name) for a in to],
        [_recipient(a, names.get(a)) for a in cc],
    )


def _recipient(address: str, name: str | None) -> dict:
    email = {"address": address}
    if name:
        email["name"] = name
    return {"emailAddress": email}
