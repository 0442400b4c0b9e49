"""What the ticket endpoints do with Jira and the database, apart from HTTP.

Every change goes to Jira first and is then copied into the ``tickets`` row (see
``pipeline/ticket_records``); reads come from the row. Creation with an ``Idempotency-Key``
writes a placeholder row first (unique per key and Idempotency-Key), so that a retry, even
after a crash between Jira's answer and the database commit, finds the ticket instead of
creating a second one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ticket_manager.api.keys import Principal
from ticket_manager.api.problems import Problem, invalid
from ticket_manager.api.ticket_access import INTERNAL_NOTES, NOTIFY_REQUESTER
from ticket_manager.clock import as_utc, now
from ticket_manager.config import Board, Settings
from ticket_manager.content import (
    EmailContent,
    jira_to_email,
    summary_from_subject,
    to_adf,
    to_wiki,
)
from ticket_manager.counters import count_ticket_created
from ticket_manager.extensions import db
from ticket_manager.graph.messages import FileAttachment
from ticket_manager.jira.client import JiraClient, JiraComment, JiraUser
from ticket_manager.models import Ticket
from ticket_manager.pipeline.jira_writes import create_issue, upload_missing
from ticket_manager.pipeline.outbox import enqueue
from ticket_manager.pipeline.participants import record_requester
from ticket_manager.pipeline.ticket_records import (
    ISSUE_FIELDS,
    new_ticket,
    refresh_from_issue,
    set_labels,
)
from ticket_manager.pipeline.tickets import safe_filename

log = logging.getLogger("ticket_manager.api")

API_PROPERTY = "ticket-manager.api"
# Placeholder keys: claimed but Jira not called yet; Jira called, answer not recorded.
PENDING_PREFIX = "pending:"
NEW_PREFIX = "pending:new:"
ATTEMPT_PREFIX = "pending:attempt:"
# A placeholder older than this belongs to an interrupted request: look in Jira, then retry.
STALE_PLACEHOLDER = timedelta(seconds=60)
# Jira Service Management's comment property for an internal note.
INTERNAL_NOTE_PROPERTY = "sd.public.comment"


@dataclass(frozen=True)
class Upload:
    """A file sent with a request, already read."""

    filename: str
    content_type: str
    content: bytes


@dataclass
class Created:
    ticket: Ticket
    created: bool


class TicketService:
    """Ticket operations for one request, with the process's Jira client."""

    def __init__(self, settings: Settings, jira: JiraClient) -> None:
        self.settings = settings
        self.jira = jira

    # -- create ---------------------------------------------------------------------------

    def create(
        self,
        data: dict,
        uploads: list[Upload],
        principal: Principal,
        idempotency_key: str | None,
    ) -> Created:
        board = self._board(data.get("board"))
        category = self._category(data.get("category"))
        reporter = self._reporter(data.get("reporter"), principal)
        files = self._files(uploads)
        placeholder = None
        marker = {"keyId": principal.key_id, "request": idempotency_key or uuid.uuid4().hex}
        project_key = self.jira.project_key_for_board(board.name)
        key = None
        if idempotency_key:
            placeholder = self._by_idempotency_key(principal, idempotency_key)
            if placeholder is not None and not placeholder.key.startswith(PENDING_PREFIX):
                upload_missing(self.jira, placeholder.key, files, [])
                return Created(placeholder, created=False)
            if placeholder is None:
                placeholder = self._placeholder(principal, idempotency_key)
            else:
                key = self._recover(placeholder, project_key, marker)
        fields, watchers = self._fields(data, board, category, reporter, project_key)
        fresh = key is None
        if key is None:
            if placeholder is not None:
                # From here on, an interruption may have left an issue in Jira.
                placeholder.key = f"{ATTEMPT_PREFIX}{placeholder.id}"
                placeholder.created_at = now()
                db.session.commit()
            key = create_issue(
                self.jira, fields, {API_PROPERTY: marker}, optional=("priority", "reporter")
            )
        ticket = self._record(placeholder, key, fields, board, reporter, principal)
        upload_missing(self.jira, key, files, watchers, fresh=fresh)
        ticket.set_watchers(w.email for w in watchers if w.email)
        self.refresh(ticket)
        log.info(
            "ticket created through the API", extra={"ticket": key, "key_id": principal.key_id}
        )
        count_ticket_created("api")
        return Created(ticket, created=True)

    def _board(self, name: str | None) -> Board:
        if name is None:
            if self.settings.default_board is None:
                raise invalid(
                    "board",
                    "Name a board: several are configured and JIRA_DEFAULT_BOARD is not set.",
                )
            return self.settings.default_board
        for board in self.settings.boards:
            if board.name.lower() == name.lower() or board.setting == name:
                return board
        known = ", ".join(b.name for b in self.settings.boards) or "none configured"
        raise invalid("board", f"Unknown board; choose from: {known}.")

    def _category(self, name: str | None) -> str | None:
        categories = self.settings.label_categories
        if name is None:
            return self.settings.default_category
        for category in categories:
            if category.lower() == name.lower():
                return category
        known = ", ".join(categories) or "none configured"
        raise invalid("category", f"Unknown category; choose from: {known}.")

    @staticmethod
    def _reporter(reporter: str | None, principal: Principal) -> str:
        bound = principal.user_email
        if reporter is None:
            if bound is None:
                raise invalid("reporter", "This API key is not bound to a user: name the reporter.")
            return bound
        if bound is not None and reporter.lower() != bound and not principal.is_admin:
            raise Problem(
                403,
                "forbidden-reporter",
                f"This API key reports as {bound}; only an admin key may name another.",
            )
        return reporter.lower()

    def _files(self, uploads: list[Upload]) -> list[FileAttachment]:
        taken: set[str] = set()
        files = []
        for upload in uploads:
            if not upload.content:
                raise invalid(
                    "attachments",
                    f"{upload.filename or 'A file'} is empty: an empty file cannot be attached.",
                    "files",
                )
            if len(upload.content) > self.settings.max_attachment_size:
                raise Problem(
                    413,
                    "payload-too-large",
                    f"{upload.filename or 'A file'} is larger than "
                    f"JIRA_MAX_ATTACHMENT_SIZE ({self.settings.max_attachment_size} bytes).",
                )
            files.append(
                FileAttachment(
                    name=safe_filename(upload.filename, taken),
                    content_type=upload.content_type or "application/octet-stream",
                    content=upload.content,
                )
            )
        return files

    def _fields(self, data, board, category, reporter, project_key) -> tuple[dict, list[JiraUser]]:
        reporter_user = self.jira.find_user(reporter)
        header = [] if reporter_user else [("Reported by", reporter)]
        labels = list(
            dict.fromkeys(
                [*self.settings.ticket_labels, *([category] if category else []), *data["labels"]]
            )
        )
        fields: dict = {
            "project": {"key": project_key},
            "issuetype": {"name": self.settings.ticket_type},
            "summary": summary_from_subject(data["title"]),
            "description": self._render(data.get("body") or "", data["body_format"], header),
            "labels": labels,
        }
        if data.get("priority"):
            fields["priority"] = {"name": data["priority"]}
        if reporter_user is not None:
            fields["reporter"] = self.jira.user_reference(reporter_user)
        watchers = []
        for email in data["watchers"]:
            user = self.jira.find_user(email)
            if user is not None and user not in watchers:
                watchers.append(user)
        return fields, watchers

    def _render(self, body: str, body_format: str, header=None) -> dict | str:
        content = EmailContent.from_text(body, body_format, header=header)
        return to_adf(content) if self.jira.is_cloud else to_wiki(content)

    def _by_idempotency_key(self, principal: Principal, idempotency_key: str) -> Ticket | None:
        return db.session.scalar(
            select(Ticket).where(
                Ticket.created_by_key == principal.key_id, Ticket.idempotency_key == idempotency_key
            )
        )

    def _placeholder(self, principal: Principal, idempotency_key: str) -> Ticket:
        """Claim the Idempotency-Key before anything else: a concurrent twin gets 409."""
        row = Ticket(
            key=f"{NEW_PREFIX}{uuid.uuid4().hex}",
            source="api",
            created_by_key=principal.key_id,
            idempotency_key=idempotency_key,
            created_at=now(),
            jira_updated_at=now(),
        )
        db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise _in_progress() from None
        return row

    def _recover(self, placeholder: Ticket, project_key: str, marker: dict) -> str | None:
        """A placeholder from an earlier attempt: wait for it, or find what it created."""
        started = as_utc(placeholder.created_at)
        if now() - started < STALE_PLACEHOLDER:
            raise _in_progress()
        if placeholder.key.startswith(NEW_PREFIX):
            return None  # it stopped before calling Jira
        return self.jira.find_issue_with_property(project_key, started, API_PROPERTY, marker)

    def _record(self, placeholder, key, fields, board, reporter, principal) -> Ticket:
        ticket = new_ticket(
            key,
            fields=fields,
            board=board,
            settings=self.settings,
            requester=reporter,
            mailbox=self._mailbox_of(board),
            source="api",
        )
        ticket.created_by_key = principal.key_id
        if placeholder is not None:
            placeholder.key = key
            for column in (
                "mailbox",
                "source",
                "requester",
                "summary",
                "board",
                "project_key",
                "priority",
                "labels",
                "category",
            ):
                setattr(placeholder, column, getattr(ticket, column))
            ticket = placeholder
        else:
            db.session.add(ticket)
        record_requester(ticket, reporter)
        db.session.commit()
        return ticket

    def _mailbox_of(self, board: Board) -> str | None:
        """The mailbox that sends mail about tickets on ``board`` (MAILBOX_BOARDS, else default)."""
        for mailbox in self.settings.mailboxes:
            if self.settings.board_for(mailbox) == board:
                return mailbox.lower()
        return None

    # -- read and refresh -----------------------------------------------------------------

    def refresh(self, ticket: Ticket) -> dict:
        """Read the issue from Jira and copy it into the row; returns the issue JSON."""
        issue = self.jira.get_issue(ticket.key, list(ISSUE_FIELDS))
        refresh_from_issue(ticket, issue, self.settings)
        db.session.commit()
        return issue

    def extras(self, ticket: Ticket, wanted: list[str], principal: Principal) -> dict:
        """Comments, attachments and watchers read live from Jira, as asked for."""
        extra: dict = {}
        if "comments" in wanted:
            comments = visible_comments(self.jira.comments(ticket.key), principal)
            extra["comments"] = [comment_view(c) for c in comments]
        if "attachments" in wanted:
            issue = self.jira.get_issue(ticket.key, ["attachment"])
            extra["attachments"] = [
                {
                    "id": str(a.get("id")),
                    "filename": a.get("filename"),
                    "size": int(a.get("size") or 0),
                    "mime_type": a.get("mimeType"),
                    "created": a.get("created"),
                }
                for a in (issue.get("fields") or {}).get("attachment") or []
            ]
        if "watchers" in wanted:
            users = self.jira.watchers(ticket.key)
            emails = [u.email for u in users if u.email]
            ticket.set_watchers(emails)
            db.session.commit()
        return extra

    # -- update ---------------------------------------------------------------------------

    def update(self, ticket: Ticket, data: dict) -> None:
        fields: dict = {}
        if "title" in data:
            fields["summary"] = summary_from_subject(data["title"])
        if "body" in data:
            fields["description"] = self._render(data["body"], data["body_format"])
        if "priority" in data:
            fields["priority"] = {"name": data["priority"]}
        if "labels" in data or "category" in data:
            labels = data.get("labels", ticket.label_list())
            if "category" in data:
                category = self._category(data["category"])
                categories = set(self.settings.label_categories)
                labels = [label for label in labels if label not in categories] + [category]
            fields["labels"] = list(dict.fromkeys(labels))
        if fields:
            self.jira.edit_issue(ticket.key, fields)
        if "assignee" in data:
            user = None
            if data["assignee"] is not None:
                user = self.jira.find_user(data["assignee"])
                if user is None:
                    raise invalid("assignee", "No active Jira user has this email address.")
            self.jira.assign(ticket.key, user)
        if "labels" in fields:
            set_labels(ticket, fields["labels"], self.settings)
        self.refresh(ticket)

    # -- comments -------------------------------------------------------------------------

    def add_comment(
        self, ticket: Ticket, data: dict, uploads: list[Upload], principal: Principal
    ) -> JiraComment:
        for wanted, scope in (
            (data["internal"], INTERNAL_NOTES),
            (data["notify_requester"], NOTIFY_REQUESTER),
        ):
            if wanted and not principal.allows(scope):
                raise Problem(403, "insufficient-scope", f"This token lacks the {scope} scope.")
        files = self._files(uploads)
        if data["notify_requester"] and (data["internal"] or not ticket.mailbox):
            reason = (
                "an internal note is never emailed"
                if data["internal"]
                else "no mailbox is configured for this ticket's board"
            )
            raise invalid("notify_requester", f"Cannot email: {reason}.")
        header = [("Written by", principal.user_email)] if principal.user_email else None
        body = self._render(data["body"], data["body_format"], header)
        properties: dict[str, dict] = {API_PROPERTY: {"keyId": principal.key_id}}
        if data["internal"]:
            properties[INTERNAL_NOTE_PROPERTY] = {"internal": True}
        comment_id = self.jira.add_comment(ticket.key, body, properties)
        upload_missing(self.jira, ticket.key, files, [])
        if data["notify_requester"]:
            enqueue(
                "comment",
                ticket.key,
                ticket.mailbox,
                f"comment:{ticket.key}:{comment_id}",
                {"body": body, "author": principal.user_email or "Support", "attachments": []},
            )
        ticket.jira_updated_at = now()
        db.session.commit()
        for comment in self.jira.comments(ticket.key):
            if comment.id == comment_id:
                return comment
        raise Problem(503, "jira-unavailable", "Jira has not shown the new comment yet.")

    # -- transitions ----------------------------------------------------------------------

    def transitions(self, ticket: Ticket) -> list[dict]:
        return [transition_view(t) for t in self.jira.transitions(ticket.key)]

    def transition(self, ticket: Ticket, data: dict) -> None:
        available = self.jira.transitions(ticket.key)
        wanted_id, wanted_name = data.get("id"), data.get("name")
        chosen = next(
            (
                t
                for t in available
                if (
                    str(t.get("id")) == str(wanted_id)
                    if wanted_id
                    else _same_name(t.get("name"), wanted_name)
                )
            ),
            None,
        )
        if chosen is None:
            names = ", ".join(f"{t.get('name')} ({t.get('id')})" for t in available) or "none"
            raise invalid(
                "id" if data.get("id") else "name", f"Not allowed now; available: {names}."
            )
        fields = {"resolution": {"name": data["resolution"]}} if data.get("resolution") else None
        comment = (
            self._render(data["comment"], data["body_format"]) if data.get("comment") else None
        )
        self.jira.transition(ticket.key, str(chosen["id"]), fields=fields, comment_body=comment)
        self.refresh(ticket)


def _in_progress() -> Problem:
    return Problem(
        409,
        "conflict",
        "A request with this Idempotency-Key is in progress; retry in a minute.",
        headers={"Retry-After": "60"},
    )


def visible_comments(comments: list[JiraComment], principal: Principal) -> list[JiraComment]:
    """The comments ``principal`` may read: internal notes only with ``tickets:internal``."""
    if principal.allows(INTERNAL_NOTES):
        return list(comments)
    return [c for c in comments if c.public]


def comment_view(comment: JiraComment) -> dict:
    rendered = jira_to_email(comment.body)
    return {
        "id": comment.id,
        "author": {"email": comment.author_email, "name": comment.author_name},
        "created": comment.created,
        "public": comment.public,
        "body_text": rendered.text,
        "body_html": rendered.html,
    }


def transition_view(transition: dict) -> dict:
    """A transition as the API shows it (from ``JiraClient.transitions``)."""
    to = transition.get("to") or {}
    return {
        "id": str(transition.get("id")),
        "name": transition.get("name"),
        "to": {"name": to.get("name"), "category": to.get("category")},
        "required_fields": list(transition.get("required_fields") or []),
    }


def _same_name(a: str | None, b: str | None) -> bool:
    return (a or "").casefold() == (b or "").casefold()
