"""Our own small type for an email as Graph describes it, so Graph JSON stays in this package."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime

# What a delta page is asked to carry, so that a plain email needs no second request.
MESSAGE_FIELDS = (
    "id",
    "internetMessageId",
    "conversationId",
    "subject",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "replyTo",
    "receivedDateTime",
    "importance",
    "hasAttachments",
    "categories",
    "isRead",
    "body",
    "uniqueBody",
    "internetMessageHeaders",
    "parentFolderId",
)


# RFC 5321: a mailbox address has at most 64 + 1 + 255 characters. Graph passes on whatever a
# header held; a longer one is no address anyone can answer (nor fit the ledger's columns).
MAX_ADDRESS_LENGTH = 320
# RFC 5322: no header line is longer than 998 characters, so no real Message-ID is either.
MAX_MESSAGE_ID_LENGTH = 998


@dataclass(frozen=True)
class Address:
    """An email address with its display name."""

    address: str
    name: str = ""

    @classmethod
    def from_graph(cls, recipient: dict | None) -> Address | None:
        email = (recipient or {}).get("emailAddress") or {}
        address = email.get("address") or ""
        if not address or len(address) > MAX_ADDRESS_LENGTH:
            return None
        return cls(address=address, name=email.get("name") or "")


@dataclass(frozen=True)
class MailMessage:
    """An email in a monitored mailbox, with what the pipeline needs to decide and act."""

    mailbox: str
    id: str
    internet_message_id: str
    conversation_id: str | None
    subject: str
    sender: Address | None
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    received_at: datetime | None
    importance: str
    has_attachments: bool
    categories: tuple[str, ...]
    is_read: bool
    body_type: str
    body: str
    unique_body: str | None
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if Graph returned it."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return list(self.headers.get(name.lower(), ()))

    @classmethod
    def from_graph(cls, item: dict, *, mailbox: str) -> MailMessage:
        """Translate one Graph ``message`` resource."""
        headers: dict[str, list[str]] = {}
        for header in item.get("internetMessageHeaders") or []:
            headers.setdefault(header.get("name", "").lower(), []).append(header.get("value", ""))
        body = item.get("body") or {}
        unique = item.get("uniqueBody") or {}
        received = item.get("receivedDateTime")
        return cls(
            mailbox=mailbox,
            id=item["id"],
            internet_message_id=(item.get("internetMessageId") or "")[:MAX_MESSAGE_ID_LENGTH],
            conversation_id=item.get("conversationId"),
            subject=item.get("subject") or "",
            sender=Address.from_graph(item.get("sender")),
            from_=Address.from_graph(item.get("from")),
            to=_addresses(item.get("toRecipients")),
            cc=_addresses(item.get("ccRecipients")),
            reply_to=_addresses(item.get("replyTo")),
            received_at=datetime.fromisoformat(received) if received else None,
            importance=(item.get("importance") or "normal").lower(),
            has_attachments=bool(item.get("hasAttachments")),
            categories=tuple(item.get("categories") or ()),
            is_read=bool(item.get("isRead")),
            body_type=(body.get("contentType") or "text").lower(),
            body=body.get("content") or "",
            unique_body=unique.get("content"),
            headers=headers,
        )


def _addresses(recipients: list[dict] | None) -> tuple[Address, ...]:
    found = (Address.from_graph(r) for r in recipients or [])
    return tuple(a for a in found if a is not None)


@dataclass(frozen=True)
class FileAttachment:
    """An attachment's bytes and how the email presented it."""

    name: str
    content_type: str
    content: bytes
    is_inline: bool = False
    content_id: str | None = None
    # Set when the content was not downloaded (larger than could be uploaded): Graph's size.
    declared_size: int | None = None

    @property
    def size(self) -> int:
        return len(self.content) if self.declared_size is None else self.declared_size

    @classmethod
    def from_graph(cls, item: dict) -> FileAttachment | None:
        """A ``fileAttachment``; None for other kinds (item and reference attachments)."""
        if not item.get("@odata.type", "").endswith("fileAttachment"):
            return None
        return cls(
            name=item.get("name") or "attachment",
            content_type=item.get("contentType") or "application/octet-stream",
            content=base64.b64decode(item.get("contentBytes") or ""),
            is_inline=bool(item.get("isInline")),
            content_id=(item.get("contentId") or "").strip("<>") or None,
        )

    @classmethod
    def from_listing(cls, item: dict, content: bytes) -> FileAttachment:
        """A file whose raw bytes were fetched apart from its listed properties."""
        return cls(
            name=item.get("name") or "attachment",
            content_type=item.get("contentType") or "application/octet-stream",
            content=content,
            is_inline=bool(item.get("isInline")),
        )

    @classmethod
    def not_downloaded(cls, item: dict, size: int) -> FileAttachment:
        """A file too large to upload: its name and size, for the description to list."""
        return cls(
            name=item.get("name") or "attachment",
            content_type=item.get("contentType") or "application/octet-stream",
            content=b"",
            is_inline=bool(item.get("isInline")),
            declared_size=size,
        )

    @classmethod
    def from_item(cls, item: dict, raw: bytes) -> FileAttachment:
        """An attached Outlook item (``itemAttachment``) as the file its ``$value`` is.

        Graph gives an attached email as MIME (.eml), an event as iCalendar (.ics) and a
        contact as vCard (.vcf); the listing does not say which, the content does.
        """
        # Exchange names an attached item after its subject, which is no path: "3/2024" stays.
        name = (item.get("name") or "message").replace("/", "_").replace("\\", "_").rstrip(".")
        head = raw.lstrip()[:64].upper()
        if head.startswith(b"BEGIN:VCALENDAR"):
            return cls(name=f"{name}.ics", content_type="text/calendar", content=raw)
        if head.startswith(b"BEGIN:VCARD"):
            return cls(name=f"{name}.vcf", content_type="text/vcard", content=raw)
        return cls(name=f"{name}.eml", content_type="message/rfc822", content=raw)
