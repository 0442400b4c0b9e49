"""The ticket REST API: flask-smorest blueprints under APPLICATION_CONTEXT, documented in OpenAPI 3.

:func:`init_api` wires the parts: problem-details errors, bearer authentication, per-key
rate limits, request size limits, the blueprints and Swagger UI. See docs/api.md.
"""

from __future__ import annotations

import sqlalchemy.exc
from flask import Flask, g, request
from flask_limiter import Limiter
from flask_smorest import Api

from ticket_manager import __version__
from ticket_manager.api import address_limits, catalog, health, messages, operations, tickets
from ticket_manager.api.access import SECURITY_SCHEME, check_access
from ticket_manager.api.docs import blueprint as docs_blueprint
from ticket_manager.api.docs import to_docs
from ticket_manager.api.input_guard import refuse_malformed_input
from ticket_manager.api.problems import (
    Problem,
    ProblemDocsPlugin,
    ProblemSchema,
    from_http_exception,
    from_jira_error,
    problem_response,
)
from ticket_manager.api.schemas import (
    CommentCreateFormSchema,
    CommentCreateSchema,
    TicketCreateFormSchema,
    TicketCreateSchema,
)
from ticket_manager.api.security_headers import add_security_headers
from ticket_manager.config import ConfigError, Settings
from ticket_manager.jira.errors import JiraError

BLUEPRINTS = (tickets.blp, catalog.blp, messages.blp, operations.blp, health.blp)
API_BLUEPRINT_NAMES = frozenset(b.name for b in BLUEPRINTS)
LIMITER_EXTENSION = "ticket_manager.api.limiter"


class ProblemApi(Api):
    """flask-smorest's Api with every error answered as RFC 9457 problem details."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):
        return problem_response(from_http_exception(error))


def init_api(app: Flask, settings: Settings) -> Api:
    """Register the API on ``app`` under ``settings.application_context``."""
    prefix = settings.application_context.rstrip("/")
    app.config.update(
        API_TITLE="Ticket Manager",
        API_VERSION=__version__,
        OPENAPI_VERSION=settings.openapi_version,
        OPENAPI_URL_PREFIX=prefix or "/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=settings.api_max_request_size,
    )
    api = ProblemApi(
        app,
        spec_kwargs={
            "marshmallow_plugin": ProblemDocsPlugin(),
            "info": {
                "description": "Create, search, update, comment and transition the Jira "
                "tickets Ticket Manager manages, and look into its email ledger. Errors are "
                "RFC 9457 problem details (application/problem+json).",
            },
        },
    )
    api.spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tm_<id>_<secret>, or a JWT",
            "description": "An API key from `flask tickets api-key create`, or, where "
            "API_ENTRA_AUDIENCE is set, a Microsoft Entra ID access token for this API.",
        },
    )
    for name, schema in (
        ("TicketCreate", TicketCreateSchema),
        ("TicketCreateForm", TicketCreateFormSchema),
        ("CommentCreate", CommentCreateSchema),
        ("CommentCreateForm", CommentCreateFormSchema),
    ):
        api.spec.components.schema(name, schema=schema)

    # Unusable input is refused first, for every endpoint; then authentication runs before
    # the rate limiter, which counts per authenticated key.
    address_limits.init_app(app, settings)
    app.before_request(refuse_malformed_input)
    app.before_request(_authenticate_api_requests)
    app.after_request(add_security_headers)
    _init_limiter(app, settings)
    for blp in BLUEPRINTS:
        api.register_blueprint(blp, url_prefix=prefix + (blp.url_prefix or ""))
    app.register_blueprint(docs_blueprint, url_prefix=prefix or None)
    if prefix:
        app.add_url_rule("/", "root_to_docs", to_docs)

    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(JiraError, lambda error: problem_response(from_jira_error(error)))
    # The database down is an outage to report (503), not a bug (500): keys cannot be checked.
    app.register_error_handler(
        sqlalchemy.exc.OperationalError,
        lambda _error: problem_response(
            Problem(
                503,
                "database-unavailable",
                "The database is unavailable; try again later.",
                headers={"Retry-After": "30"},
            )
        ),
    )
    app.register_error_handler(
        ConfigError,
        lambda error: problem_response(
            Problem(503, "jira-unavailable", f"The service is not configured: {error.message}.")
        ),
    )
    return api


def _authenticate_api_requests() -> None:
    if request.blueprint in API_BLUEPRINT_NAMES:
        check_access()


def _init_limiter(app: Flask, settings: Settings) -> None:
    if not settings.api_rate_limit:
        return
    limiter = Limiter(
        key_func=_rate_key,
        app=app,
        application_limits=[settings.api_rate_limit],
        application_limits_exempt_when=lambda: g.get("principal") is None,
        storage_uri=settings.api_rate_limit_storage_uri,
        headers_enabled=True,
        swallow_errors=True,
        strategy="moving-window",
    )
    app.extensions[LIMITER_EXTENSION] = limiter


def _rate_key() -> str:
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"ip:{request.remote_addr}"
