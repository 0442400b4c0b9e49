"""In-memory mailboxes for the Graph emulator: folders, messages, ids, conversations, delta.

Kept apart from the HTTP layer so the rules that clients depend on (ids that change on move
unless immutable, change keys that change on every update, what a delta round reports) live
in one place. Callers hold the emulator's lock while using these objects.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from ticket_manager_sandbox.graph_mime import (
    body_preview,
    child_thread_index,
    has_reply_prefix,
    iso,
    normalise_subject,
    root_thread_index,
)

WELL_KNOWN_FOLDERS = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "deleteditems": "Deleted Items",
    "archive": "Archive",
    "junkemail": "Junk Email",
    "outbox": "Outbox",
    "conversationhistory": "Conversation History",
}


def _opaque(prefix: str, size: int = 69) -> str:
    return prefix + base64.urlsafe_b64encode(os.urandom(size)).decode("ascii") + "="


def new_rest_id() -> str:
    """A fresh Outlook REST item id (these change when an item moves)."""
    return _opaque("AAMkAD")


def new_immutable_id() -> str:
    """A fresh immutable item id (kept for the life of the item)."""
    return _opaque("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A")


def new_change_key() -> str:
    """A fresh change key; it changes on every modification of an item."""
    return "CQAAABYAAAA" + base64.b64encode(os.urandom(15)).decode("ascii")


@dataclass
class Folder:
    """One mail folder; tombstones remember what left it, for delta rounds."""

    id: str
    display_name: str
    parent_id: str
    well_known: str | None = None
    hidden: bool = False
    tombstones: list[tuple[int, int, str, str]] = field(default_factory=list)


@dataclass
class MailItem:
    """One message with its two ids, MIME source, attachments and change tracking."""

    rest_id: str
    immutable_id: str
    folder_id: str
    props: dict
    mime: bytes
    attachments: list[dict]
    extended: dict[str, str] = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    change_key: str = field(default_factory=new_change_key)
    arrived_seq: int = 0
    changed_seq: int = 0
    # Property name -> the sequence of its last change, so that a delta round can answer an
    # update with only what changed since its token, as Graph does.
    changed_props: dict[str, int] = field(default_factory=dict)


class Mailbox:
    """One user's mailbox; ``seq`` orders every change so delta tokens can point into history."""

    def __init__(
        self, address: str, *, upn: str | None = None, aliases: Iterable[str] = ()
    ) -> None:
        self.address = address
        # In hybrid tenants the sign-in name (UPN) often differs from the primary SMTP address;
        # Graph's /users/{id | userPrincipalName} paths take only the UPN or the object id.
        self.upn = upn or address
        self.aliases = [a for a in aliases if a.lower() != address.lower()]
        # Whether people with Full Access may also send as this mailbox (Send As granted).
        self.send_as = True
        # An unusual state Graph answers for (graph.MAILBOX_CONDITIONS), None when healthy.
        self.condition: str | None = None
        self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailbox:{address.lower()}"))
        local = address.partition("@")[0]
        self.display_name = " ".join(w.capitalize() for w in local.replace("_", ".").split("."))
        self.seq = 0
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, MailItem] = {}
        self._by_message_id: dict[str, str] = {}
        self._by_topic: dict[str, str] = {}
        self._index_by_conversation: dict[str, str] = {}
        self.root = Folder(_opaque("AAMkAD", 30), "Top of Information Store", "", "msgfolderroot")
        self.folders[self.root.id] = self.root
        for key, name in WELL_KNOWN_FOLDERS.items():
            self.add_folder(name, self.root.id, well_known=key)

    @property
    def proxy_addresses(self) -> list[str]:
        """Exchange's proxyAddresses: the primary address as SMTP:, every alias as smtp:."""
        return [f"SMTP:{self.address}", *(f"smtp:{a}" for a in self.aliases)]

    def answers_to(self, address: str) -> bool:
        """Whether mail to ``address`` reaches this mailbox (primary address or an alias)."""
        lowered = address.lower()
        return lowered == self.address.lower() or lowered in {a.lower() for a in self.aliases}

    # -- folders ---------------------------------------------------------------------------

    def add_folder(
        self, name: str, parent_id: str, *, well_known: str | None = None, hidden: bool = False
    ) -> Folder:
        folder = Folder(_opaque("AAMkAD", 30), name, parent_id, well_known, hidden)
        self.folders[folder.id] = folder
        return folder

    def folder(self, key: str) -> Folder | None:
        """A folder by id or by well-known name (case-insensitive), as Graph resolves them."""
        if key in self.folders:
            return self.folders[key]
        lowered = key.lower()
        return next((f for f in self.folders.values() if f.well_known == lowered), None)

    def children(self, folder_id: str) -> list[Folder]:
        return [f for f in self.folders.values() if f.parent_id == folder_id]

    def items_in(self, folder_id: str) -> list[MailItem]:
        return [i for i in self.unique_items() if i.folder_id == folder_id]

    def unique_items(self) -> list[MailItem]:
        seen: dict[int, MailItem] = {}
        for item in self.items.values():
            seen[id(item)] = item
        return list(seen.values())

    def render_folder(self, folder: Folder) -> dict:
        items = self.items_in(folder.id)
        return {
            "id": folder.id,
            "displayName": folder.display_name,
            "parentFolderId": folder.parent_id,
            "childFolderCount": len(self.children(folder.id)),
            "unreadItemCount": sum(1 for i in items if not i.props.get("isRead")),
            "totalItemCount": len(items),
            "sizeInBytes": sum(len(i.mime) for i in items),
            "isHidden": folder.hidden,
        }

    # -- items -----------------------------------------------------------------------------

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def find(self, item_id: str) -> MailItem | None:
        return self.items.get(item_id)

    def add(self, item: MailItem) -> MailItem:
        seq = self.next_seq()
        item.arrived_seq = item.changed_seq = seq
        self.items[item.rest_id] = item
        self.items[item.immutable_id] = item
        return item

    def touch(self, item: MailItem, properties: Iterable[str] = ()) -> None:
        """Record a modification of ``properties``: new change key, time and delta sequence."""
        item.change_key = new_change_key()
        item.modified = datetime.now(UTC)
        item.changed_seq = self.next_seq()
        for name in (*properties, "changeKey", "lastModifiedDateTime"):
            item.changed_props[name] = item.changed_seq

    def move(self, item: MailItem, destination: Folder) -> None:
        """Move an item; like Exchange, its REST id changes, its immutable id does not."""
        self._tombstone(item)
        self.items.pop(item.rest_id, None)
        item.rest_id = new_rest_id()
        self.items[item.rest_id] = item
        item.folder_id = destination.id
        item.change_key = new_change_key()
        item.modified = datetime.now(UTC)
        item.arrived_seq = item.changed_seq = self.next_seq()

    def remove(self, item: MailItem) -> None:
        self._tombstone(item)
        self.items.pop(item.rest_id, None)
        self.items.pop(item.immutable_id, None)

    def _tombstone(self, item: MailItem) -> None:
        folder = self.folders.get(item.folder_id)
        if folder is not None:
            folder.tombstones.append(
                (self.next_seq(), item.arrived_seq, item.rest_id, item.immutable_id)
            )

    # -- conversations ---------------------------------------------------------------------

    def conversation(
        self, message_id: str | None, parents: list[str], subject: str, thread_index: str | None
    ) -> tuple[str, str]:
        """conversationId and conversationIndex for a new item, threading like Exchange."""
        conversation_id = next(
            (self._by_message_id[p] for p in reversed(parents) if p in self._by_message_id), None
        )
        topic = normalise_subject(subject).lower()
        if conversation_id is None and not parents and has_reply_prefix(subject):
            conversation_id = self._by_topic.get(topic)
        if conversation_id is None:
            conversation_id = _opaque("AAQkAD", 45)
        for known in [*parents[:1], message_id]:
            if known:
                self._by_message_id.setdefault(known, conversation_id)
        self._by_topic.setdefault(topic, conversation_id)
        if thread_index:
            index = thread_index
        elif conversation_id in self._index_by_conversation:
            index = child_thread_index(self._index_by_conversation[conversation_id])
        else:
            index = root_thread_index()
        self._index_by_conversation.setdefault(conversation_id, index)
        return conversation_id, index


