"""HTTP plumbing shared by the Jira emulator's route modules: errors, bodies, parameters.

Jira answers failures with an ErrorCollection (``errorMessages`` and ``errors``), insists on
JSON bodies for JSON endpoints (415 otherwise) and takes list parameters either repeated or
comma-separated; every route module needs the same handling.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

API = "/rest/api/<version>"
AGILE = "/rest/agile/1.0"


class JiraError(Exception):
    """Abort a request with Jira's error body: ``{"errorMessages": [...], "errors": {...}}``."""

    def __init__(
        self, status: int, messages: list[str] | None = None, errors: dict | None = None
    ) -> None:
        super().__init__(messages)
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}


def jira_error_response(status: int, messages: list[str], errors: dict | None = None) -> Response:
    """A JSON error response shaped like Jira's ErrorCollection."""
    body = json.dumps({"errorMessages": messages, "errors": errors or {}})
    return Response(body, status=status, mimetype="application/json")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def no_content() -> Response:
    return Response(status=204)


def read_json(*, required: bool = True) -> Any:
    """The JSON request body; 415 for other media types, 400 for malformed JSON."""
    raw = request.get_data(cache=True)
    if not raw and not required:
        return None
    if request.mimetype != "application/json":
        raise JiraError(415, ["Unsupported Media Type"])
    try:
        return json.loads(raw or b"null")
    except ValueError as error:
        raise JiraError(
            400,
            [f"Unexpected character: {error.msg} at [line: {error.lineno}, column: {error.colno}]"],
        ) from error


def int_arg(name: str, default: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        value = default
    else:
        try:
            value = int(raw)
        except ValueError as error:
            raise JiraError(
                400, [f"The value '{raw}' is not valid for the parameter '{name}'."]
            ) from error
    value = max(0, value)
    return min(value, maximum) if maximum is not None else value


def list_arg(name: str) -> list[str]:
    """A list parameter given repeated and/or comma-separated, as Jira accepts it."""
    values: list[str] = []
    for raw in request.args.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def gdpr_reject(cloud: bool, parameter: str) -> None:
    """Cloud refuses username/key parameters since the GDPR migration."""
    if cloud and request.args.get(parameter):
        raise JiraError(
            400, [f"The query parameter '{parameter}' is not supported in GDPR strict mode."]
        )


def route_decorator(app):
    """``@route(rule, methods)``: register a view under its function name."""

    def route(rule: str, methods: tuple[str, ...] = ("GET",)):
        def decorator(view):
            app.add_url_rule(rule, view.__name__, view, methods=list(methods))
            return view

        return decorator

    return route
