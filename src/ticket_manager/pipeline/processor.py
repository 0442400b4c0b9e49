"""Process one ledger row: rules, then the ticket, then mark the email; never lose the row.

Every outcome is written to the row: a rejection with its rule and reason, a ticket key, or
a failure with the error and when to try again. A failure of one message never stops the
others, and the Jira key is committed the moment Jira returns it, so a crash afterwards can
only repeat the cheap, idempotent steps (attachments, marking), never the create.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ticket_manager.clock import as_utc
from ticket_manager.config import Board, Settings
from ticket_manager.content import to_wiki
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
from ticket_manager.jira.service_desk import ServiceDesk
from ticket_manager.models import LedgerMessage, MessageState, Ticket
from ticket_manager.pipeline import leases, ledger, ordering, participants
from ticket_manager.pipeline.conversations import ThreadMatch, find_thread, sent_by_us
from ticket_manager.pipeline.create_screens import fit_to_screen
from ticket_manager.pipeline.jira_writes import create_issue, upload_missing
from ticket_manager.pipeline.outbox import enqueue
from ticket_manager.pipeline.rules import (
    HOLD,
    LOOP_HEADER,
    RuleContext,
    first_rejection,
    sender_address,
)
from ticket_manager.pipeline.service_requests import (
    RaisedRequest,
    add_participants,
    raise_request,
)
from ticket_manager.pipeline.ticket_records import new_ticket
from ticket_manager.pipeline.tickets import (
    SOURCE_PROPERTY,
    CommentDraft,
    TicketDraft,
    build_comment,
    build_ticket,
)
from ticket_manager.routing import Route, apply_route

log = logging.getLogger("ticket_manager.pipeline")

MAX_BACKOFF = timedelta(hours=1)
# The 404 codes that mean the message itself is gone (others name the mailbox: see errors.py).
_ITEM_GONE = {"", "erroritemnotfound", "itemnotfound"}


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
        memory = getattr(self.graph, "memory", None)
        try:
            # The email's files count against the process's attachment memory until it is done.
            with memory.holding() if memory is not None else contextlib.nullcontext():
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
        if row.ticket_key is None and ordering.earlier_undecided(
            row, message, self.settings.max_attempts
        ):
            # A reply waits for its original's outcome (one ticket, then comments in order).
            raise RetryLater(ordering.WAIT_FOR_ORIGINAL)

        if row.folder == "sentitems":
            return self._staff_reply(row, message)
        follow_up_of = None
        if row.ticket_key is None:
            context = RuleContext(
                settings=self.settings,
                recent_from_sender=lambda sender: ledger.earlier_from_sender(
                    row.mailbox, sender, row.id
                ),
                sent_by_us=lambda message_id: sent_by_us(row.mailbox, message_id),
                own_addresses=frozenset(self._own_addresses()),
                recent_from_domain=lambda domain: ledger.earlier_this_hour(row.id, domain=domain),
                recent_in_mailbox=lambda: ledger.earlier_this_hour(row.id, mailbox=row.mailbox),
            )
            rejection = first_rejection(message, context, waived=row.rules_waived)
            if rejection is not None:
                held = rejection.action == HOLD
                state = MessageState.HELD if held else MessageState.REJECTED
                return self._finish(row, state, rejection.rule, rejection.reason)
            match = find_thread(message, is_participant=self._is_participant)
            if match is not None and match.participant and not match.ticket.deleted_in_jira:
                return self._comment(row, message, match.ticket)
            follow_up_of = match
        else:
            ticket = _ticket(row.ticket_key)
            if ticket is not None and ticket.source_ledger_id != row.id:
                return self._comment(row, message, ticket)  # resuming a comment
        return self._create(row, message, follow_up_of)

    def _is_participant(self, ticket: Ticket, address: str | None) -> bool:
        # Jira is asked (watchers) only about a live ticket and a sender not known yet.
        jira = None if ticket.deleted_in_jira else self.jira
        return participants.is_participant(ticket, address, jira)

    # -- a new ticket ----------------------------------------------------------------------

    def _create(self, row: LedgerMessage, message: MailMessage, follow_up_of: ThreadMatch | None):
        attachments = self._attachments(message)
        route = self._route(message)
        board = self._board(row.mailbox, route)
        project_key = self.jira.project_key_for_board(board.name)
        desk = self.jira.service_desks.for_project(project_key)
        draft = build_ticket(
            message,
            attachments,
            settings=self._limited_settings(),
            jira=self.jira,
            project_key=project_key,
            follow_up_of=_reference(follow_up_of),
        )
        if route is not None:
            draft.fields = apply_route(draft.fields, route, self.settings.label_categories)
            self._assign_from_route(draft, route)
        if desk is not None:
            draft.watchers = []  # a request's people are its customer and participants
        elif row.ticket_key is None:
            issue_type = draft.fields["issuetype"]["name"]
            screen = self.jira.create_screen(project_key, issue_type)
            if screen is not None:
                draft.fields = fit_to_screen(draft.fields, screen, self.settings.custom_fields)
        fresh = False
        raised: RaisedRequest | None = None
        if row.ticket_key is None:
            request_type = (route.request_type if route else None) or self.settings.request_type
            row.ticket_key, fresh, raised = self._create_once(
                row, draft, desk, message, request_type
            )
            self._register_ticket(row, message, draft, raised, board)
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
        upload_missing(
            self.jira,
            row.ticket_key,
            draft.attachments,
            draft.watchers,
            fresh=fresh,
            upload=self._request_upload(desk),
        )
        self._mark_email(message, row.ticket_key)
        if self.settings.acknowledge:
            sender = message.from_ or message.sender
            payload = {"requester_name": sender.name if sender else ""}
            if raised is not None and raised.portal_url:
                payload["portal_url"] = raised.portal_url
            enqueue(
                "acknowledgement",
                row.ticket_key,
                row.mailbox,
                f"acknowledgement:{row.ticket_key}",
                payload,
            )
        note = raised.note if raised is not None else None
        rule = f"route:{route.rule}" if route is not None else None
        return self._finish(row, MessageState.TICKET_CREATED, rule=rule, reason=note)

    def _request_upload(self, desk: ServiceDesk | None):
        """On a service desk, files go to the request as the customer's (temporary files
        then ``request/{key}/attachment``); elsewhere through the platform API."""
        if desk is None:
            return None
        return lambda key, files: self.jira.service_desks.attach(desk, key, files)

    def _route(self, message: MailMessage) -> Route | None:
        """The routing rule this email matches (ROUTING_RULES), if any."""
        rules = self.settings.routing_rules
        return rules.route(message) if rules is not None else None

    def _board(self, mailbox: str, route: Route | None) -> Board:
        """The route's board (a JIRA_BOARDS key or project:KEY), else the mailbox's."""
        if route is None or not route.board:
            return self.settings.board_for(mailbox)
        if route.board.lower().startswith("project:"):
            return Board(setting="ROUTING_RULES", name=route.board)
        return self.settings.board(route.board)

    def _assign_from_route(self, draft: TicketDraft, route: Route) -> None:
        """The route's assignee, when Jira knows the address (else left unassigned)."""
        if route.assignee:
            user = self.jira.find_user(route.assignee)
            if user is not None:
                draft.fields["assignee"] = self.jira.user_reference(user)

    def _register_ticket(
        self,
        row: LedgerMessage,
        message: MailMessage,
        draft,
        raised: RaisedRequest | None,
        board: Board,
    ) -> None:
        if _ticket(row.ticket_key) is not None:
            return
        ticket = new_ticket(
            row.ticket_key,
            fields=draft.fields,
            board=board,
            settings=self.settings,
            requester=sender_address(message),
            mailbox=row.mailbox,
            source="email",
        )
        ticket.source_ledger_id = row.id
        ticket.conversation_id = message.conversation_id
        ticket.last_graph_id = message.id
        ticket.last_internet_message_id = message.internet_message_id
        # Jira's reporter is the sender when they are a Jira user (refreshed from Jira later).
        ticket.reporter_email = sender_address(message) if "reporter" in draft.fields else None
        ticket.set_watchers(w.email for w in draft.watchers if w.email)
        participants.record_first_email(ticket, message, self._own_addresses())
        if raised is not None:
            # The request's participants in Jira count as the ticket's participants.
            for address in raised.participants:
                participants.add(ticket, address, participants.REQUEST_PARTICIPANT)
        db.session.add(ticket)

    # -- a follow-up -----------------------------------------------------------------------

    def _staff_reply(self, row: LedgerMessage, message: MailMessage) -> Outcome:
        """A reply staff sent from Outlook: a comment on its ticket, never a new ticket."""
        if row.ticket_key is None:
            if message.header(LOOP_HEADER) is not None or sent_by_us(
                row.mailbox, message.internet_message_id
            ):
                return self._finish(row, MessageState.REJECTED, "own-mailbox", "sent by us")
            match = find_thread(message, staff=True)
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
            settings=self._limited_settings(),
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
                    self._add_comment(ticket, message, draft, sent_to_customer)
                except JiraNotFoundError:
                    if sent_to_customer:
                        raise
                    ticket.deleted_in_jira = True
                    row.jira_attempt_at = None
                    db.session.commit()
                    log.warning("follow-up of a deleted ticket", extra={"ticket": key})
                    return self._create(row, message, ThreadMatch(ticket, "deleted"))
            row.ticket_key = key
            participants.record_follow_up(ticket, message, self._own_addresses())
            if not sent_to_customer:
                # Emails to the customer answer the customer's newest email, never our own.
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
        desk = self.jira.service_desks.for_project(ticket.project_key or _project_of(key))
        watchers = draft.watchers
        if desk is not None:
            watchers = []  # on a request, new Cc'd people become participants instead
            # Every Cc'd person (Jira keeps each participant once), not the requester.
            own = {m.lower() for m in self.settings.mailboxes} | {ticket.requester or ""}
            cc = [a for a in message.cc if a.address.lower() not in own]
            added = add_participants(self.jira, desk, key, cc)
            for address in added:
                participants.add(ticket, address, participants.REQUEST_PARTICIPANT)
            if added:
                db.session.commit()
        upload_missing(
            self.jira, key, draft.attachments, watchers, upload=self._request_upload(desk)
        )
        if not sent_to_customer:
            self._mark_email(message, key)
        return self._finish(row, MessageState.COMMENTED)

    def _add_comment(
        self, ticket: Ticket, message: MailMessage, draft: CommentDraft, sent_to_customer: bool
    ) -> None:
        """A platform comment, or on a service desk a request comment.

        On a request, what the requester or a participant writes (and staff's own replies
        to them) is public: the customer sees it in the portal. Mail from anyone else is
        an internal comment.
        """
        desk = self.jira.service_desks.for_project(ticket.project_key or _project_of(ticket.key))
        if desk is None or draft.content is None:
            self.jira.add_comment(ticket.key, draft.body, draft.properties)
            return
        sender = sender_address(message)
        people = ticket.participant_set() | ({ticket.requester} if ticket.requester else set())
        public = sent_to_customer or (sender is not None and sender.lower() in people)
        comment_id = self.jira.service_desks.add_comment(
            ticket.key, to_wiki(draft.content), public=public
        )
        self.jira.set_comment_property(
            comment_id, SOURCE_PROPERTY, draft.properties[SOURCE_PROPERTY]
        )

    def _attachments(self, message: MailMessage) -> list[FileAttachment]:
        # Exchange reports hasAttachments false when only inline images are attached. An HTML
        # body shows them through "cid:" references; a text body cannot, so the inline images
        # of a text email with several MIME parts are files to carry (else lost without a word).
        if not message.has_attachments:
            if message.body_type.lower() == "html" and "cid:" not in message.body:
                return []
            if message.body_type.lower() != "html" and not _may_carry_files(message):
                return []
        return self.graph.list_attachments(
            message.mailbox, message.id, max_size=self._limited_settings().max_attachment_size
        )

    def _limited_settings(self) -> Settings:
        """The settings with the upload limit lowered to the site's (``attachment/meta``):
        a file over it is named in the ticket instead of failing the email."""
        site = self.jira.attachment_limit()
        if site is None or site >= self.settings.max_attachment_size:
            return self.settings
        return replace(self.settings, max_attachment_size=site)

    def _create_once(
        self,
        row: LedgerMessage,
        draft: TicketDraft,
        desk: ServiceDesk | None,
        message: MailMessage,
        request_type: str,
    ) -> tuple[str, bool, RaisedRequest | None]:
        """Create the issue (a customer request on a service desk), unless an interrupted
        earlier attempt already did.

        Returns the key, whether this call created it (rather than adopted it), and the
        request made when it is a customer request.
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
                return found, False, None
        row.jira_attempt_at = ledger.now()
        db.session.commit()
        if desk is not None:
            raised = raise_request(
                self.jira,
                desk,
                draft,
                message,
                request_type_name=request_type,
                own_addresses=self.settings.mailboxes,
            )
            return raised.key, True, raised
        key = create_issue(self.jira, draft.fields, draft.properties, draft.optional_fields)
        return key, True, None

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

    def _own_addresses(self) -> tuple[str, ...]:
        """MAILBOX and every proxy address of the monitored mailboxes: all of them are us."""
        for mailbox in self.settings.mailboxes:
            try:
                self.graph.resolve_mailbox(mailbox)
            except GraphError:  # that mailbox's own round reports it; this email goes on
                continue
        return tuple(sorted(self.graph.own_addresses(self.settings.mailboxes)))

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
        if state in (MessageState.REJECTED, MessageState.HELD):
            log.info(
                f"message {state.value}",
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


def _reference(match: ThreadMatch | None) -> tuple[str, str] | None:
    """How the new ticket names the one the email referred to: deleted, or not the sender's."""
    if match is None:
        return None
    if match.ticket.deleted_in_jira:
        return match.ticket.key, "deleted"
    return match.ticket.key, "not-a-participant"


def _ticket(key: str | None) -> Ticket | None:
    if key is None:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.key == key))


def _project_of(key: str) -> str:
    return key.rsplit("-", 1)[0]


def _is_transient(exc: Exception) -> bool:
    # OperationalError: the database dropped the connection (a restart) or was busy.
    return isinstance(exc, GraphUnavailableError | JiraUnavailableError | OperationalError)


def _describe(exc: Exception) -> str:
    if isinstance(exc, GraphNotFoundError) and (exc.code or "").lower() in _ITEM_GONE:
        return f"the email is no longer in the mailbox: {exc}"
    if isinstance(exc, GraphError | JiraError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        # The driver's message only: the statement and its parameters may quote the email.
        cause = getattr(exc, "orig", None) or exc
        return f"database error ({cause.__class__.__name__}): {str(cause).strip()}"
    return f"{exc.__class__.__name__}: {exc}"


def _may_carry_files(message: MailMessage) -> bool:
    """Whether the email's MIME type allows parts besides its text (unknown: assume so)."""
    content_type = (message.header("Content-Type") or "multipart/").strip().lower()
    return content_type.startswith("multipart/") and not content_type.startswith(
        "multipart/alternative"
    )