def web_link(item_id: str) -> str:
    """The Outlook on the web link Graph reports for an item."""
    return (
        f"https://outlook.office365.com/owa/?ItemID={quote(item_id, safe='')}"
        "&exvsurl=1&viewmodel=ReadMessageItem"
    )


def message_props(parsed: dict, *, received: datetime, sender_fallback: list[dict]) -> dict:
    """The Graph properties Exchange derives from a parsed MIME message."""
    sender_list = parsed["sender"] or parsed["from"] or sender_fallback
    from_list = parsed["from"] or sender_list
    sent = parsed["date"] or received
    body = parsed["body"]
    return {
        "receivedDateTime": iso(received),
        "sentDateTime": iso(sent),
        "hasAttachments": any(not a["isInline"] for a in parsed["attachments"]),
        "internetMessageId": parsed["messageId"],
        "subject": parsed["subject"],
        "bodyPreview": body_preview(body["content"], body["contentType"]),
        "importance": parsed["importance"],
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": parsed["readReceipt"],
        "isRead": False,
        "isDraft": False,
        "inferenceClassification": "focused",
        "body": dict(body),
        "sender": sender_list[0] if sender_list else None,
        "from": from_list[0] if from_list else None,
        "toRecipients": parsed["to"],
        "ccRecipients": parsed["cc"],
        "bccRecipients": parsed["bcc"],
        "replyTo": parsed["replyTo"],
        "flag": {"flagStatus": "notFlagged"},
        "categories": [],
        "internetMessageHeaders": parsed["headers"],
    }


