"""A thin Microsoft Graph client: one ``_request`` for auth, retries and error mapping.

Throttling (429) and outages (503, 504, timeouts, resets) are retried with the wait Graph
asks for in ``Retry-After``, or an exponential back-off when it gives none; other errors
map to the exceptions of :mod:`ticket_manager.graph.errors` at once.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, retry_if_exception_type

from ticket_manager.counters import count_graph_requests, count_graph_retry
from ticket_manager.graph.errors import (
    NEXT_STEPS,
    DeltaTokenExpiredError,
    GraphAuthError,
    GraphError,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRequestError,
    GraphUnavailableError,
)
from ticket_manager.graph.memory import AttachmentMemory
from ticket_manager.graph.messages import MESSAGE_FIELDS, FileAttachment, MailMessage
from ticket_manager.graph.pacing import MailboxPacer
from ticket_manager.http import DEFAULT_TIMEOUT, retry_after_seconds

log = logging.getLogger("ticket_manager.graph")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Exchange Online answers 429 (MailboxConcurrency) past 4 concurrent requests per mailbox.
MAX_CONCURRENT_PER_MAILBOX = 4
_MAILBOX_IN_PATH = re.compile(r"/users/([^/?]+)", re.IGNORECASE)
MAX_RETRY_AFTER = 300.0
# How long, and how many times, one call waits out 429s that carry a Retry-After: one window
# of Outlook's per-mailbox quota (10,000 requests in 10 minutes).
THROTTLE_BUDGET = 600.0
THROTTLED_ATTEMPTS = 100
# Attachments are listed by these properties of Graph's attachment type first (no content).
ATTACHMENT_METADATA = "id,name,contentType,size,isInline"
# Files up to this many bytes in all come in one listing with their content; a larger file is
# fetched raw. Graph's ``size`` is a little above the file's own: the slack keeps a file at
# exactly the upload limit from being mistaken for a larger one.
SMALL_FILES_BYTES = 4 * 1024 * 1024
SIZE_SLACK = 64 * 1024
# Graph takes a file in one POST only "under 3 MB"; from 3 MB to 150 MB it goes through an
# upload session, in ranges under the 4 MB that any one request may carry.
MAX_POSTED_ATTACHMENT = 3_000_000
MAX_UPLOADED_ATTACHMENT = 150_000_000
UPLOAD_RANGE_BYTES = 12 * 320 * 1024
# Codes with which Graph says a delta token is spent (410 for mail, 400 for some resources).
DELTA_RESTART_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


@dataclass
class DeltaPage:
    """One page of a delta query: new messages, removed and updated ids, where to go next."""

    messages: list[MailMessage] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)
    next_link: str | None = None
    delta_link: str | None = None


@dataclass(frozen=True)
class MailboxIdentity:
    """A monitored mailbox as the directory knows it: what MAILBOX said, and what it is.

    ``id`` is the object id every path uses; ``addresses`` are every address of the mailbox
    (primary SMTP, proxy addresses, UPN), lower-cased, all of them "our own" to the rules.
    ``note`` says why the mailbox could not be resolved, when its address is used as it is.
    """

    configured: str
    id: str | None
    user_principal_name: str | None
    mail: str | None
    addresses: frozenset[str]
    note: str | None = None

    @property
    def path_key(self) -> str:
        return self.id or self.configured

    def describe(self) -> str:
        """One line for `flask check`: what the configured address resolved to."""
        if self.id is None:
            return f"used as given ({self.note})"
        aliases = sorted(self.addresses - {(self.mail or "").lower(), self.configured.lower()})
        text = f"user {self.id}, UPN {self.user_principal_name}, primary address {self.mail}"
        return f"{text}, aliases {', '.join(aliases)}" if aliases else text


class GraphClient:
    """Calls Graph v1.0 for one app registration; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        access_token: Callable[[], str],
        session: requests.Session,
        *,
        max_attempts: int = 6,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        pacer: MailboxPacer | None = None,
        memory: AttachmentMemory | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.pacer = pacer
        self.memory = memory
        self._access_token = access_token
        self._session = session
        count_graph_requests(session)
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._sleep = sleep  # how retries wait: a test passes its own to count the waits
        self._mailbox_slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._identities: dict[str, MailboxIdentity] = {}

    # -- mailbox identity ------------------------------------------------------------------

    def resolve_mailbox(self, mailbox: str) -> MailboxIdentity:
        """The mailbox's object id and addresses, looked up once per client.

        MAILBOX may hold the primary SMTP address or the UPN; Graph's paths take only the UPN
        or the object id, and in hybrid tenants the two differ (an SMTP address in the path
        answers ErrorInvalidUser). The direct read is tried first, then a filter on
        proxyAddresses. Without a directory permission (User.Read.All, or a delegated
        sign-in on a shared mailbox) the address is used as given, as before.
        """
        key = mailbox.lower()
        known = self._identities.get(key)
        if known is not None:
            return known
        select = {"$select": "id,userPrincipalName,mail,proxyAddresses"}
        try:
            try:
                user = self._request("GET", f"/users/{quote(mailbox)}", params=select).json()
            except GraphNotFoundError as direct:
                escaped = mailbox.replace("'", "''")
                params = {**select, "$filter": f"proxyAddresses/any(x:x eq 'smtp:{escaped}')"}
                found = self._request("GET", "/users", params=params).json().get("value", [])
                if not found:
                    raise GraphNotFoundError(
                        f"no user of this tenant has the address or UPN {mailbox}: check "
                        f"MAILBOX (the mailbox must be in Exchange Online). {direct}",
                        status=404,
                        code=direct.code,
                        request_id=direct.request_id,
                        date=direct.date,
                    ) from None
                user = found[0]
        except (GraphPermissionError, GraphRequestError) as exc:
            identity = MailboxIdentity(
                mailbox, None, None, None, frozenset({key}), note=f"not resolved: {exc}"
            )
        else:
            identity = _identity_of(mailbox, user)
        self._identities[key] = identity
        return identity

    def own_addresses(self, mailboxes: tuple[str, ...] | list[str]) -> frozenset[str]:
        """Every address of the monitored mailbox(es) resolved so far, and the configured ones."""
        found = {m.lower() for m in mailboxes}
        for mailbox in mailboxes:
            identity = self._identities.get(mailbox.lower())
            if identity is not None:
                found |= identity.addresses
        return frozenset(found)

    def _user(self, mailbox: str) -> str:
        """The path segment of a mailbox: its object id once resolved."""
        return quote(self.resolve_mailbox(mailbox).path_key)

    # -- mail ------------------------------------------------------------------------------

    def get_folder(self, mailbox: str, folder: str = "inbox") -> dict:
        """A mail folder's counts: proves the mailbox exists and Mail.Read reaches it."""
        path = f"/users/{self._user(mailbox)}/mailFolders/{quote(folder)}"
        body = self._request("GET", path).json()
        return {
            "name": body.get("displayName"),
            "total": body.get("totalItemCount"),
            "unread": body.get("unreadItemCount"),
        }

    def delta_pages(
        self,
        mailbox: str,
        *,
        folder: str = "inbox",
        delta_link: str | None = None,
        page_size: int = 50,
        received_since: datetime | None = None,
    ) -> Iterator[DeltaPage]:
        """Walk a delta round: from ``delta_link``, or from scratch, to the next delta link.

        Only created items are asked for (``changeType=created``, kept in the links): our own
        marking of a processed email would otherwise come back as an "updated" item carrying
        only the changed properties, and moves out of the folder or deletions change nothing
        for us (the ledger row keeps the immutable id). A partial item that comes anyway is
        counted in ``updated_ids``, never turned into a message.
        """
        if delta_link:
            url, params = delta_link, None
        else:
            url = f"/users/{self._user(mailbox)}/mailFolders/{quote(folder)}/messages/delta"
            params = {"$select": ",".join(MESSAGE_FIELDS), "changeType": "created"}
            if received_since is not None:
                since = received_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                params["$filter"] = f"receivedDateTime ge {since}"
        prefer = f"odata.maxpagesize={page_size}"
        while url:
            body = self._request("GET", url, params=params, prefer=prefer).json()
            page = DeltaPage(
                next_link=body.get("@odata.nextLink"), delta_link=body.get("@odata.deltaLink")
            )
            for item in body.get("value", []):
                if "@removed" in item:
                    page.removed_ids.append(item["id"])
                elif _is_partial(item):
                    page.updated_ids.append(item["id"])
                else:
                    page.messages.append(MailMessage.from_graph(item, mailbox=mailbox))
            yield page
            url, params = page.next_link, None

    def list_messages(
        self,
        mailbox: str,
        *,
        folder: str = "inbox",
        received_since: datetime | None = None,
        fields: tuple[str, ...] = ("id", "internetMessageId", "receivedDateTime", "subject"),
        page_size: int = 500,
    ) -> Iterator[dict]:
        """Messages of a folder, newest first, as raw Graph items restricted to ``fields``."""
        params: dict[str, str] = {
            "$select": ",".join(fields),
            "$top": str(page_size),
            "$orderby": "receivedDateTime desc",
        }
        if received_since is not None:
            since = received_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params["$filter"] = f"receivedDateTime ge {since}"
        url: str | None = f"/users/{self._user(mailbox)}/mailFolders/{quote(folder)}/messages"
        while url:
            body = self._request("GET", url, params=params).json()
            yield from body.get("value", [])
            url, params = body.get("@odata.nextLink"), None

    def get_message(self, mailbox: str, message_id: str) -> MailMessage:
        """One message with everything the pipeline needs."""
        path = f"/users/{self._user(mailbox)}/messages/{quote(message_id)}"
        params = {"$select": ",".join(MESSAGE_FIELDS)}
        return MailMessage.from_graph(
            self._request("GET", path, params=params).json(), mailbox=mailbox
        )

    def list_attachments(
        self, mailbox: str, message_id: str, *, max_size: int | None = None
    ) -> list[FileAttachment]:
        """The message's file attachments with their content (item attachments as .eml).

        Files are listed first without their content, so that one over ``max_size`` is never
        downloaded (it comes back empty, with its declared size) and a large one is fetched
        raw (``$value``) instead of as base64 inside JSON, at a quarter of the memory. Small
        files, the usual case, then come in one more listing with their content.
        """
        path = f"/users/{self._user(mailbox)}/messages/{quote(message_id)}/attachments"
        listed = self._attachment_pages(path, {"$select": ATTACHMENT_METADATA})
        limit = max_size if max_size is not None else float("inf")
        too_large = {a["id"] for a in listed if _is_file(a) and _declared(a) > limit + SIZE_SLACK}
        wanted = [a for a in listed if _is_file(a) and a["id"] not in too_large]
        if self.memory is not None:
            # Wait for room in the process's budget before holding these files in memory.
            items = [a for a in listed if a.get("@odata.type", "").endswith("itemAttachment")]
            self.memory.reserve(sum(map(_declared, wanted)) + sum(map(_declared, items)))
        contents: dict[str, FileAttachment] = {}
        if wanted and not too_large and sum(map(_declared, wanted)) <= SMALL_FILES_BYTES:
            for item in self._attachment_pages(path, None):
                attachment = FileAttachment.from_graph(item)
                if attachment is not None:
                    contents[item["id"]] = attachment
        found: list[FileAttachment] = []
        for item in listed:
            item_path = f"{path}/{quote(item['id'])}"
            if item.get("@odata.type", "").endswith("itemAttachment"):
                raw = self._request("GET", f"{item_path}/$value").content
                found.append(FileAttachment.from_item(item, raw))
            elif item["id"] in too_large:
                found.append(FileAttachment.not_downloaded(item, _declared(item)))
            elif _is_file(item):
                attachment = contents.get(item["id"]) or self._file_attachment(item, item_path)
                if attachment is not None:
                    found.append(attachment)
        return found

    def _attachment_pages(self, path: str, params: dict | None) -> list[dict]:
        items: list[dict] = []
        url: str | None = path
        while url:
            body = self._request("GET", url, params=params if url == path else None).json()
            items.extend(body.get("value", []))
            url = body.get("@odata.nextLink")
        return items

    def _file_attachment(self, item: dict, item_path: str) -> FileAttachment | None:
        """One file: small ones as JSON (with their Content-ID), large ones as raw bytes."""
        if _declared(item) <= SMALL_FILES_BYTES:
            return FileAttachment.from_graph(self._request("GET", item_path).json())
        raw = self._request("GET", f"{item_path}/$value").content
        return FileAttachment.from_listing(item, raw)

    def mark_message(
        self, mailbox: str, message_id: str, *, categories: list[str], is_read: bool | None
    ) -> None:
        """Set the message's categories (and read flag) so a person sees what happened."""
        body: dict = {"categories": categories}
        if is_read is not None:
            body["isRead"] = is_read
        self._request(
            "PATCH", f"/users/{self._user(mailbox)}/messages/{quote(message_id)}", json=body
        )

    def move_message(self, mailbox: str, message_id: str, folder_id: str) -> str:
        """Move a message; returns its id (unchanged, since ids are immutable).

        Not repeated blindly after a timeout, a reset or a 5xx: the message is looked at first,
        and if it already is in the folder, the move happened.
        """
        path = f"/users/{self._user(mailbox)}/messages/{quote(message_id)}/move"
        body = {"destinationId": folder_id}
        try:
            return self._request("POST", path, json=body, repeatable=False).json()["id"]
        except GraphUnavailableError:
            item_path = f"/users/{self._user(mailbox)}/messages/{quote(message_id)}"
            where = self._request("GET", item_path, params={"$select": "id,parentFolderId"})
            if where.json().get("parentFolderId") == folder_id:
                return where.json()["id"]
            return self._request("POST", path, json=body, repeatable=False).json()["id"]

    def find_folder_id(self, mailbox: str, name: str) -> str | None:
        """The id of a top-level folder by display name (or well-known name), if it exists."""
        try:
            path = f"/users/{self._user(mailbox)}/mailFolders/{quote(name)}"
            return self._request("GET", path).json()["id"]
        except (GraphNotFoundError, GraphRequestError):
            pass
        escaped = name.replace("'", "''")
        params = {"$filter": f"displayName eq '{escaped}'", "$select": "id,displayName"}
        body = self._request(
            "GET", f"/users/{self._user(mailbox)}/mailFolders", params=params
        ).json()
        matches = body.get("value", [])
        return matches[0]["id"] if matches else None

    # -- sending ---------------------------------------------------------------------------

    def create_reply_draft(
        self, mailbox: str, message_id: str, *, reply_all: bool, message: dict
    ) -> Draft:
        """A reply draft to ``message_id`` (threaded by Exchange), with our fields applied.

        Not repeated after a timeout, a reset or a 5xx (Graph may have made it): the caller
        looks for it with :meth:`find_draft` first.
        """
        action = "createReplyAll" if reply_all else "createReply"
        path = f"/users/{self._user(mailbox)}/messages/{quote(message_id)}/{action}"
        response = self._request("POST", path, json={"message": message}, repeatable=False)
        return Draft.from_graph(response.json())

    def create_draft(self, mailbox: str, message: dict) -> Draft:
        """A new draft (when the email to reply to is gone); not repeated, like a reply draft."""
        path = f"/users/{self._user(mailbox)}/messages"
        return Draft.from_graph(self._request("POST", path, json=message, repeatable=False).json())

    def find_draft(self, mailbox: str, header: str, value: str) -> Draft | None:
        """The draft in Drafts that carries ``header: value`` (a create whose answer was lost)."""
        path = f"/users/{self._user(mailbox)}/mailFolders/drafts/messages"
        params = {"$select": "id,internetMessageId,internetMessageHeaders", "$top": "100"}
        url: str | None = path
        while url:
            body = self._request("GET", url, params=params if url == path else None).json()
            for item in body.get("value", []):
                for entry in item.get("internetMessageHeaders") or []:
                    if entry.get("name", "").lower() == header.lower() and (
                        entry.get("value") == value
                    ):
                        return Draft.from_graph(item)
            url = body.get("@odata.nextLink")
        return None

    def attachment_names(self, mailbox: str, draft_id: str) -> set[tuple[str, int]]:
        """(name, size) of the files a draft already carries, so a retry adds only the rest."""
        path = f"/users/{self._user(mailbox)}/messages/{quote(draft_id)}/attachments"
        listed = self._attachment_pages(path, {"$select": "id,name,size"})
        return {(a.get("name") or "", _declared(a)) for a in listed}

    def add_attachment(
        self, mailbox: str, draft_id: str, name: str, content_type: str, content: bytes
    ) -> None:
        """Attach a file to a draft: one POST under 3 MB, an upload session up to 150 MB.

        Neither is repeated after a timeout, a reset or a 5xx (the file may be there already):
        the caller lists the draft's files (:meth:`attachment_names`) before trying again.
        """
        path = f"/users/{self._user(mailbox)}/messages/{quote(draft_id)}/attachments"
        if len(content) < MAX_POSTED_ATTACHMENT:
            body = {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": name,
                "contentType": content_type,
                "contentBytes": base64.b64encode(content).decode("ascii"),
            }
            self._request("POST", path, json=body, repeatable=False)
            return
        if len(content) > MAX_UPLOADED_ATTACHMENT:
            raise GraphRequestError(f"{name} is larger than Graph's 150 MB for an attachment")
        item = {"attachmentType": "file", "name": name, "size": len(content)}
        item["contentType"] = content_type
        session = self._request(
            "POST",
            f"{path}/createUploadSession",
            json={"AttachmentItem": item},
            repeatable=False,
        ).json()
        self._upload(session["uploadUrl"], content)

    def _upload(self, upload_url: str, content: bytes) -> None:
        """PUT the file to an upload session, range after range, where Graph says to go on.

        The URL is pre-authenticated: it gets no Authorization header (Graph refuses one).
        """
        start = 0
        while True:
            end = min(start + UPLOAD_RANGE_BYTES, len(content))
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {start}-{end - 1}/{len(content)}",
            }
            try:
                response = self._session.put(
                    upload_url, data=content[start:end], headers=headers, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                name = exc.__class__.__name__
                raise GraphUnavailableError(f"Graph did not answer an upload: {name}") from exc
            if response.status_code == 201:
                return
            if response.status_code not in (200, 416):
                raise _error_for(response)
            expected = (response.json().get("nextExpectedRanges") or [""])[0]
            next_start = int(expected.split("-")[0] or 0) if expected else end
            if response.status_code == 416 and next_start == start:
                raise _error_for(response)
            start = next_start

    def send_test_mail(self, mailbox: str, to: str) -> None:
        """A short email from the mailbox to ``to``, not kept in Sent Items: proves Send As."""
        message = {
            "subject": "Ticket Manager: sending test",
            "body": {
                "contentType": "text",
                "content": f"This test shows that Ticket Manager can send as {mailbox}.",
            },
            "toRecipients": [{"emailAddress": {"address": to}}],
            "internetMessageHeaders": [{"name": "X-Ticket-Manager", "value": "send-test"}],
        }
        path = f"/users/{self._user(mailbox)}/sendMail"
        self._request("POST", path, json={"message": message, "saveToSentItems": False})

    def send_draft(self, mailbox: str, draft_id: str) -> None:
        self._request("POST", f"/users/{self._user(mailbox)}/messages/{quote(draft_id)}/send")

    def is_draft(self, mailbox: str, message_id: str) -> bool | None:
        """True while still a draft, False once sent, None when it no longer exists."""
        path = f"/users/{self._user(mailbox)}/messages/{quote(message_id)}"
        try:
            body = self._request("GET", path, params={"$select": "id,isDraft"}).json()
        except GraphNotFoundError:
            return None
        return bool(body.get("isDraft"))

    # -- change notifications --------------------------------------------------------------

    def create_subscription(
        self, mailbox: str, *, notification_url: str, client_state: str, expires: datetime
    ) -> Subscription:
        """Subscribe to new messages in the Inbox; Graph first checks ``notification_url``."""
        user = self.resolve_mailbox(mailbox).path_key
        body = {
            "changeType": "created",
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": notification_url,
            "resource": f"users/{user}/mailFolders('Inbox')/messages",
            "expirationDateTime": _graph_time(expires),
            "clientState": client_state,
        }
        return Subscription.from_graph(self._request("POST", "/subscriptions", json=body).json())

    def renew_subscription(self, subscription_id: str, expires: datetime) -> Subscription:
        """Push a subscription's expiry further out."""
        path = f"/subscriptions/{quote(subscription_id)}"
        body = {"expirationDateTime": _graph_time(expires)}
        return Subscription.from_graph(self._request("PATCH", path, json=body).json())

    # -- plumbing --------------------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self.base_url}{path_or_url}"

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict | None = None,
        json: dict | None = None,
        prefer: str | None = None,
        repeatable: bool = True,
    ) -> requests.Response:
        """Send one request, retrying what Graph says is transient.

        A request that is not ``repeatable`` (a POST that creates something) is retried only
        after a 429, which Graph answers before doing anything; after a timeout, a reset or
        a 5xx it may have been carried out, so the caller checks before trying again.

        A 429 that says how long to wait is waited out without spending one of the
        ``max_attempts``: under a mailbox's request quota every thread is told to wait, and
        giving up would only leave the work for a later, equally throttled, pass. Those waits
        are bounded by THROTTLE_BUDGET seconds and THROTTLED_ATTEMPTS answers.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(GraphUnavailableError)
            if repeatable
            else retry_if_exception(_refused_before_doing),
            stop=_Stop(self._max_attempts),
            wait=_wait_as_told,
            before_sleep=_log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send, method, self._url(path_or_url), params, json, prefer)

    def _slot_for(self, mailbox: str | None) -> threading.BoundedSemaphore | contextlib.nullcontext:
        """The mailbox's share of Graph's concurrency limit (none for calls on no mailbox)."""
        if mailbox is None:
            return contextlib.nullcontext()
        with self._slots_lock:
            slot = self._mailbox_slots.get(mailbox)
            if slot is None:
                slot = threading.BoundedSemaphore(MAX_CONCURRENT_PER_MAILBOX)
                self._mailbox_slots[mailbox] = slot
            return slot

    def _send(self, method, url, params, json, prefer) -> requests.Response:
        # Immutable ids survive moves between folders, so the ledger's graph_id stays valid.
        preferences = ['IdType="ImmutableId"']
        if prefer:
            preferences.append(prefer)
        headers = {
            "Authorization": f"Bearer {self._access_token()}",
            "Prefer": ", ".join(preferences),
        }
        mailbox = _mailbox_in(url)
        try:
            with self._slot_for(mailbox):
                if mailbox is not None and self.pacer is not None:
                    # Paced inside the slot: the request goes out at the moment it reserved,
                    # not later, bunched with others that waited for a slot.
                    self.pacer.wait_turn(mailbox)
                response = self._session.request(
                    method, url, params=params, json=json, headers=headers, timeout=self._timeout
                )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GraphUnavailableError(f"Graph did not answer: {exc.__class__.__name__}") from exc
        if response.status_code < 400:
            return response
        error = _error_for(response)
        throttled = isinstance(error, GraphUnavailableError) and error.status == 429
        if throttled and mailbox is not None and self.pacer is not None and error.retry_after:
            # Every thread of the process waits, not only this one: each 429 costs budget.
            self.pacer.hold(mailbox, error.retry_after)
        raise error


def _mailbox_in(url: str) -> str | None:
    """The mailbox a request is charged to (``/users/{id}/...``), or None."""
    match = _MAILBOX_IN_PATH.search(urlsplit(url).path)
    return unquote(match.group(1)).lower() if match else None


@dataclass(frozen=True)
class Draft:
    """A draft as Graph created it: its id, and the Message-ID it will be sent with."""

    id: str
    internet_message_id: str | None

    @classmethod
    def from_graph(cls, body: dict) -> Draft:
        return cls(id=body["id"], internet_message_id=body.get("internetMessageId"))


@dataclass(frozen=True)
class Subscription:
    """A change-notification subscription as Graph confirmed it."""

    id: str
    expires: datetime

    @classmethod
    def from_graph(cls, body: dict) -> Subscription:
        return cls(id=body["id"], expires=datetime.fromisoformat(body["expirationDateTime"]))


def _identity_of(configured: str, user: dict) -> MailboxIdentity:
    addresses = {configured.lower()}
    for value in (user.get("mail"), user.get("userPrincipalName")):
        if value:
            addresses.add(value.lower())
    for proxy in user.get("proxyAddresses") or []:
        kind, _, address = proxy.partition(":")
        if kind.lower() == "smtp" and address:
            addresses.add(address.lower())
    return MailboxIdentity(
        configured=configured,
        id=user.get("id"),
        user_principal_name=user.get("userPrincipalName"),
        mail=user.get("mail"),
        addresses=frozenset(addresses),
    )


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _error_for(response: requests.Response) -> GraphError:
    """Map a Graph error answer to the exception that tells the caller what to do."""
    status = response.status_code
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = inner.get("request-id") or response.headers.get("request-id")
    date = inner.get("date") or response.headers.get("Date")
    message = f"Graph answered {status} {code or ''}: {error.get('message', '')}".strip()
    next_step = NEXT_STEPS.get((code or "").lower())
    if next_step:
        message = f"{message} Next step: {next_step}."
    if request_id or date:
        message = f"{message} (request-id {request_id or '-'}, date {date or '-'})"
    details = {"status": status, "code": code, "request_id": request_id, "date": date}
    if status == 410 or (code or "").lower() in DELTA_RESTART_CODES:
        return DeltaTokenExpiredError(message, **details)
    if status in RETRYABLE_STATUSES:
        return GraphUnavailableError(
            message, retry_after=retry_after_seconds(response, MAX_RETRY_AFTER), **details
        )
    if status == 401:
        return GraphAuthError(message, **details)
    if status == 403:
        return GraphPermissionError(message, **details)
    if status == 404:
        return GraphNotFoundError(message, **details)
    return GraphRequestError(message, **details)


class _Stop:
    """Tenacity's stop rule: attempts count, but for throttled answers told when to retry."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self.untold = 0
        self.throttled = 0

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, GraphUnavailableError) and exc.status == 429 and exc.retry_after:
            self.throttled += 1
            return (
                self.throttled >= THROTTLED_ATTEMPTS
                or (state.seconds_since_start or 0) + exc.retry_after > THROTTLE_BUDGET
            )
        self.untold += 1
        return self.untold >= self.max_attempts


def _refused_before_doing(exc: BaseException) -> bool:
    """A throttled answer (429): Graph did nothing, so even a creating POST may be repeated."""
    return isinstance(exc, GraphUnavailableError) and exc.status == 429


def _wait_as_told(state: RetryCallState) -> float:
    """Wait what Retry-After says; without it, back off exponentially with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, GraphUnavailableError) and exc.retry_after is not None:
        return exc.retry_after
    return min(2 ** (state.attempt_number - 1), 60) * (0.5 + random.random() / 2)


def _log_retry(state: RetryCallState) -> None:
    count_graph_retry()
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "graph call will be retried",
        extra={
            "attempt": state.attempt_number,
            "status": getattr(exc, "status", None),
            "wait_s": round(state.next_action.sleep, 2) if state.next_action else None,
        },
    )


def _is_partial(item: dict) -> bool:
    """A delta "updated" item: its id and the changed properties, not a whole message.

    Every whole message has a received time (it was ``$select``ed); an update to read state
    or categories does not carry one.
    """
    return "receivedDateTime" not in item


def _is_file(item: dict) -> bool:
    return item.get("@odata.type", "").endswith("fileAttachment")


def _declared(item: dict) -> int:
    return int(item.get("size") or 0)
