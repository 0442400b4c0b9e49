"""Mail flow over time, from the ledger: how the mail that arrived in each period ended.

Rows are grouped by the hour they were recorded (in SQL, so a month of mail is a few hundred
rows to read), then folded into the period's bucket size here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ticket_manager.clock import now
from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage, MessageState

# period name → (length, bucket size)
PERIODS = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
OUTCOMES = {
    MessageState.TICKET_CREATED: "created",
    MessageState.COMMENTED: "commented",
    MessageState.REJECTED: "rejected",
    MessageState.FAILED: "failed",
    MessageState.PENDING: "pending",
    MessageState.HELD: "held",
}


@dataclass
class Flow:
    period: str
    bucket_seconds: int
    buckets: list[dict]
    totals: dict[str, int]
    rejected_by_rule: dict[str, int]


def _hour_of_arrival():
    if db.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", LedgerMessage.created_at), "YYYY-MM-DD HH24")
    return func.substr(LedgerMessage.created_at, 1, 13)  # SQLite stores UTC "YYYY-MM-DD HH:..."


def mail_flow(period: str, mailbox: str | None = None) -> Flow:
    length, size = PERIODS[period]
    moment = now()
    end = _floor(moment, size) + size
    start = end - size * (length // size)
    hour = _hour_of_arrival()
    query = (
        select(hour, LedgerMessage.state, LedgerMessage.rule, func.count())
        .where(LedgerMessage.created_at >= start)
        .group_by(hour, LedgerMessage.state, LedgerMessage.rule)
    )
    if mailbox:
        query = query.where(LedgerMessage.mailbox == mailbox.lower())
    counts: dict[datetime, Counter] = {}
    totals: Counter = Counter()
    rules: Counter = Counter()
    for hour_key, state, rule, count in db.session.execute(query):
        arrived = datetime.strptime(str(hour_key), "%Y-%m-%d %H").replace(tzinfo=moment.tzinfo)
        bucket = _floor(arrived, size)
        outcome = OUTCOMES[MessageState(state)]
        counts.setdefault(bucket, Counter())[outcome] += count
        totals[outcome] += count
        if outcome == "rejected" and rule:
            rules[rule] += count
    db.session.rollback()
    buckets = []
    cursor = start
    while cursor < end:
        found = counts.get(cursor, Counter())
        buckets.append({"start": cursor, **{name: found[name] for name in OUTCOMES.values()}})
        cursor += size
    return Flow(
        period=period,
        bucket_seconds=int(size.total_seconds()),
        buckets=buckets,
        totals={name: totals[name] for name in OUTCOMES.values()},
        rejected_by_rule=dict(rules.most_common()),
    )


def _floor(moment: datetime, size: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return epoch + ((moment - epoch) // size) * size
