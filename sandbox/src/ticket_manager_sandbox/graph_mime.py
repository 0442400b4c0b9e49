"""RFC 822 <-> Microsoft Graph message conversion for the Graph emulator.

Exchange turns every delivered MIME message into a Graph ``message`` resource (and back into
MIME for ``$value`` and outgoing mail). The product reads those resources, so the emulator
performs the same translation as far as it is visible to a client: recipients with names,
html-or-text body, attachments, the raw headers, and the threading headers.
"""

from __future__ import annotations

import base64
import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)
_BLOCK_TAGS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
_HTML_QUOTE_MARKERS = (
    '<div id="appendonsend"',
    '<div id="divRplyFwdMsg"',
    '<div class="gmail_quote',
    "<blockquote",
    "<hr",
)
_TEXT_QUOTE_LINE = re.compile(
    r"^(>|-{3,}\s*Original Message|_{10,}|On .+ wrote:\s*$|From: .+)", re.I
)


class _LenientPolicy(EmailPolicy):
    """The default policy, except that a header CPython's parser fails on reads as raw text.

    Exchange accepts such mail; the structured header parser still raises IndexError or
    HeaderParseError on some malformed values (an odd Message-ID, a broken address).
    """

    def header_fetch_parse(self, name, value):
        try:
            return super().header_fetch_parse(name, value)
        except Exception:  # any parser bug: the raw value is what Exchange would keep
            return decode_words(_unfold(_as_utf8(value)))


_READ_POLICY = _LenientPolicy()
# Attached emails are kept byte for byte: headers written back as they came, never refolded.
_VERBATIM_POLICY = _READ_POLICY.clone(linesep="\r\n", refold_source="none")


def iso(moment: datetime) -> str:
    """Format a datetime the way Graph does: UTC, whole seconds, trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_subject(subject: str) -> str:
    """The conversation topic: the subject without RE:/FW: prefixes."""
    return _REPLY_PREFIX.sub("", subject or "").strip()


def has_reply_prefix(subject: str) -> bool:
    """Whether a subject starts with a reply or forward prefix."""
    return bool(_REPLY_PREFIX.match(subject or ""))


class _TextExtractor(HTMLParser):
    """Collects the visible text of an html document, with line breaks for block elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in {"style", "script", "head", "title"}:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script", "head", "title"}:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def html_to_text(markup: str) -> str:
    """Plain text of an html body, as Exchange produces for outlook.body-content-type=text."""
    extractor = _TextExtractor()
    extractor.feed(markup or "")
    extractor.close()
    text = "".join(extractor.chunks).replace("\xa0", " ")
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    """Wrap a text body in html the way Exchange does when html is requested."""
    escaped = html.escape(text or "").replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "\r\n</head>\r\n<body>\r\n<div>" + escaped + "</div>\r\n</body>\r\n</html>\r\n"
    )


def body_preview(content: str, content_type: str) -> str:
    """The first 255 characters of the body text, whitespace collapsed, like bodyPreview."""
    text = html_to_text(content) if content_type == "html" else (content or "")
    return re.sub(r"\s+", " ", text).strip()[:255]


