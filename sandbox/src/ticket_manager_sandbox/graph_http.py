"""HTTP plumbing shared by the Graph emulator's routes: error and JSON responses, Prefer,
path normalisation, paging, $expand, and the lookups every mail route starts with."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote, urlencode

from flask import Flask, Response, g, request

from ticket_manager_sandbox.graph_mime import iso
from ticket_manager_sandbox.graph_query import GraphQueryError, parse_int_option
from ticket_manager_sandbox.graph_store import Folder, Mailbox, MailItem

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000


JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A Graph error response: {"error": {code, message, innerError}} plus request ids."""
    request_id = g.get("request_id") or str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": g.get("client_request_id") or request_id,
            },
        }
    }
    response = Response(json.dumps(body), status=status, content_type=JSON_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def json_response(body: dict, status: int = 200) -> Response:
    """A Graph JSON success response."""
    return Response(json.dumps(body), status=status, content_type=JSON_CONTENT_TYPE)


def parse_prefer(values: Iterable[str]) -> dict[str, str]:
    """Prefer header preferences, lower-cased names, unquoted values."""
    result: dict[str, str] = {}
    for header in values:
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name:
                result[name.strip().lower()] = value.strip().strip('"')
    return result


class CaseInsensitivePaths:
    """Graph path segments are case-insensitive and accept key syntax: normalise before routing."""

    _SEGMENTS: ClassVar[dict[str, str]] = {
        s.lower(): s
        for s in (
            "users",
            "me",
            "mailFolders",
            "childFolders",
            "messages",
            "attachments",
            "delta",
            "move",
            "reply",
            "replyAll",
            "createReply",
            "createReplyAll",
            "send",
            "sendMail",
            "subscriptions",
            "reauthorize",
            "$value",
            "$batch",
        )
    }

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/v1.0/"):
            parts: list[str] = []
            for segment in path.split("/"):
                keyed = re.fullmatch(r"([A-Za-z]+)\('([^']*)'\)", segment)
                if keyed:
                    parts.extend([self._SEGMENTS.get(keyed[1].lower(), keyed[1]), keyed[2]])
                    continue
                if segment.lower().startswith("microsoft.graph."):
                    segment = segment[len("microsoft.graph.") :]
                if segment.endswith("()"):  # a function called without parameters: delta()
                    segment = segment[:-2]
                parts.append(self._SEGMENTS.get(segment.lower(), segment))
            while "childFolders" in parts and any(parts[parts.index("childFolders") + 1 :]):
                # A child folder is addressable by its own id: mailFolders/{child}/...
                at = parts.index("childFolders")
                parts = parts[: parts.index("mailFolders") + 1] + parts[at + 1 :]
            if "mailFolders" in parts and "messages" in parts:
                at = parts.index("messages")
                if at + 1 < len(parts) and parts[at + 1] not in {"delta", ""}:
                    parts = parts[: parts.index("mailFolders")] + parts[at:]
            environ["PATH_INFO"] = "/".join(parts)
        return self.wsgi_app(environ, start_response)


def not_found() -> GraphQueryError:
    """Exchange's answer for an id that names nothing in the mailbox."""
    return GraphQueryError(
        404, "ErrorItemNotFound", "The specified object was not found in the store."
    )


def action_body() -> dict:
    """An action's JSON parameters, whatever the case of their first letter.

    Graph's documentation writes action parameters in camelCase (``destinationId``); the
    SDKs generated from Graph's metadata send them as the metadata names them, PascalCase
    (``DestinationId``, ``Message``, ``SaveToSentItems``, ``Comment``). Graph takes both.
    """
    return {(k[:1].lower() + k[1:]): v for k, v in json_body().items()}


def action_json() -> dict:
    """As :func:`action_body` for an optional body (an empty reply): {} when there is none."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}
    return {(k[:1].lower() + k[1:]): v for k, v in body.items()}


def json_body() -> dict:
    """The request's JSON object, or Graph's error for an unreadable payload."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise GraphQueryError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and "
            "payload is of valid JSON format.",
        )
    return body


def root_url() -> str:
    """The service root as the client reached it (for @odata.context and links)."""
    return request.host_url + "v1.0/"