def new_attachment(spec: dict) -> dict:
    """An attachment record from what the MIME parser (or a sent message) produced."""
    return {
        "id": _opaque("AAMkAD", 60),
        "kind": spec.get("kind", "file"),
        "name": spec.get("name") or "attachment",
        "contentType": spec.get("contentType") or "application/octet-stream",
        "bytes": spec.get("bytes", b""),
        "isInline": bool(spec.get("isInline")),
        "contentId": spec.get("contentId"),
        "lastModifiedDateTime": iso(datetime.now(UTC)),
    }


def render_attachment(attachment: dict, *, with_content: bool = True) -> dict:
    """An attachment as Graph returns it (fileAttachment or itemAttachment)."""
    if attachment["kind"] == "item":
        return {
            "@odata.type": "#microsoft.graph.itemAttachment",
            "id": attachment["id"],
            "lastModifiedDateTime": attachment["lastModifiedDateTime"],
            "name": attachment["name"],
            "contentType": attachment["contentType"],
            "size": len(attachment["bytes"]),
            "isInline": attachment["isInline"],
        }
    rendered = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "@odata.mediaContentType": attachment["contentType"],
        "id": attachment["id"],
        "lastModifiedDateTime": attachment["lastModifiedDateTime"],
        "name": attachment["name"],
        "contentType": attachment["contentType"],
        "size": len(attachment["bytes"]),
        "isInline": attachment["isInline"],
        "contentId": attachment["contentId"],
        "contentLocation": None,
    }
    if with_content:
        rendered["contentBytes"] = base64.b64encode(attachment["bytes"]).decode("ascii")
    return rendered


def random_token() -> str:
    """An opaque state token for skip and delta links."""
    return secrets.token_urlsafe(24)
