"""Outgoing mail for the Graph emulator: reply, replyAll, drafts, send and sendMail.

The product answers customers by replying through Graph; what matters to it (and to tests)
is what Exchange would put on the wire: recipients, RE: subject, quoted body, threading
headers, custom x- headers, and a copy in Sent Items. Recipients that are emulated mailboxes
receive the MIME in their inbox so both sides of a conversation can be tested.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from typing import TYPE_CHECKING

from ticket_manager_sandbox.graph_mime import (
    build_mime,
    new_message_id,
    parse_rfc822,
    recipient_header,
)
from ticket_manager_sandbox.graph_query import GraphQueryError
from ticket_manager_sandbox.graph_store import Mailbox, MailItem

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

_IMPORTANCE = {"low", "normal", "high"}


def _invalid_recipients(detail: str) -> GraphQueryError:
    return GraphQueryError(
        400, "ErrorInvalidRecipients", f"At least one recipient is not valid., {detail}"
    )


def parse_recipients(value: object, field: str) -> list[dict] | None:
    """Validate a recipient collection from a request body; None when absent."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise GraphQueryError(
            400, "RequestBodyRead", f"Cannot read the value of '{field}': expected a collection."
        )
    result = []
    for entry in value:
        address = (
            ((entry or {}).get("emailAddress") or {}).get("address")
            if isinstance(entry, dict)
            else None
        )
        if not isinstance(address, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
            raise _invalid_recipients(
                f"Recipient '{address}' is not resolved. All recipients must be resolved "
                "before a message can be submitted."
            )
        name = (entry.get("emailAddress") or {}).get("name") or address
        result.append({"emailAddress": {"name": name, "address": address}})
    return result


def parse_headers(value: object) -> list[tuple[str, str]]:
    """Custom internetMessageHeaders; Graph accepts only names starting with x-."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise GraphQueryError(
            400, "RequestBodyRead", "Cannot read the value of 'internetMessageHeaders'."
        )
    headers = []
    for entry in value:
        name = str((entry or {}).get("name") or "")
        if not name.lower().startswith("x-"):
            raise GraphQueryError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        headers.append((name, str(entry.get("value") or "")))
    return headers


def parse_attachments(value: object) -> list[dict]:
    """fileAttachment objects from a request body, decoded."""
    specs = []
    for entry in value or []:
        if not isinstance(entry, dict):
            continue
        odata_type = str(entry.get("@odata.type") or "").lower()
        if odata_type and odata_type != "#microsoft.graph.fileattachment":
            raise GraphQueryError(
                400, "ErrorInvalidParameter", "Only fileAttachment can be created here."
            )
        try:
            data = base64.b64decode(entry.get("contentBytes") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GraphQueryError(
                400, "RequestBodyRead", "Cannot convert contentBytes to Edm.Binary."
            ) from exc
        specs.append(
            {
                "kind": "file",
                "name": entry.get("name") or "attachment",
                "contentType": entry.get("contentType") or "application/octet-stream",
                "bytes": data,
                "isInline": bool(entry.get("isInline")),
                "contentId": entry.get("contentId"),
            }
        )
    return specs


def outgoing_from_json(message: dict) -> dict:
    """The parts of a Graph message body that matter for sending, validated."""
    if not isinstance(message, dict):
        raise GraphQueryError(400, "RequestBodyRead", "Cannot read the value of 'message'.")
    body = message.get("body") or {}
    content_type = str(body.get("contentType") or "text").lower()
    importance = str(message.get("importance") or "normal").lower()
    if importance not in _IMPORTANCE:
        raise GraphQueryError(
            400, "RequestBodyRead", f"The value '{importance}' is not valid for importance."
        )
    return {
        "subject": message.get("subject"),
        "body": {
            "contentType": "html" if content_type == "html" else "text",
            "content": body.get("content") or "",
        }
        if body
        else None,
        "to": parse_recipients(message.get("toRecipients"), "toRecipients"),
        "cc": parse_recipients(message.get("ccRecipients"), "ccRecipients"),
        "bcc": parse_recipients(message.get("bccRecipients"), "bccRecipients"),
        "replyTo": parse_recipients(message.get("replyTo"), "replyTo"),
        "importance": importance,
        "headers": parse_headers(message.get("internetMessageHeaders")),
        "attachments": parse_attachments(message.get("attachments")),
        # Settable when a draft is created (message resource: internetMessageId), kept on send.
        "message_id": message.get("internetMessageId") or None,
    }


def mime_request_body(data: bytes) -> bytes:
    """The MIME message of a text/plain request (base64, as Graph requires), or Graph's error."""
    compact = b"".join(data.split())
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid_mime() from exc
    if not compact or b":" not in raw.split(b"\n", 1)[0]:
        raise _invalid_mime()
    return raw


def _invalid_mime() -> GraphQueryError:
    return GraphQueryError(
        400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
    )


def outgoing_from_mime(raw: bytes) -> dict:
    """The outgoing message a base64 MIME request body describes (sendMail, reply, drafts)."""
    parsed = parse_rfc822(raw)
    standard = {"from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id"}
    extra = [
        (h["name"], h["value"])
        for h in parsed["headers"]
        if h["name"].lower().startswith("x-") and h["name"].lower() not in standard
    ]
    return {
        "subject": parsed["subject"],
        "body": parsed["body"],
        "to": parsed["to"],
        "cc": parsed["cc"],
        "bcc": parsed["bcc"],
        "replyTo": parsed["replyTo"],
        "importance": parsed["importance"],
        "headers": extra,
        "attachments": parsed["attachments"],
    }


def _body_inner_html(body: dict) -> str:
    if body["contentType"] == "html":
        content = body["content"]
        match = re.search(r"<body[^>]*>(.*)</body>", content, re.I | re.S)
        return match.group(1) if match else content
    return "<div>" + html.escape(body["content"]).replace("\n", "<br>") + "</div>"


def _quoted_body(item: MailItem, introduction: str) -> dict:
    """Exchange's reply body: the new text, a separator, a header block, the original."""
    p = item.props
    sender = recipient_header([p["from"]] if p.get("from") else [])
    block = (
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        'style="font-size:11pt" color="#000000">'
        f"<b>From:</b> {html.escape(sender)}<br>"
        f"<b>Sent:</b> {html.escape(p['sentDateTime'])}<br>"
        f"<b>To:</b> {html.escape(recipient_header(p['toRecipients']))}<br>"
        f"<b>Subject:</b> {html.escape(p['subject'] or '')}</font><div>&nbsp;</div></div>"
    )
    content = (
        '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "</head><body>" + introduction + block + _body_inner_html(p["body"]) + "</body></html>"
    )
    return {"contentType": "html", "content": content}


def reply_outgoing(
    box: Mailbox,
    item: MailItem,
    payload: dict,
    *,
    reply_all: bool,
    mime: dict | None = None,
) -> dict:
    """The outgoing message for reply/replyAll/createReply*, with threading information.

    ``mime`` is a message given as base64 MIME instead of JSON: its subject and body are sent
    as they are, to the recipients Exchange picks from the original message.
    """
    payload = payload or {}
    comment = payload.get("comment")
    message = outgoing_from_json(payload.get("message") or {})
    if comment and message["body"] and message["body"]["content"]:
        raise GraphQueryError(
            400,
            "ErrorInvalidRequest",
            "The comment and the body of the message cannot both be specified.",
        )
    p = item.props
    own = box.address.lower()
    to = p["replyTo"] or ([p["from"]] if p.get("from") else [])
    cc: list[dict] = []
    if reply_all:
        to = to + [r for r in p["toRecipients"] if r["emailAddress"]["address"].lower() != own]
        cc = [r for r in p["ccRecipients"] if r["emailAddress"]["address"].lower() != own]
    if comment:
        introduction = "<div>" + html.escape(str(comment)).replace("\n", "<br>") + "</div>"
    elif message["body"]:
        introduction = _body_inner_html(message["body"])
    else:
        introduction = ""
    parents = list(item.context.get("parents") or [])
    original_id = p["internetMessageId"]
    references = (
        [*[r for r in parents if r != original_id], original_id] if original_id else parents
    )
    if mime is not None:
        return {
            **mime,
            "subject": mime["subject"] or f"RE: {p['subject'] or ''}",
            "to": to,
            "cc": cc,
            "in_reply_to": original_id,
            "references": references,
            "thread_index_parent": p["conversationIndex"],
        }
    return {
        "subject": message["subject"] or f"RE: {p['subject'] or ''}",
        "body": _quoted_body(item, introduction),
        "to": message["to"] if message["to"] is not None else to,
        "cc": message["cc"] if message["cc"] is not None else cc,
        "bcc": message["bcc"] or [],
        "replyTo": message["replyTo"] or [],
        "importance": message["importance"],
        "headers": message["headers"],
        "attachments": message["attachments"],
        "in_reply_to": original_id,
        "references": references,
        "thread_index_parent": p["conversationIndex"],
    }


def _mime_for(box: Mailbox, outgoing: dict, message_id: str) -> bytes:
    from ticket_manager_sandbox.graph_mime import child_thread_index

    parent_index = outgoing.get("thread_index_parent")
    return build_mime(
        sender={"emailAddress": {"name": box.display_name, "address": box.address}},
        to=outgoing.get("to") or [],
        cc=outgoing.get("cc") or [],
        reply_to=outgoing.get("replyTo") or [],
        subject=outgoing.get("subject") or "",
        body=outgoing.get("body") or {"contentType": "text", "content": ""},
        message_id=message_id,
        in_reply_to=outgoing.get("in_reply_to"),
        references=outgoing.get("references"),
        thread_index=child_thread_index(parent_index) if parent_index else None,
        importance=outgoing.get("importance"),
        extra_headers=outgoing.get("headers"),
        attachments=outgoing.get("attachments"),
    )


def save_draft(emu: GraphEmulator, box: Mailbox, outgoing: dict) -> MailItem:
    """Store an unsent message in Drafts, remembering how to thread it when sent."""
    raw = _mime_for(box, outgoing, outgoing.get("message_id") or new_message_id(box.address))
    item = emu.store_mime(
        box,
        box.folder("drafts"),
        raw,
        is_read=True,
        is_draft=True,
        extra_bcc=outgoing.get("bcc") or [],
    )
    item.context.update(
        {
            "in_reply_to": outgoing.get("in_reply_to"),
            "references": outgoing.get("references"),
            "thread_index_parent": outgoing.get("thread_index_parent"),
            "headers": outgoing.get("headers") or [],
        }
    )
    return item


def outgoing_from_draft(item: MailItem) -> dict:
    """What a draft will send: its current properties plus the threading it was created with."""
    p = item.props
    return {
        "subject": p["subject"],
        "body": dict(p["body"]),
        "to": p["toRecipients"],
        "cc": p["ccRecipients"],
        "bcc": p["bccRecipients"],
        "replyTo": p["replyTo"],
        "importance": p["importance"],
        "headers": item.context.get("headers") or [],
        "attachments": [dict(a) for a in item.attachments],
        "in_reply_to": item.context.get("in_reply_to"),
        "references": item.context.get("references"),
        "thread_index_parent": item.context.get("thread_index_parent"),
        # Exchange sends a draft with the Message-ID it was given when it was created.
        "message_id": p.get("internetMessageId"),
    }


def transmit(emu: GraphEmulator, box: Mailbox, outgoing: dict, *, save: bool = True) -> dict:
    """Send: keep a copy in Sent Items (if asked), log it, deliver to emulated recipients."""
    everyone = (outgoing.get("to") or []) + (outgoing.get("cc") or []) + (outgoing.get("bcc") or [])
    if not everyone:
        raise _invalid_recipients("A message can't be sent because it contains no recipients.")
    raw = _mime_for(box, outgoing, outgoing.get("message_id") or new_message_id(box.address))
    holder = box if save else Mailbox(box.address)
    item = emu.store_mime(
        holder,
        holder.folder("sentitems"),
        raw,
        is_read=True,
        extra_bcc=outgoing.get("bcc") or [],
        notify=save,
    )
    sent = emu.render_message(holder, item, full=True)
    # What went out carries its headers, even though the Sent Items copy keeps none.
    sent["internetMessageHeaders"] = [dict(h) for h in parse_rfc822(raw)["headers"]]
    emu.record_sent(box, sent)
    delivered: set[str] = set()
    for recipient in everyone:
        address = recipient["emailAddress"]["address"].lower()
        if address in delivered:
            continue
        delivered.add(address)
        try:
            target = emu.mailbox(address)
        except KeyError:
            continue
        emu.store_mime(target, target.folder("inbox"), raw)
    return sent