def preferences() -> tuple[bool, str | None]:
    """The id format and body type asked for with Prefer, noting them as applied."""
    if "prefs" not in g:
        immutable = g.prefer.get("idtype", "").lower() == "immutableid"
        body_type = g.prefer.get("outlook.body-content-type", "").lower() or None
        if immutable:
            g.applied.append('IdType="ImmutableId"')
        if body_type in {"text", "html"}:
            g.applied.append(f'outlook.body-content-type="{body_type}"')
        else:
            body_type = None
        g.prefs = (immutable, body_type)
    return g.prefs


def page_link(skip: int) -> str:
    """This request's URL with $skip moved on, for @odata.nextLink."""
    args = {k: v for k, v in request.args.items()}
    args["$skip"] = str(skip)
    return request.base_url + "?" + urlencode(args, quote_via=quote, safe="$,'():/")


def paginate(items: list) -> tuple[list, str | None]:
    """One page of ``items`` per $top/$skip (default 10, at most 1000) and the next link."""
    top = parse_int_option("$top", request.args.get("$top"), minimum=1)
    skip = parse_int_option("$skip", request.args.get("$skip")) or 0
    size = min(top or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    chunk = items[skip : skip + size]
    link = page_link(skip + size) if skip + size < len(items) else None
    return chunk, link


def parse_expand(text: str | None) -> tuple[set[str], list[str]]:
    """$expand on messages: attachments and singleValueExtendedProperties($filter=id eq ..)."""
    expand: set[str] = set()
    extended_ids: list[str] = []
    depth, start, parts = 0, 0, []
    for index, char in enumerate(text or ""):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if text:
        parts.append(text[start:])
    for part in parts:
        name = part.split("(", 1)[0].strip()
        if name.lower() == "attachments":
            expand.add("attachments")
        elif name.lower() == "singlevalueextendedproperties":
            expand.add("singleValueExtendedProperties")
            extended_ids += [
                m.replace("''", "'") for m in re.findall(r"id eq '((?:[^']|'')*)'", part, re.I)
            ]
        elif name:
            raise GraphQueryError(
                400,
                "RequestBroker--ParseUri",
                f"Could not find a property named '{name}' on type 'microsoft.graph.message'.",
            )
    return expand, extended_ids


def filter_view(item: MailItem) -> dict:
    """The property values $filter and $orderby see for an item."""
    return {
        **item.props,
        "id": item.rest_id,
        "parentFolderId": item.folder_id,
        "createdDateTime": iso(item.created),
        "lastModifiedDateTime": iso(item.modified),
    }


def mail_route(app: Flask, path: str, methods: tuple[str, ...] = ("GET",)):
    """Register a view under both /v1.0/users/{id|upn}{path} and /v1.0/me{path}."""

    def decorator(view):
        name = view.__name__
        app.add_url_rule(f"/v1.0/users/<user>{path}", name, view, methods=list(methods))
        app.add_url_rule(
            f"/v1.0/me{path}", name, view, methods=list(methods), defaults={"user": "me"}
        )
        return view

    return decorator


def folder_of(box: Mailbox, key: str) -> Folder:
    """A folder by id or well-known name, or 404 ErrorItemNotFound."""
    folder = box.folder(key)
    if folder is None:
        raise not_found()
    return folder


def item_of(box: Mailbox, message_id: str) -> MailItem:
    """A message by REST or immutable id, or 404 ErrorItemNotFound."""
    item = box.find(message_id)
    if item is None:
        raise not_found()
    return item


def render(emu: GraphEmulator, box: Mailbox, item: MailItem, **options) -> dict:
    """A message rendered with this request's Prefer choices (id type, body type)."""
    immutable, body_type = preferences()
    return emu.render_message(box, item, immutable=immutable, body_type=body_type, **options)


def entity(
    emu: GraphEmulator, box: Mailbox, item: MailItem, status: int = 200, **options
) -> Response:
    """A single-message response with its @odata.context."""
    body = {
        "@odata.context": f"{root_url()}$metadata#users('{box.user_id}')/messages/$entity",
        **render(emu, box, item, **options),
    }
    return json_response(body, status)