def unique_part(content: str, content_type: str) -> str:
    """The part of a body that is new in this message: everything before the quoted reply."""
    if content_type == "html":
        inner = content or ""
        match = re.search(r"<body[^>]*>", inner, re.I)
        if match:
            inner = inner[match.end() :]
        inner = re.sub(r"</body>\s*</html>\s*$", "", inner, flags=re.I)
        lowered = inner.lower()
        cuts = [lowered.find(m.lower()) for m in _HTML_QUOTE_MARKERS]
        cut = min([c for c in cuts if c >= 0], default=len(inner))
        return "<html><body>" + inner[:cut].strip() + "</body></html>"
    kept: list[str] = []
    for line in (content or "").splitlines():
        if _TEXT_QUOTE_LINE.match(line.strip()):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def recipients(values: list[str]) -> list[dict]:
    """Graph recipient objects from address header values; the address stands in for no name."""
    result = []
    for name, address in getaddresses(values):
        if not address:
            continue
        name = decode_words(name)
        result.append({"emailAddress": {"name": name or address, "address": address}})
    return result


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded words decoded; as it stands if they are broken."""
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text


def raw_headers(message: Message) -> list[tuple[str, str]]:
    """The headers as transmitted (encoded words left as they are), unfolded, 8-bit as UTF-8.

    This is what Graph's internetMessageHeaders shows, and reading address headers from it
    stays fast where the structured parser takes seconds over 10,000 recipients.
    """
    return [(name, _unfold(_as_utf8(str(value)))) for name, value in message.raw_items()]


def _as_utf8(value: str) -> str:
    """A raw header value whose 8-bit bytes (kept as surrogates by the parser) read as UTF-8."""
    if any("\udc80" <= char <= "\udcff" for char in value):
        return value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return value


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def recipient_header(items: list[dict] | None) -> str:
    """An address header value from Graph recipient objects."""
    parts = []
    for item in items or []:
        address = (item.get("emailAddress") or {}).get("address", "")
        name = (item.get("emailAddress") or {}).get("name") or ""
        if not address:
            continue
        if name and name != address:
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{quoted}" <{address}>')
        else:
            parts.append(address)
    return ", ".join(parts)


def _leaf_parts(root: Message) -> Iterator[Message]:
    """MIME leaves in order, treating an attached message/rfc822 as one leaf.

    Of a multipart/alternative only the version shown is read, as Exchange does: the other
    versions of the same content (text/calendar, Apple's text/watch-html, AMP) are not
    attachments. Walked with a stack, so deep nesting costs no recursion.
    """
    pending = [root]
    while pending:
        part = pending.pop()
        if part.get_content_type() == "message/rfc822" or not part.is_multipart():
            yield part
        else:
            subparts = list(part.iter_parts())
            if part.get_content_type() == "multipart/alternative":
                subparts = _shown_alternative(subparts)
            pending.extend(reversed(subparts))


def _shown_alternative(versions: list[Message]) -> list[Message]:
    """The version of a multipart/alternative a reader sees: the last with HTML, else text.

    RFC 2046 orders alternatives from plainest to richest. With nothing readable, every
    version is kept (as attachments) so that no content is lost.
    """
    readable = [v for v in versions if _has_body(v, ("text/html", "text/plain"))]
    with_html = [v for v in readable if _has_body(v, ("text/html",))]
    chosen = with_html or readable
    return chosen[-1:] if chosen else versions


def _has_body(part: Message, types: tuple[str, ...]) -> bool:
    """Whether ``part`` is, or holds outside any attached message, a body of one of ``types``."""
    pending = [part]
    while pending:
        current = pending.pop()
        if current.get_content_type() == "message/rfc822":
            continue
        if current.is_multipart():
            pending.extend(current.iter_parts())
        elif current.get_content_type() in types and not current.get_filename():
            return True
    return False


def _text_content(part: Message) -> str:
    """A text part's content; an unknown charset is read as UTF-8, else Windows-1252."""
    try:
        return part.get_content()
    except LookupError:
        data = part.get_payload(decode=True) or b""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")


def _importance(message: Message) -> str:
    value = str(message.get("Importance", "") or message.get("X-MSMail-Priority", "")).lower()
    if value in {"high", "low", "normal"}:
        return value
    priority = str(message.get("X-Priority", "")).strip()[:1]
    if priority in {"1", "2"}:
        return "high"
    if priority in {"4", "5"}:
        return "low"
    return "normal"


def _message_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", str(value or ""))


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attachment(part: Message) -> dict:
    disposition = (part.get_content_disposition() or "").lower()
    content_id = str(part.get("Content-ID", "") or "").strip().strip("<>") or None
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0) if part.is_multipart() else None
        data = inner.as_bytes(policy=_VERBATIM_POLICY) if inner is not None else b""
        subject = str(inner.get("Subject", "")) if inner is not None else ""
        name = subject or part.get_filename() or "Untitled"
        return {
            "kind": "item",
            "name": name,
            "contentType": "message/rfc822",
            "bytes": data,
            "isInline": False,
            "contentId": content_id,
        }
    data = part.get_payload(decode=True) or b""
    return {
        "kind": "file",
        "name": part.get_filename() or "attachment",
        "contentType": part.get_content_type(),
        "bytes": data,
        "isInline": bool(content_id) and disposition != "attachment",
        "contentId": content_id,
    }


def _combined_body(parts: list[Message]) -> tuple[str, str]:
    """The body Exchange shows for the inline text parts of a message, in their order.

    One part is the body as it is. Several (Apple Mail puts text, an image, then more text in
    a ``multipart/mixed``) are all shown: text parts joined as text, or, when any is HTML,
    every part as HTML (text escaped, line breaks kept) inside one document.
    """
    if not parts:
        return "text", ""
    if len(parts) == 1:
        kind = "html" if parts[0].get_content_type() == "text/html" else "text"
        return kind, _text_content(parts[0])
    if all(part.get_content_type() == "text/plain" for part in parts):
        return "text", "\r\n".join(_text_content(part).rstrip("\r\n") for part in parts)
    fragments = []
    for part in parts:
        content = _text_content(part)
        if part.get_content_type() == "text/html":
            match = re.search(r"<body[^>]*>(.*?)(?:</body>|$)", content, re.I | re.S)
            fragments.append(match.group(1) if match else content)
        else:
            fragments.append(f"<div>{text_to_html_fragment(content)}</div>")
    return "html", (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "</head><body>" + "".join(fragments) + "</body></html>"
    )


def text_to_html_fragment(text: str) -> str:
    """Plain text as HTML that shows the same lines."""
    return html.escape(text or "").replace("\r\n", "\n").replace("\n", "<br>")


