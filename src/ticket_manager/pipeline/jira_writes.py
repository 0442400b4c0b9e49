"""Writes to Jira that the email pipeline and the REST API make the same way.

Both must survive a retry without doubling anything: a create that drops only the optional
fields a project's screen refuses, and uploads that skip the files already on the issue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from ticket_manager.graph.messages import FileAttachment
from ticket_manager.jira.client import JiraClient, JiraUser
from ticket_manager.jira.errors import JiraError, JiraRejectedError, JiraUnavailableError

log = logging.getLogger("ticket_manager.jira_writes")

# Files go to Jira several to a request, up to this many bytes (a larger file goes alone), so
# that one request stays well inside the request limits of proxies in front of Jira.
UPLOAD_BATCH_BYTES = 10 * 1024 * 1024
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def create_issue(
    jira: JiraClient, fields: dict, properties: dict[str, dict], optional: tuple[str, ...]
) -> str:
    """Create the issue; if Jira refuses only ``optional`` fields, create it without them."""
    try:
        return jira.create_issue(fields, properties)
    except JiraRejectedError as exc:
        refused = [f for f in optional if f in exc.errors and f in fields]
        if not refused:
            raise
        # Fields missing from the create screen (priority, reporter) must not lose the request.
        log.warning("jira refused optional fields", extra={"fields": refused})
        kept = {k: v for k, v in fields.items() if k not in refused}
        return jira.create_issue(kept, properties)


def upload_missing(
    jira: JiraClient,
    key: str,
    attachments: list[FileAttachment],
    watchers: list[JiraUser],
    *,
    fresh: bool = False,
    upload: Callable[[str, list[tuple[str, bytes, str]]], None] | None = None,
) -> None:
    """Upload the files the issue lacks and add the watchers: a retry never uploads twice.

    ``fresh`` says the issue was created by this very call, so it has no files yet and Jira
    need not be asked which it has. ``upload`` sends one batch (default: the platform API;
    a JSM request's files go through its service desk, so the customer sees them).
    """
    upload = upload or jira.add_attachments
    present: set[tuple[str, int]] = set()
    if attachments and not fresh:
        present = jira.attachments_present(key)
    names = {name for name, _size in present}
    batch: list[tuple[str, bytes, str]] = []
    batch_size = 0
    for attachment in attachments:
        if not attachment.content:
            # Jira stores no empty file (the jira package refuses to send one).
            log.info("empty attachment not uploaded", extra={"ticket": key})
            continue
        name = _free_name(attachment, present, names)
        if name is None:
            continue
        if batch and batch_size + attachment.size > UPLOAD_BATCH_BYTES:
            upload(key, batch)
            batch, batch_size = [], 0
        batch.append((name, attachment.content, upload_content_type(attachment.content_type)))
        batch_size += attachment.size
        present.add((name, attachment.size))
        names.add(name)
    if batch:
        upload(key, batch)
    for watcher in watchers:
        try:
            jira.add_watcher(key, watcher)
        except JiraUnavailableError:
            raise
        except JiraError as exc:  # a watcher is a courtesy: it never fails the request
            log.info("watcher not added", extra={"ticket": key, "error": str(exc)})


def upload_content_type(content_type: str) -> str:
    """The email's content type if it is a plain ``type/subtype``, else a neutral one.

    It becomes a header of the multipart request: nothing an email says may add another.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind if _MEDIA_TYPE.fullmatch(kind) else "application/octet-stream"


def _free_name(
    attachment: FileAttachment, present: set[tuple[str, int]], names: set[str]
) -> str | None:
    """The name to upload under, or None when this very file (name and size) is there.

    The same sequence of candidates every time (name, "name (2)", ...), so a retry finds
    the file it uploaded before instead of adding a copy.
    """
    stem, dot, suffix = attachment.name.rpartition(".")
    for n in range(1, 100):
        if n == 1:
            candidate = attachment.name
        elif dot and stem:
            candidate = f"{stem} ({n}).{suffix}"
        else:
            candidate = f"{attachment.name} ({n})"
        if (candidate, attachment.size) in present:
            return None
        if candidate not in names:
            return candidate
    return None
