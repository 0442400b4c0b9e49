"""Jira Service Management (``/rest/servicedeskapi``): service desks, customers, requests.

A project that is a service desk takes email as *customer requests*: raised on behalf of the
customer, with participants, visible in the customer portal. This module is the client of
that API, on Cloud and Data Center alike (Cloud names users by accountId, Data Center by
username), and translates its JSON into the small types below.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from requests_toolbelt import MultipartEncoder

from ticket_manager.jira.errors import JiraAuthError, JiraError, JiraNotFoundError

if TYPE_CHECKING:
    from ticket_manager.jira.client import JiraClient, JiraUser

SDAPI = "/rest/servicedeskapi"
log = logging.getLogger("ticket_manager.jira")


@dataclass(frozen=True)
class ServiceDesk:
    """A service desk and the project it files into."""

    id: str
    project_key: str
    project_name: str


@dataclass(frozen=True)
class RequestField:
    """A field of a request type's form: its id, label and whether the form requires it."""

    id: str
    name: str
    required: bool


@dataclass(frozen=True)
class RequestType:
    """A request type and the fields its form shows (only those may be sent)."""

    id: str
    name: str
    fields: tuple[RequestField, ...]

    def allows(self, field_id: str) -> bool:
        return any(f.id == field_id for f in self.fields)

    @property
    def required(self) -> tuple[RequestField, ...]:
        return tuple(f for f in self.fields if f.required)


@dataclass(frozen=True)
class CreatedRequest:
    """What Jira answered to a new request: its key and the customer portal's link to it."""

    key: str
    portal_url: str | None


class CustomersRefused(JiraError):
    """The site does not let the service account create customers or add them to the desk."""


