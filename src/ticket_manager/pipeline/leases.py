"""Time-limited ownership in the database: leases on named work, claims on queue rows.

Both are taken with one conditional statement, so two workers racing for the same thing
cannot both win, on SQLite as on PostgreSQL; both lapse by themselves when their owner stops
renewing them, so the work of a killed worker passes to another without anyone cleaning up.

- A **lease** is a row of ``leases`` (name, owner, expires_at): one mailbox's sync, or the
  Jira comment poller. On PostgreSQL it is timed by the database's clock, so the hosts of
  several workers need not agree to the second; SQLite (one host) uses this host's clock.
- A **claim** is two columns of a queue row, ``claimed_by`` and ``claimed_until``, on the
  ledger (``messages``) and the outbox (``outbound_messages``): who processes the row, until
  when. On PostgreSQL a batch is chosen with ``FOR UPDATE SKIP LOCKED``, so workers claiming
  at once take different rows instead of waiting for each other; the columns stay the truth,
  since a claim must outlive the transaction that took it.

Owners are named ``host:pid:random`` (:data:`WORKER_ID`), so that a claim left by a process
that is gone from this host can be told at once (:func:`release_claims_of_dead_local_processes`).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager.clock import now
from ticket_manager.extensions import db
from ticket_manager.models import Lease, LedgerMessage, OutboundMessage

HOST = socket.gethostname()[:40]
WORKER_ID = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
# The tables whose rows are claimed for processing.
QUEUES = (LedgerMessage, OutboundMessage)


def is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def clock():
    """The time leases are measured by: the database's on PostgreSQL, ours on SQLite."""
    if is_postgresql():
        return func.statement_timestamp(type_=DateTime(timezone=True))
    return now()


# -- leases ------------------------------------------------------------------------------------


def acquire(name: str, duration: timedelta, owner: str = WORKER_ID) -> bool:
    """Take the lease when it is free, lapsed or already ours; True when we hold it now."""
    moment = clock()
    insert = pg_insert if is_postgresql() else sqlite_insert
    statement = (
        insert(Lease)
        .values(name=name, owner=owner, acquired_at=moment, expires_at=moment + duration)
        .on_conflict_do_update(
            index_elements=[Lease.name],
            set_={
                "owner": owner,
                "expires_at": moment + duration,
                "acquired_at": case((Lease.owner == owner, Lease.acquired_at), else_=moment),
            },
            where=or_(Lease.owner == owner, Lease.expires_at < moment),
        )
        .returning(Lease.name)
    )
    taken = db.session.execute(statement).first() is not None
    db.session.commit()
    return taken


