"""The database tables: mailboxes, the ledger, tickets, outbound mail, API keys, workers."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false as sa_false

from ticket_manager.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class MessageState(enum.StrEnum):
    """Where a message stands in the pipeline."""

    PENDING = "pending"
    REJECTED = "rejected"
    TICKET_CREATED = "ticket_created"
    COMMENTED = "commented"
    FAILED = "failed"
    # Kept aside by an intake cap or a sender check: never lost, released by a person.
    HELD = "held"


class Mailbox(db.Model):
    """One monitored mailbox and where its synchronisation stands."""

    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    delta_link: Mapped[str | None] = mapped_column(Text)
    # Sent Items are followed too when staff replies are recorded as comments.
    sent_delta_link: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    # Set by a change notification: the worker runs a delta round at once.
    sync_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    subscription_id: Mapped[str | None] = mapped_column(String(128))
    subscription_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    subscription_client_state: Mapped[str | None] = mapped_column(String(128))
    # Why no subscription can be had (a delegated sign-in on a shared mailbox), said once, and
    # when to try again: hours later, not every round.
    subscription_error: Mapped[str | None] = mapped_column(Text)
    subscription_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why the mailbox cannot send (ErrorSendAsDenied): acknowledgements wait, one probe later.
    send_error: Mapped[str | None] = mapped_column(Text)
    send_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class LedgerMessage(db.Model):
    """Every message seen, recorded before anything is done with it: nothing is lost silently."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("mailbox", "internet_message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(320), index=True)
    internet_message_id: Mapped[str] = mapped_column(String(998))
    graph_id: Mapped[str | None] = mapped_column(String(512))
    # The folder it was found in: "inbox", or "sentitems" for a staff reply.
    folder: Mapped[str] = mapped_column(String(32), default="inbox", server_default="inbox")
    conversation_id: Mapped[str | None] = mapped_column(String(512), index=True)
    subject: Mapped[str | None] = mapped_column(String(512))
    sender: Mapped[str | None] = mapped_column(String(320))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[MessageState] = mapped_column(
        Enum(MessageState, name="message_state", values_callable=lambda e: [m.value for m in e]),
        default=MessageState.PENDING,
        index=True,
    )
    rule: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    # An administrator asked to process it despite its rejection: only the loop rule applies.
    rules_waived: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    ticket_key: Mapped[str | None] = mapped_column(String(64), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who is processing the row, until when: a crashed worker's claim simply expires.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set just before a Jira create: if the key was never recorded, look before creating again.
    jira_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class TokenCache(db.Model):
    """MSAL's token cache, encrypted, where every worker process can read it."""

    __tablename__ = "token_caches"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Ticket(db.Model):
    """A Jira issue this service manages (opened from an email or through the API).

    Jira stays the source of truth; the row is a copy refreshed whenever the service changes
    the issue and when Jira reports a change, so that the API reads and searches it quickly.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("created_by_key", "idempotency_key"),
        Index("ix_tickets_created_at_id", "created_at", "id"),
        Index("ix_tickets_jira_updated_at_id", "jira_updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    # The mailbox its email conversation runs through; None for an API ticket with no mailbox.
    mailbox: Mapped[str | None] = mapped_column(String(320), index=True)
    # "email" or "api": how it was opened.
    source: Mapped[str] = mapped_column(String(16), default="email", server_default="email")
    # The ledger row of the email that opened it.
    source_ledger_id: Mapped[int | None] = mapped_column(Integer)
    # Who asked (the sender of the first email, or the API key's person), lower-cased: kept
    # by the service, never overwritten by Jira's reporter (often the service account).
    requester: Mapped[str | None] = mapped_column(String(320), index=True)
    requester_name: Mapped[str | None] = mapped_column(String(255))
    # Jira's reporter, as Jira last said.
    reporter_email: Mapped[str | None] = mapped_column(String(320), index=True)
    summary: Mapped[str | None] = mapped_column(String(512))
    conversation_id: Mapped[str | None] = mapped_column(String(512), index=True)
    # The newest email of the thread in the mailbox: replies to the customer answer it.
    last_graph_id: Mapped[str | None] = mapped_column(String(512))
    last_internet_message_id: Mapped[str | None] = mapped_column(String(998))
    board: Mapped[str | None] = mapped_column(String(255), index=True)
    project_key: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(255), index=True)
    # Labels as Jira has them, space-separated (Jira labels contain no spaces).
    labels: Mapped[str] = mapped_column(Text, default="", server_default="")
    priority: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str | None] = mapped_column(String(128), index=True)
    # Jira's status category key: "new", "indeterminate" or "done".
    status_category: Mapped[str | None] = mapped_column(String(32))
    assignee_email: Mapped[str | None] = mapped_column(String(320), index=True)
    assignee_name: Mapped[str | None] = mapped_column(String(255))
    deleted_in_jira: Mapped[bool] = mapped_column(default=False)
    # The API key that created it and the request's Idempotency-Key: a retry finds it.
    created_by_key: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When Jira last changed the issue, as far as the service knows.
    jira_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    watchers: Mapped[list[TicketWatcher]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", lazy="selectin"
    )
    # Who may continue the ticket by email (pipeline/participants.py decides who they are).
    participants: Mapped[list[TicketParticipant]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", lazy="selectin"
    )

    def participant_set(self) -> set[str]:
        return {p.email for p in self.participants}

    def label_list(self) -> list[str]:
        return [label for label in (self.labels or "").split(" ") if label]

    def watcher_emails(self) -> list[str]:
        return sorted(w.email for w in self.watchers)

    def set_watchers(self, emails) -> None:
        wanted = {e.strip().lower() for e in emails if e and e.strip()}
        self.watchers = [w for w in self.watchers if w.email in wanted]
        present = {w.email for w in self.watchers}
        self.watchers.extend(TicketWatcher(email=e) for e in sorted(wanted - present))


class TicketWatcher(db.Model):
    """A person following a ticket, by email address: the API filters tickets by watcher."""

    __tablename__ = "ticket_watchers"
    __table_args__ = (UniqueConstraint("ticket_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    ticket: Mapped[Ticket] = relationship(back_populates="watchers")


class TicketParticipant(db.Model):
    """Someone who may continue a ticket by email, and how they became one.

    ``how``: ``requester``, ``first-email`` (To/Cc of the email that opened it),
    ``added`` (put in To/Cc by a participant), ``watcher`` (added in Jira), ``api``.
    """

    __tablename__ = "ticket_participants"
    __table_args__ = (UniqueConstraint("ticket_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    how: Mapped[str] = mapped_column(String(32))
    # Who put them in To/Cc (for ``added``).
    added_by: Mapped[str | None] = mapped_column(String(320))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ticket: Mapped[Ticket] = relationship(back_populates="participants")


class ApiKey(db.Model):
    """A key for the REST API. Only a digest of the secret is stored: the key is shown once."""

    __tablename__ = "api_keys"

    # The public part of the key (``tm_<id>_<secret>``): found by it, revoked by it.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(64))
    # Space-separated scopes: tickets:read, tickets:write, messages:read, messages:write, admin.
    scopes: Mapped[str] = mapped_column(Text)
    # A key bound to a person acts as that person (reporter of the tickets it creates).
    user_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboundState(enum.StrEnum):
    """Where an email the service sends stands."""

    PENDING = "pending"
    DRAFTED = "drafted"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class OutboundMessage(db.Model):
    """An email the service sends (acknowledgement, relayed comment, status change), once.

    ``dedupe_key`` is unique (``ack:SUP-1``, ``comment:SUP-1:10042``): whatever triggers a
    send twice, one row exists. The Graph draft is recorded before it is sent, so a crash
    between sending and recording is resolved by looking at the draft, not by sending again.
    """

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    ticket_key: Mapped[str] = mapped_column(String(64), index=True)
    mailbox: Mapped[str] = mapped_column(String(320))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[OutboundState] = mapped_column(
        Enum(OutboundState, name="outbound_state", values_callable=lambda e: [m.value for m in e]),
        default=OutboundState.PENDING,
        index=True,
    )
    draft_id: Mapped[str | None] = mapped_column(String(512))
    internet_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who is sending it, until when (the same kind of claim as the ledger's).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Cursor(db.Model):
    """A named position that must survive restarts (the Jira comment poller's watermark)."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Lease(db.Model):
    """Who owns a piece of work (one mailbox's sync, the Jira comment poller) and until when.

    The owner renews it every few seconds; one it stops renewing lapses and another worker
    takes it (pipeline/leases.py).
    """

    __tablename__ = "leases"

    # "mailbox:support@example.com", "jira-comments".
    name: Mapped[str] = mapped_column(String(400), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WorkerProcess(db.Model):
    """A running `handle-incoming-email` process and its last heartbeat: who is alive.

    The count of live workers sets each one's fair share of the mailboxes; a worker whose
    heartbeat stopped is dead, and its claims are released for the others.
    """

    __tablename__ = "workers"

    # host:pid:random, the same id its claims and leases carry.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
