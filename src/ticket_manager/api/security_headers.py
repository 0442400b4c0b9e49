"""Headers every answer carries, so that no answer can be sniffed, framed or cached wrongly.

Every answer is ``nosniff`` and may not be framed; anything that does not set its own
Content-Security-Policy (the dashboard and Swagger UI do) gets one that allows nothing, which
suits JSON, problem details and the plain-text validation echo alike. API and webhook answers
carry ``Cache-Control: no-store``: they hold tickets and emails that no shared cache should
keep.
"""

from __future__ import annotations

from flask import Response, request

LOCKED_DOWN = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI: its own script and styles (React sets inline styles), its icons as data: URLs.
SWAGGER_UI = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
# Where answers hold data: never stored by a browser or a proxy.
NOT_CACHED_BLUEPRINTS = frozenset(
    {"tickets", "catalog", "messages", "operations", "health", "api-docs"}
    | {"graph_notifications", "jira_webhook"}
)


def add_security_headers(response: Response) -> Response:
    """``after_request`` for the whole app."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Content-Security-Policy", LOCKED_DOWN)
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.blueprint in NOT_CACHED_BLUEPRINTS or request.blueprint is None:
        response.headers["Cache-Control"] = "no-store"
    return response
