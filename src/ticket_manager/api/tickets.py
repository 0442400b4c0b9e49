"""``/tickets``: search, create, read, update, comment and transition the managed tickets."""

from __future__ import annotations

from flask import g, request, url_for
from marshmallow import RAISE
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ticket_manager.api.access import ApiBlueprint, current_principal
from ticket_manager.api.problems import Problem, ProblemSchema
from ticket_manager.api.runtime import jira_client, settings
from ticket_manager.api.schemas import (
    CommentCreateFormSchema,
    CommentCreateSchema,
    CommentPageQuerySchema,
    CommentPageSchema,
    CommentSchema,
    FieldsQuerySchema,
    TicketCreateFormSchema,
    TicketCreateSchema,
    TicketPageSchema,
    TicketQuerySchema,
    TicketSchema,
    TicketUpdateSchema,
    TransitionListSchema,
    TransitionRequestSchema,
)
from ticket_manager.api.search import search
from ticket_manager.api.ticket_access import may_access, visible_tickets
from ticket_manager.api.ticket_service import (
    TicketService,
    Upload,
    comment_view,
    visible_comments,
)
from ticket_manager.clock import as_utc
from ticket_manager.extensions import db
from ticket_manager.models import Ticket

blp = ApiBlueprint(
    "tickets",
    __name__,
    url_prefix="/tickets",
    description="Tickets the service manages: opened from email or through this API.",
)

IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry return the ticket the first request created (200) "
    "instead of creating another.",
    "schema": {"type": "string", "maxLength": 200},
}
KEY_PARAMETER = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "The Jira issue key.",
    "schema": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$", "example": "SUP-42"},
}
MALFORMED_BODY = "The body cannot be parsed as its Content-Type says."
NOT_FOUND = {"description": "No such ticket among those the service manages."}


def ticket_view(ticket: Ticket, extra: dict | None = None) -> dict:
    """A ticket as the API shows it."""
    site = settings().atlassian_url or ""
    assignee = None
    if ticket.assignee_email or ticket.assignee_name:
        assignee = {"email": ticket.assignee_email, "name": ticket.assignee_name}
    view = {
        "key": ticket.key,
        "url": f"{site}/browse/{ticket.key}" if site else None,
        "title": ticket.summary,
        "board": ticket.board,
        "project": ticket.project_key,
        "category": ticket.category,
        "labels": ticket.label_list(),
        "status": ticket.status,
        "status_category": ticket.status_category,
        "priority": ticket.priority,
        "reporter": ticket.reporter_email,
        "requester": (
            {"email": ticket.requester, "name": ticket.requester_name} if ticket.requester else None
        ),
        "assignee": assignee,
        "watchers": ticket.watcher_emails(),
        "mailbox": ticket.mailbox,
        "source": ticket.source,
        "deleted_in_jira": bool(ticket.deleted_in_jira),
        "created": as_utc(ticket.created_at),
        "updated": as_utc(ticket.jira_updated_at or ticket.updated_at),
    }
    view.update(extra or {})
    return view


def managed_ticket(key: str) -> Ticket:
    """The ticket ``key``, if the caller may see it; 404 otherwise, as for a missing one."""
    # The watchers come in the same query: one round trip to the database instead of two.
    query = select(Ticket).options(joinedload(Ticket.watchers)).where(Ticket.key == key.upper())
    ticket = db.session.scalars(query).unique().first()
    if (
        ticket is None
        or ticket.key.startswith("pending:")
        or not may_access(current_principal(), ticket)
    ):
        raise Problem(404, "not-found", f"{key} is not a ticket this service manages.")
    return ticket


def service() -> TicketService:
    return TicketService(settings(), jira_client())


def read_body(json_schema, form_schema) -> tuple[dict, list[Upload]]:
    """A JSON body, or a multipart form with the same fields plus ``attachments`` files."""
    parser = blp.ARGUMENTS_PARSER
    if request.mimetype == "multipart/form-data":
        g.body_part = "form"
        data = parser.parse(json_schema(), request, location="form")
        uploads = [
            Upload(f.filename or "attachment", f.mimetype or "", f.read())
            for f in request.files.getlist("attachments")
        ]
        unknown = sorted(set(request.files) - {"attachments"})
        if unknown:
            raise Problem(
                422,
                "validation-error",
                "The request is not valid: see errors.",
                errors={"files": {name: ["Unknown field."] for name in unknown}},
            )
        return data, uploads
    if request.mimetype == "application/json":
        return parser.parse(json_schema(), request, location="json"), []
    raise Problem(415, "unsupported-media-type", "Send application/json or multipart/form-data.")