def renew(names: Iterable[str], duration: timedelta, owner: str = WORKER_ID) -> set[str]:
    """Extend our leases; returns the names still ours (another may have taken a lapsed one)."""
    names = list(names)
    if not names:
        return set()
    kept = db.session.scalars(
        update(Lease)
        .where(Lease.owner == owner, Lease.name.in_(names))
        .values(expires_at=clock() + duration)
        .returning(Lease.name)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return set(kept)


def release(names: Iterable[str], owner: str = WORKER_ID) -> None:
    """Give leases back at once, so that another worker need not wait for them to lapse."""
    names = list(names)
    if names:
        db.session.execute(delete(Lease).where(Lease.owner == owner, Lease.name.in_(names)))
        db.session.commit()


def release_all_of(owners: list[str]) -> None:
    """Drop every lease of these owners (workers known to be dead)."""
    if owners:
        db.session.execute(delete(Lease).where(Lease.owner.in_(owners)))
        db.session.commit()


def taken(names: Iterable[str], owner: str = WORKER_ID) -> dict[str, str]:
    """Which of ``names`` another owner holds and has not let lapse: name → owner."""
    rows = db.session.execute(
        select(Lease.name, Lease.owner).where(
            Lease.name.in_(list(names)), Lease.owner != owner, Lease.expires_at >= clock()
        )
    ).all()
    db.session.rollback()
    return dict(rows)


# -- claims on queue rows ----------------------------------------------------------------------


def claim_rows(
    model,
    condition: ColumnElement[bool],
    duration: timedelta,
    *,
    limit: int | None = None,
    owner: str = WORKER_ID,
) -> list[int]:
    """Claim the rows matching ``condition`` whose claim has lapsed, counting an attempt.

    Returns the ids taken, oldest first; rows another worker holds are skipped, not waited for.
    """
    if _stranded:
        release_stranded(owner)
    moment = now()
    lapsed = or_(model.claimed_until.is_(None), model.claimed_until < moment)
    candidates = select(model.id).where(condition, lapsed).order_by(model.id)
    if limit is not None:
        candidates = candidates.limit(limit)
    if is_postgresql():
        candidates = candidates.with_for_update(skip_locked=True)
    ids = db.session.scalars(
        update(model)
        .where(model.id.in_(candidates), lapsed)
        .values(claimed_by=owner, claimed_until=moment + duration, attempts=model.attempts + 1)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(ids)


def release_row(row) -> None:
    """Let go of a claimed row (committed with the caller's other changes)."""
    row.claimed_by = None
    row.claimed_until = None


# Claims this process holds on rows it no longer works on, because the database went away
# before the row's outcome could be recorded: {(model, row id): latest claimed_until}.
_stranded: dict[tuple[type, int], datetime] = {}
_stranded_lock = threading.Lock()


def strand(model, row_id: int, duration: timedelta) -> None:
    """Remember a claim to give back once the database answers again.

    Left alone it would keep the row from every worker, this one included, for the rest of
    ``duration``: a database restart would hold up the emails it interrupted for minutes.
    """
    with _stranded_lock:
        _stranded[(model, row_id)] = now() + duration


def release_stranded(owner: str = WORKER_ID) -> int:
    """Give back the stranded claims (before this process claims anything new).

    Only the claim that was stranded is released: a row whose claim lapsed and that this
    process claimed again since has a later ``claimed_until`` and is left alone.
    """
    with _stranded_lock:
        taken = dict(_stranded)
        _stranded.clear()
    released = 0
    try:
        for (model, row_id), latest in taken.items():
            result = db.session.execute(
                update(model)
                .where(
                    model.id == row_id,
                    model.claimed_by == owner,
                    model.claimed_until <= latest,
                )
                .values(claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            released += result.rowcount
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        with _stranded_lock:
            for entry, latest in taken.items():
                _stranded.setdefault(entry, latest)
        raise
    return released


def unclaim_rows(model, ids: list[int], owner: str = WORKER_ID) -> None:
    """Give back rows claimed but never started, taking back the attempt their claim counted."""
    if not ids:
        return
    db.session.execute(
        update(model)
        .where(model.id.in_(ids), model.claimed_by == owner)
        .values(claimed_by=None, claimed_until=None, attempts=model.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def release_claims_of(owners: list[str]) -> int:
    """Free every row these owners claimed, in every queue (their processes are gone).

    The attempt each claim counted is given back: a kill is not the row's failure, and
    counting it would let a run of crashes spend an email's attempt budget unsent.
    """
    if not owners:
        return 0
    released = 0
    for model in QUEUES:
        result = db.session.execute(
            update(model)
            .where(model.claimed_by.in_(owners), model.claimed_until.is_not(None))
            .values(claimed_by=None, claimed_until=None, attempts=model.attempts - 1)
            .execution_options(synchronize_session=False)
        )
        released += result.rowcount
    db.session.commit()
    return released


def release_claims_of_dead_local_processes() -> int:
    """Free rows claimed by processes of this host that no longer run.

    Any command may have claimed them (the worker, ``check-for-missing-tickets``,
    ``retry-failed``); on this host we can tell at once that the process is gone. Claims of
    other hosts' processes lapse, or are freed when their worker is found dead.
    """
    owners: set[str] = set()
    for model in QUEUES:
        owners.update(
            db.session.scalars(
                select(model.claimed_by)
                .where(
                    model.claimed_by.startswith(f"{HOST}:", autoescape=True),
                    model.claimed_until > now(),
                )
                .distinct()
            )
        )
    db.session.rollback()
    return release_claims_of([owner for owner in owners if not is_alive_here(owner)])


def is_alive_here(owner: str) -> bool:
    """False only when ``owner`` is a process of this host that is known to be gone."""
    host, _, rest = owner.partition(":")
    try:
        pid = int(rest.split(":")[0])
    except ValueError:
        return True
    if host != HOST:
        return True
    if pid == os.getpid():
        return owner == WORKER_ID
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
