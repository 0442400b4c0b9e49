"""Swagger UI, served with its own files (no CDN), and the redirects to it."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, render_template_string, url_for

from ticket_manager.api.security_headers import SWAGGER_UI

STATIC = Path(__file__).parent / "static"

blueprint = Blueprint("docs", __name__, static_folder=str(STATIC), static_url_path="/static")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Ticket Manager API</title>
  <link rel="stylesheet" href="{{ assets }}swagger-ui.css">
  <link rel="icon" type="image/png" href="{{ assets }}favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{{ spec_url }}"></div>
  <script src="{{ assets }}swagger-ui-bundle.js"></script>
  <script src="{{ assets }}ticket-manager-init.js"></script>
</body>
</html>
"""


@blueprint.get("/docs")
def swagger_ui() -> Response:
    """The interactive documentation, under a Content-Security-Policy of its own."""
    html = render_template_string(
        PAGE,
        assets=url_for("docs.static", filename="swagger-ui/"),
        spec_url=url_for("api-docs.openapi_json"),
    )
    return Response(html, headers={"Content-Security-Policy": SWAGGER_UI})


@blueprint.get("/")
def to_docs() -> Response:
    return redirect(url_for("docs.swagger_ui"))
