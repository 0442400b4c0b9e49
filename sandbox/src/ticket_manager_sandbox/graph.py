"""An emulator of the Microsoft Graph v1.0 mail API, served over real HTTP(S) for tests and demos.

The product reads a Microsoft 365 mailbox through Graph (delta sync, messages, attachments,
replies, change notifications). This emulator keeps mailboxes in memory and answers the same
URLs with the same wire format, status codes, error bodies and throttling behaviour, so the
product's real client code can be tested without Microsoft 365. The routes live in
``graph_routes``; MIME conversion in ``graph_mime``; mailbox state in ``graph_store``.

Outlook's throttling is emulated per app id (the token's ``appid``/``azp``) and mailbox:
at most ``max_concurrent_per_mailbox`` requests in flight (429 ``ApplicationThrottled``
"Application is over its MailboxConcurrency limit.") and at most ``request_quota`` requests
in any ``quota_window`` seconds, 10,000 per 600 s by default as in Exchange Online (429
``ApplicationThrottled`` "Application is over its RequestRate limit.", with a Retry-After
that says when the sliding window lets the next request in). Besides the shared control
routes (``controls``), the Graph emulator has:

- ``GET    /_sandbox/quota``  the quota and each (app id, mailbox)'s use of the window
- ``POST   /_sandbox/quota``  ``{"requests": 100, "window": 6}`` sets the quota and starts
  every window afresh; ``{"requests": null}`` turns it off
- ``DELETE /_sandbox/quota``  back to the quota the emulator was made with
- ``POST   /_sandbox/mailboxes/{address}/deliver``  an RFC 822 message as the body is
  delivered to the mailbox's inbox as Exchange would (``flask sandbox send`` uses it)
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import getaddresses

from flask import Flask, Response, g, jsonify, request

from ticket_manager_sandbox.controls import CONTROL_PREFIX, SandboxControls
from ticket_manager_sandbox.graph_authentication import stamp as stamp_authentication_results
from ticket_manager_sandbox.graph_http import (
    CaseInsensitivePaths,
    graph_error,
    parse_prefer,
)
from ticket_manager_sandbox.graph_mime import (
    build_mime,
    html_to_text,
    iso,
    new_message_id,
    parse_rfc822,
    recipients,
    text_to_html,
    unique_part,
)
from ticket_manager_sandbox.graph_query import GraphQueryError
from ticket_manager_sandbox.graph_store import (
    Folder,
    Mailbox,
    MailItem,
    message_props,
    new_attachment,
    new_immutable_id,
    new_rest_id,
    render_attachment,
    web_link,
)
from ticket_manager_sandbox.graph_subscriptions import (
    LIFECYCLE_EVENTS,
    MAX_MESSAGE_SUBSCRIPTION_MINUTES,
    Delivery,
    Notifier,
    Subscription,
    change_notification,
    lifecycle_notification,
)
from ticket_manager_sandbox.resettable import Resettable

TokenValidator = Callable[[str], dict | None]

_STATUS_CODES = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "The send or update operation could not be performed."),
    410: ("syncStateNotFound", "The sync state generation is not found."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad Gateway."),
    503: ("serviceNotAvailable", "Service Unavailable."),
    504: ("GatewayTimeout", "Gateway Timeout."),
}
_READ_SCOPES = {"Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic"}
_WRITE_SCOPES = {"Mail.ReadWrite"}
_SEND_SCOPES = {"Mail.Send"}
_USER_ROLES = {"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All"}
_APP_READ_ROLES = {"Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic.All", "Mail.ReadBasic"}
# Outlook's limit per app id and mailbox: 10,000 API requests in a 10 minute period.
DEFAULT_REQUEST_QUOTA = 10_000
DEFAULT_QUOTA_WINDOW = 600.0


# What Graph answers for a mailbox in an unusual state: (status, code, message, for which needs).
MAILBOX_CONDITIONS = {
    # An inactive, soft-deleted or on-premises mailbox (hybrid): not reachable through Graph.
    "on-premises": (
        404,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        {"read", "write", "send"},
    ),
    # A user without an Exchange Online license: Graph finds no mailbox behind the user.
    "unlicensed": (
        404,
        "ResourceNotFound",
        "Resource could not be discovered.",
        {"read", "write", "send"},
    ),
    # Outside the application access policy (app-only tokens).
    "access-denied": (
        403,
        "ErrorAccessDenied",
        "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
        "AccessPolicy settings.",
        {"read", "write", "send"},
    ),
    # A full mailbox: reading works, nothing can be created, changed or sent.
    "quota-exceeded": (
        403,
        "ErrorQuotaExceeded",
        "The action couldn't be completed because the mailbox quota is exceeded.",
        {"write", "send"},
    ),
}


class GraphEmulator(Resettable):
    """Microsoft Graph v1.0 mail for a fixed set of mailboxes, as a Flask app."""

    def __init__(
        self,
        token_validator: TokenValidator,
        mailboxes: list[str],
        *,
        max_concurrent_per_mailbox: int = 4,
        concurrency_retry_after: int = 1,
        request_quota: int | None = DEFAULT_REQUEST_QUOTA,
        quota_window: float = DEFAULT_QUOTA_WINDOW,
        default_tenant_id: str = "00000000-0000-0000-0000-000000000000",
    ) -> None:
        self._validate = token_validator
        self._lock = threading.RLock()
        self._mailboxes: dict[str, Mailbox] = {}
        for address in mailboxes:
            self.add_mailbox(address)
        self._sent: dict[str, list[dict]] = {}
        self._sync_states: dict[str, dict] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._in_flight: Counter[str] = Counter()
        self.max_concurrent_per_mailbox = max_concurrent_per_mailbox
        self.concurrency_retry_after = concurrency_retry_after
        self._initial_quota = (request_quota, quota_window)
        self.request_quota: int | None = None
        self.quota_window = DEFAULT_QUOTA_WINDOW
        # (app id, mailbox) -> clock times of the requests let in during the current window.
        self._quota_log: dict[tuple[str, str], deque[float]] = {}
        self.quota_clock: Callable[[], float] = time.monotonic  # seconds; tests may replace it
        self.set_request_quota(request_quota, quota_window)
        self.default_tenant_id = default_tenant_id
        # The longest subscription Graph grants: 10,080 minutes for Outlook messages; a test
        # lowers it to see the client follow the limit named in the ExtensionError.
        self.subscription_max_minutes = MAX_MESSAGE_SUBSCRIPTION_MINUTES
        # True: reading users answers 403, as for an app without User.Read.All.
        self.deny_user_reads = False
        # Domain -> the DMARC policy it publishes, for mail that fails it (spoofed From).
        self.spoofed_domains: dict[str, str] = {}
        self.notifier = Notifier()
        self.app = Flask("graph_emulator")
        self.app.wsgi_app = CaseInsensitivePaths(self.app.wsgi_app)
        self.app.before_request(self._authenticate)
        self.app.after_request(self._decorate)
        self.app.teardown_request(self._release_slot)
        self.controls = SandboxControls("graph", self.render_error)
        self.controls.install(self.app)
        self.controls.state_dumper = self.dump_state
        self.app.add_url_rule(
            f"{CONTROL_PREFIX}quota",
            "sandbox_quota",
            self._quota_view,
            methods=["GET", "POST", "DELETE"],
        )
        self.app.add_url_rule(
            f"{CONTROL_PREFIX}mailboxes/<address>/deliver",
            "sandbox_deliver",
            self._deliver_view,
            methods=["POST"],
        )
        from ticket_manager_sandbox.graph_routes import register_routes

        register_routes(self)

    # -- helpers for tests and the demo ----------------------------------------------------

    def add_mailbox(
        self, address: str, *, upn: str | None = None, aliases: list[str] | tuple = ()
    ) -> None:
        """Create an empty mailbox with the standard folders.

        ``upn``: a sign-in name that differs from the primary SMTP ``address`` (hybrid
        tenants); paths then take the UPN or the object id, not the address. ``aliases``:
        further SMTP addresses (proxyAddresses) that deliver to this mailbox.
        """
        with self._lock:
            self._mailboxes.setdefault(address.lower(), Mailbox(address, upn=upn, aliases=aliases))

    def set_request_quota(self, requests: int | None, window: float = DEFAULT_QUOTA_WINDOW) -> None:
        """At most ``requests`` requests per app id and mailbox in any ``window`` seconds.

        ``None`` (or 0) turns the quota off. Every window starts afresh.
        """
        if requests is not None and int(requests) < 0:
            raise ValueError("requests must be a count, or null (or 0) for no quota")
        if float(window) <= 0:
            raise ValueError("window must be a positive number of seconds")
        with self._lock:
            self.request_quota = int(requests) if requests else None
            self.quota_window = float(window)
            self._quota_log.clear()

    def quota_usage(self) -> dict[str, int]:
        """Requests counted in the current window, by ``"{app id} {mailbox}"``.

        A token without an app id counts as ``"-"``.
        """
        with self._lock:
            now = self.quota_clock()
            usage = {}
            for (app, box), times in self._quota_log.items():
                self._expire(times, now)
                if times:
                    usage[f"{app or '-'} {box}"] = len(times)
            return usage

    def deliver_mime(
        self, mailbox: str, raw: bytes, folder: str = "inbox", received: datetime | None = None
    ) -> str:
        """Deliver an RFC 822 message as Exchange would; returns the message's (REST) id.

        Mail arriving from outside gets Exchange's Authentication-Results on top.
        """
        with self._lock:
            box = self.mailbox(mailbox)
            target = box.folder(folder)
            if target is None:
                raise KeyError(f"no folder {folder!r} in {mailbox}")
            if folder not in ("sentitems", "drafts"):
                raw = stamp_authentication_results(raw, self.spoofed_domains)
            item = self.store_mime(box, target, raw, received=received)
            return item.rest_id

    def deliver(
        self,
        mailbox: str,
        *,
        subject: str,
        body: str,
        sender: str,
        to: list[str] | None = None,
        cc: list[str] | None = None,
        html: bool = False,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        attachments: list | None = None,
        message_id: str | None = None,
        in_reply_to: str | None = None,
        references: list[str] | None = None,
        reply_to: str | None = None,
        importance: str | None = None,
        date: datetime | None = None,
        folder: str = "inbox",
        received: datetime | None = None,
    ) -> str:
        """Build a MIME message from simple arguments and deliver it; returns the message id.

        ``attachments`` items are ``(name, bytes, content_type)`` tuples or dicts with
        ``name``, ``content``, ``content_type``, ``inline`` and ``content_id``; a
        ``message/rfc822`` content type attaches a message (an itemAttachment).
        """
        specs = []
        for entry in attachments or []:
            if isinstance(entry, dict):
                specs.append(
                    {
                        "name": entry["name"],
                        "bytes": entry["content"],
                        "contentType": entry.get("content_type", "application/octet-stream"),
                        "isInline": entry.get("inline", False),
                        "contentId": entry.get("content_id"),
                    }
                )
            else:
                name, content, content_type = entry
                specs.append({"name": name, "bytes": content, "contentType": content_type})
        extra = list(headers.items()) if isinstance(headers, dict) else list(headers or [])

        def people(values: list[str] | None) -> list[dict]:
            return recipients(values or [])

        raw = build_mime(
            sender=(people([sender]) or [{"emailAddress": {"address": sender}}])[0],
            to=people(to if to is not None else [mailbox]),
            cc=people(cc),
            reply_to=people([reply_to] if reply_to else None),
            subject=subject,
            body={"contentType": "html" if html else "text", "content": body},
            message_id=message_id or new_message_id(getaddresses([sender])[0][1]),
            date=date,
            in_reply_to=in_reply_to,
            references=references or ([in_reply_to] if in_reply_to else None),
            importance=importance,
            extra_headers=extra,
            attachments=specs,
        )
        return self.deliver_mime(mailbox, raw, folder=folder, received=received)

    def messages(
        self, mailbox: str, folder: str | None = None, *, immutable_ids: bool = False
    ) -> list[dict]:
        """Every message (or one folder's) fully rendered, including headers and uniqueBody."""
        with self._lock:
            box = self.mailbox(mailbox)
            if folder is None:
                items = box.unique_items()
            else:
                target = box.folder(folder)
                items = box.items_in(target.id) if target else []
            items.sort(key=lambda i: i.props["receivedDateTime"], reverse=True)
            return [self.render_message(box, i, full=True, immutable=immutable_ids) for i in items]

    def immutable_id(self, mailbox: str, message_id: str) -> str:
        """The immutable id of a message known by its REST id (what ImmutableId clients see)."""
        with self._lock:
            item = self.mailbox(mailbox).find(message_id)
            if item is None:
                raise KeyError(message_id)
            return item.immutable_id

    def sent_messages(self, mailbox: str) -> list[dict]:
        """What the mailbox sent through reply/replyAll/send/sendMail, oldest first."""
        with self._lock:
            return [dict(m) for m in self._sent.get(mailbox.lower(), [])]

    def remove_message(self, mailbox: str, message_id: str) -> None:
        """Delete a message (REST or immutable id), as if the user deleted it permanently."""
        with self._lock:
            box = self.mailbox(mailbox)
            item = box.find(message_id)
            if item is None:
                raise KeyError(message_id)
            self.notify(box, item, "deleted")
            box.remove(item)

    def expire_delta_tokens(self, mailbox: str | None = None) -> None:
        """Forget sync states so their delta/skip links answer 410, as when Exchange evicts them."""
        with self._lock:
            for token, state in list(self._sync_states.items()):
                if mailbox is None or state["mailbox"] == mailbox.lower():
                    del self._sync_states[token]

    def subscriptions(self) -> list[dict]:
        """All subscriptions, including expired ones."""
        with self._lock:
            return [s.render() for s in self._subscriptions.values()]

    def expire_subscription(self, subscription_id: str) -> None:
        """Move a subscription's expiry into the past; it stops notifying."""
        with self._lock:
            self._subscriptions[subscription_id].expiration = datetime.now(UTC).replace(year=2000)

    def send_lifecycle_notification(self, subscription_id: str, event: str) -> None:
        """POST a lifecycle event (reauthorizationRequired, subscriptionRemoved, missed)."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"unknown lifecycle event {event!r}")
        with self._lock:
            subscription = self._subscriptions[subscription_id]
            if event == "subscriptionRemoved":
                del self._subscriptions[subscription_id]
        url = subscription.lifecycle_url
        if not url:
            raise ValueError("the subscription has no lifecycleNotificationUrl")
        self.notifier.post(url, lifecycle_notification(subscription, event))

    @property
    def notifications(self) -> list[Delivery]:
        """Notification POSTs made so far, with the receiver's status."""
        return list(self.notifier.deliveries)

    def wait_for_notifications(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification has been posted."""
        return self.notifier.wait_idle(timeout)

    def dump_state(self) -> dict:
        """Mailboxes, folders, message summaries and subscriptions as JSON-able data."""
        with self._lock:
            return {
                "mailboxes": {
                    box.address: {
                        "id": box.user_id,
                        "folders": [box.render_folder(f) for f in box.folders.values()],
                        "messages": [
                            {
                                "id": i.rest_id,
                                "immutableId": i.immutable_id,
                                "folder": box.folders[i.folder_id].display_name,
                                "subject": i.props.get("subject"),
                                "from": i.props.get("from"),
                                "isRead": i.props.get("isRead"),
                                "categories": i.props.get("categories"),
                                "receivedDateTime": i.props.get("receivedDateTime"),
                            }
                            for i in box.unique_items()
                        ],
                        "sent": len(self._sent.get(box.address.lower(), [])),
                    }
                    for box in self._mailboxes.values()
                },
                "subscriptions": self.subscriptions(),
                "syncStates": len(self._sync_states),
            }

    # -- shared internals (used by graph_routes) -------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def mailbox(self, key: str) -> Mailbox:
        """A mailbox by address, alias, UPN or user id (for helpers); KeyError when unknown."""
        lowered = key.lower()
        if lowered in self._mailboxes:
            return self._mailboxes[lowered]
        for box in self._mailboxes.values():
            if box.user_id == lowered or box.upn.lower() == lowered or box.answers_to(lowered):
                return box
        raise KeyError(key)

    def attach_item(self, mailbox: str, message_id: str, name: str, raw: bytes) -> None:
        """Attach an Outlook item (an event as iCalendar, a contact as vCard, or an email as
        MIME) to a message, as an itemAttachment whose ``$value`` is ``raw``."""
        with self._lock:
            box = self.mailbox(mailbox)
            item = box.find(message_id)
            item.attachments.append(
                new_attachment({"kind": "item", "name": name, "contentType": None, "bytes": raw})
            )
            item.props["hasAttachments"] = True
            box.touch(item, ["hasAttachments"])

    def set_mailbox_condition(self, mailbox: str, condition: str | None) -> None:
        """Make a mailbox answer as Exchange does when it is ``condition`` (MAILBOX_CONDITIONS)."""
        if condition is not None and condition not in MAILBOX_CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}")
        with self._lock:
            self.mailbox(mailbox).condition = condition

    def deny_send_as(self, mailbox: str, denied: bool = True) -> None:
        """Take away (or give back) Send As on a mailbox from every delegated user but its own."""
        with self._lock:
            self.mailbox(mailbox).send_as = not denied

    def path_mailbox(self, key: str) -> Mailbox:
        """The mailbox a ``/users/{key}`` path names: by object id or UPN only, as Graph."""
        lowered = key.lower()
        for box in self._mailboxes.values():
            if box.user_id == lowered or box.upn.lower() == lowered:
                return box
        raise KeyError(key)

    def find_users(self, predicate: Callable[[Mailbox], bool]) -> list[Mailbox]:
        return [box for box in self._mailboxes.values() if predicate(box)]

    def all_mailboxes(self) -> list[Mailbox]:
        return list(self._mailboxes.values())

    @property
    def sync_states(self) -> dict[str, dict]:
        return self._sync_states

    @property
    def subscription_map(self) -> dict[str, Subscription]:
        return self._subscriptions

    def record_sent(self, box: Mailbox, message: dict) -> None:
        self._sent.setdefault(box.address.lower(), []).append(message)

    def store_mime(
        self,
        box: Mailbox,
        folder: Folder,
        raw: bytes,
        *,
        received: datetime | None = None,
        is_read: bool = False,
        is_draft: bool = False,
        extra_bcc: list[dict] | None = None,
        notify: bool = True,
    ) -> MailItem:
        """Convert MIME to a stored message in ``folder`` (caller holds the lock)."""
        parsed = parse_rfc822(raw)
        if not parsed["messageId"]:
            address = (parsed["from"] or [{"emailAddress": {"address": box.address}}])[0]
            message_id = new_message_id(address["emailAddress"]["address"])
            raw = f"Message-ID: {message_id}\r\n".encode("ascii") + raw
            parsed = parse_rfc822(raw)
        received = received or datetime.now(UTC)
        props = message_props(parsed, received=received, sender_fallback=[])
        if extra_bcc:
            props["bccRecipients"] = extra_bcc
        props["isRead"] = is_read
        props["isDraft"] = is_draft
        if folder.well_known == "sentitems":
            # Exchange keeps no internet headers on the copy in Sent Items.
            props["internetMessageHeaders"] = None
        conversation_id, index = box.conversation(
            parsed["messageId"], parsed["parents"], parsed["subject"], parsed["threadIndex"]
        )
        props["conversationId"] = conversation_id
        props["conversationIndex"] = index
        body = props["body"]
        props["uniqueBody"] = {
            "contentType": body["contentType"],
            "content": unique_part(body["content"], body["contentType"]),
        }
        item = MailItem(
            rest_id=new_rest_id(),
            immutable_id=new_immutable_id(),
            folder_id=folder.id,
            props=props,
            mime=raw,
            attachments=[new_attachment(a) for a in parsed["attachments"]],
            created=received,
            modified=received,
        )
        item.context["parents"] = parsed["parents"]
        box.add(item)
        if notify:
            self.notify(box, item, "created")
        return item

    def render_message(
        self,
        box: Mailbox,
        item: MailItem,
        *,
        immutable: bool = False,
        body_type: str | None = None,
        select: list[str] | None = None,
        expand: set[str] | None = None,
        extended_ids: list[str] | None = None,
        full: bool = False,
    ) -> dict:
        """A message as Graph returns it; headers and uniqueBody only when selected (or full)."""
        item_id = item.immutable_id if immutable else item.rest_id
        p = item.props
        rendered = {
            "@odata.etag": f'W/"{item.change_key}"',
            "id": item_id,
            "createdDateTime": iso(item.created),
            "lastModifiedDateTime": iso(item.modified),
            "changeKey": item.change_key,
            "categories": list(p["categories"]),
            "receivedDateTime": p["receivedDateTime"],
            "sentDateTime": p["sentDateTime"],
            "hasAttachments": p["hasAttachments"],
            "internetMessageId": p["internetMessageId"],
            "subject": p["subject"],
            "bodyPreview": p["bodyPreview"],
            "importance": p["importance"],
            "parentFolderId": item.folder_id,
            "conversationId": p["conversationId"],
            "conversationIndex": p["conversationIndex"],
            "isDeliveryReceiptRequested": p["isDeliveryReceiptRequested"],
            "isReadReceiptRequested": p["isReadReceiptRequested"],
            "isRead": p["isRead"],
            "isDraft": p["isDraft"],
            "webLink": web_link(item_id),
            "inferenceClassification": p["inferenceClassification"],
            "body": self._convert_body(p["body"], body_type),
            "sender": p["sender"],
            "from": p["from"],
            "toRecipients": p["toRecipients"],
            "ccRecipients": p["ccRecipients"],
            "bccRecipients": p["bccRecipients"],
            "replyTo": p["replyTo"],
            "flag": dict(p["flag"]),
        }
        if full or (select and "uniqueBody" in select):
            rendered["uniqueBody"] = self._convert_body(p["uniqueBody"], body_type)
        headers = p["internetMessageHeaders"]
        if headers is not None and (full or (select and "internetMessageHeaders" in select)):
            rendered["internetMessageHeaders"] = [dict(h) for h in headers]
        if select:
            keep = {"@odata.etag", "id", *select}
            rendered = {k: v for k, v in rendered.items() if k in keep}
        if expand and "attachments" in expand:
            rendered["attachments"] = [render_attachment(a) for a in item.attachments]
        if expand and "singleValueExtendedProperties" in expand:
            wanted = {e.lower() for e in extended_ids or []}
            rendered["singleValueExtendedProperties"] = [
                {"id": key, "value": value}
                for key, value in item.extended.items()
                if not wanted or key.lower() in wanted
            ]
        return rendered

    @staticmethod
    def _convert_body(body: dict, body_type: str | None) -> dict:
        kind = body["contentType"]
        if body_type == "text" and kind == "html":
            return {"contentType": "text", "content": html_to_text(body["content"])}
        if body_type == "html" and kind == "text":
            return {"contentType": "html", "content": text_to_html(body["content"])}
        return {"contentType": kind, "content": body["content"]}

    def notify(self, box: Mailbox, item: MailItem, change_type: str) -> None:
        """Queue change notifications for subscriptions covering ``item`` (lock held)."""
        for subscription in self._subscriptions.values():
            if subscription.mailbox != box.address.lower() or not subscription.active():
                continue
            if change_type not in subscription.change_types:
                continue
            if subscription.folder_id and subscription.folder_id != item.folder_id:
                continue
            item_id = item.immutable_id if subscription.immutable_ids else item.rest_id
            resource = f"Users/{box.user_id}/Messages/{item_id}"
            data = {"@odata.type": "#Microsoft.Graph.Message", "@odata.id": resource}
            if change_type != "deleted":
                data["@odata.etag"] = f'W/"{item.change_key}"'
            data["id"] = item_id
            payload = change_notification(subscription, change_type, data)
            self.notifier.post(subscription.notification_url, payload)

    # -- request hooks ---------------------------------------------------------------------

    def render_error(self, status: int, retry_after: int | None = None) -> Response:
        """Graph's error body for ``status`` (used by the fault knobs), with Retry-After."""
        code, message = _STATUS_CODES.get(status, ("UnknownError", "An error occurred."))
        if status == 429:
            if "/users/" in request.path or "/me/" in request.path:
                code, message = (
                    "ApplicationThrottled",
                    "Application is over its IncomingBytes limit.",
                )
            else:
                code, message = "TooManyRequests", "Too many requests."
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return graph_error(status, code, message, headers)

    def _authenticate(self) -> Response | None:
        g.request_id = str(uuid.uuid4())
        g.client_request_id = request.headers.get("client-request-id") or g.request_id
        g.prefer = parse_prefer(request.headers.getlist("Prefer"))
        g.applied = []
        if not request.path.startswith("/v1.0/"):
            return None
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        challenge = {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline'
            '.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
        }
        if scheme.lower() != "bearer" or not token.strip():
            return graph_error(
                401, "InvalidAuthenticationToken", "Access token is empty.", challenge
            )
        claims = self._validate(token.strip())
        if not claims:
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience or token expired.",
                challenge,
            )
        g.claims = claims
        return self._take_slot()

    def _take_slot(self) -> Response | None:
        user = (request.view_args or {}).get("user")
        if not user:
            return None
        if user == "me":
            user = self.delegated_upn(g.claims) or ""
        app_id = str(g.claims.get("appid") or g.claims.get("azp") or "")
        with self._lock:
            try:
                address = self.path_mailbox(user).address.lower()
            except KeyError:
                return None
            now = self.quota_clock()
            served = self._quota_log.setdefault((app_id, address), deque())
            throttled = self._quota_wait(served, now) is not None
            if self.request_quota:
                # Graph "continues to log resource usage while a client is being throttled":
                # a refused request counts against the window like one let in.
                served.append(now)
            if throttled:
                # The refused request is in the window now: Retry-After says when the next gets in.
                wait = self._quota_wait(served, now)
                return graph_error(
                    429,
                    "ApplicationThrottled",
                    "Application is over its RequestRate limit.",
                    {"Retry-After": str(wait)},
                )
            if self._in_flight[address] >= self.max_concurrent_per_mailbox:
                return graph_error(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    {"Retry-After": str(self.concurrency_retry_after)},
                )
            self._in_flight[address] += 1
        g.slot = address
        return None

    def _expire(self, served: deque[float], now: float) -> None:
        """Forget requests older than the window (lock held)."""
        horizon = now - self.quota_window
        while served and served[0] <= horizon:
            served.popleft()

    def _quota_wait(self, served: deque[float], now: float) -> int | None:
        """None when the quota lets a request in now, else whole seconds until it does."""
        if not self.request_quota:
            return None
        self._expire(served, now)
        over = len(served) - self.request_quota
        if over < 0:
            return None
        # The window has room again once the oldest ``over + 1`` requests have left it.
        frees_at = served[over] + self.quota_window
        return max(1, math.ceil(frees_at - now))

    def _quota_view(self) -> Response:
        """``/_sandbox/quota``: read, set or restore the request quota (see the docstring)."""
        if request.method == "DELETE":
            self.set_request_quota(*self._initial_quota)
        elif request.method == "POST":
            body = request.get_json(force=True, silent=True) or {}
            try:
                self.set_request_quota(
                    body.get("requests", self.request_quota),
                    body.get("window", self.quota_window),
                )
            except (TypeError, ValueError) as exc:
                return jsonify({"error": str(exc)}), 400
        return jsonify(
            {
                "requests": self.request_quota,
                "window": self.quota_window,
                "usage": self.quota_usage(),
            }
        )

    def _deliver_view(self, address: str) -> Response:
        """``/_sandbox/mailboxes/{address}/deliver``: the body is an RFC 822 message."""
        raw = request.get_data()
        if not raw.strip():
            return jsonify({"error": "send an RFC 822 message as the request body"}), 400
        try:
            message_id = self.deliver_mime(address, raw)
        except KeyError:
            return jsonify({"error": f"no mailbox {address} in the emulator"}), 404
        return jsonify({"id": message_id, "mailbox": address}), 201

    def _release_slot(self, _exc: BaseException | None) -> None:
        address = g.pop("slot", None)
        if address:
            with self._lock:
                self._in_flight[address] -= 1

    def _decorate(self, response: Response) -> Response:
        if request.path.startswith("/_sandbox/"):
            return response
        request_id = g.get("request_id") or str(uuid.uuid4())
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = g.get("client_request_id") or request_id
        response.headers["x-ms-ags-diagnostic"] = json.dumps(
            {"ServerInfo": {"DataCenter": "Sandbox", "Slice": "E", "Ring": "5"}}
        )
        response.headers.setdefault("Cache-Control", "no-cache")
        if response.mimetype == "application/json":
            response.headers["OData-Version"] = "4.0"
        if g.get("applied"):
            response.headers["Preference-Applied"] = ", ".join(g.applied)
        return response

    @staticmethod
    def delegated_upn(claims: dict) -> str | None:
        """The signed-in user of a delegated token."""
        return claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")

    def authorize(self, user: str, need: str) -> Mailbox:
        """The mailbox a request may act on, or the Graph error a real tenant would give.

        ``need`` is "read", "write", "send" or "user" (reading the user object).
        """
        claims = g.claims
        roles = set(claims.get("roles") or [])
        delegated = bool(claims.get("scp")) and not roles
        if user == "me":
            if not delegated:
                raise GraphQueryError(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            user = self.delegated_upn(claims) or ""
        try:
            box = self.path_mailbox(user)
        except KeyError:
            if need == "user":
                raise GraphQueryError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{user}' does not exist or one of its queried reference-property "
                    "objects are not present.",
                ) from None
            raise GraphQueryError(
                404, "ErrorInvalidUser", f"The requested user '{user}' is invalid."
            ) from None
        if delegated:
            granted = set(str(claims.get("scp")).split())
            own = box.upn.lower() == (self.delegated_upn(claims) or "").lower()
            needed = {
                "read": _READ_SCOPES,
                "write": _WRITE_SCOPES,
                "send": _SEND_SCOPES,
                "user": {"User.Read", *_USER_ROLES} if own else _USER_ROLES,
            }[need]
            if not own and need != "user":
                needed = {f"{scope}.Shared" for scope in needed}
        else:
            granted = roles
            needed = {
                "read": _APP_READ_ROLES,
                "write": _WRITE_SCOPES,
                "send": _SEND_SCOPES,
                "user": _USER_ROLES,
            }[need]
        if need == "user" and self.deny_user_reads:
            raise GraphQueryError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if need != "user" and box.condition in MAILBOX_CONDITIONS:
            status, code, text, needs = MAILBOX_CONDITIONS[box.condition]
            if need in needs:
                raise GraphQueryError(status, code, text)
        if delegated and need == "send" and not own and granted & needed and not box.send_as:
            # Full Access lets a person open a shared mailbox, not send from it: Exchange
            # wants Send As or Send on Behalf as well (Graph's sendMail and send).
            raise GraphQueryError(
                403,
                "ErrorSendAsDenied",
                "The user account which was used to submit this request does not have the "
                "right to send mail on behalf of the specified sending account., Cannot "
                "submit message.",
            )
        if not granted & needed:
            if need == "user":
                raise GraphQueryError(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            raise GraphQueryError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return box
