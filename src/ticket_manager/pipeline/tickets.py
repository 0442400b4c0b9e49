"""Turn an email (and its attachments) into the fields of a new Jira issue."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from ticket_manager.config import Settings
from ticket_manager.content import EmailContent, summary_from_subject, to_adf, to_wiki
from ticket_manager.content.replies import is_forward, new_part_of_reply
from ticket_manager.graph.messages import Address, FileAttachment, MailMessage
from ticket_manager.jira.client import JiraClient, JiraUser

SOURCE_PROPERTY = "ticket-manager.source"
IMPORTANCE_PRIORITY = {"high": "High", "low": "Low"}
MAX_FILENAME = 200
_CATEGORY_TAG = re.compile(r"\[\s*([^\[\]\s]+)\s*\]")


@dataclass
class TicketDraft:
    """Everything needed to create the issue, decided before Jira is called."""

    project_key: str
    fields: dict
    properties: dict[str, dict]
    attachments: list[FileAttachment] = field(default_factory=list)
    watchers: list[JiraUser] = field(default_factory=list)
    optional_fields: tuple[str, ...] = ("priority", "reporter")
    # The description as a document, for a JSM request (whose API takes text, not ADF).
    content: EmailContent | None = None


def category_and_title(subject: str, settings: Settings) -> tuple[str | None, str]:
    """The `[category]` named in the subject (one of the configured ones), and the rest."""
    categories = {c.lower(): c for c in settings.label_categories}
    for match in _CATEGORY_TAG.finditer(subject or ""):
        category = categories.get(match.group(1).lower())
        if category:
            title = (subject[: match.start()] + subject[match.end() :]).strip()
            return category, re.sub(r"\s{2,}", " ", title)
    return settings.default_category, subject or ""


def safe_filename(name: str, taken: set[str]) -> str:
    """A file name without directories or control characters, unique among ``taken``."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip(" .")
    # A double quote goes into the multipart header as %22, which one server decodes and
    # another keeps: an apostrophe is stored the same everywhere, so a retry finds the file.
    base = base.replace('"', "'")
    base = base or "attachment"
    stem, dot, suffix = base.rpartition(".")
    if len(base) > MAX_FILENAME:
        # Keep a short extension: it is what tells Jira and the agent what the file is.
        keep = len(suffix) + 1 if dot and stem and len(suffix) <= 16 else 0
        base = base[: MAX_FILENAME - keep].rstrip(" .") + base[len(base) - keep :]
        stem, dot, suffix = base.rpartition(".")
    candidate, counter = base, 2
    while candidate.lower() in taken:
        candidate = f"{stem} ({counter}).{suffix}" if dot and stem else f"{base} ({counter})"
        counter += 1
    taken.add(candidate.lower())
    return candidate


@dataclass
class CommentDraft:
    """A follow-up email as a comment: the new part of the text, files, new watchers."""

    body: dict | str
    properties: dict[str, dict]
    attachments: list[FileAttachment] = field(default_factory=list)
    watchers: list[JiraUser] = field(default_factory=list)
    content: EmailContent | None = None


def _format_addresses(addresses: tuple[Address, ...]) -> str:
    return ", ".join(f"{a.name} <{a.address}>" if a.name else a.address for a in addresses)


def build_ticket(
    message: MailMessage,
    attachments: list[FileAttachment],
    *,
    settings: Settings,
    jira: JiraClient,
    project_key: str,
    follow_up_of: tuple[str, str] | None = None,
) -> TicketDraft:
    """Decide the issue's fields from the email: summary, description, labels, people, files."""
    category, title = category_and_title(message.subject, settings)
    uploads, oversized, inline_images = _prepare_files(attachments, settings)

    sender = message.from_ or message.sender
    header = [("From", _format_addresses((sender,)) if sender else "(unknown)")]
    if follow_up_of:
        key, why = follow_up_of
        if why == "deleted":
            header.insert(0, ("Follows", f"{key}, which no longer exists in Jira"))
        else:
            header.insert(0, ("Refers to", f"{key} (the sender is not one of its participants)"))
    if message.to:
        header.append(("To", _format_addresses(message.to)))
    if message.cc:
        header.append(("Cc", _format_addresses(message.cc)))
    if message.received_at:
        header.append(("Received", message.received_at.strftime("%Y-%m-%d %H:%M UTC")))
    content = EmailContent.from_email(
        body=message.body,
        body_type=message.body_type,
        header=header,
        inline_images=inline_images,
        oversized=oversized,
    )

    labels = list(dict.fromkeys([*settings.ticket_labels, *([category] if category else [])]))
    fields: dict = {
        "project": {"key": project_key},
        "issuetype": {"name": settings.ticket_type},
        "summary": summary_from_subject(title),
        "description": to_adf(content) if jira.is_cloud else to_wiki(content),
        "labels": labels,
    }
    priority = IMPORTANCE_PRIORITY.get(message.importance)
    if priority:
        fields["priority"] = {"name": priority}
    reporter = jira.find_user(sender.address) if sender else None
    if reporter is not None:
        fields["reporter"] = jira.user_reference(reporter)

    watchers = watchers_for(jira, [a.address for a in message.cc], settings.max_watchers)

    return TicketDraft(
        project_key=project_key,
        fields=fields,
        properties={
            SOURCE_PROPERTY: {
                "mailbox": message.mailbox.lower(),
                "internetMessageId": message.internet_message_id,
            }
        },
        attachments=uploads,
        watchers=watchers,
        content=content,
    )


