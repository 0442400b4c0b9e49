"""Which worker syncs which mailbox: heartbeats, fair shares, and the work of dead workers.

Every `handle-incoming-email` process registers in ``workers`` and beats every
HEARTBEAT_INTERVAL seconds from a thread of its own, renewing its leases in the same breath.
Between rounds and after each beat it gives back the mailboxes above its fair share,
ceil(mailboxes / live workers), and takes free ones up to it: a worker that joins gets work
within seconds, and the mailboxes of one that dies pass to the others when its leases lapse
(LEASE_DURATION) or it is found dead, however long the others' rounds last. One
worker at a time also holds the Jira comment poller's lease.

A worker silent for DEAD_AFTER, or whose process is gone from this host, is dead: its leases
are dropped and its claims on messages and emails released, so that they are taken up at
once rather than when the claims lapse.

A worker stops starting work on a mailbox as soon as it cannot show it still holds the lease
(the last successful renewal is older than the lease), even when the database cannot be
reached to say so.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from datetime import timedelta

from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ticket_manager.extensions import db
from ticket_manager.models import WorkerProcess
from ticket_manager.pipeline import leases

log = logging.getLogger("ticket_manager.worker")

LEASE_DURATION = timedelta(seconds=15)
HEARTBEAT_INTERVAL = 5.0
DEAD_AFTER = timedelta(seconds=30)
JIRA_POLLER = "jira-comments"


def mailbox_lease(address: str) -> str:
    return f"mailbox:{address.lower()}"


class Ownership:
    """The leases one worker holds, kept alive by a heartbeat thread."""

    def __init__(self, app: Flask, mailboxes: list[str], owner: str = leases.WORKER_ID) -> None:
        self.app = app
        self.mailboxes = list(mailboxes)
        self.owner = owner
        # Lease name → the monotonic time until which we know it is ours.
        self._valid_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        # Set when the heartbeat took a mailbox, so that the worker syncs it without waiting.
        self._taken = threading.Event()
        self._rebalancing = threading.Lock()

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Register, free what dead workers left, and start the heartbeat."""
        self._stopped.clear()
        with self.app.app_context():
            try:
                self._register()
                self._bury_dead_workers()
                released = leases.release_claims_of_dead_local_processes()
                if released:
                    log.info("released work left by a stopped process", extra={"seen": released})
            except Exception as exc:  # the database may come back: the heartbeat tries again
                db.session.rollback()
                log.warning("worker not registered yet", extra={"error": str(exc)})
            finally:
                db.session.remove()
        self._thread = threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and give every lease back, for another worker to take at once."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            names = list(self._valid_until)
            self._valid_until.clear()
        with self.app.app_context():
            try:
                leases.release(names, self.owner)
                db.session.execute(delete(WorkerProcess).where(WorkerProcess.id == self.owner))
                db.session.commit()
            except Exception as exc:  # the leases lapse by themselves
                db.session.rollback()
                log.warning("leases not released", extra={"error": str(exc)})
            finally:
                db.session.remove()

    # -- what we hold --------------------------------------------------------------------------

    def holds(self, name: str) -> bool:
        with self._lock:
            return time.monotonic() < self._valid_until.get(name, 0.0)

    def holds_mailbox(self, address: str) -> bool:
        return self.holds(mailbox_lease(address))

    def held_mailboxes(self) -> list[str]:
        """The mailboxes this worker may sync now, in the configured order."""
        return [m for m in self.mailboxes if self.holds_mailbox(m)]

    def rebalance(self) -> bool:
        """Give back mailboxes above the fair share, take free ones up to it.

        Returns True when a mailbox was taken, so that the caller syncs it without waiting.
        """
        with self._rebalancing, self.app.app_context():
            try:
                return self._rebalance()
            except Exception as exc:  # the database may be away: keep what we hold
                db.session.rollback()
                log.warning("mailboxes not rebalanced", extra={"error": str(exc)})
                return False
            finally:
                db.session.remove()

    def _rebalance(self) -> bool:
        share = math.ceil(len(self.mailboxes) / max(self._live_workers(), 1))
        held = self.held_mailboxes()
        surplus = held[share:]
        if surplus:
            self._release([mailbox_lease(m) for m in surplus])
            log.info(
                "mailboxes given back", extra={"mailbox": ",".join(surplus), "worker": self.owner}
            )
        wanted = [m for m in self.mailboxes if m not in held]
        names = [mailbox_lease(m) for m in wanted]
        if not self.holds(JIRA_POLLER):
            names.append(JIRA_POLLER)
        busy = leases.taken(names, self.owner)
        took: list[str] = []
        for address in wanted:
            if len(held) + len(took) >= share:
                break
            if mailbox_lease(address) not in busy and self._acquire(mailbox_lease(address)):
                took.append(address)
        if JIRA_POLLER in names and JIRA_POLLER not in busy:
            self._acquire(JIRA_POLLER)
        if took:
            self._taken.set()
            log.info("mailboxes taken", extra={"mailbox": ",".join(took), "worker": self.owner})
        return bool(took)

    def took_mailboxes(self) -> bool:
        """Whether mailboxes were taken since the last call (by the heartbeat or a rebalance)."""
        taken = self._taken.is_set()
        self._taken.clear()
        return taken

    def _acquire(self, name: str) -> bool:
        started = time.monotonic()
        if not leases.acquire(name, LEASE_DURATION, self.owner):
            return False
        with self._lock:
            self._valid_until[name] = started + LEASE_DURATION.total_seconds()
        return True

    def _release(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self._valid_until.pop(name, None)
        leases.release(names, self.owner)

    def _live_workers(self) -> int:
        since = leases.clock() - LEASE_DURATION
        count = db.session.scalar(
            select(func.count())
            .select_from(WorkerProcess)
            .where(WorkerProcess.heartbeat_at >= since)
        )
        db.session.rollback()
        return count or 0

    # -- the heartbeat -------------------------------------------------------------------------

    def _beat_forever(self) -> None:
        while not self._stopped.wait(HEARTBEAT_INTERVAL):
            self.beat()
            # Free mailboxes (a dead worker's) are taken here too, not only between the
            # worker's rounds: a round over a large backlog can last far longer than a beat.
            if not self._stopped.is_set():
                self.rebalance()

    def beat(self) -> None:
        """Say we are alive, renew our leases, and bury the workers that are not."""
        with self.app.app_context():
            try:
                started = time.monotonic()
                self._register()
                with self._lock:
                    names = list(self._valid_until)
                kept = leases.renew(names, LEASE_DURATION, self.owner)
                lost = []
                with self._lock:
                    for name in names:
                        if name in kept and name in self._valid_until:
                            self._valid_until[name] = started + LEASE_DURATION.total_seconds()
                        elif self._valid_until.pop(name, None) is not None:
                            lost.append(name)
                for name in lost:
                    log.warning(
                        "lease lost",
                        extra={"mailbox": name.removeprefix("mailbox:"), "worker": self.owner},
                    )
                self._bury_dead_workers()
            except Exception as exc:  # the next beat tries again; the leases may lapse
                db.session.rollback()
                log.warning("heartbeat failed", extra={"error": str(exc)})
            finally:
                db.session.remove()

    def _register(self) -> None:
        moment = leases.clock()
        insert = pg_insert if leases.is_postgresql() else sqlite_insert
        db.session.execute(
            insert(WorkerProcess)
            .values(
                id=self.owner,
                host=leases.HOST,
                pid=os.getpid(),
                started_at=moment,
                heartbeat_at=moment,
            )
            .on_conflict_do_update(index_elements=[WorkerProcess.id], set_={"heartbeat_at": moment})
        )
        db.session.commit()

    def _bury_dead_workers(self) -> None:
        """Drop the leases and free the claims of workers that stopped beating or are gone."""
        others = db.session.execute(
            select(
                WorkerProcess.id,
                WorkerProcess.heartbeat_at < leases.clock() - DEAD_AFTER,
            ).where(WorkerProcess.id != self.owner)
        ).all()
        db.session.rollback()
        dead = [worker for worker, silent in others if silent or not leases.is_alive_here(worker)]
        if not dead:
            return
        released = leases.release_claims_of(dead)
        leases.release_all_of(dead)
        db.session.execute(delete(WorkerProcess).where(WorkerProcess.id.in_(dead)))
        db.session.commit()
        for worker in dead:
            log.warning("worker found dead: its work is taken over", extra={"worker": worker})
        if released:
            log.info("released messages left by a dead worker", extra={"seen": released})
