"""Keep one mailbox's Inbox in sync with a Graph delta query and feed the processor.

A round walks the delta pages from the stored delta link; each page's messages are recorded
in the ledger, then processed (several at a time, within Graph's per-mailbox limit). The new
delta link is stored only after the whole round is recorded, so a crash replays the round
and the ledger makes the replay harmless. Rows left pending or failed earlier are retried at
the end of the round.

Emails of one conversation are processed one after the other, in received order
(pipeline/ordering.py); unrelated ones side by side. The rows of a page, and the retries,
are claimed in one batch (ledger.claim_new, ledger.claim_due) before they go to the pool; a
row the worker no longer gets to, because it is stopping or lost the mailbox, is given back
unstarted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import DeltaTokenExpiredError
from ticket_manager.graph.messages import MailMessage
from ticket_manager.models import LedgerMessage, Mailbox, MessageState
from ticket_manager.pipeline import leases, ledger, ordering
from ticket_manager.pipeline.processor import MessageProcessor, Outcome

log = logging.getLogger("ticket_manager.sync")

DELTA_PAGE_SIZE = 50
# Pages of messages waiting to be processed before the next page is fetched: enough to keep
# every processing thread busy, few enough that a first sync of a mailbox with a large
# backlog holds a few pages in memory, not the whole backlog.
IN_FLIGHT_PAGES = 2
SENT_ITEMS_LOOKBACK = timedelta(days=1)


@dataclass
class RoundResult:
    """What one delta round saw and did."""

    seen: int = 0
    outcomes: list[Outcome] | None = None
    resynced: bool = False

    def count(self, state: MessageState) -> int:
        return sum(1 for o in self.outcomes or [] if o.state == state)


def mailbox_state(address: str) -> Mailbox:
    """The mailbox's sync row, created on first use."""
    row = db.session.scalar(select(Mailbox).where(Mailbox.address == address.lower()))
    if row is None:
        row = Mailbox(address=address.lower())
        db.session.add(row)
        db.session.commit()
    return row


class MailboxSync:
    """Runs delta rounds for mailboxes and hands each new message to the processor."""

    def __init__(
        self,
        app: Flask,
        settings: Settings,
        graph: GraphClient,
        processor: MessageProcessor,
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.app = app
        self.settings = settings
        self.graph = graph
        self.processor = processor
        self.should_stop = should_stop
        self.executor = ThreadPoolExecutor(
            max_workers=settings.processing_concurrency, thread_name_prefix="process"
        )

    def run_round(self, address: str) -> RoundResult:
        """One delta round for ``address``, then the retries that are due."""
        result = RoundResult(outcomes=[])
        state = mailbox_state(address)
        delta_link = state.delta_link
        try:
            delta_link = self._walk(address, delta_link, result)
        except DeltaTokenExpiredError:
            log.warning("delta token expired: full resync", extra={"mailbox": address})
            result.resynced = True
            delta_link = self._walk(address, None, result)
        if delta_link is None:  # stopped part-way: the stored link replays what is left
            return result
        state = mailbox_state(address)
        state.delta_link = delta_link
        state.last_sync_at = ledger.now()
        state.last_sync_error = None
        db.session.commit()
        if self.settings.sent_items_as_comments and not self.should_stop():
            self._sent_items_round(address, result)
        if not self.should_stop():
            result.outcomes.extend(self.retry_due(address))
        return result

    def _sent_items_round(self, address: str, result: RoundResult) -> None:
        """Staff replies in Sent Items: followed from the day the feature was turned on."""
        state = mailbox_state(address)
        since = None if state.sent_delta_link else ledger.now() - SENT_ITEMS_LOOKBACK
        try:
            delta_link = self._walk(
                address, state.sent_delta_link, result, folder="sentitems", since=since
            )
        except DeltaTokenExpiredError:
            since = ledger.now() - SENT_ITEMS_LOOKBACK
            delta_link = self._walk(address, None, result, folder="sentitems", since=since)
        if delta_link:
            state = mailbox_state(address)
            state.sent_delta_link = delta_link
            db.session.commit()

    def _walk(
        self,
        address: str,
        delta_link: str | None,
        result: RoundResult,
        *,
        folder: str = "inbox",
        since=None,
    ) -> str | None:
        """Walk the pages; each page is recorded, then processed while the next is fetched."""
        pending: list[Future] = []
        try:
            for page in self.graph.delta_pages(
                address,
                folder=folder,
                delta_link=delta_link,
                page_size=DELTA_PAGE_SIZE,
                received_since=since,
            ):
                result.seen += len(page.messages)
                pending.extend(self._record_and_submit(address, page.messages, folder))
                _collect_finished(pending, result, keep=IN_FLIGHT_PAGES * DELTA_PAGE_SIZE)
                if self.should_stop():
                    return None
                if page.delta_link:
                    return page.delta_link
            return None
        finally:
            _collect_finished(pending, result, keep=0)

    def _record_and_submit(
        self, address: str, messages: list[MailMessage], folder: str = "inbox"
    ) -> list[Future]:
        if not messages:
            return []
        ledger.record(messages, folder)
        keys = {ledger.message_key(m): m for m in messages}
        rows = dict(
            db.session.execute(
                select(LedgerMessage.id, LedgerMessage.internet_message_id).where(
                    LedgerMessage.mailbox == address.lower(),
                    LedgerMessage.internet_message_id.in_(list(keys)),
                    LedgerMessage.state.not_in(ledger.FINAL_STATES),
                )
            ).all()
        )
        db.session.rollback()
        claimed = ledger.claim_new(address, list(rows))
        messages = {row_id: keys[rows[row_id]] for row_id in claimed}
        return [self._submit(chain, messages) for chain in ordering.chains(claimed, messages)]

    def retry_due(self, address: str) -> list[Outcome]:
        """Process pending rows left by an earlier run and failed rows whose time has come."""
        claimed = ledger.claim_due(address, self.settings.max_attempts)
        futures = [self._submit(chain, {}) for chain in ordering.chains(claimed, {})]
        return [outcome for future in futures for outcome in future.result()]

    def _submit(self, chain: list[int], messages: dict[int, MailMessage | None]) -> Future:
        """Process claimed rows of one conversation on the pool, one after the other."""

        def run_chain() -> list[Outcome]:
            outcomes = []
            with self.app.app_context():
                try:
                    for n, row_id in enumerate(chain):
                        if self.should_stop():
                            ledger.unclaim(chain[n:])
                            break
                        message = messages.get(row_id)
                        try:
                            outcome = self.processor.process(row_id, message, claimed=True)
                        except SQLAlchemyError:
                            for untouched in chain[n + 1 :]:  # claimed, never started
                                leases.strand(LedgerMessage, untouched, ledger.CLAIM_DURATION)
                            raise
                        outcomes.append(outcome)
                        db.session.remove()
                finally:
                    db.session.remove()
            return outcomes

        return self.executor.submit(run_chain)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _collect_finished(pending: list[Future], result: RoundResult, *, keep: int) -> None:
    """Wait until at most ``keep`` messages are unfinished; move the finished ones' outcomes.

    ``pending`` is emptied of the finished futures in place.
    """
    while len(waiting := [future for future in pending if not future.done()]) > keep:
        wait(waiting, return_when=FIRST_COMPLETED)
    unfinished, finished = [], []
    for future in pending:
        (finished if future.done() else unfinished).append(future)
    pending[:] = unfinished
    result.outcomes.extend(outcome for future in finished for outcome in future.result())
