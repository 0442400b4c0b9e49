"""RFC 9457 problem details: every error the API answers, in one shape with a stable type.

Views raise :class:`Problem` (or let a ``JiraError`` or webargs validation error escape);
:func:`problem_response` turns any of them into ``application/problem+json``. Nothing from a
stack trace or a raw Jira body reaches the client.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, g, has_request_context, json
from werkzeug.exceptions import HTTPException

from ticket_manager.jira.errors import (
    JiraAuthError,
    JiraError,
    JiraNotFoundError,
    JiraRejectedError,
    JiraUnavailableError,
)

log = logging.getLogger("ticket_manager.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A tag URI (RFC 4151): stable and unique without claiming a web address.
TYPE_PREFIX = "tag:ticket-manager,2026:problems/"
JIRA_RETRY_AFTER = 30

# The type each HTTP status gets when nothing more specific was said.
STATUS_TYPES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "insufficient-scope",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "rate-limited",
    500: "internal-error",
    502: "jira-refused-credentials",
    503: "jira-unavailable",
}
TITLES = {
    "validation-error": "Invalid request",
    "precondition-failed": "The ticket changed since you read it",
    "precondition-required": "If-Match is required",
    "rate-limited": "Too many requests",
    "jira-rejected": "Jira refused the change",
    "jira-unavailable": "Jira is unavailable",
    "jira-refused-credentials": "Jira refused the service's credentials",
    "invalid-token": "Invalid or revoked token",
    "identity-unavailable": "Microsoft Entra ID is unavailable",
    "forbidden-reporter": "This key may not report for someone else",
    "internal-error": "Internal error",
}


class Problem(Exception):
    """An error to answer as problem details; ``type_`` is the stable name after the prefix."""

    def __init__(
        self,
        status: int,
        type_: str | None = None,
        detail: str | None = None,
        *,
        errors: dict | None = None,
        headers: dict | None = None,
        **extra,
    ) -> None:
        super().__init__(detail or type_ or str(status))
        self.status = status
        self.type_ = type_ or STATUS_TYPES.get(status, "error")
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem) -> Response:
    """The ``application/problem+json`` answer for ``problem``."""
    body: dict = {
        "type": TYPE_PREFIX + problem.type_,
        "title": TITLES.get(problem.type_) or HTTPStatus(problem.status).phrase,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    body.update(problem.extra)
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def from_http_exception(error: HTTPException) -> Problem:
    """A werkzeug/webargs/flask-smorest/Flask-Limiter exception as a problem."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    errors = data.get("errors") or data.get("messages")
    detail = data.get("message") or error.description
    if status == 422 and errors:
        detail = "The request is not valid: see errors."
    if status == 429:
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(int(retry_after))
        detail = f"Rate limit exceeded ({getattr(error, 'description', '') or 'API_RATE_LIMIT'})."
    if status == 405:
        headers["Allow"] = ", ".join(error.valid_methods or [])  # type: ignore[attr-defined]
    if status >= 500:
        return internal_error(getattr(error, "original_exception", None) or error)
    return Problem(status, detail=detail, errors=errors, headers=headers)


def from_jira_error(error: JiraError) -> Problem:
    """Jira's failure, translated: its field errors kept, its raw body and URLs not."""
    if isinstance(error, JiraNotFoundError):
        return Problem(404, "not-found", "Jira has no such issue, or the service cannot see it.")
    if isinstance(error, JiraRejectedError):
        jira_errors: dict = dict(error.errors or {})
        if error.error_messages:
            jira_errors["_"] = list(error.error_messages)
        return Problem(
            422,
            "jira-rejected",
            "Jira refused the request: see errors.jira.",
            errors={"jira": jira_errors} if jira_errors else None,
        )
    if isinstance(error, JiraAuthError):
        log.error("Jira refused the service's credentials: %s", error)
        return Problem(502, "jira-refused-credentials", "Jira refused the service account.")
    assert isinstance(error, JiraUnavailableError | JiraError)
    log.warning("Jira unavailable: %s", error)
    return Problem(
        503,
        "jira-unavailable",
        "Jira did not answer; try again later.",
        headers={"Retry-After": str(JIRA_RETRY_AFTER)},
    )


def internal_error(error: BaseException) -> Problem:
    """A bug: logged with a reference the client can quote, never shown."""
    reference = uuid.uuid4().hex[:12]
    log.error("internal error %s", reference, exc_info=error)
    return Problem(500, "internal-error", f"An internal error occurred (reference {reference}).")


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as this API writes them (documentation only)."""

    type = ma.fields.String(
        required=True,
        metadata={"example": TYPE_PREFIX + "validation-error", "description": "Stable type."},
    )
    title = ma.fields.String(required=True, metadata={"example": "Invalid request"})
    status = ma.fields.Integer(required=True, metadata={"example": 422})
    detail = ma.fields.String(metadata={"example": "The request is not valid: see errors."})
    errors = ma.fields.Dict(
        metadata={
            "description": "Failing fields by request part (json, form, files, query, headers), "
            "or Jira's own field errors under jira.",
            "example": {"json": {"reporter": ["Not a valid email address."]}},
        }
    )


class ProblemDocsPlugin(MarshmallowPlugin):
    """apispec's marshmallow plugin, documenting each ProblemSchema body as problem+json.

    flask-smorest documents every response as ``application/json``; problems are sent as
    ``application/problem+json``, and the document must say so for clients to expect it.
    """

    def response_helper(self, response, **kwargs):
        return super().response_helper(_as_problem_media_type(response), **kwargs)

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for operation in (operations or {}).values():
            if isinstance(operation, dict):
                for response in (operation.get("responses") or {}).values():
                    _as_problem_media_type(response)
        super().operation_helper(path=path, operations=operations, **kwargs)


def _as_problem_media_type(response):
    content = response.get("content") if isinstance(response, dict) else None
    body = (content or {}).get("application/json") or {}
    schema = body.get("schema")
    if schema is ProblemSchema or isinstance(schema, ProblemSchema):
        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return response


def invalid(field: str, message: str, part: str | None = None) -> Problem:
    """A 422 naming one field of the request, shaped like webargs' own validation errors.

    ``part`` defaults to where this request's body came from (``json`` or ``form``).
    """
    part = part or (g.get("body_part") if has_request_context() else None) or "json"
    return Problem(
        422,
        "validation-error",
        "The request is not valid: see errors.",
        errors={part: {field: [message]}},
    )
