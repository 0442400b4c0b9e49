"""An email to a Jira Service Management project becomes a customer request, not a plain issue.

The sender becomes the customer the request is raised on behalf of, Cc'd people its request
participants (customers created and added to the service desk when missing), and the
request type (``JIRA_REQUEST_TYPE``) decides which fields may be sent: labels and priority
only where its form shows them. Where the site does not let the service account create
customers, the request is raised by the service account and the reason is kept for the
ledger; the sender stays the ticket's requester in the service's records and description.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ticket_manager.content import to_wiki
from ticket_manager.graph.messages import Address, MailMessage
from ticket_manager.jira.client import JiraClient, JiraUser
from ticket_manager.jira.errors import JiraRejectedError
from ticket_manager.jira.service_desk import CustomersRefused, RequestType, ServiceDesk
from ticket_manager.pipeline.tickets import SOURCE_PROPERTY, TicketDraft

log = logging.getLogger("ticket_manager.pipeline")

# Fields of the draft that a request type's form may or may not show.
OPTIONAL_REQUEST_FIELDS = ("labels", "priority")
NOT_CUSTOMERS = (
    "raised by the service account: the site does not let it create customers or add "
    "them to the service desk ({detail}); the sender is recorded as requester"
)


@dataclass
class RaisedRequest:
    """The request made for an email: key, portal link, participants and any fallback."""

    key: str
    portal_url: str | None
    participants: list[str] = field(default_factory=list)
    note: str | None = None


def request_values(draft: TicketDraft, request_type: RequestType, jira: JiraClient) -> dict:
    """The ``requestFieldValues`` of the draft that the request type's form accepts.

    Description goes as text (wiki markup, which JSM renders on Cloud and Data Center).
    A required field the service cannot fill is refused here, with its name, before Jira.
    """
    values: dict = {"summary": draft.fields["summary"]}
    if request_type.allows("description") and draft.content is not None:
        values["description"] = to_wiki(draft.content)
    for name in OPTIONAL_REQUEST_FIELDS:
        if name in draft.fields and draft.fields[name] and request_type.allows(name):
            values[name] = draft.fields[name]
    missing = [f.name for f in request_type.required if f.id not in values]
    if missing:
        raise JiraRejectedError(
            f"request type {request_type.name!r} requires fields the service cannot fill: "
            + ", ".join(missing),
            status=400,
        )
    return values


def raise_request(
    jira: JiraClient,
    desk: ServiceDesk,
    draft: TicketDraft,
    message: MailMessage,
    *,
    request_type_name: str,
    own_addresses: tuple[str, ...],
) -> RaisedRequest:
    """Raise the customer request for ``message`` and mark it as the email's (properties)."""
    request_type = jira.service_desks.request_type(desk, request_type_name)
    values = request_values(draft, request_type, jira)
    sender = message.from_ or message.sender
    own = {a.lower() for a in own_addresses}
    if sender is not None:
        own.add(sender.address.lower())
    cc = [a for a in message.cc if a.address.lower() not in own]
    note = None
    requester = None
    participants: list[JiraUser] = []
    added: list[str] = []
    try:
        requester = _customer(jira, desk, sender) if sender else None
    except CustomersRefused as refused:
        note = NOT_CUSTOMERS.format(detail=refused)
        log.warning("customers refused", extra={"service_desk": desk.project_key})
    if note is None:
        skipped = []
        for address in _unique(cc):
            try:
                participants.append(_customer(jira, desk, address))
                added.append(address.address.lower())
            except CustomersRefused:
                skipped.append(address.address)
        if skipped:
            note = (
                "not request participants, the site refused to make them customers: "
                + ", ".join(skipped)
            )
    created = jira.service_desks.create_request(
        desk, request_type, values, on_behalf_of=requester, participants=participants
    )
    jira.set_issue_property(created.key, SOURCE_PROPERTY, draft.properties[SOURCE_PROPERTY])
    return RaisedRequest(
        key=created.key, portal_url=created.portal_url, participants=added, note=note
    )


def add_participants(
    jira: JiraClient, desk: ServiceDesk, key: str, addresses: list[Address]
) -> list[str]:
    """People newly on Cc of a follow-up become request participants; their addresses.

    Where the site refuses to make them customers, they stay out of the request (the
    comment still names them) and nothing fails.
    """
    try:
        users = [_customer(jira, desk, a) for a in _unique(addresses)]
    except CustomersRefused:
        log.warning("customers refused", extra={"service_desk": desk.project_key})
        return []
    jira.service_desks.add_participants(key, users)
    return [a.address.lower() for a in _unique(addresses)] if users else []


def _customer(jira: JiraClient, desk: ServiceDesk, address: Address) -> JiraUser:
    return jira.service_desks.customer(desk, address.address, address.name or address.address)


def _unique(addresses: list[Address]) -> list[Address]:
    seen: dict[str, Address] = {}
    for address in addresses:
        seen.setdefault(address.address.lower(), address)
    return list(seen.values())
