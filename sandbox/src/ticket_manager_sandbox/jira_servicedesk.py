"""Jira Service Management's REST API (``/rest/servicedeskapi``) in the Jira emulator.

What Ticket Manager uses of it, with the shapes of Atlassian's Service Management Cloud
OpenAPI description (tests/specs/jira-service-management-cloud.openapi.json) and the
Data Center differences: service desks, request types and their fields, customers (created
and added to a service desk, or refused where the site does not let the service account
manage customers), customer requests raised on behalf of a customer with participants,
request comments with ``public``, temporary files attached to a request, and the portal
link (``_links.web``) of each request. Errors use JSM's own body
(``{"errorMessage", "i18nErrorMessage"}``), not the platform API's ErrorCollection.
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Response, g, request

from ticket_manager_sandbox.jira_adf import text_to_adf
from ticket_manager_sandbox.jira_http import int_arg, json_response, no_content
from ticket_manager_sandbox.jira_issue_api import java_filename
from ticket_manager_sandbox.jira_store import PRIORITIES

if TYPE_CHECKING:
    from ticket_manager_sandbox.jira import JiraEmulator

SDAPI = "/rest/servicedeskapi"
NOT_VALID = (
    "Your request could not be created. Please check the fields have been correctly filled in."
)
# The platform fields a request type may show, with the schema its field list gives them.
SYSTEM_FIELDS = {
    "summary": ("Summary", {"type": "string", "system": "summary"}),
    "description": ("Description", {"type": "string", "system": "description"}),
    "priority": ("Priority", {"type": "priority", "system": "priority"}),
    "labels": ("Labels", {"type": "array", "items": "string", "system": "labels"}),
    "attachment": ("Attachment", {"type": "array", "items": "attachment", "system": "attachment"}),
}


_WIKI_ESCAPE = re.compile(r"\\(.)")


def stored_text(emu: JiraEmulator, text: str) -> Any:
    """A servicedeskapi text as the issue keeps it: JSM reads it as wiki markup.

    Data Center keeps the markup; Cloud renders it into a document, of which the emulator
    keeps the text with the markup's escapes removed (its effects are not rendered).
    """
    if not emu.is_cloud:
        return text
    return text_to_adf(_WIKI_ESCAPE.sub(r"\1", text))


class ServiceDeskError(Exception):
    """Abort a servicedeskapi request with JSM's error body."""

    def __init__(self, status: int, message: str, key: str = "sd.error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.key = key


@dataclass
class RequestType:
    """A request type: the issue type it makes and the fields its portal form shows."""

    id: str
    name: str
    fields: dict[str, dict]  # fieldId -> {"name", "required", "jiraSchema", "validValues"}
    description: str = ""


@dataclass
class ServiceDesk:
    """A service desk over one project: its request types and its customers."""

    id: str
    project_key: str
    request_types: dict[str, RequestType] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    # Customer access "anyone can send requests": any account may be a requester.
    open_access: bool = False


class ServiceDeskState:
    """The service desks of an emulated site and what the service account may do there."""

    def __init__(self) -> None:
        self.desks: dict[str, ServiceDesk] = {}
        # Jira administrators (and agents where the site lets them) may create customers.
        self.customer_creation_allowed = True
        self.temporary_files: dict[str, dict] = {}
        self._desk_ids = itertools.count(1)
        self._type_ids = itertools.count(1)
        self._temp_ids = itertools.count(910441317820424274)

    def add_desk(self, project_key: str) -> ServiceDesk:
        desk = ServiceDesk(id=str(next(self._desk_ids)), project_key=project_key)
        self.desks[desk.id] = desk
        return desk

    def add_request_type(
        self,
        desk: ServiceDesk,
        name: str,
        *,
        fields: tuple[str, ...] = ("summary", "description", "attachment"),
        required: tuple[str, ...] = ("summary",),
        custom: dict[str, dict] | None = None,
    ) -> RequestType:
        """A request type showing ``fields`` (system ids) and ``custom`` fields by id."""
        shown: dict[str, dict] = {}
        for field_id in fields:
            label, schema = SYSTEM_FIELDS[field_id]
            shown[field_id] = {"name": label, "required": field_id in required, "schema": schema}
        for field_id, spec in (custom or {}).items():
            shown[field_id] = {
                "name": spec["name"],
                "required": spec.get("required", False),
                "schema": {
                    "type": "string",
                    "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                    "customId": int(field_id.rsplit("_", 1)[-1]),
                },
            }
        request_type = RequestType(id=str(next(self._type_ids)), name=name, fields=shown)
        desk.request_types[request_type.id] = request_type
        return request_type

    def desk_of_project(self, project_key: str) -> ServiceDesk | None:
        return next((d for d in self.desks.values() if d.project_key == project_key), None)


def error_response(error: ServiceDeskError) -> Response:
    body = {
        "errorMessage": error.message,
        "i18nErrorMessage": {"i18nKey": error.key, "parameters": []},
    }
    return Response(json.dumps(body), status=error.status, mimetype="application/json")


def register_servicedesk_routes(emu: JiraEmulator, route) -> None:
    """Add the ``/rest/servicedeskapi`` routes to ``emu.app``."""
    store = emu.store
    state = emu.service_desks

    @emu.app.errorhandler(ServiceDeskError)
    def _service_desk_error(error: ServiceDeskError):
        return error_response(error)

    def base() -> str:
        return request.host_url.rstrip("/")

    def paged(values: list, path: str) -> dict:
        start = int_arg("start", 0)
        limit = int_arg("limit", 50, 100) or 50
        page = values[start : start + limit]
        return {
            "_expands": [],
            "size": len(page),
            "start": start,
            "limit": limit,
            "isLastPage": start + limit >= len(values),
            "values": page,
            "_links": {"base": base(), "context": "", "self": f"{base()}{SDAPI}/{path}"},
        }

    def desk_view(desk: ServiceDesk) -> dict:
        project = store.find_project(desk.project_key)
        return {
            "id": desk.id,
            "projectId": project["id"],
            "projectName": project["name"],
            "projectKey": project["key"],
            "_links": {"self": f"{base()}{SDAPI}/servicedesk/{desk.id}"},
        }

    def user_view(user_id: str) -> dict:
        user = store.users[user_id]
        body: dict[str, Any] = {
            "emailAddress": user["email"],
            "displayName": user["display_name"],
            "active": user["active"],
            "timeZone": "Etc/UTC",
        }
        if emu.is_cloud:
            body["accountId"] = user["id"]
            rest = f"{base()}/rest/api/3/user?accountId={user['id']}"
        else:
            body.update(name=user["username"], key=user["id"])
            rest = f"{base()}/rest/api/2/user?username={user['username']}"
        body["_links"] = {"jiraRest": rest, "self": rest}
        return body

    def date_view(moment) -> dict:
        return {
            "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "jira": moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
            "epochMillis": int(moment.timestamp() * 1000),
        }

    def request_type_view(desk: ServiceDesk, request_type: RequestType) -> dict:
        return {
            "_expands": [],
            "id": request_type.id,
            "_links": {
                "self": f"{base()}{SDAPI}/servicedesk/{desk.id}/requesttype/{request_type.id}"
            },
            "name": request_type.name,
            "description": request_type.description,
            "helpText": "",
            "issueTypeId": "10001",
            "serviceDeskId": desk.id,
            "groupIds": [],
        }

    def find_desk(desk_id: str) -> ServiceDesk:
        desk = state.desks.get(desk_id)
        if desk is None or "BROWSE_PROJECTS" in g.user["revoked"]:
            raise ServiceDeskError(404, f"Service Desk with id: {desk_id} does not exist")
        return desk

    def find_request(key: str) -> dict:
        issue = store.find_issue(key)
        if issue is None or "request" not in issue or "BROWSE_PROJECTS" in g.user["revoked"]:
            raise ServiceDeskError(404, "The request does not exist or you do not have access.")
        return issue

    def read_body() -> dict:
        if request.mimetype != "application/json":
            raise ServiceDeskError(415, "Unsupported Media Type")
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError as error:
            raise ServiceDeskError(400, f"Malformed JSON: {error.msg}") from error
        if not isinstance(body, dict):
            raise ServiceDeskError(400, "The request body must be a JSON object.")
        return body

    def user_by_id(value: Any) -> dict | None:
        """A user named the way this deployment names them: accountId, or DC's username."""
        if not isinstance(value, str):
            return None
        if emu.is_cloud:
            return store.users.get(value)
        return next((u for u in store.users.values() if u["username"] == value), None)

    # -- service desks and request types ----------------------------------------------------

    @route(f"{SDAPI}/servicedesk")
    def service_desks():
        return json_response(paged([desk_view(d) for d in state.desks.values()], "servicedesk"))

    @route(f"{SDAPI}/servicedesk/<desk_id>/requesttype")
    def request_types(desk_id: str):
        desk = find_desk(desk_id)
        values = [request_type_view(desk, t) for t in desk.request_types.values()]
        return json_response(paged(values, f"servicedesk/{desk_id}/requesttype"))

    @route(f"{SDAPI}/servicedesk/<desk_id>/requesttype/<type_id>/field")
    def request_type_fields(desk_id: str, type_id: str):
        desk = find_desk(desk_id)
        request_type = desk.request_types.get(type_id)
        if request_type is None:
            raise ServiceDeskError(404, f"The request type with id {type_id} does not exist.")
        fields = [
            {
                "fieldId": field_id,
                "name": spec["name"],
                "description": "",
                "required": spec["required"],
                "defaultValues": [],
                "validValues": [],
                "jiraSchema": spec["schema"],
                "visible": True,
            }
            for field_id, spec in request_type.fields.items()
        ]
        return json_response(
            {
                "requestTypeFields": fields,
                "canRaiseOnBehalfOf": True,
                "canAddRequestParticipants": True,
            }
        )

    # -- customers --------------------------------------------------------------------------

    @route(f"{SDAPI}/customer", ("POST",))
    def create_customer():
        body = read_body()
        if not state.customer_creation_allowed:
            raise ServiceDeskError(
                403,
                "You do not have permission to create customers.",
                "sd.customer.create.permission.denied",
            )
        email = body.get("email")
        # Cloud reads displayName (fullName is deprecated there); Data Center reads fullName.
        name = body.get("fullName")
        if emu.is_cloud:
            name = body.get("displayName") or name
        if not isinstance(email, str) or "@" not in email:
            raise ServiceDeskError(400, "The email address is not valid.")
        if not isinstance(name, str) or not name.strip():
            wanted = "displayName" if emu.is_cloud else "fullName"
            raise ServiceDeskError(400, f"The {wanted} must not be empty.")
        if store.find_user(email) is not None:
            raise ServiceDeskError(
                400,
                "An account already exists for this email",
                "sd.customer.create.error.email.exists",
            )
        user = store.add_user(email, name.strip(), username=email, account_type="customer")
        return json_response(user_view(user["id"]), 201)

    @route(f"{SDAPI}/servicedesk/<desk_id>/customer", ("POST",))
    def add_customers(desk_id: str):
        desk = find_desk(desk_id)
        body = read_body()
        if not state.customer_creation_allowed:
            raise ServiceDeskError(
                403, "You do not have permission to add customers to this service desk."
            )
        wanted = "accountIds" if emu.is_cloud else "usernames"
        names = body.get(wanted)
        if not isinstance(names, list) or not names:
            raise ServiceDeskError(400, f"{wanted} must list at least one user.")
        users = [user_by_id(n) for n in names]
        if any(u is None for u in users):
            raise ServiceDeskError(400, "The user does not exist.")
        desk.customers.update(u["id"] for u in users)
        return no_content()

    # -- requests ---------------------------------------------------------------------------

    @route(f"{SDAPI}/request", ("POST",))
    def create_request():
        body = read_body()
        emu.require("CREATE_ISSUES", "You do not have permission to create requests.")
        unknown = set(body) - {
            "serviceDeskId",
            "requestTypeId",
            "requestFieldValues",
            "requestParticipants",
            "raiseOnBehalfOf",
            "channel",
            "isAdfRequest",
        }
        if unknown:
            raise ServiceDeskError(400, f"Unrecognized field {sorted(unknown)[0]!r}")
        desk = state.desks.get(str(body.get("serviceDeskId")))
        if desk is None:
            raise ServiceDeskError(400, "The service desk does not exist.")
        request_type = desk.request_types.get(str(body.get("requestTypeId")))
        if request_type is None:
            raise ServiceDeskError(400, "The request type does not exist in this service desk.")
        values = body.get("requestFieldValues") or {}
        for field_id in values:
            if field_id not in request_type.fields:
                raise ServiceDeskError(
                    400, f"{NOT_VALID} The field '{field_id}' is not valid for this request type."
                )
        for field_id, spec in request_type.fields.items():
            if spec["required"] and values.get(field_id) in (None, "", []):
                raise ServiceDeskError(400, f"{NOT_VALID} {spec['name']} is required.")
        summary = values.get("summary")
        if not isinstance(summary, str) or len(summary.encode("utf-16-le")) // 2 > 255:
            raise ServiceDeskError(400, f"{NOT_VALID} Summary must be less than 255 characters.")
        reporter = g.user
        if body.get("raiseOnBehalfOf") is not None:
            reporter = user_by_id(body["raiseOnBehalfOf"])
            if reporter is None or not may_raise(desk, reporter):
                raise ServiceDeskError(
                    400,
                    f"The user '{body['raiseOnBehalfOf']}' is not a customer of this "
                    "service desk and cannot raise requests in it.",
                )
        participants = []
        for name in body.get("requestParticipants") or []:
            user = user_by_id(name)
            if user is None or not may_raise(desk, user):
                raise ServiceDeskError(
                    400, f"The user '{name}' cannot be added as a request participant."
                )
            participants.append(user["id"])
        description = values.get("description")
        if description is not None and not isinstance(description, str):
            raise ServiceDeskError(400, f"{NOT_VALID} Description must be text.")
        project = store.find_project(desk.project_key)
        fields = {
            "summary": summary,
            "description": stored_text(emu, description) if description else None,
            "labels": list(values.get("labels") or []),
            "issuetype": "10001",
            "reporter": reporter["id"],
        }
        priority = values.get("priority")
        if isinstance(priority, dict):
            fields["priority"] = next(
                (p["id"] for p in PRIORITIES if p["name"] == priority.get("name")), "3"
            )
        with store.lock:
            issue = store.create_issue(project, fields, g.user["id"], emu.clock())
            issue["request"] = {
                "service_desk": desk.id,
                "request_type": request_type.id,
                "participants": list(dict.fromkeys(participants)),
                "custom": {k: v for k, v in values.items() if k.startswith("customfield_")},
            }
            issue["watchers"] = list(dict.fromkeys([*issue["watchers"], reporter["id"]]))
        return json_response(request_view(issue, desk, request_type, values), 201)

    def may_raise(desk: ServiceDesk, user: dict) -> bool:
        return (
            desk.open_access
            or user["id"] in desk.customers
            or user["account_type"] != "customer"  # agents and licensed users
        )

    def request_view(issue: dict, desk: ServiceDesk, request_type: RequestType, values: dict):
        links = {
            "self": f"{base()}{SDAPI}/request/{issue['id']}",
            "jiraRest": f"{base()}/rest/api/2/issue/{issue['id']}",
            "web": f"{base()}/servicedesk/customer/portal/{desk.id}/{issue['key']}",
        }
        if emu.is_cloud:
            links["agent"] = f"{base()}/browse/{issue['key']}"
        return {
            "_expands": ["participant", "status", "sla", "requestType", "serviceDesk"],
            "issueId": issue["id"],
            "issueKey": issue["key"],
            "requestTypeId": request_type.id,
            "serviceDeskId": desk.id,
            "createdDate": date_view(issue["created"]),
            "reporter": user_view(issue["reporter"]),
            "requestFieldValues": [
                {
                    "fieldId": field_id,
                    "label": request_type.fields[field_id]["name"],
                    "value": value,
                }
                for field_id, value in values.items()
            ],
            "currentStatus": {
                "status": "Waiting for support",
                "statusCategory": "NEW",
                "statusDate": date_view(issue["created"]),
            },
            "_links": links,
        }

    @route(f"{SDAPI}/request/<key>/comment", ("POST",))
    def add_request_comment(key: str):
        issue = find_request(key)
        emu.require("ADD_COMMENTS", "You do not have permission to comment on this request.")
        body = read_body()
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            raise ServiceDeskError(400, "The comment body must not be empty.")
        public = body.get("public", True)
        if not isinstance(public, bool):
            raise ServiceDeskError(400, "public must be true or false.")
        stored = stored_text(emu, text)
        with store.lock:
            comment = store.add_comment(
                issue, g.user["id"], stored, emu.clock(), internal=not public
            )
            if not public:
                comment["properties"]["sd.public.comment"] = {"internal": True}
        return json_response(
            {
                "_expands": ["attachment", "renderedBody"],
                "id": comment["id"],
                "body": text,
                "public": public,
                "author": user_view(g.user["id"]),
                "created": date_view(comment["created"]),
                "_links": {
                    "self": f"{base()}{SDAPI}/request/{issue['id']}/comment/{comment['id']}"
                },
            },
            201,
        )

    @route(f"{SDAPI}/request/<key>/participant", ("POST",))
    def add_request_participants(key: str):
        issue = find_request(key)
        body = read_body()
        wanted = "accountIds" if emu.is_cloud else "usernames"
        names = body.get(wanted)
        if not isinstance(names, list) or not names:
            raise ServiceDeskError(400, f"{wanted} must list at least one user.")
        desk = state.desks[issue["request"]["service_desk"]]
        with store.lock:
            for name in names:
                user = user_by_id(name)
                if user is None or not may_raise(desk, user):
                    raise ServiceDeskError(
                        400, f"The user '{name}' cannot be added as a request participant."
                    )
                if user["id"] not in issue["request"]["participants"]:
                    issue["request"]["participants"].append(user["id"])
            values = [user_view(u) for u in issue["request"]["participants"]]
        return json_response(paged(values, f"request/{issue['id']}/participant"))

    # -- attachments ------------------------------------------------------------------------

    @route(f"{SDAPI}/servicedesk/<desk_id>/attachTemporaryFile", ("POST",))
    def attach_temporary_file(desk_id: str):
        if request.headers.get("X-Atlassian-Token", "").lower() not in ("no-check", "nocheck"):
            return Response("XSRF check failed", status=403, mimetype="text/plain")
        desk = find_desk(desk_id)
        files = request.files.getlist("file")
        if not files:
            raise ServiceDeskError(400, "No attachments provided. Use the multipart 'file' part.")
        made = []
        for part in files:
            data = part.read()
            if len(data) > emu.max_attachment_size:
                raise ServiceDeskError(413, "The file is larger than the site's attachment limit.")
            temp_id = f"temp{next(state._temp_ids)}"
            name = java_filename(part.filename)
            state.temporary_files[temp_id] = {
                "desk": desk.id,
                "filename": name,
                "data": data,
                "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                "owner": g.user["id"],
            }
            made.append({"temporaryAttachmentId": temp_id, "fileName": name})
        return json_response({"temporaryAttachments": made}, 201)

    @route(f"{SDAPI}/request/<key>/attachment", ("POST",))
    def add_request_attachments(key: str):
        issue = find_request(key)
        body = read_body()
        ids = body.get("temporaryAttachmentIds")
        if not isinstance(ids, list) or not ids:
            raise ServiceDeskError(400, "temporaryAttachmentIds must list at least one file.")
        files = [state.temporary_files.get(i) for i in ids]
        if any(f is None or f["desk"] != issue["request"]["service_desk"] for f in files):
            raise ServiceDeskError(400, "A temporary attachment does not exist or has expired.")
        views = emu.views("2")
        values = []
        with store.lock:
            for temp_id, file in zip(ids, files, strict=True):
                stored = store.add_attachment(
                    issue,
                    g.user["id"],
                    file["filename"],
                    file["data"],
                    file["mime_type"],
                    emu.clock(),
                )
                state.temporary_files.pop(temp_id, None)
                rendered = views.attachment(stored)
                values.append(
                    {
                        "filename": stored["filename"],
                        "author": user_view(g.user["id"]),
                        "created": date_view(stored["created"]),
                        "size": len(stored["data"]),
                        "mimeType": stored["mime_type"],
                        "_links": {"self": rendered["self"], "content": rendered["content"]},
                    }
                )
        page = {
            "_expands": [],
            "size": len(values),
            "start": 0,
            "limit": len(values),
            "isLastPage": True,
            "values": values,
            "_links": {"base": base(), "context": ""},
        }
        return json_response({"attachments": page}, 201)
