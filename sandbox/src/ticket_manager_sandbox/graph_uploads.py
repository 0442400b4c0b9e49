"""Graph emulator: the size limits of mail requests, and upload sessions for large attachments.

Exchange refuses what the product must plan around: any Graph request body over 4 MB, a file
attachment POSTed in one request from 3 MB up ("under 3 MB", ``message-post-attachments``),
and an upload session for a file under 3 MB or over 150 MB (``attachment-createuploadsession``).
Between 3 MB and 150 MB a file goes through ``createUploadSession`` and ``PUT``s of byte ranges,
in order, each under 4 MB, to a pre-authenticated ``uploadUrl`` that refuses an
``Authorization`` header; the last ``PUT`` answers 201 with the attachment's ``Location``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from flask import Response, request

from ticket_manager_sandbox.graph_http import (
    graph_error,
    item_of,
    json_body,
    json_response,
    mail_route,
    root_url,
)
from ticket_manager_sandbox.graph_mime import iso
from ticket_manager_sandbox.graph_query import GraphQueryError
from ticket_manager_sandbox.graph_store import new_attachment

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

MAX_REQUEST_BYTES = 4 * 1024 * 1024
# "Under 3 MB" for one POST, "between 3 MB and 150 MB" for a session (decimal megabytes).
MAX_POSTED_ATTACHMENT = 3_000_000
MAX_SESSION_ATTACHMENT = 150_000_000
SESSION_LIFETIME = timedelta(hours=2)
UPLOAD_PREFIX = "/outlook/api/v2.0/AttachmentSessions"
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


@dataclass
class UploadSession:
    """A file being uploaded to a message: where it goes and the bytes received so far."""

    mailbox: str
    message_id: str
    name: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None
    token: str
    expires: datetime
    received: bytearray = field(default_factory=bytearray)


def too_large_request() -> GraphQueryError:
    return GraphQueryError(413, "BadRequest", "The maximum request length supported is 4MB.")


def check_posted_attachment(data: bytes) -> None:
    """A file attachment POSTed in one request must be under 3 MB."""
    if len(data) >= MAX_POSTED_ATTACHMENT:
        raise GraphQueryError(
            413,
            "ErrorAttachmentSizeShouldNotBeGreaterThanMaximumSize",
            "The attachment is too large to be added in one request: use an upload session "
            "(attachment: createUploadSession) for files of 3 MB or more.",
        )


def register_upload_routes(emu: GraphEmulator) -> None:
    """The 4 MB request cap, ``createUploadSession`` and the upload URL's PUT and DELETE."""
    app = emu.app
    sessions: dict[str, UploadSession] = {}
    emu.upload_sessions = sessions

    @app.before_request
    def _cap_request_size():
        if request.path.startswith("/_sandbox/"):
            return None
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            error = too_large_request()
            return graph_error(error.status, error.code, error.message)
        return None

    @mail_route(app, "/messages/<message_id>/attachments/createUploadSession", ("POST",))
    def create_upload_session(user, message_id):
        item_spec = json_body().get("AttachmentItem") or json_body().get("attachmentItem")
        if not isinstance(item_spec, dict) or not item_spec.get("name"):
            raise GraphQueryError(
                400,
                "ErrorInvalidParameter",
                "The value of the parameter 'AttachmentItem' is empty.",
            )
        if str(item_spec.get("attachmentType") or "file").lower() != "file":
            raise GraphQueryError(400, "ErrorInvalidParameter", "Only file attachments.")
        size = item_spec.get("size")
        if not isinstance(size, int) or size < 0:
            raise GraphQueryError(400, "ErrorInvalidParameter", "The size is required.")
        if size < MAX_POSTED_ATTACHMENT:
            raise GraphQueryError(
                400,
                "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                "Attachment size must be greater than the minimum size.",
            )
        if size > MAX_SESSION_ATTACHMENT:
            raise GraphQueryError(
                400,
                "ErrorAttachmentSizeShouldNotBeGreaterThanMaximumSize",
                "Attachment size must be less than the maximum size.",
            )
        with emu.lock:
            box = emu.authorize(user, "write")
            item_of(box, message_id)
            session_id = secrets.token_urlsafe(24)
            session = UploadSession(
                mailbox=box.address,
                message_id=message_id,
                name=str(item_spec["name"]),
                content_type=str(item_spec.get("contentType") or "application/octet-stream"),
                size=size,
                is_inline=bool(item_spec.get("isInline")),
                content_id=item_spec.get("contentId"),
                token=secrets.token_urlsafe(32),
                expires=datetime.now(UTC) + SESSION_LIFETIME,
            )
            sessions[session_id] = session
        upload_url = (
            f"{request.host_url.rstrip('/')}{UPLOAD_PREFIX}/{session_id}?authtoken={session.token}"
        )
        return json_response(
            {
                "@odata.context": f"{root_url()}$metadata#microsoft.graph.uploadSession",
                "uploadUrl": upload_url,
                "expirationDateTime": iso(session.expires),
                "nextExpectedRanges": ["0-"],
            },
            201,
        )

    def session_of(session_id: str) -> UploadSession:
        session = sessions.get(session_id)
        token = request.args.get("authtoken") or ""
        if session is None or not secrets.compare_digest(token, session.token):
            raise GraphQueryError(404, "ErrorItemNotFound", "The upload session was not found.")
        if request.headers.get("Authorization"):
            # The URL carries its own token: Exchange refuses a bearer token beside it.
            raise GraphQueryError(
                401,
                "InvalidAuthenticationToken",
                "Do not send an Authorization header to a pre-authenticated upload URL.",
            )
        if datetime.now(UTC) > session.expires:
            sessions.pop(session_id, None)
            raise GraphQueryError(404, "ErrorItemNotFound", "The upload session has expired.")
        return session

    @app.route(f"{UPLOAD_PREFIX}/<session_id>", methods=["PUT", "DELETE"])
    def upload_range(session_id):
        session = session_of(session_id)
        if request.method == "DELETE":
            sessions.pop(session_id, None)
            return Response(status=204)
        match = _RANGE.match(request.headers.get("Content-Range", "").strip())
        data = request.get_data()
        if match is None:
            raise GraphQueryError(400, "InvalidContentRange", "The Content-Range is not valid.")
        start, end, total = (int(v) for v in match.groups())
        if total != session.size or end < start or end >= total or end - start + 1 != len(data):
            raise GraphQueryError(400, "InvalidContentRange", "The Content-Range is not valid.")
        with emu.lock:
            if start != len(session.received):
                # Bytes must come in order, from the next expected one.
                return json_response(
                    {
                        "error": {
                            "code": "InvalidRange",
                            "message": "The range does not start at the next expected byte.",
                        },
                        "nextExpectedRanges": [f"{len(session.received)}"],
                    },
                    416,
                )
            session.received.extend(data)
            if len(session.received) < session.size:
                return json_response(
                    {
                        "@odata.context": f"{request.host_url}$metadata#AttachmentSessions/$entity",
                        "expirationDateTime": iso(session.expires),
                        "nextExpectedRanges": [f"{len(session.received)}"],
                    }
                )
            sessions.pop(session_id, None)
            box = emu.mailbox(session.mailbox)
            item = item_of(box, session.message_id)
            added = new_attachment(
                {
                    "kind": "file",
                    "name": session.name,
                    "contentType": session.content_type,
                    "bytes": bytes(session.received),
                    "isInline": session.is_inline,
                    "contentId": session.content_id,
                }
            )
            item.attachments.append(added)
            item.props["hasAttachments"] = any(not a["isInline"] for a in item.attachments)
            box.touch(item)
        location = (
            f"{request.host_url.rstrip('/')}/outlook/api/v2.0/Users('{session.mailbox}')"
            f"/Messages('{session.message_id}')/Attachments('{added['id']}')"
        )
        return Response(status=201, headers={"Location": location})
