"""Order within a conversation: a reply is decided after its original, never beside it.

Emails of one conversation (the same Graph ``conversationId``, or linked by References /
In-Reply-To) are processed one after the other in the order they were received, so the
original makes the ticket and the replies become its comments, in order. Unrelated emails
still run side by side. Two guards do it:

- :func:`chains` splits a batch of ledger rows into such chains (the sync runs each chain
  on one thread, the chains in parallel);
- :func:`earlier_undecided` tells the processor that an earlier email of the same
  conversation (in another batch, or failed and waiting for its retry) has no outcome yet:
  the reply then waits for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from ticket_manager.clock import as_utc
from ticket_manager.extensions import db
from ticket_manager.graph.messages import MailMessage
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline.conversations import referenced_ids
from ticket_manager.pipeline.ledger import FINAL_STATES

# How long a reply waits before it looks again whether its original has an outcome.
WAIT_FOR_ORIGINAL = timedelta(seconds=5)


def chains(row_ids: list[int], messages: dict[int, MailMessage | None]) -> list[list[int]]:
    """The rows grouped by conversation and reference chain, each group in received order."""
    if not row_ids:
        return []
    rows = db.session.execute(
        select(
            LedgerMessage.id,
            LedgerMessage.conversation_id,
            LedgerMessage.internet_message_id,
            LedgerMessage.received_at,
        ).where(LedgerMessage.id.in_(row_ids))
    ).all()
    db.session.rollback()
    parent = {row.id: row.id for row in rows}

    def root(row_id: int) -> int:
        while parent[row_id] != row_id:
            parent[row_id] = parent[parent[row_id]]
            row_id = parent[row_id]
        return row_id

    def join(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    by_conversation: dict[str, int] = {}
    by_message_id = {row.internet_message_id: row.id for row in rows}
    for row in rows:
        if row.conversation_id:
            join(row.id, by_conversation.setdefault(row.conversation_id, row.id))
        message = messages.get(row.id)
        for named in referenced_ids(message) if message is not None else []:
            if named in by_message_id:
                join(row.id, by_message_id[named])
    order = {row.id: (_sortable(row.received_at), row.id) for row in rows}
    groups: dict[int, list[int]] = {}
    for row in rows:
        groups.setdefault(root(row.id), []).append(row.id)
    ordered = [sorted(group, key=order.__getitem__) for group in groups.values()]
    return sorted(ordered, key=lambda group: order[group[0]])


def earlier_undecided(row: LedgerMessage, message: MailMessage, max_attempts: int) -> bool:
    """Is an earlier email of this conversation (or one it names) still without an outcome?

    Only emails that will still be processed count: one that failed for good does not hold
    its replies back forever.
    """
    linked = []
    if row.conversation_id:
        linked.append(LedgerMessage.conversation_id == row.conversation_id)
    named = referenced_ids(message)
    if named:
        linked.append(LedgerMessage.internet_message_id.in_(named))
    if not linked:
        return False
    earlier = [LedgerMessage.id < row.id]
    if row.received_at is not None:
        earlier = [
            or_(
                LedgerMessage.received_at < row.received_at,
                and_(LedgerMessage.received_at == row.received_at, LedgerMessage.id < row.id),
            )
        ]
    found = db.session.scalar(
        select(LedgerMessage.id)
        .where(
            LedgerMessage.mailbox == row.mailbox,
            LedgerMessage.id != row.id,
            # Staff replies and our own mail in Sent Items never hold back the inbox.
            LedgerMessage.folder == "inbox",
            LedgerMessage.state.not_in(FINAL_STATES),
            or_(LedgerMessage.state != MessageState.FAILED, LedgerMessage.attempts < max_attempts),
            or_(*linked),
            *earlier,
        )
        .limit(1)
    )
    return found is not None


def _sortable(moment: datetime | None) -> datetime:
    return as_utc(moment) if moment is not None else datetime.min.replace(tzinfo=UTC)
