"""Split each mailbox's Graph budget between the processes that use it at once.

The worker, ``flask o365 check-for-missing-tickets`` and the API's Graph calls may work on
one mailbox at the same time, from several hosts. Each process that paces a mailbox holds a
lease named ``graph-budget:{mailbox}:{process}`` in the database, renewed while it works and
given back when it ends; the pacer of each gives itself ``budget / (live leases)``. A process
that dies stops renewing, and its share returns to the others within :data:`SHARE_LEASE`.

Shares are read at most every :data:`REFRESH` seconds, beside the Graph calls rather than in
their way; when the database cannot be reached, the last known count stands (one process
alone counts one).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from datetime import timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager.extensions import db
from ticket_manager.graph.pacing import MailboxPacer
from ticket_manager.models import Lease
from ticket_manager.pipeline import leases

log = logging.getLogger("ticket_manager.graph")

PREFIX = "graph-budget:"
SHARE_LEASE = timedelta(seconds=60)
REFRESH = 15.0
# The API keeps 1/20 of each mailbox's budget for itself (see api_pacer).
API_SHARE_DIVISOR = 20


def lease_name(mailbox: str, owner: str = leases.WORKER_ID) -> str:
    return f"{PREFIX}{mailbox.lower()}:{owner}"


class DatabaseShares:
    """``shares(mailbox)``: how many processes pace ``mailbox`` now, this one included.

    Answers from memory. When the count is older than :data:`REFRESH` seconds, a short-lived
    thread renews this process's leases and counts the live ones, so a Graph call never waits
    for the database (on SQLite the caller may itself hold the write lock). A process that
    stops calling Graph stops renewing, and its share lapses to the others.
    """

    def __init__(self, app: Flask, owner: str = leases.WORKER_ID, clock=time.monotonic) -> None:
        self.app = app
        self.owner = owner
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, int] = {}  # mailbox → processes pacing it, this one included
        self._read_at: float | None = None
        self._refreshing = False
        self._released = False

    def __call__(self, mailbox: str) -> int:
        key = mailbox.lower()
        with self._lock:
            count = self._known.setdefault(key, 1)
            due = self._read_at is None or self._clock() - self._read_at >= REFRESH
            if due and not self._refreshing and not self._released:
                self._refreshing = True
                threading.Thread(
                    target=self.refresh, name="graph-budget-shares", daemon=True
                ).start()
            return count

    def refresh(self) -> None:
        """Renew our lease on each mailbox's budget and count the live ones."""
        try:
            with self._lock:
                mailboxes = list(self._known)
            for mailbox in mailboxes:
                count = self._renew_and_count(mailbox)
                if count is not None:
                    with self._lock:
                        if mailbox in self._known:
                            self._known[mailbox] = count
        finally:
            with self._lock:
                self._read_at = self._clock()
                self._refreshing = False

    def release(self) -> None:
        """Give this process's shares back, so that the others speed up at once."""
        with self._lock:
            self._released = True
            names = [lease_name(mailbox, self.owner) for mailbox in self._known]
            self._known.clear()
        if not names:
            return
        with self.app.app_context():
            try:
                leases.release(names, self.owner)
            except SQLAlchemyError:
                db.session.rollback()
            finally:
                db.session.remove()

    def _renew_and_count(self, mailbox: str) -> int | None:
        """Renew our lease on ``mailbox``'s budget and count the live ones (None: unknown)."""
        escaped = mailbox.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.app.app_context():
            try:
                leases.acquire(lease_name(mailbox, self.owner), SHARE_LEASE, self.owner)
                count = db.session.scalar(
                    select(func.count())
                    .select_from(Lease)
                    .where(
                        Lease.name.like(f"{PREFIX}{escaped}:%", escape="\\"),
                        Lease.expires_at >= leases.clock(),
                    )
                )
                db.session.rollback()
                return max(1, int(count or 0))
            except SQLAlchemyError as exc:
                db.session.rollback()
                log.warning(
                    "graph budget shares not read", extra={"mailbox": mailbox, "error": str(exc)}
                )
                return None
            finally:
                db.session.remove()


def api_budget(budget: int) -> int:
    """The part of a mailbox's budget kept for the API's occasional reads (ledger detail)."""
    return max(1, budget // API_SHARE_DIVISOR)


def api_pacer(budget: int) -> MailboxPacer | None:
    """The API's pacer: a small fixed part of the budget, taken without a lease.

    The API reads one message per ledger-detail request; a lease would halve the worker's
    share for a minute after each such read.
    """
    return MailboxPacer(api_budget(budget)) if budget else None


def shared_pacer(app: Flask, budget: int) -> MailboxPacer | None:
    """The process's pacer, its budget split through the database; None when pacing is off.

    The worker and ``check-for-missing-tickets`` share what the API's part leaves.
    """
    if not budget:
        return None
    budget = max(1, budget - api_budget(budget))
    shares = DatabaseShares(app)
    atexit.register(shares.release)  # a command that ends gives its share back at once
    return MailboxPacer(budget, shares=shares)
