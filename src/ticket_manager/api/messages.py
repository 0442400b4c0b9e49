"""``/messages``: the email ledger (what became of each email), and retrying one."""

from __future__ import annotations

from marshmallow import RAISE
from sqlalchemy import func, or_, select

from ticket_manager.api.access import ApiBlueprint, current_principal
from ticket_manager.api.problems import Problem, ProblemSchema, invalid
from ticket_manager.api.runtime import graph_client, jira_client, settings
from ticket_manager.api.schemas import (
    MessageDetailSchema,
    MessagePageSchema,
    MessageQuerySchema,
    MessageSchema,
    RetrySchema,
)
from ticket_manager.api.search import MAX_ROW_ID, cursor_row_id, decode_cursor, encode_cursor
from ticket_manager.clock import as_utc
from ticket_manager.config import ConfigError
from ticket_manager.content import jira_to_email
from ticket_manager.extensions import db
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.jira.errors import JiraError
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline.ledger import requeue
from ticket_manager.pipeline.tickets import SOURCE_PROPERTY

blp = ApiBlueprint(
    "messages",
    __name__,
    url_prefix="/messages",
    description="The ledger of every email seen: its state, the rule that rejected it, its ticket.",
)

# The scope that opens an email's headers and text, beyond its ledger row.
MESSAGE_CONTENT = "messages:content"
ID_PARAMETER = {
    "name": "message_id",
    "in": "path",
    "required": True,
    "description": "The ledger id.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID},
}


def message_view(row: LedgerMessage) -> dict:
    return {
        "id": row.id,
        "mailbox": row.mailbox,
        "internet_message_id": row.internet_message_id,
        "folder": row.folder,
        "subject": row.subject,
        "sender": row.sender,
        "received_at": as_utc(row.received_at),
        "state": row.state.value,
        "rule": row.rule,
        "reason": row.reason,
        "ticket_key": row.ticket_key,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_attempt_at": as_utc(row.next_attempt_at),
        "processed_at": as_utc(row.processed_at),
        "created_at": as_utc(row.created_at),
    }