def parse_rfc822(raw: bytes) -> dict:
    """Everything Exchange derives from a MIME message, as plain Python values."""
    message = BytesParser(policy=_READ_POLICY).parsebytes(raw)
    body_parts: list[Message] = []
    attachments: list[dict] = []
    for part in _leaf_parts(message):
        disposition = (part.get_content_disposition() or "").lower()
        is_text = part.get_content_type() in {"text/plain", "text/html"}
        if is_text and not part.get_filename() and disposition != "attachment":
            body_parts.append(part)
        else:
            attachments.append(_attachment(part))
    content_type, content = _combined_body(body_parts)
    references = _message_ids(message.get("References"))
    in_reply_to = _message_ids(message.get("In-Reply-To"))
    parents = references + [m for m in in_reply_to if m not in references]
    headers = raw_headers(message)

    def addresses(name: str) -> list[dict]:
        return recipients([value for key, value in headers if key.lower() == name])

    return {
        "subject": str(message.get("Subject", "") or ""),
        "from": addresses("from"),
        "sender": addresses("sender"),
        "to": addresses("to"),
        "cc": addresses("cc"),
        "bcc": addresses("bcc"),
        "replyTo": addresses("reply-to"),
        "messageId": (_message_ids(message.get("Message-ID")) or [None])[0],
        "parents": parents,
        "threadIndex": str(message.get("Thread-Index", "") or "").strip() or None,
        "date": _parse_date(message.get("Date")),
        "importance": _importance(message),
        "readReceipt": message.get("Disposition-Notification-To") is not None,
        "headers": [{"name": k, "value": v} for k, v in headers],
        "body": {"contentType": content_type, "content": content},
        "attachments": attachments,
    }


def new_message_id(sender_address: str) -> str:
    """An Exchange-looking Message-ID for mail the emulator sends."""
    token = uuid.uuid4().hex.upper()
    domain = sender_address.rpartition("@")[2] or "sandbox.prod.outlook.com"
    return f"<SB1PR01MB{token[:20]}@SB1PR01MB{token[20:24]}.{domain}>"


def child_thread_index(parent_index: str | None) -> str:
    """A Thread-Index for a reply: the parent's index plus a five-byte child block."""
    try:
        parent = base64.b64decode(parent_index or "", validate=True)
    except ValueError:
        parent = b""
    if len(parent) < 22:
        return root_thread_index()
    return base64.b64encode(parent + uuid.uuid4().bytes[:5]).decode("ascii")


def root_thread_index() -> str:
    """A Thread-Index that starts a new conversation (22 bytes: reserved, time, GUID)."""
    filetime = int((datetime.now(UTC).timestamp() + 11644473600) * 10_000_000)
    header = b"\x01" + filetime.to_bytes(8, "big")[:5]
    return base64.b64encode(header + uuid.uuid4().bytes).decode("ascii")


def build_mime(
    *,
    sender: dict,
    to: list[dict] | None,
    cc: list[dict] | None = None,
    reply_to: list[dict] | None = None,
    subject: str,
    body: dict,
    message_id: str,
    date: datetime | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    thread_index: str | None = None,
    importance: str | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
    attachments: list[dict] | None = None,
) -> bytes:
    """A MIME message as Exchange would transmit it; html bodies also get a text alternative.

    An address or Message-ID outside ASCII (an internationalised address, RFC 6531) is sent
    as Exchange Online sends it: with UTF-8 headers (RFC 6532), not encoded words.
    """
    addresses = [sender, *(to or []), *(cc or []), *(reply_to or [])]
    is_international = not message_id.isascii() or any(
        not str((item.get("emailAddress") or {}).get("address", "")).isascii() for item in addresses
    )
    mail = EmailMessage(policy=policy.SMTPUTF8 if is_international else policy.SMTP)
    mail["From"] = recipient_header([sender])
    if to:
        mail["To"] = recipient_header(to)
    if cc:
        mail["Cc"] = recipient_header(cc)
    if reply_to:
        mail["Reply-To"] = recipient_header(reply_to)
    mail["Subject"] = subject or ""
    mail["Date"] = format_datetime(date or datetime.now(UTC))
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = " ".join(references)
    mail["Thread-Topic"] = normalise_subject(subject)
    if thread_index:
        mail["Thread-Index"] = thread_index
    if importance and importance != "normal":
        mail["Importance"] = importance
    for name, value in extra_headers or []:
        mail[name] = value
    content = body.get("content") or ""
    if (body.get("contentType") or "text").lower() == "html":
        mail.set_content(html_to_text(content))
        mail.add_alternative(content, subtype="html")
    else:
        mail.set_content(content)
    for item in attachments or []:
        data = item["bytes"]
        if item.get("contentType") == "message/rfc822":
            inner = BytesParser(policy=policy.default).parsebytes(data)
            mail.add_attachment(inner, filename=item.get("name") or "message.eml")
            continue
        maintype, _, subtype = (item.get("contentType") or "application/octet-stream").partition(
            "/"
        )
        content_id = item.get("contentId")
        mail.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=item.get("name") or "attachment",
            disposition="inline" if item.get("isInline") else "attachment",
            cid=f"<{content_id}>" if content_id else None,
        )
    return mail.as_bytes()
