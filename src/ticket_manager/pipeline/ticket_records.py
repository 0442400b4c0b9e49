"""The service's copy of each ticket it manages, kept in step with Jira.

Jira is the source of truth. The ``tickets`` row holds what the API searches and shows
(summary, status, priority, labels, people, dates) so that reads never wait for Jira; it is
written when the service creates or changes an issue and refreshed from any issue JSON the
service sees afterwards (its own reads, the webhook, the poller).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ticket_manager.clock import now
from ticket_manager.config import Board, Settings
from ticket_manager.models import Ticket

# The issue fields :func:`refresh_from_issue` reads.
ISSUE_FIELDS = (
    "summary",
    "status",
    "priority",
    "labels",
    "assignee",
    "reporter",
    "created",
    "updated",
    "project",
)


def new_ticket(
    key: str,
    *,
    fields: dict,
    board: Board | None,
    settings: Settings,
    requester: str | None,
    mailbox: str | None,
    source: str,
) -> Ticket:
    """The row for an issue the service just created, from the fields it sent."""
    moment = now()
    ticket = Ticket(
        key=key,
        mailbox=mailbox,
        source=source,
        requester=requester.lower() if requester else None,
        summary=fields.get("summary"),
        board=board.name if board else None,
        project_key=(fields.get("project") or {}).get("key"),
        priority=(fields.get("priority") or {}).get("name"),
        created_at=moment,
        jira_updated_at=moment,
    )
    set_labels(ticket, fields.get("labels") or [], settings)
    return ticket


def set_labels(ticket: Ticket, labels: list[str], settings: Settings) -> None:
    """Labels as Jira has them; the category is the first label that is a configured one."""
    ticket.labels = " ".join(dict.fromkeys(labels))
    categories = set(settings.label_categories)
    ticket.category = next((label for label in labels if label in categories), None)


def refresh_from_issue(ticket: Ticket, issue: dict, settings: Settings) -> None:
    """Copy what Jira says of the issue into the row; absent fields are left alone."""
    fields = issue.get("fields") or {}
    if "summary" in fields:
        ticket.summary = fields.get("summary")
    if "status" in fields:
        status = fields.get("status") or {}
        ticket.status = status.get("name")
        ticket.status_category = (status.get("statusCategory") or {}).get("key")
    if "priority" in fields:
        ticket.priority = (fields.get("priority") or {}).get("name")
    if "labels" in fields:
        set_labels(ticket, list(fields.get("labels") or []), settings)
    if "assignee" in fields:
        assignee = fields.get("assignee") or {}
        email = assignee.get("emailAddress")
        ticket.assignee_email = email.lower() if email else None
        ticket.assignee_name = assignee.get("displayName") or assignee.get("name")
    if "reporter" in fields and (fields.get("reporter") or {}).get("emailAddress"):
        # Jira's reporter only: the requester is the service's (often the reporter is the
        # service account, for customers who are not Jira users).
        ticket.reporter_email = fields["reporter"]["emailAddress"].lower()
    if "project" in fields and (fields.get("project") or {}).get("key"):
        ticket.project_key = fields["project"]["key"]
    updated = parse_jira_time(fields.get("updated"))
    if updated is not None:
        ticket.jira_updated_at = updated


def parse_jira_time(value: str | None) -> datetime | None:
    """Jira's timestamps (``2026-11-27T03:10:00.000+0000``) as aware UTC datetimes."""
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, pattern).astimezone(UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