def _body_doc(json_schema: str, form_schema: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{json_schema}"}},
                "multipart/form-data": {
                    "schema": {"$ref": f"#/components/schemas/{form_schema}"},
                    "encoding": {"attachments": {"contentType": "application/octet-stream"}},
                },
            },
        }
    }


@blp.route("", methods=["GET"])
@blp.requires("tickets:read")
@blp.arguments(TicketQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, TicketPageSchema)
def list_tickets(**args):
    """Search tickets

    Filters combine with AND. Without `q` the search runs on the service's database (fast,
    with a total); with `q` Jira searches the text and pages may hold fewer than `limit`
    items: follow `next_cursor` until it is null. With `fields`, each ticket's extras are read
    from Jira, so a page holds at most `API_FIELDS_PAGE_SIZE_MAX` tickets.
    """
    principal = current_principal()
    wanted = list(args.get("fields") or [])
    if wanted:
        # Each ticket's extra fields cost Jira calls: a page of them is kept small.
        args["limit"] = min(args["limit"], settings().api_fields_page_size_max)
    page = search(args, settings(), jira_client, visible_tickets(principal))
    tickets = service() if wanted else None
    items = [
        ticket_view(t, tickets.extras(t, wanted, principal) if tickets else None)
        for t in page.items
    ]
    return {
        "items": items,
        "next_cursor": page.next_cursor,
        "total": page.total,
        "limit": page.limit,
    }


@blp.route("", methods=["POST"])
@blp.requires("tickets:write")
@blp.doc(
    parameters=[IDEMPOTENCY_HEADER],
    **_body_doc("TicketCreate", "TicketCreateForm"),
)
@blp.response(201, TicketSchema, description="Created; `Location` names it.")
@blp.alt_response(200, schema=TicketSchema, description="A retry: the ticket made before.")
@blp.alt_response(400, schema=ProblemSchema, description=MALFORMED_BODY)
@blp.alt_response(409, schema=ProblemSchema, description="The same Idempotency-Key is in use.")
@blp.alt_response(413, schema=ProblemSchema, description="Request or file too large.")
@blp.alt_response(415, schema=ProblemSchema, description="Not JSON or multipart.")
@blp.alt_response(422, schema=ProblemSchema, description="Invalid fields, or Jira refused.")
@blp.alt_response(503, schema=ProblemSchema, description="Jira is unavailable.")
def create_ticket():
    """Create a ticket

    JSON, or multipart/form-data with the same fields and files under `attachments`.
    """
    data, uploads = read_body(TicketCreateSchema, TicketCreateFormSchema)
    idempotency_key = request.headers.get("Idempotency-Key") or None
    if idempotency_key is not None and len(idempotency_key) > 200:
        raise Problem(
            422,
            "validation-error",
            errors={"headers": {"Idempotency-Key": ["At most 200 characters."]}},
        )
    outcome = service().create(data, uploads, current_principal(), idempotency_key)
    location = url_for("tickets.get_ticket", key=outcome.ticket.key)
    return ticket_view(outcome.ticket), 201 if outcome.created else 200, {"Location": location}


@blp.route("/<key>", methods=["GET"], parameters=[KEY_PARAMETER])
@blp.requires("tickets:read")
@blp.etag
@blp.arguments(FieldsQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, TicketSchema)
@blp.alt_response(404, schema=ProblemSchema, description=NOT_FOUND["description"])
def get_ticket(key: str, fields=()):
    """Read a ticket

    From the service's copy; `fields` adds comments, attachments or watchers read from Jira.
    The `ETag` answers `If-None-Match` (304) and is what `PATCH` wants in `If-Match`.
    """
    ticket = managed_ticket(key)
    extra = service().extras(ticket, list(fields), current_principal()) if fields else None
    return ticket_view(ticket, extra)


