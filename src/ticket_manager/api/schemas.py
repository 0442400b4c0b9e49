"""The API's request and response bodies, as marshmallow schemas (and so, OpenAPI schemas)."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import validate
from webargs.fields import DelimitedList

from ticket_manager.models import MessageState

MAX_TITLE = 255
MAX_BODY = 100_000
SORTS = ("-created", "created", "-updated", "updated")
EXTRA_FIELDS = ("comments", "attachments", "watchers")
_LABEL = validate.Regexp(r"^\S{1,255}$", error="A label is one word without spaces.")


class StrictSchema(ma.Schema):
    """Unknown fields are refused, so a misspelt field is an error rather than ignored."""

    class Meta:
        unknown = ma.RAISE


def _text(description: str, example: str | None = None, **kwargs) -> ma.fields.String:
    metadata = {"description": description}
    if example is not None:
        metadata["example"] = example
    return ma.fields.String(metadata=metadata, **kwargs)


# -- tickets ------------------------------------------------------------------------------


class PersonSchema(ma.Schema):
    email = ma.fields.String(allow_none=True, metadata={"example": "agent@example.com"})
    name = ma.fields.String(allow_none=True, metadata={"example": "Ada Agent"})


class CommentSchema(ma.Schema):
    id = _text("Jira's comment id.", "10042")
    author = ma.fields.Nested(PersonSchema)
    created = ma.fields.String(metadata={"description": "As Jira wrote it (ISO 8601)."})
    public = ma.fields.Boolean(
        metadata={"description": "False for an internal note, which customers do not see."}
    )
    body_text = _text("The comment as plain text.", "Thanks, we are on it.")
    body_html = _text("The comment as sanitised HTML.", "<p>Thanks, we are on it.</p>")


class AttachmentSchema(ma.Schema):
    id = _text("Jira's attachment id.", "10100")
    filename = _text("File name.", "screenshot.png")
    size = ma.fields.Integer(metadata={"example": 48213})
    mime_type = _text("Media type.", "image/png")
    created = ma.fields.String()


class TicketSchema(ma.Schema):
    key = _text("The Jira issue key.", "SUP-42")
    url = _text("The issue in Jira's web interface.", "https://example.atlassian.net/browse/SUP-42")
    title = _text("The issue summary.", "Printer on floor 3 is jammed")
    board = ma.fields.String(allow_none=True, metadata={"example": "support"})
    project = ma.fields.String(allow_none=True, metadata={"example": "SUP"})
    category = ma.fields.String(allow_none=True, metadata={"example": "general"})
    labels = ma.fields.List(ma.fields.String(), metadata={"example": ["ticket", "general"]})
    status = ma.fields.String(allow_none=True, metadata={"example": "To Do"})
    status_category = ma.fields.String(
        allow_none=True,
        metadata={"description": "new, indeterminate or done.", "example": "new"},
    )
    priority = ma.fields.String(allow_none=True, metadata={"example": "Medium"})
    reporter = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Jira's reporter (the service account when the requester is no "
            "Jira user).",
            "example": "customer@example.com",
        },
    )
    requester = ma.fields.Nested(
        PersonSchema,
        allow_none=True,
        metadata={
            "description": "Who asked: the sender of the first email, or the API key's person. "
            "Kept by the service; emails about the ticket go to them."
        },
    )
    assignee = ma.fields.Nested(PersonSchema, allow_none=True)
    watchers = ma.fields.List(ma.fields.String(), metadata={"example": ["boss@example.com"]})
    mailbox = ma.fields.String(
        allow_none=True,
        metadata={"description": "The mailbox its email conversation runs through."},
    )
    source = ma.fields.String(metadata={"description": "email or api.", "example": "email"})
    deleted_in_jira = ma.fields.Boolean()
    created = ma.fields.AwareDateTime()
    updated = ma.fields.AwareDateTime()
    comments = ma.fields.List(
        ma.fields.Nested(CommentSchema),
        metadata={"description": "Only with fields=comments (read from Jira)."},
    )
    attachments = ma.fields.List(
        ma.fields.Nested(AttachmentSchema),
        metadata={"description": "Only with fields=attachments (read from Jira)."},
    )


class TicketPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TicketSchema), required=True)
    next_cursor = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Pass as cursor for the next page; null on the last page."},
    )
    total = ma.fields.Integer(
        allow_none=True,
        required=True,
        metadata={"description": "Matches in all pages; null for a text search (q)."},
    )
    limit = ma.fields.Integer(required=True)


class FieldsQuerySchema(StrictSchema):
    fields = DelimitedList(
        ma.fields.String(validate=validate.OneOf(EXTRA_FIELDS)),
        load_default=(),
        metadata={"description": "Extra data read from Jira: comments, attachments, watchers."},
    )


class TicketQuerySchema(FieldsQuerySchema):
    board = _text("A board name (see GET /boards).")
    category = _text("A category (see GET /categories).")
    status = _text("Jira status name, e.g. Done.")
    reporter = ma.fields.Email(metadata={"description": "Jira reporter's email address."})
    requester = ma.fields.Email(metadata={"description": "Requester's email address."})
    assignee = ma.fields.Email(metadata={"description": "Assignee's email address."})
    watcher = ma.fields.Email(metadata={"description": "A watcher's email address."})
    mailbox = ma.fields.Email(metadata={"description": "The mailbox the ticket came through."})
    source = ma.fields.String(validate=validate.OneOf(("email", "api")))
    created_after = ma.fields.AwareDateTime(metadata={"example": "2026-01-31T00:00:00Z"})
    created_before = ma.fields.AwareDateTime()
    updated_after = ma.fields.AwareDateTime()
    updated_before = ma.fields.AwareDateTime()
    q = _text(
        "Free text searched in Jira (summary, description, comments).",
        validate=validate.Length(min=1, max=200),
    )
    sort = ma.fields.String(load_default="-created", validate=validate.OneOf(SORTS))
    limit = ma.fields.Integer(
        load_default=25,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "Page size; values above API_PAGE_SIZE_MAX are reduced to it."},
    )
    cursor = _text("next_cursor of the previous page.", validate=validate.Length(max=2000))
    total = ma.fields.Boolean(
        load_default=True, metadata={"description": "Count all matches (database search only)."}
    )


class TicketCreateSchema(StrictSchema):
    title = _text(
        "The summary.",
        "Printer on floor 3 is jammed",
        required=True,
        validate=validate.Length(min=1, max=MAX_TITLE),
    )
    body = _text(
        "The description, Markdown or plain text (body_format).",
        "It shows **error 42**.",
        load_default="",
        validate=validate.Length(max=MAX_BODY),
    )
    body_format = ma.fields.String(
        load_default="markdown", validate=validate.OneOf(("markdown", "text"))
    )
    reporter = ma.fields.Email(
        metadata={
            "description": "Reporter's email; defaults to the key's user. Only admin keys may "
            "name someone else.",
            "example": "customer@example.com",
        }
    )
    board = _text("A board name (GET /boards); default JIRA_DEFAULT_BOARD.", "support")
    category = _text("A category (GET /categories); default the configured one.", "general")
    priority = _text("A Jira priority name.", "High", validate=validate.Length(min=1, max=128))
    labels = ma.fields.List(
        ma.fields.String(validate=_LABEL), load_default=list, validate=validate.Length(max=50)
    )
    watchers = ma.fields.List(
        ma.fields.Email(), load_default=list, validate=validate.Length(max=50)
    )


class TicketCreateFormSchema(TicketCreateSchema):
    """The multipart form of a create: the same fields, plus files."""

    attachments = ma.fields.List(Upload(), metadata={"description": "Files to attach."})


class TicketUpdateSchema(StrictSchema):
    title = ma.fields.String(validate=validate.Length(min=1, max=MAX_TITLE))
    body = ma.fields.String(validate=validate.Length(max=MAX_BODY))
    body_format = ma.fields.String(
        load_default="markdown", validate=validate.OneOf(("markdown", "text"))
    )
    priority = ma.fields.String(validate=validate.Length(min=1, max=128))
    category = ma.fields.String(validate=validate.Length(min=1, max=255))
    labels = ma.fields.List(ma.fields.String(validate=_LABEL), validate=validate.Length(max=50))
    assignee = ma.fields.Email(
        allow_none=True, metadata={"description": "Email of a Jira user; null unassigns."}
    )


class CommentCreateSchema(StrictSchema):
    body = _text(
        "Markdown or plain text (body_format).",
        "We replaced the toner.",
        required=True,
        validate=validate.Length(min=1, max=MAX_BODY),
    )
    body_format = ma.fields.String(
        load_default="markdown", validate=validate.OneOf(("markdown", "text"))
    )
    internal = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "An internal note (Jira Service Management); never emailed."},
    )
    notify_requester = ma.fields.Boolean(
        load_default=False, metadata={"description": "Also email the comment to the requester."}
    )


class CommentCreateFormSchema(CommentCreateSchema):
    attachments = ma.fields.List(Upload(), metadata={"description": "Files to attach."})


class CommentPageQuerySchema(StrictSchema):
    start_at = ma.fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class CommentPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CommentSchema), required=True)
    start_at = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


class StatusSchema(ma.Schema):
    name = ma.fields.String(metadata={"example": "Done"})
    category = ma.fields.String(metadata={"example": "done"})


class TransitionSchema(ma.Schema):
    id = _text("Jira's transition id.", "31")
    name = _text("The transition's name.", "Resolve")
    to = ma.fields.Nested(StatusSchema)
    required_fields = ma.fields.List(
        ma.fields.String(), metadata={"description": "Fields the transition's screen requires."}
    )


class TransitionListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TransitionSchema), required=True)


class TransitionRequestSchema(StrictSchema):
    id = _text("A transition id from GET .../transitions.", "31")
    name = _text("Or its name, case-insensitive.", "Resolve")
    comment = ma.fields.String(validate=validate.Length(min=1, max=MAX_BODY))
    body_format = ma.fields.String(
        load_default="markdown", validate=validate.OneOf(("markdown", "text"))
    )
    resolution = _text("A resolution name, where the screen asks for one.", "Done")

    @ma.validates_schema
    def _one_of_id_or_name(self, data, **kwargs):
        if not data.get("id") and not data.get("name"):
            raise ma.ValidationError("Give the transition's id or its name.", "id")


# -- boards and categories ----------------------------------------------------------------


class BoardSchema(ma.Schema):
    name = _text("The board name in Jira.", "support")
    setting = _text("The configuration key that names it.", "JIRA_SUPPORT_BOARD")
    default = ma.fields.Boolean()
    mailboxes = ma.fields.List(ma.fields.String(), metadata={"example": ["help@example.com"]})


class BoardListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(BoardSchema), required=True)


class CategorySchema(ma.Schema):
    name = _text("A category label.", "bug")
    default = ma.fields.Boolean()


class CategoryListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CategorySchema), required=True)


# -- the message ledger -------------------------------------------------------------------


class MessageSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"example": 1207})
    mailbox = ma.fields.String(metadata={"example": "help@example.com"})
    internet_message_id = ma.fields.String(metadata={"example": "<CA+x@mail.example.com>"})
    folder = ma.fields.String(metadata={"example": "inbox"})
    subject = ma.fields.String(allow_none=True)
    sender = ma.fields.String(allow_none=True)
    received_at = ma.fields.AwareDateTime(allow_none=True)
    state = ma.fields.String(metadata={"example": "rejected"})
    rule = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The rule that rejected it, or for a ticket the routing rule "
            "that filed it (`route:NAME`, see ROUTING_RULES).",
            "example": "auto-reply",
        },
    )
    reason = ma.fields.String(allow_none=True)
    ticket_key = ma.fields.String(allow_none=True, metadata={"example": "SUP-42"})
    attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True)
    processed_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class MessagePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(MessageSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)


class MessageQuerySchema(StrictSchema):
    state = ma.fields.String(validate=validate.OneOf([s.value for s in MessageState]))
    mailbox = ma.fields.Email()
    rule = ma.fields.String(validate=validate.Length(max=64))
    sender = ma.fields.Email()
    ticket_key = ma.fields.String(validate=validate.Length(max=64))
    q = ma.fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Text found in the subject or the sender's address."},
    )
    limit = ma.fields.Integer(load_default=25, validate=validate.Range(min=1, max=1000))
    cursor = ma.fields.String(validate=validate.Length(max=200))


class RetrySchema(StrictSchema):
    force = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Also requeue a rejected message, past its rule."},
    )


# -- health -------------------------------------------------------------------------------


class MailboxHealthSchema(ma.Schema):
    address = ma.fields.String()
    last_sync_at = ma.fields.AwareDateTime(allow_none=True)
    last_sync_age_seconds = ma.fields.Integer(allow_none=True)
    last_sync_error = ma.fields.String(allow_none=True)


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok or failing.", "example": "ok"})
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"example": {"database": "ok", "schema": "ok", "microsoft_sign_in": "ok"}},
    )
    mailboxes = ma.fields.List(ma.fields.Nested(MailboxHealthSchema))


# -- operations: status and mail flow -----------------------------------------------------


class DependencyStatusSchema(ma.Schema):
    state = ma.fields.String(
        metadata={"description": "ok, failing, not configured or unknown.", "example": "ok"}
    )
    detail = ma.fields.String()
    account = ma.fields.String(allow_none=True)
    expires_at = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the current access token expires."}
    )


class MailboxStatusSchema(ma.Schema):
    address = ma.fields.String(metadata={"example": "support@example.com"})
    last_sync_at = ma.fields.AwareDateTime(allow_none=True)
    last_sync_age_seconds = ma.fields.Integer(allow_none=True)
    last_sync_error = ma.fields.String(allow_none=True)
    subscription = ma.fields.String(
        metadata={"description": "off, missing, active, expiring or expired."}
    )
    subscription_expires_at = ma.fields.AwareDateTime(allow_none=True)
    backlog = ma.fields.Integer(metadata={"description": "Pending, and failed to be retried."})
    failed = ma.fields.Integer()
    failed_for_good = ma.fields.Integer(
        metadata={"description": "Failed PROCESSING_MAX_ATTEMPTS times: waiting for a person."}
    )
    problems = ma.fields.List(ma.fields.String())


class CredentialStatusSchema(ma.Schema):
    credential = ma.fields.String(
        metadata={"example": "the client secret (O365_CLIENT_SECRET_EXPIRES)"}
    )
    expires_at = ma.fields.AwareDateTime()
    days_left = ma.fields.Integer(metadata={"description": "Negative once it has expired."})


class ServiceStatusSchema(ma.Schema):
    ok = ma.fields.Boolean(metadata={"description": "True when nothing needs a person."})
    generated_at = ma.fields.AwareDateTime()
    database = ma.fields.Nested(DependencyStatusSchema)
    microsoft = ma.fields.Nested(DependencyStatusSchema)
    jira = ma.fields.Nested(DependencyStatusSchema)
    mailboxes = ma.fields.List(ma.fields.Nested(MailboxStatusSchema))
    problems = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "What needs a person, with what to do; empty when all is well."},
    )
    credentials = ma.fields.List(
        ma.fields.Nested(CredentialStatusSchema),
        metadata={"description": "Credentials that expire; a problem 30 days ahead."},
    )
    ticket_browse_url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "A ticket key appended to this URL opens the ticket in Jira.",
            "example": "https://example.atlassian.net/browse/",
        },
    )


class FlowQuerySchema(StrictSchema):
    period = ma.fields.String(load_default="24h", validate=validate.OneOf(("24h", "7d", "30d")))
    mailbox = ma.fields.Email()


class FlowBucketSchema(ma.Schema):
    start = ma.fields.AwareDateTime()
    created = ma.fields.Integer()
    commented = ma.fields.Integer()
    rejected = ma.fields.Integer()
    failed = ma.fields.Integer()
    pending = ma.fields.Integer()
    held = ma.fields.Integer()


class FlowSchema(ma.Schema):
    period = ma.fields.String(metadata={"example": "24h"})
    bucket_seconds = ma.fields.Integer(metadata={"example": 3600})
    buckets = ma.fields.List(ma.fields.Nested(FlowBucketSchema))
    totals = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    rejected_by_rule = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"example": {"auto-reply": 3, "domain-not-allowed": 1}},
    )


class HeaderSchema(ma.Schema):
    name = ma.fields.String()
    value = ma.fields.String()


class JiraRecordSchema(ma.Schema):
    key = ma.fields.String(metadata={"example": "SUP-42"})
    url = ma.fields.String(allow_none=True)
    kind = ma.fields.String(metadata={"description": "issue or comment."})
    text = ma.fields.String(
        allow_none=True, metadata={"description": "What Jira holds, as plain text."}
    )


class MessageDetailSchema(ma.Schema):
    message = ma.fields.Nested(MessageSchema)
    headers = ma.fields.List(
        ma.fields.Nested(HeaderSchema),
        allow_none=True,
        metadata={"description": "The email's internet headers, read from the mailbox."},
    )
    headers_error = ma.fields.String(
        allow_none=True, metadata={"description": "Why the headers could not be read."}
    )
    jira = ma.fields.Nested(JiraRecordSchema, allow_none=True)
    jira_error = ma.fields.String(allow_none=True)
