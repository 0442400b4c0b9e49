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
        jobs: list[Callable[[], str]] = [
            partial(self._process_missing, processor, address, item) for item in report.missing
        ]
        jobs += [partial(self._process_row, processor, row_id) for row_id in report.unfinished]
        outcomes: Counter[str] = Counter()
        if self.settings.processing_concurrency == 1 or len(jobs) < 2:
            for index, job in enumerate(jobs):
                if should_stop():
                    outcomes[NOT_STARTED] += len(jobs) - index
                    break
                outcomes[job()] += 1
                progress(1)
            return outcomes
        workers = min(self.settings.processing_concurrency, len(jobs))
        waiting = iter(jobs)
        started = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
            in_flight: set[Future[str]] = set()
            while True:
                while len(in_flight) < workers and not should_stop():
                    job = next(waiting, None)
                    if job is None:
                        break
                    in_flight.add(pool.submit(self._in_app_context, job))
                    started += 1
                if not in_flight:
                    break
                done, in_flight = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    outcomes[future.result()] += 1
                    progress(1)
        if started < len(jobs):
            outcomes[NOT_STARTED] += len(jobs) - started
        return outcomes

    def _in_app_context(self, job: Callable[[], str]) -> str:
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

    def _process_row(self, processor, row_id: int) -> str:
        return _outcome_name(processor.process(row_id))


def _outcome_name(outcome) -> str:
    return outcome.state.value if outcome.state else "taken by another worker"