def _prepare_files(
    attachments: list[FileAttachment], settings: Settings
) -> tuple[list[FileAttachment], list[tuple[str, int]], dict[str, str]]:
    """Safe names, the files to upload, the oversized ones, and inline images by Content-ID."""
    taken: set[str] = set()
    uploads: list[FileAttachment] = []
    oversized: list[tuple[str, int]] = []
    inline_images: dict[str, str] = {}
    for attachment in attachments:
        name = safe_filename(attachment.name, taken)
        if attachment.size > settings.max_attachment_size:
            oversized.append((name, attachment.size))
            continue
        uploads.append(
            FileAttachment(
                name=name,
                content_type=attachment.content_type,
                content=attachment.content,
                is_inline=attachment.is_inline,
                content_id=attachment.content_id,
            )
        )
        if attachment.content_id:
            inline_images[attachment.content_id] = name
    return uploads, oversized, inline_images


def new_part_of_follow_up(message: MailMessage) -> str:
    """What a follow-up adds: our reading of its body, or Exchange's ``uniqueBody`` if ours saw
    no quote in it.

    Our extractor is preferred (measured on the reply corpus, docs/content.md): Exchange's
    ``uniqueBody`` keeps quotes it does not recognise and cuts forwarded messages. It is used
    only when our extractor found nothing to remove and the email is no forward, since
    Exchange may know an earlier message of the conversation that no marker shows.
    """
    ours = new_part_of_reply(message.body, message.body_type, message.subject)
    unique = message.unique_body
    if ours != message.body or not unique or not unique.strip() or is_forward(message.subject):
        return ours
    return unique


def watchers_for(jira: JiraClient, addresses: list[str], most: int) -> list[JiraUser]:
    """The Jira users among the first ``most`` distinct addresses (EMAIL_MAX_WATCHERS).

    Each address costs a Jira user search: an email with 2,000 Cc addresses must not cost
    2,000 of them. The addresses past the cap still take part in the conversation by email.
    """
    distinct = list(dict.fromkeys(a.strip().lower() for a in addresses if a and a.strip()))
    watchers: list[JiraUser] = []
    for address in distinct[:most]:
        user = jira.find_user(address)
        if user is not None and user not in watchers:
            watchers.append(user)
    return watchers


def build_comment(
    message: MailMessage,
    attachments: list[FileAttachment],
    *,
    settings: Settings,
    jira: JiraClient,
    known_participants: set[str],
    sent_to_customer: bool = False,
) -> CommentDraft:
    """The comment for a follow-up email: who wrote, the new part only, and its files."""
    uploads, oversized, inline_images = _prepare_files(attachments, settings)
    sender = message.from_ or message.sender
    header = [("From", _format_addresses((sender,)) if sender else "(unknown)")]
    if sent_to_customer:
        header = [
            ("Sent to the customer by", _format_addresses((sender,)) if sender else "(staff)"),
            ("To", _format_addresses(message.to)),
        ]
    new_cc = tuple(a for a in message.cc if a.address.lower() not in known_participants)
    if new_cc:
        header.append(("Cc", _format_addresses(new_cc)))
    content = EmailContent.from_email(
        body=new_part_of_follow_up(message),
        body_type=message.body_type,
        header=header,
        inline_images=inline_images,
        oversized=oversized,
    )
    watchers = watchers_for(jira, [a.address for a in new_cc], settings.max_watchers)
    return CommentDraft(
        body=to_adf(content) if jira.is_cloud else to_wiki(content),
        properties={
            SOURCE_PROPERTY: {
                "mailbox": message.mailbox.lower(),
                "internetMessageId": message.internet_message_id,
            }
        },
        attachments=uploads,
        watchers=watchers,
        content=content,
    )
