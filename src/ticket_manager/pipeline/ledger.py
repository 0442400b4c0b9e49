"""The ledger: every message is recorded before anything is done with it, then claimed.

Recording is an insert that ignores rows already there (mailbox and internetMessageId are
unique), so a message delivered twice, or seen by the delta loop and by reconciliation at
once, is one row. A row is processed only by whoever claims it (see leases.py): one row by
id, or a batch of due rows at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ticket_manager.clock import now
from ticket_manager.extensions import db
from ticket_manager.graph.messages import MailMessage
from ticket_manager.models import LedgerMessage, Mailbox, MessageState
from ticket_manager.pipeline import leases

CLAIM_DURATION = timedelta(minutes=5)
# Held mail is final too, until a person releases it (``requeue``).
FINAL_STATES = (
    MessageState.REJECTED,
    MessageState.TICKET_CREATED,
    MessageState.COMMENTED,
    MessageState.HELD,
)
# Mail that counts against the hourly intake caps: what was neither refused nor held.
NOT_COUNTED = (MessageState.REJECTED, MessageState.HELD)


def message_key(message: MailMessage) -> str:
    """The ledger key: the internet Message-ID, or the Graph id for the rare mail without one."""
    return message.internet_message_id or f"<graph:{message.id}>"


def record(messages: Iterable[MailMessage], folder: str = "inbox") -> None:
    """Insert a pending row for each message not yet in the ledger (one statement)."""
    rows = [
        {
            "mailbox": m.mailbox.lower(),
            "folder": folder,
            "internet_message_id": message_key(m)[:998],
            "graph_id": m.id,
            "conversation_id": m.conversation_id,
            "subject": (m.subject or "")[:512],
            "sender": (m.from_.address if m.from_ else None),
            "received_at": m.received_at,
            "state": MessageState.PENDING,
            "attempts": 0,
            "created_at": now(),
            "updated_at": now(),
        }
        for m in messages
    ]
    if not rows:
        return
    dialect = db.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(LedgerMessage).on_conflict_do_nothing(
        index_elements=["mailbox", "internet_message_id"]
    )
    db.session.execute(statement, rows)
    db.session.commit()


def known_keys(mailbox: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` the ledger already holds for ``mailbox`` (chunked IN queries)."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(
            db.session.scalars(
                select(LedgerMessage.internet_message_id).where(
                    LedgerMessage.mailbox == mailbox.lower(),
                    LedgerMessage.internet_message_id.in_(chunk),
                )
            )
        )
    db.session.rollback()
    return found


def find(mailbox: str, key: str) -> LedgerMessage | None:
    return db.session.scalar(
        select(LedgerMessage).where(
            LedgerMessage.mailbox == mailbox.lower(), LedgerMessage.internet_message_id == key
        )
    )


def claim(row_id: int, *, force: bool = False) -> bool:
    """Take a row for processing (counting the attempt); False if final, taken, or not due."""
    conditions = [LedgerMessage.id == row_id, LedgerMessage.state.not_in(FINAL_STATES)]
    if not force:
        conditions.append(_due())
    return bool(leases.claim_rows(LedgerMessage, and_(*conditions), CLAIM_DURATION))


def claim_new(mailbox: str, row_ids: list[int]) -> list[int]:
    """Claim the rows just recorded from a delta page that are still to be decided."""
    if not row_ids:
        return []
    return leases.claim_rows(
        LedgerMessage,
        and_(
            LedgerMessage.mailbox == mailbox.lower(),
            LedgerMessage.id.in_(row_ids),
            LedgerMessage.state.not_in(FINAL_STATES),
            _due(),
        ),
        CLAIM_DURATION,
    )


def claim_due(mailbox: str, max_attempts: int, limit: int = 200) -> list[int]:
    """Claim pending rows and failed rows whose retry time has come, oldest first."""
    return leases.claim_rows(
        LedgerMessage,
        and_(
            LedgerMessage.mailbox == mailbox.lower(),
            or_(
                LedgerMessage.state == MessageState.PENDING,
                and_(
                    LedgerMessage.state == MessageState.FAILED,
                    LedgerMessage.attempts < max_attempts,
                ),
            ),
            _due(),
        ),
        CLAIM_DURATION,
        limit=limit,
    )


def unclaim(row_ids: list[int]) -> None:
    """Give back claimed rows that were never started (the worker is stopping)."""
    leases.unclaim_rows(LedgerMessage, row_ids)


def _due():
    moment = now()
    return or_(LedgerMessage.next_attempt_at.is_(None), LedgerMessage.next_attempt_at <= moment)


def release(row: LedgerMessage) -> None:
    leases.release_row(row)


def earlier_from_sender(mailbox: str, sender: str, row_id: int) -> int:
    """Mail from ``sender`` recorded before this row in 24 hours and not rejected.

    Counting by ledger order, not by finished tickets, keeps the mail-storm cap exact when
    several messages of one sender are processed at the same time.
    """
    return (
        db.session.query(LedgerMessage)
        .filter(
            LedgerMessage.mailbox == mailbox.lower(),
            func.lower(LedgerMessage.sender) == sender.lower(),
            LedgerMessage.id < row_id,
            # Forged mail that was refused or held does not lock the real sender out.
            LedgerMessage.state.not_in(NOT_COUNTED),
            LedgerMessage.created_at >= now() - timedelta(days=1),
        )
        .count()
    )


def earlier_this_hour(row_id: int, *, mailbox: str | None = None, domain: str | None = None) -> int:
    """Mail recorded before this row in the last hour, in ``mailbox`` or from ``domain``.

    Refused and held mail does not count, so a flood that is held does not keep the cap shut
    for the mail after it.
    """
    query = db.session.query(LedgerMessage).filter(
        LedgerMessage.id < row_id,
        LedgerMessage.state.not_in(NOT_COUNTED),
        LedgerMessage.folder != "sentitems",
        LedgerMessage.created_at >= now() - timedelta(hours=1),
    )
    if mailbox is not None:
        query = query.filter(LedgerMessage.mailbox == mailbox.lower())
    if domain is not None:
        escaped = domain.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.filter(func.lower(LedgerMessage.sender).like(f"%@{escaped}", escape="\\"))
    return query.count()


def requeue(row: LedgerMessage, *, waive_rules: bool = False) -> None:
    """Put a failed message (or, waiving its rules, a rejected one) back in the queue now.

    The worker takes it on its next round; its mailbox is asked to sync at once.
    """
    row.state = MessageState.PENDING
    row.attempts = 0
    row.next_attempt_at = None
    row.last_error = None
    row.claimed_by = None
    row.claimed_until = None
    if waive_rules:
        row.rules_waived = True
        row.rule = None
        row.reason = None
    mailbox = db.session.scalar(select(Mailbox).where(Mailbox.address == row.mailbox))
    if mailbox is not None:
        mailbox.sync_requested_at = now()
    db.session.commit()
