"""Jira → email: which Jira comments and status changes go to the customer, and when.

Two ways in, one way out. The Jira webhook (``web/jira_webhook.py``) and the poller below
both call :func:`relay_comment` / :func:`relay_status`, which only *enqueue* an outbound
email with a key unique to the comment (``comment:SUP-1:10042``); the outbox sends it once.

A comment is relayed when it is on a ticket this service opened, is public (not a Jira
Service Management internal note: ``jsdPublic: false`` on Cloud, the ``sd.public.comment``
property on Server/Data Center; no visibility restriction) and was not written by the
service account (whose comments are the customer's own emails).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import select

from ticket_manager.clock import as_utc, now
from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.jira.client import (
    JiraClient,
    JiraComment,
    is_on_site,
    says_whether_public,
)
from ticket_manager.jira.errors import JiraNotFoundError, JiraRejectedError
from ticket_manager.models import Cursor, Ticket
from ticket_manager.pipeline.outbox import enqueue
from ticket_manager.pipeline.ticket_records import refresh_from_issue

log = logging.getLogger("ticket_manager.relay")

SERVICE_ACCOUNT_CURSOR = "jira-service-account"
POLL_CURSOR = "jira-comments"
FIRST_POLL_WINDOW = timedelta(days=1)
POLL_OVERLAP = timedelta(minutes=2)
_WIKI_FILES = re.compile(r"!([^!|\s][^!|]*?)(?:\|[^!]*)?!|\[\^([^\]]+)\]")


def remember_service_account(account_id: str) -> None:
    """Store who the service account is, so the web process can tell our comments apart."""
    _set_cursor(SERVICE_ACCOUNT_CURSOR, account_id)


def service_account() -> str | None:
    return _get_cursor(SERVICE_ACCOUNT_CURSOR)


def relay_comment(
    ticket_key: str, comment: JiraComment, settings: Settings, attachments: list[dict]
) -> bool:
    """Enqueue the email for a comment, if it should reach the customer."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.key == ticket_key))
    if ticket is None or not comment.public or not ticket.mailbox:
        return False
    ours = {service_account(), settings.atlassian_user}
    if comment.author_id in ours or comment.author_email in ours:
        return False
    referenced = _referenced_files(comment.body)
    files = [a for a in attachments if a.get("filename") in referenced]
    foreign = [a for a in files if not is_on_site(a.get("content"), settings.atlassian_url)]
    if foreign:
        # Only Jira's own files are fetched (with Jira's credentials): a webhook naming another
        # host is not followed.
        log.warning(
            "attachment not on the Jira site refused",
            extra={"ticket": ticket.key, "count": len(foreign)},
        )
        files = [a for a in files if a not in foreign]
    enqueue(
        "comment",
        ticket.key,
        ticket.mailbox,
        f"comment:{ticket.key}:{comment.id}",
        {"body": comment.body, "author": comment.author_name, "attachments": files},
    )
    return True


def relay_status(ticket_key: str, status: str, category: str, settings: Settings) -> bool:
    """Enqueue a status email when a ticket is resolved or closed (EMAIL_NOTIFY_STATUS)."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.key == ticket_key))
    if ticket is None or ticket.status == status:
        return False
    ticket.status = status
    ticket.status_category = category or ticket.status_category
    db.session.commit()
    if not settings.notify_status or category != "done" or not ticket.mailbox:
        return False
    enqueue(
        "status", ticket.key, ticket.mailbox, f"status:{ticket.key}:{status}", {"status": status}
    )
    return True


class CommentPoller:
    """For sites without a reachable webhook URL: ask Jira what changed since the watermark."""

    def __init__(self, settings: Settings, jira: JiraClient) -> None:
        self.settings = settings
        self.jira = jira

    def poll(self) -> int:
        """One pass over the tracked tickets updated since the last pass; returns emails queued."""
        started = now()
        watermark = _get_cursor(POLL_CURSOR)
        since = (
            as_utc(datetime.fromisoformat(watermark)) if watermark else started - FIRST_POLL_WINDOW
        )
        keys = list(db.session.scalars(select(Ticket.key).where(Ticket.deleted_in_jira.is_(False))))
        db.session.rollback()
        minutes = int((started - since + POLL_OVERLAP).total_seconds() // 60) + 1
        queued = 0
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            try:
                issues = self.jira.updated_issues(chunk, minutes)
            except JiraRejectedError:
                # JQL refuses a key that no longer exists: find and forget the deleted ones.
                chunk = self._drop_deleted(chunk)
                issues = self.jira.updated_issues(chunk, minutes)
            for issue in issues:
                queued += self._relay_issue(issue)
        _set_cursor(POLL_CURSOR, started.isoformat())
        return queued

    def _drop_deleted(self, keys: list[str]) -> list[str]:
        alive = []
        for key in keys:
            try:
                self.jira.issue_status(key)
                alive.append(key)
            except JiraNotFoundError:
                ticket = db.session.scalar(select(Ticket).where(Ticket.key == key))
                ticket.deleted_in_jira = True
                db.session.commit()
                log.info("ticket deleted in Jira", extra={"ticket": key})
        return alive

    def _relay_issue(self, issue: dict) -> int:
        key = issue["key"]
        status = (issue.get("fields") or {}).get("status") or {}
        attachments = (issue.get("fields") or {}).get("attachment") or []
        queued = 0
        embedded = (issue.get("fields") or {}).get("comment") or {}
        listed = embedded.get("comments") or []
        if len(listed) < int(embedded.get("total") or 0) or not all(
            says_whether_public(raw) for raw in listed
        ):
            # More than the search result carries, or comments without jsdPublic (Server/Data
            # Center), whose internal-note property comes only with expand=properties.
            comments = self.jira.comments(key)
        else:
            comments = [JiraComment.from_jira(raw) for raw in listed]
        for comment in comments:
            queued += relay_comment(key, comment, self.settings, attachments)
        queued += relay_status(
            key,
            status.get("name", ""),
            (status.get("statusCategory") or {}).get("key", ""),
            self.settings,
        )
        ticket = db.session.scalar(select(Ticket).where(Ticket.key == key))
        if ticket is not None:
            refresh_from_issue(ticket, issue, self.settings)
            db.session.commit()
        return queued


def _referenced_files(body: dict | str) -> set[str]:
    """File names a comment shows or links (wiki ``!x.png!`` / ``[^x.pdf]``, ADF media alt)."""
    if isinstance(body, str):
        return {a or b for a, b in _WIKI_FILES.findall(body)}
    names: set[str] = set()
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "media" and (node.get("attrs") or {}).get("alt"):
                names.add(node["attrs"]["alt"])
            stack.extend(node.get("content") or [])
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _get_cursor(name: str) -> str | None:
    row = db.session.get(Cursor, name)
    return row.value if row else None


def _set_cursor(name: str, value: str) -> None:
    row = db.session.get(Cursor, name)
    if row is None:
        db.session.add(Cursor(name=name, value=value))
    else:
        row.value = value
    db.session.commit()
