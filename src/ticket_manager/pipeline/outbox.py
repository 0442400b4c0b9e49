"""Emails the service sends: acknowledgements, relayed Jira comments, status changes.

Every email is first a row of ``outbound_messages`` with a unique ``dedupe_key``, so the
webhook, the poller and a retry can all ask for the same email and one is sent. Sending is
two steps with the state recorded between them: create a reply draft (its Message-ID is
stored, so replies to it thread back to the ticket), then send it. After a crash between
the two, the draft tells whether it already went (``isDraft`` false): it is never sent twice.
Every email carries the loop marker header ``X-Ticket-Manager``, and
``X-Ticket-Manager-Outbox`` with the row's id.

A draft is never sent without the files it should carry: before each send, the files the
draft already has are listed and only the missing ones added. Graph calls that create
something are not repeated blindly after a lost answer: the draft is looked for by its
marker, the draft's files are listed, and only what is missing is made.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager.clock import now
from ticket_manager.config import Settings
from ticket_manager.content.outbound import jira_to_email
from ticket_manager.counters import count_comment_relayed
from ticket_manager.extensions import db
from ticket_manager.graph.client import MAX_UPLOADED_ATTACHMENT, Draft, GraphClient
from ticket_manager.graph.errors import GraphError, GraphNotFoundError, GraphUnavailableError
from ticket_manager.jira.client import JiraClient, is_on_site
from ticket_manager.jira.errors import JiraError
from ticket_manager.models import OutboundMessage, OutboundState, Ticket
from ticket_manager.pipeline import leases, participants, send_permission

log = logging.getLogger("ticket_manager.outbox")

LOOP_HEADER = "X-Ticket-Manager"
# Names the outbound row on its draft: a draft whose creation answer was lost is found by it.
DRAFT_MARKER_HEADER = "X-Ticket-Manager-Outbox"
CLAIM_DURATION = timedelta(minutes=5)
MAX_ATTEMPTS = 8
TEAM_NAME = "The support team"


def enqueue(kind: str, ticket_key: str, mailbox: str, dedupe_key: str, payload: dict) -> None:
    """Ask for an email to be sent once: a second request with the same key is ignored."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(OutboundMessage)
        .values(
            dedupe_key=dedupe_key,
            kind=kind,
            ticket_key=ticket_key,
            mailbox=mailbox.lower(),
            payload=json.dumps(payload),
            state=OutboundState.PENDING,
            attempts=0,
            created_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    db.session.commit()


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str
    content_type: str


class Templates:
    """Jinja2 templates: a user's folder (EMAIL_TEMPLATES_DIR) first, then the built-in ones."""

    def __init__(self, settings: Settings) -> None:
        loaders = [PackageLoader("ticket_manager", "templates/email")]
        if settings.templates_dir:
            loaders.insert(0, FileSystemLoader(str(Path(settings.templates_dir))))
        self.environment = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=True,
        )
        self.settings = settings

    def render(self, kind: str, context: dict) -> RenderedEmail:
        extension = "html" if self.settings.email_body_format == "html" else "txt"
        body = self.environment.get_template(f"{kind}.{extension}").render(**context)
        subject = f"RE: [{context['ticket_key']}] {context['summary']}"
        return RenderedEmail(subject, body, "html" if extension == "html" else "text")


