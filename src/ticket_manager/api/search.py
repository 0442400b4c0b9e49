"""Ticket search: on the database with keyset pagination, or through Jira for free text.

A cursor is opaque to clients: base64url JSON of where the previous page ended. For the
database it holds the sort, the last row's sort value and id, so a deep page costs what the
first does; for Jira it holds Jira's own ``nextPageToken``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, tuple_

from ticket_manager.api.problems import invalid
from ticket_manager.clock import as_utc
from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.jira.client import JiraClient, quote_jql
from ticket_manager.models import Ticket, TicketWatcher

PENDING_PATTERN = "pending:%"
# Every "pending:..." key sorts between these in any collation: the key's index finds them.
PENDING_RANGE = ("pending:", "pendinh")
# The largest id an Integer primary key holds on every database the service runs on.
MAX_ROW_ID = 2**31 - 1


@dataclass
class Page:
    items: list[Ticket]
    next_cursor: str | None
    total: int | None
    limit: int


def encode_cursor(data: list) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid("cursor", "Not a cursor this API gave out.", "query") from None
    if not isinstance(data, list) or not data:
        raise invalid("cursor", "Not a cursor this API gave out.", "query")
    return data


def cursor_row_id(value) -> int:
    """A row id read from a cursor: a forged one is a 422, not a query the database refuses."""
    if type(value) is not int or not 0 < value <= MAX_ROW_ID:
        raise invalid("cursor", "Not a cursor this API gave out.", "query")
    return value


def _sort_column(sort: str):
    return Ticket.created_at if sort.lstrip("-") == "created" else Ticket.jira_updated_at


def filtered(args: dict, *, with_placeholders: bool = False, visible=None) -> Select:
    """The tickets matching every filter in ``args`` (placeholders of pending creates excluded).

    ``visible`` is the caller's WHERE clause from ``ticket_access.visible_tickets``.
    """
    query = select(Ticket)
    if visible is not None:
        query = query.where(visible)
    if not with_placeholders:
        query = query.where(Ticket.key.not_like(PENDING_PATTERN))
    equal = {
        "category": Ticket.category,
        "status": Ticket.status,
        "source": Ticket.source,
    }
    for name, column in equal.items():
        if args.get(name) is not None:
            query = query.where(column == args[name])
    lowered = {
        "reporter": Ticket.reporter_email,
        "requester": Ticket.requester,
        "assignee": Ticket.assignee_email,
        "mailbox": Ticket.mailbox,
    }
    for name, column in lowered.items():
        if args.get(name) is not None:
            query = query.where(column == args[name].lower())
    if args.get("board") is not None:
        query = query.where(func.lower(Ticket.board) == args["board"].lower())
    if args.get("watcher") is not None:
        watching = select(TicketWatcher.ticket_id).where(
            TicketWatcher.email == args["watcher"].lower()
        )
        query = query.where(Ticket.id.in_(watching))
    ranges = {
        "created_after": (Ticket.created_at, ">="),
        "created_before": (Ticket.created_at, "<"),
        "updated_after": (Ticket.jira_updated_at, ">="),
        "updated_before": (Ticket.jira_updated_at, "<"),
    }
    for name, (column, op) in ranges.items():
        if args.get(name) is not None:
            moment = as_utc(args[name])
            query = query.where(column >= moment if op == ">=" else column < moment)
    return query


def count_matches(args: dict, visible=None) -> int:
    """How many tickets match ``args``, placeholders of pending creates excluded.

    Excluding placeholders by key pattern makes the database read every matching row's key: a
    full scan for an unfiltered count. They are few and the key's index finds them, so they
    are excluded by id, and usually there are none: an index alone can answer the count.
    """
    placeholder_ids = db.session.scalars(
        select(Ticket.id).where(
            Ticket.key >= PENDING_RANGE[0],
            Ticket.key < PENDING_RANGE[1],
            Ticket.key.like(PENDING_PATTERN),
        )
    ).all()
    query = filtered(args, with_placeholders=True, visible=visible)
    if placeholder_ids:
        query = query.where(Ticket.id.not_in(placeholder_ids))
    return db.session.scalar(query.with_only_columns(func.count(), maintain_column_froms=True))


def search_database(args: dict, limit: int, visible=None) -> Page:
    sort = args["sort"]
    column = _sort_column(sort)
    descending = sort.startswith("-")
    query = filtered(args, visible=visible)
    total = None
    if args.get("total", True):
        total = count_matches(args, visible)
    if args.get("cursor"):
        data = decode_cursor(args["cursor"])
        if len(data) != 4 or data[0] != "db" or data[1] != sort:
            raise invalid("cursor", "The cursor belongs to another search or sort.", "query")
        try:
            value, last_id = datetime.fromisoformat(data[2]), cursor_row_id(data[3])
        except (TypeError, ValueError):
            raise invalid("cursor", "Not a cursor this API gave out.", "query") from None
        after = tuple_(column, Ticket.id) < tuple_(value, last_id)
        before = tuple_(column, Ticket.id) > tuple_(value, last_id)
        query = query.where(after if descending else before)
    order = (column.desc(), Ticket.id.desc()) if descending else (column.asc(), Ticket.id.asc())
    rows = list(db.session.scalars(query.order_by(*order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        last_value = as_utc(getattr(last, column.key))
        next_cursor = encode_cursor(["db", sort, last_value.isoformat(), last.id])
    return Page(rows, next_cursor, total, limit)


def search_jira(args: dict, limit: int, jira: JiraClient, settings: Settings, visible=None) -> Page:
    """Free text: Jira finds the issues, the database keeps those the service manages."""
    token = None
    if args.get("cursor"):
        data = decode_cursor(args["cursor"])
        if len(data) != 3 or data[0] != "jira" or data[1] != args["sort"]:
            raise invalid("cursor", "The cursor belongs to another search or sort.", "query")
        token = str(data[2])
        if not jira.is_cloud and not (token.isascii() and token.isdecimal() and len(token) < 10):
            # Server's token is the next startAt: anything else was not given out by us.
            raise invalid("cursor", "Not a cursor this API gave out.", "query")
    projects = sorted(
        {key for key in db.session.scalars(select(Ticket.project_key).distinct()) if key}
    )
    if not projects:
        return Page([], None, None, limit)
    direction = "DESC" if args["sort"].startswith("-") else "ASC"
    field = "created" if args["sort"].lstrip("-") == "created" else "updated"
    jql = (
        f"project in ({', '.join(quote_jql(p) for p in projects)}) "
        f"AND text ~ {quote_jql(args['q'])} ORDER BY {field} {direction}, key {direction}"
    )
    issues, token = jira.search(jql, ["summary"], token=token, max_results=limit)
    keys = [issue["key"] for issue in issues]
    rows = (
        {
            t.key: t
            for t in db.session.scalars(filtered(args, visible=visible).where(Ticket.key.in_(keys)))
        }
        if keys
        else {}
    )
    items = [rows[k] for k in keys if k in rows]
    next_cursor = encode_cursor(["jira", args["sort"], token]) if token else None
    return Page(items, next_cursor, None, limit)


def search(args: dict, settings: Settings, jira_factory, visible=None) -> Page:
    """One page of tickets matching ``args`` among those ``visible`` (a WHERE clause) allows."""
    limit = min(args["limit"], settings.api_page_size_max)
    if args.get("q"):
        return search_jira(args, limit, jira_factory(), settings, visible)
    return search_database(args, limit, visible)
