"""Swagger UI, served with its own files (no CDN), and the redirects to it."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, render_template_string, url_for

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
  <div id="swagger-ui"></div>
  <script src="{{ assets }}swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: {{ spec_url | tojson }},
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      validatorUrl: null
    });
  </script>
</body>
</html>
"""


@blueprint.get("/docs")
def swagger_ui() -> str:
    """The interactive documentation."""
    return render_template_string(
        PAGE,
        assets=url_for("docs.static", filename="swagger-ui/"),
        spec_url=url_for("api-docs.openapi_json"),
    )


@blueprint.get("/")
def to_docs() -> Response:
    return redirect(url_for("docs.swagger_ui"))
