"""The one clock: aware UTC datetimes, so every layer compares moments the same way."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current moment in UTC (timezone-aware)."""
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes for timezone-aware columns: they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
