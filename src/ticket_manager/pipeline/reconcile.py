"""`check-for-missing-tickets`: find mail of the last days that never reached the ledger.

The mailbox is listed once (a few large pages, only ids and dates), the ledger is asked in
bulk which of those it knows, and only the missing ones are fetched and processed. Every
step goes through the same ledger and claims as the worker, so running this while
`handle-incoming-email` runs cannot create a second ticket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask

from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.errors import GraphNotFoundError
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline import ledger

LISTED_FIELDS = ("id", "internetMessageId", "receivedDateTime", "subject", "from")


@dataclass(frozen=True)
class ListedMessage:
    """A message as the mailbox listing shows it."""

    id: str
    key: str
    received: datetime
    sender: str
    subject: str


@dataclass
class MissingReport:
    """What the mailbox holds that the ledger does not, or did not finish."""

    listed: int = 0
    missing: list[ListedMessage] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)


class Reconciler:
    """Compares a mailbox with the ledger and processes the difference."""

    def __init__(self, app: Flask, settings: Settings, services) -> None:
        self.app = app
        self.settings = settings
        self.services = services

    def find_missing(self, address: str, window: timedelta) -> MissingReport:
        since = ledger.now() - window
        listed: list[ListedMessage] = []
        for item in self.services.graph.list_messages(
            address, received_since=since, fields=LISTED_FIELDS
        ):
            sender = ((item.get("from") or {}).get("emailAddress") or {}).get("address", "?")
            listed.append(
                ListedMessage(
                    id=item["id"],
                    key=item.get("internetMessageId") or f"<graph:{item['id']}>",
                    received=datetime.fromisoformat(item["receivedDateTime"]),
                    sender=sender,
                    subject=item.get("subject") or "(no subject)",
                )
            )
        known = ledger.known_keys(address, [m.key for m in listed])
        unfinished = [
            row_id
            for (row_id,) in db.session.query(LedgerMessage.id).filter(
                LedgerMessage.mailbox == address.lower(),
                LedgerMessage.state == MessageState.PENDING,
                LedgerMessage.received_at >= since,
            )
        ]
        db.session.rollback()
        return MissingReport(
            listed=len(listed),
            missing=[m for m in listed if m.key not in known],
            unfinished=unfinished,
        )

    def process(
        self, address: str, report: MissingReport, *, progress: Callable[[int], None]
    ) -> Counter[str]:
        """Record and process the missing messages, then the unfinished rows."""
        processor = self.services.processor()
        outcomes: Counter[str] = Counter()
        for item in report.missing:
            try:
                message = self.services.graph.get_message(address, item.id)
            except GraphNotFoundError:
                outcomes["gone from the mailbox"] += 1
                progress(1)
                continue
            ledger.record([message])
            row = ledger.find(address, ledger.message_key(message))
            db.session.rollback()
            outcome = processor.process(row.id, message)
            outcomes[outcome.state.value if outcome.state else "taken by another worker"] += 1
            progress(1)
        for row_id in report.unfinished:
            outcome = processor.process(row_id)
            outcomes[outcome.state.value if outcome.state else "taken by another worker"] += 1
            progress(1)
        return outcomes
