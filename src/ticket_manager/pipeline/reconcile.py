"""`check-for-missing-tickets`: find mail of the last days that never reached the ledger.

The mailbox is listed once (a few large pages, only ids and dates), the ledger is asked in
bulk which of those it knows, and only the missing ones are fetched and processed. Every
step goes through the same ledger and claims as the worker, so running this while
`handle-incoming-email` runs cannot create a second ticket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from flask import Flask

from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.errors import GraphNotFoundError
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline import ledger

# The outcome of the jobs a stop request left for the next run.
NOT_STARTED = "not started (left for the next run)"
LISTED_FIELDS = (
    "id",
    "internetMessageId",
    "receivedDateTime",
    "subject",
    "from",
    "conversationId",
)


@dataclass(frozen=True)
class ListedMessage:
    """A message as the mailbox listing shows it."""

    id: str
    key: str
    received: datetime
    sender: str
    subject: str
    conversation_id: str | None = None


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
                    conversation_id=item.get("conversationId"),
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
        self,
        address: str,
        report: MissingReport,
        *,
        progress: Callable[[int], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Counter[str]:
        """Record and process the missing messages, then the unfinished rows.

        They are processed PROCESSING_CONCURRENCY at a time, as the worker does: after a week
        of downtime the missing mail is thousands of emails, each waiting on Graph and Jira.
        Jobs are handed out one at a time, so when ``should_stop()`` turns true only those in
        flight are finished; the rest are counted as ``NOT_STARTED`` and found by the next run.
        """
        processor = self.services.processor()
        # One conversation's emails one after the other, oldest first (pipeline/ordering.py):
        # the original makes the ticket before its replies look for it.
        conversations: dict[str, list[ListedMessage]] = {}
        for item in sorted(report.missing, key=lambda m: m.received):
            conversations.setdefault(item.conversation_id or item.key, []).append(item)
        # (emails, job): a conversation's job processes all of its emails.
        jobs: list[tuple[int, Callable[[], list[str]]]] = [
            (len(items), partial(self._process_conversation, processor, address, items))
            for items in conversations.values()
        ]
        jobs += [(1, partial(self._process_row, processor, row_id)) for row_id in report.unfinished]
        outcomes: Counter[str] = Counter()

        def count(names: list[str]) -> None:
            for name in names:
                outcomes[name] += 1
                progress(1)

        if self.settings.processing_concurrency == 1 or len(jobs) < 2:
            for index, (_size, job) in enumerate(jobs):
                if should_stop():
                    outcomes[NOT_STARTED] += sum(size for size, _job in jobs[index:])
                    break
                count(job())
            return outcomes
        workers = min(self.settings.processing_concurrency, len(jobs))
        waiting = iter(jobs)
        started = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
            in_flight: set[Future[list[str]]] = set()
            while True:
                while len(in_flight) < workers and not should_stop():
                    entry = next(waiting, None)
                    if entry is None:
                        break
                    in_flight.add(pool.submit(self._in_app_context, entry[1]))
                    started += 1
                if not in_flight:
                    break
                done, in_flight = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    count(future.result())
        if started < len(jobs):
            outcomes[NOT_STARTED] += sum(size for size, _job in jobs[started:])
        return outcomes

    def _process_conversation(
        self, processor, address: str, items: list[ListedMessage]
    ) -> list[str]:
        names = []
        for item in items:
            names.append(self._process_missing(processor, address, item))
            db.session.remove()
        return names

    def _in_app_context(self, job: Callable[[], list[str]]) -> list[str]:
        with self.app.app_context():
            try:
                return job()
            finally:
                db.session.remove()

    def _process_missing(self, processor, address: str, item: ListedMessage) -> str:
        try:
            message = self.services.graph.get_message(address, item.id)
        except GraphNotFoundError:
            return "gone from the mailbox"
        ledger.record([message])
        row = ledger.find(address, ledger.message_key(message))
        db.session.rollback()
        return _outcome_name(processor.process(row.id, message))

    def _process_row(self, processor, row_id: int) -> list[str]:
        return [_outcome_name(processor.process(row_id))]


def _outcome_name(outcome) -> str:
    return outcome.state.value if outcome.state else "taken by another worker"
