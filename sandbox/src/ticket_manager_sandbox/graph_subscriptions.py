"""Change-notification subscriptions for the Graph emulator: validation, delivery, lifecycle.

Graph proves a notification endpoint is willing before creating a subscription (it POSTs a
validationToken and expects it echoed within 10 seconds), then POSTs change notifications
from its own infrastructure, asynchronously. The emulator does both over real HTTP so the
product's webhook receiver is exercised the same way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from ticket_manager_sandbox.graph_mime import iso
from ticket_manager_sandbox.graph_query import GraphQueryError, parse_datetime

log = logging.getLogger(__name__)

MAX_MESSAGE_SUBSCRIPTION_MINUTES = 10080
VALIDATION_TIMEOUT_SECONDS = 10
# Graph publishes change notifications with an HTTP client that gives up after 3 seconds.
NOTIFICATION_TIMEOUT_SECONDS = 3
TLS_VERSIONS = {"v1_0", "v1_1", "v1_2", "v1_3"}
CHANGE_TYPES = {"created", "updated", "deleted"}
LIFECYCLE_EVENTS = {"reauthorizationRequired", "subscriptionRemoved", "missed"}


@dataclass
class Subscription:
    """One subscription on a mailbox's messages (optionally one folder)."""

    id: str
    resource: str
    change_types: set[str]
    notification_url: str
    lifecycle_url: str | None
    expiration: datetime
    client_state: str | None
    mailbox: str
    folder_id: str | None
    tenant_id: str
    application_id: str | None
    creator_id: str | None
    raw_change_type: str = ""
    immutable_ids: bool = False
    tls_version: str = "v1_2"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def active(self) -> bool:
        return self.expiration > datetime.now(UTC)

    def render(self) -> dict:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.raw_change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": self.expiration.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%f0Z"
            ),
            "creatorId": self.creator_id,
            "includeResourceData": None,
            "latestSupportedTlsVersion": self.tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def _bad_request(message: str, code: str = "InvalidRequest") -> GraphQueryError:
    return GraphQueryError(400, code, message)


def parse_change_type(value: object) -> set[str]:
    """Validate a changeType list such as 'created,updated'."""
    if not isinstance(value, str) or not value.strip():
        raise _bad_request("changeType is a required property.", "ExtensionError")
    kinds = {part.strip() for part in value.split(",") if part.strip()}
    unknown = kinds - CHANGE_TYPES
    if unknown:
        raise _bad_request(
            f"'{sorted(unknown)[0]}' is not a valid change type. Valid values are "
            "created, updated, deleted.",
            "ExtensionError",
        )
    return kinds


def parse_expiration(
    value: object, maximum_minutes: int = MAX_MESSAGE_SUBSCRIPTION_MINUTES
) -> datetime:
    """Validate expirationDateTime: in the future and within the messages limit."""
    if not isinstance(value, str):
        raise _bad_request("expirationDateTime is a required property.", "ExtensionError")
    try:
        expiration = parse_datetime(value)
    except ValueError as exc:
        raise _bad_request(f"Invalid expirationDateTime '{value}'.", "BadRequest") from exc
    now = datetime.now(UTC)
    if expiration <= now:
        raise _bad_request("Subscription expiration must be in the future.", "ExtensionError")
    if expiration - now > timedelta(minutes=maximum_minutes):
        raise _bad_request(
            f"Subscription expiration can only be {maximum_minutes} minutes in the future.",
            "ExtensionError",
        )
    return expiration


def validate_endpoint(url: str, verify: str | bool = True) -> None:
    """The handshake: POST ?validationToken=..., expect 200 text/plain echo within 10 s."""
    if not url.lower().startswith("https://"):
        raise _bad_request("Subscription notificationUrl must be an https url.")
    token = (
        "Validation: Testing client application reachability for subscription "
        f"Request-Id: {uuid.uuid4()}"
    )
    try:
        response = requests.post(
            url,
            params={"validationToken": token},
            headers={"Content-Type": "text/plain; charset=utf-8"},
            data=b"",
            timeout=VALIDATION_TIMEOUT_SECONDS,
            verify=verify,
        )
    except requests.Timeout as exc:
        raise _bad_request("Subscription validation request timed out.") from exc
    except requests.RequestException as exc:
        raise _bad_request(
            "Subscription validation request failed. Notification endpoint must respond "
            "with 200 OK to validation request."
        ) from exc
    if response.status_code != 200:
        raise _bad_request(
            "Subscription validation request failed. Notification endpoint must respond "
            "with 200 OK to validation request."
        )
    content_type = response.headers.get("Content-Type", "").lower()
    if response.text != token or not content_type.startswith("text/plain"):
        raise _bad_request(
            "Subscription validation request failed. Response must exactly match "
            "validationToken query parameter."
        )


@dataclass
class Delivery:
    """One notification POST and its outcome, for tests and the demo."""

    url: str
    payload: dict
    status: int | None = None
    error: str | None = None
    at: float = field(default_factory=time.time)


class Notifier:
    """Posts notifications from a background thread, in order, like Graph's delivery service."""

    def __init__(self, verify: str | bool = True) -> None:
        # The CA bundle to trust when calling subscribers (the sandbox CA in tests and demo).
        self.verify = verify
        self._queue: queue.Queue[tuple[str, dict]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []

    def post(self, url: str, payload: dict) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="graph-notifier", daemon=True
                )
                self._thread.start()
        self._queue.put((url, payload))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until queued notifications were posted (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        while True:
            url, payload = self._queue.get()
            delivery = Delivery(url, payload)
            try:
                response = requests.post(
                    url, json=payload, timeout=NOTIFICATION_TIMEOUT_SECONDS, verify=self.verify
                )
                delivery.status = response.status_code
            except requests.RequestException as exc:
                delivery.error = str(exc)
                log.info("notification to %s failed: %s", url, exc)
            with self._lock:
                self.deliveries.append(delivery)
            self._queue.task_done()


def change_notification(subscription: Subscription, change_type: str, resource_data: dict) -> dict:
    """The body Graph POSTs for one change (resource data without encrypted content)."""
    return {
        "value": [
            {
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": iso(subscription.expiration).replace(
                    "Z", "+00:00"
                ),
                "changeType": change_type,
                "resource": resource_data["@odata.id"],
                "resourceData": resource_data,
                "clientState": subscription.client_state,
                "tenantId": subscription.tenant_id,
            }
        ]
    }


def lifecycle_notification(subscription: Subscription, event: str) -> dict:
    """The body Graph POSTs to lifecycleNotificationUrl."""
    return {
        "value": [
            {
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": iso(subscription.expiration).replace(
                    "Z", "+00:00"
                ),
                "tenantId": subscription.tenant_id,
                "clientState": subscription.client_state,
                "lifecycleEvent": event,
            }
        ]
    }
