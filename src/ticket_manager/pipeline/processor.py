"""Process one ledger row: rules, then the ticket, then mark the email; never lose the row.

Every outcome is written to the row: a rejection with its rule and reason, a ticket key, or
a failure with the error and when to try again. A failure of one message never stops the
others, and the Jira key is committed the moment Jira returns it, so a crash afterwards can
only repeat the cheap, idempotent steps (attachments, marking), never the create.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ticket_manager.clock import as_utc
from ticket_manager.config import Settings
from ticket_manager.counters import count_processed, count_ticket_created
from ticket_manager.extensions import db
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import GraphError, GraphNotFoundError, GraphUnavailableError
from ticket_manager.graph.messages import FileAttachment, MailMessage
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import (
    JiraError,
    JiraNotFoundError,
    JiraUnavailableError,
)
from ticket_manager.models import LedgerMessage, MessageState, Ticket
from ticket_manager.pipeline import leases, ledger
from ticket_manager.pipeline.conversations import find_thread, participants_of
from ticket_manager.pipeline.jira_writes import create_issue, upload_missing
from ticket_manager.pipeline.outbox import enqueue
from ticket_manager.pipeline.rules import (
    LOOP_HEADER,
    RuleContext,
    first_rejection,
    sender_address,
)
from ticket_manager.pipeline.ticket_records import new_ticket
from ticket_manager.pipeline.tickets import (
    SOURCE_PROPERTY,
    TicketDraft,
    build_comment,
    build_ticket,
)

log = logging.getLogger("ticket_manager.pipeline")

MAX_BACKOFF = timedelta(hours=1)


class RetryLater(Exception):
    """The row is not ready (a recent interrupted create): look again at ``when``."""

    def __init__(self, delay: timedelta) -> None:
        super().__init__(f"retry in {delay}")
        self.delay = delay


@dataclass
class Outcome:
    """What happened to a row, for logs and command output."""

    state: MessageState | None
    ticket_key: str | None = None
    rule: str | None = None
    reason: str | None = None


class MessageProcessor:
    """Takes a ledger row from pending to rejected, ticket_created or failed."""

    def __init__(self, settings: Settings, graph: GraphClient, jira: JiraClient) -> None:
        self.settings = settings
        self.graph = graph
        self.jira = jira
        self._folder_ids: dict[str, str | None] = {}

    def process(
        self,
        row_id: int,
        message: MailMessage | None = None,
        *,
        force: bool = False,
        claimed: bool = False,
    ) -> Outcome:
        """Claim the row and take it as far as it goes; returns where it ended.

        ``claimed``: the caller already holds the row's claim (a batch claim of due rows).
        """
        if not claimed and not ledger.claim(row_id, force=force):
            return Outcome(state=None)
        try:
            return self._process_and_record(row_id, message)
        except SQLAlchemyError:
            # The database went away before the outcome was recorded: the claim is given
            # back as soon as it answers again, and the email is retried then.
            leases.strand(LedgerMessage, row_id, ledger.CLAIM_DURATION)
            raise

    def _process_and_record(self, row_id: int, message: MailMessage | None) -> Outcome:
        row = db.session.get(LedgerMessage, row_id)
        fields = {"mailbox": row.mailbox, "message_id": row.internet_message_id}
        try:
            outcome = self._process_claimed(row, message)
        except RetryLater as later:
            row.next_attempt_at = ledger.now() + later.delay
            ledger.release(row)
            db.session.commit()
            count_processed("deferred")
            return Outcome(state=row.state)
        except Exception as exc:  # one bad message must never stop the loop
            db.session.rollback()
            row = db.session.get(LedgerMessage, row_id)
            self._fail(row, exc)
            level = logging.WARNING if _is_transient(exc) else logging.ERROR
            log.log(level, "message failed", extra={**fields, "error": row.last_error})
            count_processed(MessageState.FAILED.value)
            return Outcome(state=row.state, ticket_key=row.ticket_key, reason=row.last_error)
        count_processed(outcome.state.value, outcome.rule)
        return outcome

    # -- the steps -------------------------------------------------------------------------

    def _process_claimed(self, row: LedgerMessage, message: MailMessage | None) -> Outcome:
        if message is None:
            message = self.graph.get_message(row.mailbox, row.graph_id)

        if row.folder == "sentitems":
            return self._staff_reply(row, message)
        follow_up_of = None
        if row.ticket_key is None:
            context = RuleContext(
                settings=self.settings,
                recent_from_sender=lambda sender: ledger.earlier_from_sender(
                    row.mailbox, sender, row.id
                ),
            )
            rejection = first_rejection(message, context, waived=row.rules_waived)
            if rejection is not None:
                return self._finish(row, MessageState.REJECTED, rejection.rule, rejection.reason)
            match = find_thread(message)
            if match is not None and not match.ticket.deleted_in_jira:
                return self._comment(row, message, match.ticket)
            follow_up_of = match.ticket.key if match else None
        else:
            ticket = _ticket(row.ticket_key)
            if ticket is not None and ticket.source_ledger_id != row.id:
                return self._comment(row, message, ticket)  # resuming a comment
        return self._create(row, message, follow_up_of)

    # -- a new ticket ----------------------------------------------------------------------

    def _create(self, row: LedgerMessage, message: MailMessage, follow_up_of: str | None):
        attachments = self._attachments(message)
        board = self.settings.board_for(row.mailbox)
        project_key = self.jira.project_key_for_board(board.name)
        draft = build_ticket(
            message,
            attachments,
            settings=self.settings,
            jira=self.jira,
            project_key=project_key,
            follow_up_of=follow_up_of,
        )
        fresh = False
        if row.ticket_key is None:
            row.ticket_key, fresh = self._create_once(row, draft)
            self._register_ticket(row, message, draft)
            db.session.commit()
            count_ticket_created("email", message.received_at)
            log.info(
                "ticket created",
                extra={
                    "mailbox": row.mailbox,
                    "message_id": row.internet_message_id,
                    "ticket": row.ticket_key,
                },
            )
        upload_missing(self.jira, row.ticket_key, draft.attachments, draft.watchers, fresh=fresh)
        self._mark_email(message, row.ticket_key)
        if self.settings.acknowledge:
            sender = message.from_ or message.sender
            enqueue(
                "acknowledgement",
                row.ticket_key,
                row.mailbox,
                f"acknowledgement:{row.ticket_key}",
                {"requester_name": sender.name if sender else ""},
            )
        return self._finish(row, MessageState.TICKET_CREATED)

    def _register_ticket(self, row: LedgerMessage, message: MailMessage, draft) -> None:
        if _ticket(row.ticket_key) is not None:
            return
        ticket = new_ticket(
            row.ticket_key,
            fields=draft.fields,
            board=self.settings.board_for(row.mailbox),
            settings=self.settings,
            requester=sender_address(message),
            mailbox=row.mailbox,
            source="email",
        )
        ticket.source_ledger_id = row.id
        ticket.conversation_id = message.conversation_id
        ticket.last_graph_id = message.id
        ticket.last_internet_message_id = message.internet_message_id
        ticket.set_watchers(w.email for w in draft.watchers if w.email)
        ticket.add_participants(participants_of(message, self.settings.mailboxes))
        db.session.add(ticket)

    # -- a follow-up -----------------------------------------------------------------------

    def _staff_reply(self, row: LedgerMessage, message: MailMessage) -> Outcome:
        """A reply staff sent from Outlook: a comment on its ticket, never a new ticket."""
        if row.ticket_key is None:
            if message.header(LOOP_HEADER) is not None:
                return self._finish(row, MessageState.REJECTED, "own-mailbox", "sent by us")
            match = find_thread(message)
            if match is None or match.ticket.deleted_in_jira:
                return self._finish(
                    row,
                    MessageState.REJECTED,
                    "not-a-follow-up",
                    "a sent email that continues no ticket",
                )
            ticket = match.ticket
        else:
            ticket = _ticket(row.ticket_key)
        return self._comment(row, message, ticket, sent_to_customer=True)

    def _comment(
        self,
        row: LedgerMessage,
        message: MailMessage,
        ticket: Ticket,
        *,
        sent_to_customer: bool = False,
    ) -> Outcome:
        """Add the follow-up as a comment, exactly once; a deleted ticket gets a new one."""
        attachments = self._attachments(message)
        draft = build_comment(
            message,
            attachments,
            settings=self.settings,
            jira=self.jira,
            known_participants=ticket.participant_set(),
            sent_to_customer=sent_to_customer,
        )
        key = ticket.key
        if row.ticket_key is None:
            found = None
            if row.jira_attempt_at is not None:
                found = self.jira.find_comment_with_property(
                    key, SOURCE_PROPERTY, draft.properties[SOURCE_PROPERTY]
                )
            if found is None:
                row.jira_attempt_at = ledger.now()
                db.session.commit()
                try:
                    self.jira.add_comment(key, draft.body, draft.properties)
                except JiraNotFoundError:
                    if sent_to_customer:
                        raise
                    ticket.deleted_in_jira = True
                    row.jira_attempt_at = None
                    db.session.commit()
                    log.warning("follow-up of a deleted ticket", extra={"ticket": key})
                    return self._create(row, message, follow_up_of=key)
            row.ticket_key = key
            ticket.add_participants(participants_of(message, self.settings.mailboxes))
            ticket.last_graph_id = message.id
            ticket.last_internet_message_id = message.internet_message_id
            db.session.commit()
            log.info(
                "comment added",
                extra={
                    "mailbox": row.mailbox,
                    "message_id": row.internet_message_id,
                    "ticket": key,
                },
            )
        upload_missing(self.jira, key, draft.attachments, draft.watchers)
        if not sent_to_customer:
            self._mark_email(message, key)
        return self._finish(row, MessageState.COMMENTED)

    def _attachments(self, message: MailMessage) -> list[FileAttachment]:
        # Exchange reports hasAttachments false when only inline images are attached.
        if not message.has_attachments and "cid:" not in message.body:
            return []
        return self.graph.list_attachments(
            message.mailbox, message.id, max_size=self.settings.max_attachment_size
        )

    def _create_once(self, row: LedgerMessage, draft: TicketDraft) -> tuple[str, bool]:
        """Create the issue, unless an interrupted earlier attempt already did.

        Returns the key and whether this call created it (rather than adopted it).
        """
        if row.jira_attempt_at is not None:
            waited = ledger.now() - as_utc(row.jira_attempt_at)
            delay = timedelta(seconds=self.settings.recovery_delay)
            if waited < delay:
                raise RetryLater(delay - waited)
            found = self.jira.find_issue_with_property(
                draft.project_key,
                as_utc(row.jira_attempt_at),
                SOURCE_PROPERTY,
                draft.properties[SOURCE_PROPERTY],
            )
            if found:
                log.warning(
                    "adopted a ticket created by an interrupted attempt",
                    extra={"message_id": row.internet_message_id, "ticket": found},
                )
                return found, False
        row.jira_attempt_at = ledger.now()
        db.session.commit()
        key = create_issue(self.jira, draft.fields, draft.properties, draft.optional_fields)
        return key, True

    def _mark_email(self, message: MailMessage, key: str) -> None:
        """Show the outcome in the mailbox; a failure here is logged, the ticket stands."""
        category = f"Ticket {key}"
        try:
            categories = [*[c for c in message.categories if c != category], category]
            is_read = True if self.settings.mark_as_read else None
            self.graph.mark_message(
                message.mailbox, message.id, categories=categories, is_read=is_read
            )
            folder = self.settings.processed_folder
            if folder:
                folder_id = self._folder_id(message.mailbox, folder)
                if folder_id:
                    self.graph.move_message(message.mailbox, message.id, folder_id)
        except GraphError as exc:
            log.warning("email not marked", extra={"ticket": key, "error": str(exc)})

    def _folder_id(self, mailbox: str, name: str) -> str | None:
        key = f"{mailbox.lower()}/{name}"
        if key not in self._folder_ids:
            self._folder_ids[key] = self.graph.find_folder_id(mailbox, name)
        return self._folder_ids[key]

    # -- outcomes --------------------------------------------------------------------------

    def _finish(
        self,
        row: LedgerMessage,
        state: MessageState,
        rule: str | None = None,
        reason: str | None = None,
    ) -> Outcome:
        row.state = state
        row.rule = rule
        row.reason = reason
        row.last_error = None
        row.next_attempt_at = None
        row.processed_at = ledger.now()
        ledger.release(row)
        db.session.commit()
        if state == MessageState.REJECTED:
            log.info(
                "message rejected",
                extra={"mailbox": row.mailbox, "message_id": row.internet_message_id, "rule": rule},
            )
        return Outcome(state=state, ticket_key=row.ticket_key, rule=rule, reason=reason)

    def _fail(self, row: LedgerMessage, exc: Exception) -> None:
        row.state = MessageState.FAILED
        row.last_error = _describe(exc)[:2000]
        retry_after = getattr(exc, "retry_after", None)
        backoff = timedelta(seconds=30 * 2 ** max(row.attempts - 1, 0))
        if retry_after:
            backoff = max(backoff, timedelta(seconds=retry_after))
        row.next_attempt_at = ledger.now() + min(backoff, MAX_BACKOFF)
        ledger.release(row)
        db.session.commit()


def _ticket(key: str | None) -> Ticket | None:
    if key is None:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.key == key))


def _is_transient(exc: Exception) -> bool:
    # OperationalError: the database dropped the connection (a restart) or was busy.
    return isinstance(exc, GraphUnavailableError | JiraUnavailableError | OperationalError)


def _describe(exc: Exception) -> str:
    if isinstance(exc, GraphNotFoundError):
        return f"the email is no longer in the mailbox: {exc}"
    if isinstance(exc, GraphError | JiraError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        # The driver's message only: the statement and its parameters may quote the email.
        cause = getattr(exc, "orig", None) or exc
        return f"database error ({cause.__class__.__name__}): {str(cause).strip()}"
    return f"{exc.__class__.__name__}: {exc}"