class ServiceDeskClient:
    """The JSM API of one site, through the Jira client's session, retries and errors."""

    def __init__(self, jira: JiraClient) -> None:
        self.jira = jira
        self._desks: dict[str, ServiceDesk] | None = None
        self._types: dict[tuple[str, str], RequestType] = {}
        self._lock = threading.Lock()

    # -- service desks and request types ----------------------------------------------------

    def for_project(self, project_key: str) -> ServiceDesk | None:
        """The service desk over ``project_key``, or None (not JSM, or JSM not installed)."""
        with self._lock:
            if self._desks is None:
                self._desks = {d.project_key.upper(): d for d in self._list_desks()}
            return self._desks.get(project_key.upper())

    def _list_desks(self) -> list[ServiceDesk]:
        desks: list[ServiceDesk] = []
        start = 0
        while True:
            try:
                page = self.jira.rest(
                    "GET",
                    f"{SDAPI}/servicedesk",
                    "service desks",
                    params={"start": start, "limit": 50},
                )
            except (JiraNotFoundError, JiraAuthError) as exc:
                # A site without Jira Service Management (404), or where it is not licensed
                # for the account (403): every project takes plain issues.
                log.info("no service desks", extra={"status": exc.status})
                return []
            for raw in page.get("values", []):
                desks.append(
                    ServiceDesk(
                        id=str(raw["id"]),
                        project_key=raw.get("projectKey") or "",
                        project_name=raw.get("projectName") or "",
                    )
                )
            if page.get("isLastPage", True) or not page.get("values"):
                return desks
            start += len(page["values"])

    def request_type(self, desk: ServiceDesk, name: str) -> RequestType:
        """The request type called ``name`` (any case) with its form's fields, cached."""
        with self._lock:
            cached = self._types.get((desk.id, name.lower()))
        if cached is not None:
            return cached
        found = None
        start = 0
        while found is None:
            page = self.jira.rest(
                "GET",
                f"{SDAPI}/servicedesk/{desk.id}/requesttype",
                "request types",
                params={"start": start, "limit": 50},
            )
            values = page.get("values", [])
            found = next((t for t in values if (t.get("name") or "").lower() == name.lower()), None)
            if found is not None or page.get("isLastPage", True) or not values:
                break
            start += len(values)
        if found is None:
            raise JiraNotFoundError(
                f"service desk {desk.project_key} has no request type named {name!r}", status=404
            )
        meta = self.jira.rest(
            "GET",
            f"{SDAPI}/servicedesk/{desk.id}/requesttype/{found['id']}/field",
            "request type fields",
        )
        request_type = RequestType(
            id=str(found["id"]),
            name=found.get("name") or name,
            fields=tuple(
                RequestField(
                    id=f["fieldId"],
                    name=f.get("name") or f["fieldId"],
                    required=bool(f.get("required")),
                )
                for f in meta.get("requestTypeFields", [])
            ),
        )
        with self._lock:
            self._types[(desk.id, name.lower())] = request_type
        return request_type

    # -- customers --------------------------------------------------------------------------

    def can_create_customers(self) -> bool:
        """Whether the account holds what POST /customer requires (Jira administrator)."""
        body = self.jira.rest(
            "GET",
            f"/rest/api/{self.jira.api_version}/mypermissions",
            "my permissions",
            params={"permissions": "ADMINISTER"},
        )
        permission = ((body or {}).get("permissions") or {}).get("ADMINISTER") or {}
        return bool(permission.get("havePermission"))

    def customer(self, desk: ServiceDesk, email: str, display_name: str) -> JiraUser:
        """The Jira account of ``email`` as a customer of ``desk``, created when missing.

        Raises CustomersRefused where the site does not let the account create customers
        or add them to the service desk.
        """
        user = self.jira.find_user(email)
        if user is None:
            user = self._create_customer(email, display_name)
        who = (
            {"accountIds": [user.account_id]} if self.jira.is_cloud else {"usernames": [user.name]}
        )
        try:
            self.jira.rest(
                "POST", f"{SDAPI}/servicedesk/{desk.id}/customer", "add customer", body=who
            )
        except JiraError as exc:
            if exc.status == 403:
                raise CustomersRefused(str(exc), status=403) from None
            raise
        return user

    def _create_customer(self, email: str, display_name: str) -> JiraUser:
        # Cloud reads displayName (fullName is deprecated there); Data Center reads fullName.
        name_key = "displayName" if self.jira.is_cloud else "fullName"
        try:
            raw = self.jira.rest(
                "POST",
                f"{SDAPI}/customer",
                "create customer",
                body={"email": email, name_key: display_name or email},
            )
        except JiraError as exc:
            if exc.status == 403:
                raise CustomersRefused(str(exc), status=403) from None
            if exc.status == 400 and "already exists" in str(exc):
                # Created by an earlier attempt, or hidden from the user search: look again.
                self.jira.forget_user(email)
                user = self.jira.find_user(email)
                if user is not None:
                    return user
            raise
        self.jira.forget_user(email)
        return self.jira.user_from_json(raw)

    # -- requests ---------------------------------------------------------------------------

    def create_request(
        self,
        desk: ServiceDesk,
        request_type: RequestType,
        values: dict,
        *,
        on_behalf_of: JiraUser | None,
        participants: list[JiraUser],
    ) -> CreatedRequest:
        """Raise a customer request; never repeated blindly (the caller recovers)."""
        body: dict = {
            "serviceDeskId": desk.id,
            "requestTypeId": request_type.id,
            "requestFieldValues": values,
        }
        if on_behalf_of is not None:
            body["raiseOnBehalfOf"] = self._name(on_behalf_of)
        if participants:
            body["requestParticipants"] = [self._name(u) for u in participants]
        raw = self.jira.rest(
            "POST", f"{SDAPI}/request", "create request", body=body, repeatable=False
        )
        return CreatedRequest(key=raw["issueKey"], portal_url=(raw.get("_links") or {}).get("web"))

    def add_participants(self, key: str, users: list[JiraUser]) -> None:
        """Add request participants (harmless to repeat: Jira keeps each once)."""
        if not users:
            return
        names = [self._name(u) for u in users]
        body = {"accountIds": names} if self.jira.is_cloud else {"usernames": names}
        self.jira.rest("POST", f"{SDAPI}/request/{key}/participant", "add participants", body=body)

    def add_comment(self, key: str, body: str, *, public: bool) -> str:
        """A request comment, public (the customer sees it) or internal; returns its id."""
        raw = self.jira.rest(
            "POST",
            f"{SDAPI}/request/{key}/comment",
            "add request comment",
            body={"body": body, "public": public},
            repeatable=False,
        )
        return str(raw["id"])

    def attach(self, desk: ServiceDesk, key: str, files: list[tuple[str, bytes, str]]) -> None:
        """Files as the customer's: temporary files on the desk, then attached to the request."""
        if not files:
            return
        encoded = MultipartEncoder(
            fields=[("file", (name, io.BytesIO(data), kind)) for name, data, kind in files]
        )
        temporary = self.jira.rest(
            "POST",
            f"{SDAPI}/servicedesk/{desk.id}/attachTemporaryFile",
            "attach temporary file",
            data=encoded,
            headers={
                "Content-Type": encoded.content_type,
                "X-Atlassian-Token": "no-check",
                "X-ExperimentalApi": "opt-in",
            },
            repeatable=False,
        )
        ids = [t["temporaryAttachmentId"] for t in temporary.get("temporaryAttachments", [])]
        self.jira.rest(
            "POST",
            f"{SDAPI}/request/{key}/attachment",
            "add request attachment",
            body={"temporaryAttachmentIds": ids, "public": True},
            repeatable=False,
        )

    def _name(self, user: JiraUser) -> str:
        """How servicedeskapi names a user: accountId on Cloud, username on Data Center."""
        return (user.account_id if self.jira.is_cloud else user.name) or ""