@blp.route("/<key>", methods=["PATCH"], parameters=[KEY_PARAMETER])
@blp.requires("tickets:write")
@blp.etag
@blp.arguments(TicketUpdateSchema)
@blp.response(200, TicketSchema)
@blp.alt_response(400, schema=ProblemSchema, description=MALFORMED_BODY)
@blp.alt_response(404, schema=ProblemSchema, description=NOT_FOUND["description"])
@blp.alt_response(422, schema=ProblemSchema, description="Invalid fields, or Jira refused.")
@blp.alt_response(503, schema=ProblemSchema, description="Jira is unavailable.")
def update_ticket(data: dict, key: str):
    """Update a ticket

    Only the fields sent change. `If-Match` must carry the ETag of the ticket as read: it is
    compared with the issue as Jira has it now, so a change made meanwhile (in Jira or through
    the API) gives 412 instead of being overwritten.
    """
    ticket = managed_ticket(key)
    if any(tag.strip() == "*" for tag in request.headers.get("If-Match", "").split(",")):
        # "*" matches whatever the ticket is now: it would skip the lost-update check.
        raise Problem(
            428,
            "precondition-required",
            "If-Match must carry the ETag of the ticket as read, not *.",
        )
    tickets = service()
    tickets.refresh(ticket)
    blp.check_etag(ticket_view(ticket), TicketSchema)
    tickets.update(ticket, data)
    return ticket_view(ticket)


@blp.route("/<key>/comments", methods=["GET"], parameters=[KEY_PARAMETER])
@blp.requires("tickets:read")
@blp.arguments(CommentPageQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, CommentPageSchema)
@blp.alt_response(404, schema=ProblemSchema, description=NOT_FOUND["description"])
def list_comments(key: str, start_at: int, limit: int):
    """List comments

    Oldest first, read from Jira. Internal notes are included, marked `public: false`, only
    for a token with `tickets:internal`; `total` counts them either way.
    """
    ticket = managed_ticket(key)
    comments, total = jira_client().comments_page(ticket.key, start_at, limit)
    shown = visible_comments(comments, current_principal())
    return {"items": [comment_view(c) for c in shown], "start_at": start_at, "total": total}


@blp.route("/<key>/comments", methods=["POST"], parameters=[KEY_PARAMETER])
@blp.requires("tickets:write")
@blp.doc(**_body_doc("CommentCreate", "CommentCreateForm"))
@blp.response(201, CommentSchema)
@blp.alt_response(400, schema=ProblemSchema, description=MALFORMED_BODY)
@blp.alt_response(404, schema=ProblemSchema, description=NOT_FOUND["description"])
@blp.alt_response(413, schema=ProblemSchema, description="Request or file too large.")
@blp.alt_response(415, schema=ProblemSchema, description="Not JSON or multipart.")
@blp.alt_response(422, schema=ProblemSchema, description="Invalid fields, or Jira refused.")
@blp.alt_response(503, schema=ProblemSchema, description="Jira is unavailable.")
def add_comment(key: str):
    """Comment on a ticket

    JSON, or multipart/form-data with files under `attachments`. With `notify_requester`
    the comment is also emailed to the requester, once, in the ticket's email thread.
    """
    ticket = managed_ticket(key)
    data, uploads = read_body(CommentCreateSchema, CommentCreateFormSchema)
    comment = service().add_comment(ticket, data, uploads, current_principal())
    return comment_view(comment)


@blp.route("/<key>/transitions", methods=["GET"], parameters=[KEY_PARAMETER])
@blp.requires("tickets:read")
@blp.response(200, TransitionListSchema)
@blp.alt_response(404, schema=ProblemSchema, description=NOT_FOUND["description"])
def list_transitions(key: str):
    """List the transitions Jira allows now"""
    return {"items": service().transitions(managed_ticket(key))}


@blp.route("/<key>/transitions", methods=["POST"], parameters=[KEY_PARAMETER])
@blp.requires("tickets:write")
@blp.arguments(TransitionRequestSchema)
@blp.response(200, TicketSchema, description="The ticket after the transition.")
@blp.alt_response(400, schema=ProblemSchema, description=MALFORMED_BODY)
@blp.alt_response(404, schema=ProblemSchema, description=NOT_FOUND["description"])
@blp.alt_response(422, schema=ProblemSchema, description="Not allowed now, or Jira refused.")
@blp.alt_response(503, schema=ProblemSchema, description="Jira is unavailable.")
def transition_ticket(data: dict, key: str):
    """Transition a ticket

    Name the transition by `id` or by `name` as listed by GET; add a `comment` or a
    `resolution` where the workflow asks for one.
    """
    ticket = managed_ticket(key)
    service().transition(ticket, data)
    return ticket_view(ticket)