class Outbox:
    """Sends what is due in ``outbound_messages``, each email exactly once."""

    def __init__(
        self,
        settings: Settings,
        graph: GraphClient,
        jira: JiraClient | None,
        app: Flask | None = None,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.jira = jira
        self.templates = Templates(settings)
        # With the app, emails are sent several at a time (Graph's per-mailbox cap still holds).
        self.app = app

    def send_due(self, mailboxes: list[str] | None = None, batch: int = 100) -> int:
        """Send every email whose time has come, a batch at a time; returns how many went.

        ``mailboxes`` limits it to the mailboxes this worker owns (default: all of them).
        """
        sent = 0
        after = 0
        while True:
            ids = self._claim_due(mailboxes, after, batch)
            if not ids:
                return sent
            sent += sum(1 for ok in self._send_all(ids) if ok)
            after = ids[-1]

    def _send_all(self, ids: list[int]) -> list[bool]:
        if self.app is None or self.settings.processing_concurrency == 1:
            results = []
            for n, row_id in enumerate(ids):
                try:
                    results.append(self.send(row_id, claimed=True))
                except SQLAlchemyError:
                    for untouched in ids[n + 1 :]:  # claimed, never started
                        leases.strand(OutboundMessage, untouched, CLAIM_DURATION)
                    raise
            return results

        def one(row_id: int) -> bool:
            with self.app.app_context():
                try:
                    return self.send(row_id, claimed=True)
                finally:
                    db.session.remove()

        workers = min(self.settings.processing_concurrency, len(ids))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
            return list(pool.map(one, ids))

    def _claim_due(self, mailboxes: list[str] | None, after: int, batch: int) -> list[int]:
        conditions = [
            OutboundMessage.id > after,
            OutboundMessage.state.in_(
                [OutboundState.PENDING, OutboundState.DRAFTED, OutboundState.FAILED]
            ),
            OutboundMessage.attempts < MAX_ATTEMPTS,
            or_(
                OutboundMessage.next_attempt_at.is_(None),
                OutboundMessage.next_attempt_at <= now(),
            ),
        ]
        if mailboxes is not None:
            conditions.append(OutboundMessage.mailbox.in_([m.lower() for m in mailboxes]))
        held = send_permission.held_mailboxes()
        if held:
            conditions.append(OutboundMessage.mailbox.not_in(held))
        return leases.claim_rows(OutboundMessage, and_(*conditions), CLAIM_DURATION, limit=batch)

    def send(self, row_id: int, *, claimed: bool = False) -> bool:
        """Claim and send one email; False when another worker has it or it failed.

        ``claimed``: the caller already claimed it (a batch claim of due emails).
        """
        if not claimed and not self._claim(row_id):
            return False
        try:
            return self._send_and_record(row_id)
        except SQLAlchemyError:
            # The database went away before the outcome was recorded: the claim is given
            # back as soon as it answers again (a draft already made is found then).
            leases.strand(OutboundMessage, row_id, CLAIM_DURATION)
            raise

    def _send_and_record(self, row_id: int) -> bool:
        row = db.session.get(OutboundMessage, row_id)
        until = send_permission.held_until(row.mailbox)
        if until is not None:  # another email of this mailbox was just refused Send As
            row.attempts = max(row.attempts - 1, 0)
            row.next_attempt_at = until
            leases.release_row(row)
            db.session.commit()
            return False
        try:
            self._send_claimed(row)
            if row.state == OutboundState.SENT:
                send_permission.sending_works(row.mailbox)
            return row.state == OutboundState.SENT
        except (GraphError, JiraError, SQLAlchemyError) as exc:
            db.session.rollback()
            row = db.session.get(OutboundMessage, row_id)
            if send_permission.is_send_as_denied(exc):
                self._wait_for_send_as(row, exc)
                return False
            row.state = OutboundState.FAILED if row.draft_id is None else OutboundState.DRAFTED
            row.last_error = str(exc)[:2000]
            wait = getattr(exc, "retry_after", None) or 30 * 2 ** max(row.attempts - 1, 0)
            row.next_attempt_at = now() + min(timedelta(seconds=wait), timedelta(hours=1))
            leases.release_row(row)
            db.session.commit()
            log.warning("email not sent", extra={"ticket": row.ticket_key, "error": row.last_error})
            return False

    def _wait_for_send_as(self, row: OutboundMessage, exc: GraphError) -> None:
        """Not a failure of this email: it waits, unspent, until the mailbox may send."""
        send_permission.hold_sending(row.mailbox, exc, self.settings.auth_flow)
        row.state = OutboundState.PENDING if row.draft_id is None else OutboundState.DRAFTED
        row.last_error = f"waiting for Send As on {row.mailbox}: {exc}"[:2000]
        row.attempts = max(row.attempts - 1, 0)
        row.next_attempt_at = now() + send_permission.SEND_AS_RETRY
        leases.release_row(row)
        db.session.commit()

    def _claim(self, row_id: int) -> bool:
        unsent = OutboundMessage.state.not_in([OutboundState.SENT, OutboundState.SKIPPED])
        condition = and_(OutboundMessage.id == row_id, unsent)
        return bool(leases.claim_rows(OutboundMessage, condition, CLAIM_DURATION))

    def _send_claimed(self, row: OutboundMessage) -> None:
        ticket = db.session.scalar(select(Ticket).where(Ticket.key == row.ticket_key))
        if ticket is None or not ticket.last_graph_id:
            self._finish(row, OutboundState.SKIPPED, "no email thread for this ticket")
            return
        payload = json.loads(row.payload or "{}")
        attached, named = self._choose_files(payload)
        if row.draft_id is not None:
            still_draft = self.graph.is_draft(row.mailbox, row.draft_id)
            if still_draft is False or still_draft is None:
                # Sent before the crash (or removed by a person): never send it again.
                self._finish(row, OutboundState.SENT)
                return
        else:
            draft_body = {
                **self._draft_body(row, ticket, payload, named),
                **self._recipients(row, ticket),
            }
            draft = self._make_draft(row, ticket, draft_body)
            row.draft_id = draft.id
            row.internet_message_id = draft.internet_message_id
            row.state = OutboundState.DRAFTED
            db.session.commit()
        # Before every send, not only the first: a draft never goes without its files.
        self._attach_files(row, attached)
        self.graph.send_draft(row.mailbox, row.draft_id)
        self._finish(row, OutboundState.SENT)
        if row.kind == "comment":
            count_comment_relayed()
        log.info("email sent", extra={"ticket": row.ticket_key, "state": row.kind})

    def _recipients(self, row: OutboundMessage, ticket: Ticket) -> dict:
        """To the requester, Cc the other participants (never a monitored mailbox).

        An acknowledgement goes to the requester alone unless EMAIL_ACKNOWLEDGE_ALL.
        """
        to, cc = participants.recipients(ticket, self.graph.own_addresses(self.settings.mailboxes))
        if row.kind == "acknowledgement" and not self.settings.acknowledge_all:
            cc = []
        return {"toRecipients": to, "ccRecipients": cc}

    def _make_draft(self, row: OutboundMessage, ticket: Ticket, draft_body: dict) -> Draft:
        """Create the reply draft once: a create whose answer was lost is found, not repeated.

        Threaded to the ticket's conversation; the recipients are ours (``draft_body``), never
        whoever wrote the email it answers.
        """
        marker = _marker(draft_body)
        if row.attempts > 1:
            # An earlier attempt may have made it and died before recording it.
            found = self.graph.find_draft(row.mailbox, DRAFT_MARKER_HEADER, marker)
            if found is not None:
                return found
        try:
            try:
                return self.graph.create_reply_draft(
                    row.mailbox, ticket.last_graph_id, reply_all=False, message=draft_body
                )
            except GraphNotFoundError:
                # The email of the thread is gone from the mailbox: a new email instead.
                return self.graph.create_draft(row.mailbox, draft_body)
        except GraphUnavailableError:
            found = self.graph.find_draft(row.mailbox, DRAFT_MARKER_HEADER, marker)
            if found is None:
                raise
            log.info("draft found after a lost answer", extra={"ticket": row.ticket_key})
            return found

    def _draft_body(
        self, row: OutboundMessage, ticket: Ticket, payload: dict, named: list[dict]
    ) -> dict:
        link = (
            f"{self.settings.ticket_client_app.rstrip('/')}/{ticket.key}"
            if (self.settings.ticket_client_app)
            else None
        )
        context = {
            "ticket_key": ticket.key,
            "summary": ticket.summary or "",
            "link": link,
            "requester_name": payload.get("requester_name") or "",
            "team_name": TEAM_NAME,
            "status": payload.get("status") or "",
            "author": payload.get("author") or "Support",
            # Files of the comment that are not attached (too large for email): named instead.
            "files_not_attached": [f.get("filename") or "" for f in named],
            # A JSM customer request's page in the customer portal (``_links.web``).
            "portal_link": payload.get("portal_url") or None,
        }
        if row.kind == "comment":
            rendered = jira_to_email(payload.get("body") or "")
            context["comment_html"] = Markup(rendered.html)  # noqa: S704 - sanitised by nh3
            context["comment_text"] = rendered.text
        email = self.templates.render(row.kind, context)
        return {
            "subject": email.subject,
            "body": {"contentType": email.content_type, "content": email.body},
            "internetMessageHeaders": [
                {"name": LOOP_HEADER, "value": f"{row.kind}; ticket={ticket.key}"},
                {"name": DRAFT_MARKER_HEADER, "value": str(row.id)},
            ],
        }

    def _choose_files(self, payload: dict) -> tuple[list[dict], list[dict]]:
        """The comment's files to attach, and those only named (too large, or no Jira client).

        Each file and all of them together stay within EMAIL_MAX_ATTACHMENT_SIZE (and Graph's
        150 MB), so that the email fits Exchange's message size limit.
        """
        limit = min(self.settings.email_max_attachment_size, MAX_UPLOADED_ATTACHMENT)
        attached: list[dict] = []
        named: list[dict] = []
        total = 0
        for file in payload.get("attachments") or []:
            size = int(file.get("size") or 0)
            foreign = not is_on_site(file.get("content"), self.settings.atlassian_url)
            if self.jira is None or foreign or total + size > limit:
                named.append(file)
            else:
                attached.append(file)
                total += size
        return attached, named

    def _attach_files(self, row: OutboundMessage, files: list[dict]) -> None:
        """Add to the draft each file it does not carry yet; any failure keeps it unsent."""
        if not files:
            return
        present = Counter(name for name, _size in self.graph.attachment_names(*_draft(row)))
        limit = min(self.settings.email_max_attachment_size, MAX_UPLOADED_ATTACHMENT)
        for file in files:
            name = file.get("filename") or "attachment"
            if present[name] > 0:
                present[name] -= 1
                continue
            content = self.jira.download(file["content"], limit)
            if content is None:
                raise JiraError(f"{name} is larger in Jira than its declared size", status=None)
            try:
                self.graph.add_attachment(
                    row.mailbox,
                    row.draft_id,
                    name,
                    file.get("mimeType") or "application/octet-stream",
                    content,
                )
            except GraphUnavailableError:
                # Graph may have added it before the answer was lost: look before retrying.
                if name not in {n for n, _size in self.graph.attachment_names(*_draft(row))}:
                    raise

    def _finish(self, row: OutboundMessage, state: OutboundState, reason: str | None = None):
        row.state = state
        row.last_error = reason
        leases.release_row(row)
        row.next_attempt_at = None
        if state == OutboundState.SENT:
            row.sent_at = now()
        db.session.commit()


def _draft(row: OutboundMessage) -> tuple[str, str]:
    return row.mailbox, row.draft_id


def _marker(draft_body: dict) -> str:
    """The value that names the outbound row on its draft: how a lost draft is found."""
    return next(
        h["value"] for h in draft_body["internetMessageHeaders"] if h["name"] == DRAFT_MARKER_HEADER
    )