@blp.route("", methods=["GET"])
@blp.requires("messages:read")
@blp.arguments(MessageQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, MessagePageSchema)
def list_messages(limit: int, cursor: str | None = None, **filters):
    """List ledger messages

    Newest first. Filter by state (pending, rejected, ticket_created, commented, failed),
    mailbox, rule, sender, ticket key, or text `q` in the subject or sender.
    """
    limit = min(limit, settings().api_page_size_max)
    query = select(LedgerMessage)
    for name in ("state", "rule", "ticket_key"):
        if filters.get(name) is not None:
            query = query.where(getattr(LedgerMessage, name) == filters[name])
    for name in ("mailbox", "sender"):
        if filters.get(name) is not None:
            query = query.where(getattr(LedgerMessage, name) == filters[name].lower())
    if filters.get("q"):
        pattern = like_pattern(filters["q"])
        query = query.where(
            or_(
                LedgerMessage.subject.ilike(pattern, escape="\\"),
                LedgerMessage.sender.ilike(pattern, escape="\\"),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    if cursor:
        data = decode_cursor(cursor)
        if len(data) != 2 or data[0] != "messages":
            raise invalid("cursor", "Not a cursor this API gave out.", "query")
        query = query.where(LedgerMessage.id < cursor_row_id(data[1]))
    rows = list(db.session.scalars(query.order_by(LedgerMessage.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(["messages", rows[-1].id])
    return {
        "items": [message_view(r) for r in rows],
        "next_cursor": next_cursor,
        "total": total,
        "limit": limit,
    }


def like_pattern(text: str) -> str:
    """``text`` anywhere, for LIKE with ``\\`` as the escape: its own % and _ match literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _row(message_id: int) -> LedgerMessage:
    row = db.session.get(LedgerMessage, message_id) if message_id <= MAX_ROW_ID else None
    if row is None:
        raise Problem(404, "not-found", f"No message {message_id} in the ledger.")
    return row


@blp.route("/<int:message_id>", methods=["GET"])
@blp.requires("messages:read")
@blp.doc(parameters=[ID_PARAMETER])
@blp.response(200, MessageSchema)
@blp.alt_response(404, schema=ProblemSchema, description="No such message.")
def get_message(message_id: int):
    """Read a ledger message"""
    return message_view(_row(message_id))


@blp.route("/<int:message_id>/retry", methods=["POST"])
@blp.requires("messages:write")
@blp.doc(parameters=[ID_PARAMETER])
@blp.arguments(RetrySchema, required=False)
@blp.response(202, MessageSchema, description="Queued: the worker takes it on its next round.")
@blp.alt_response(400, schema=ProblemSchema, description="The body is not valid JSON.")
@blp.alt_response(404, schema=ProblemSchema, description="No such message.")
@blp.alt_response(409, schema=ProblemSchema, description="Not in a state that can be retried.")
def retry_message(data: dict, message_id: int):
    """Retry a message

    A failed message is queued again with its attempts reset. A held one (kept aside by an
    intake cap or a sender check) is released: queued, skipping every rule but the mail-loop
    one. A rejected one is queued only with `force: true`, and then skips the same rules.
    """
    row = _row(message_id)
    force = bool((data or {}).get("force"))
    if row.state == MessageState.REJECTED and not force:
        raise Problem(
            409,
            "conflict",
            f"Message {message_id} was rejected ({row.rule}); send "
            '{"force": true} to process it anyway.',
        )
    if row.state not in (MessageState.FAILED, MessageState.REJECTED, MessageState.HELD):
        raise Problem(
            409,
            "conflict",
            f"Message {message_id} is {row.state.value}: only failed, held or "
            "rejected messages can be retried.",
        )
    requeue(row, waive_rules=row.state in (MessageState.REJECTED, MessageState.HELD))
    return message_view(row)


@blp.route("/<int:message_id>/detail", methods=["GET"])
@blp.requires("messages:read")
@blp.doc(parameters=[ID_PARAMETER])
@blp.response(200, MessageDetailSchema)
@blp.alt_response(404, schema=ProblemSchema, description="No such message.")
def message_detail(message_id: int):
    """Read a message with its headers and what Jira holds

    The internet headers are read from the mailbox and the ticket or comment from Jira, both
    live; when either cannot be read, `headers_error` or `jira_error` says why. Headers and
    text are the email's content: they need `messages:content` as well.
    """
    row = _row(message_id)
    detail: dict = {
        "message": message_view(row),
        "headers": None,
        "headers_error": None,
        "jira": None,
        "jira_error": None,
    }
    if not current_principal().allows(MESSAGE_CONTENT):
        refused = f"Headers and text need the {MESSAGE_CONTENT} scope."
        detail["headers_error"] = detail["jira_error"] = refused
        return detail
    try:
        message = graph_client().get_message(row.mailbox, row.graph_id)
        detail["headers"] = [
            {"name": name, "value": value}
            for name, values in message.headers.items()
            for value in values
        ]
    except (GraphError, SignInError, ConfigError) as exc:
        detail["headers_error"] = _reason(exc)
    if row.ticket_key:
        try:
            detail["jira"] = _jira_record(row)
        except (JiraError, ConfigError) as exc:
            detail["jira_error"] = _reason(exc)
    return detail


def _reason(exc: Exception) -> str:
    return exc.format_message() if isinstance(exc, ConfigError) else str(exc)


def _jira_record(row: LedgerMessage) -> dict:
    """The issue an email opened, or the comment it became, as text."""
    jira = jira_client()
    site = settings().atlassian_url or ""
    record = {"key": row.ticket_key, "url": f"{site}/browse/{row.ticket_key}" if site else None}
    if row.state == MessageState.COMMENTED:
        match = {"internetMessageId": row.internet_message_id}
        for comment in jira.comments(row.ticket_key):
            value = comment.properties.get(SOURCE_PROPERTY) or {}
            if value.get("internetMessageId") == match["internetMessageId"]:
                return {**record, "kind": "comment", "text": jira_to_email(comment.body).text}
        return {**record, "kind": "comment", "text": None}
    issue = jira.get_issue(row.ticket_key, ["description"])
    description = (issue.get("fields") or {}).get("description") or ""
    return {**record, "kind": "issue", "text": jira_to_email(description).text}
