"""The operations dashboard: one page, served with its own files, that calls the REST API.

It signs in with an API key (kept in the browser tab's sessionStorage and sent as a bearer
token, so there is no cookie to forge a request with), then shows the status, the mail flow
and the ledger from ``/status``, ``/stats/flow`` and ``/messages``; retrying needs
``messages:write``. A strict Content-Security-Policy allows only the app's own files.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, render_template, url_for

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

blueprint = Blueprint(
    "dashboard",
    __name__,
    static_folder=str(HERE / "static"),
    static_url_path="/dashboard/static",
    template_folder=str(HERE / "templates"),
)


@blueprint.get("/dashboard/")
def page() -> Response:
    """The dashboard page; everything else it needs comes from the API."""
    html = render_template(
        "dashboard.html",
        api_base=url_for("api-docs.openapi_json").rsplit("/", 1)[0],
        static=url_for("dashboard.static", filename=""),
    )
    return Response(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@blueprint.after_request
def _lock_down(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
