"""Jira emulator: Jira Cloud REST v3 (ADF) and v2, or Jira Server/Data Center REST v2.

Ticket Manager creates and follows Jira issues with the ``jira`` client library; its tests
must run that code over real HTTPS against something that answers like Jira: same paths,
JSON shapes, validations, error bodies, paging and auth. ``JiraEmulator`` is a Flask app
holding the state in memory (see ``jira_store``), rendering it like Jira (``jira_views``),
with the routes in ``jira_api`` and ``jira_issue_api``, JQL in ``jira_jql`` and ADF
handling in ``jira_adf``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, request

from ticket_manager_sandbox.controls import SandboxControls
from ticket_manager_sandbox.jira_adf import is_valid_adf, text_to_adf
from ticket_manager_sandbox.jira_api import register_routes
from ticket_manager_sandbox.jira_http import JiraError, jira_error_response
from ticket_manager_sandbox.jira_jql import Catalog, JqlError, Query, compile_jql
from ticket_manager_sandbox.jira_servicedesk import RequestType, ServiceDesk, ServiceDeskState
from ticket_manager_sandbox.jira_store import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    JiraStore,
)
from ticket_manager_sandbox.jira_views import JiraViews
from ticket_manager_sandbox.resettable import Resettable

DEFAULT_SERVICE_ACCOUNT = {"email": "ticket-bot@example.com", "api_token": "sandbox-jira-token"}
PERMISSIONS = {
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "EDIT_ISSUES",
    "DELETE_ISSUES",
    "ADD_COMMENTS",
    "CREATE_ATTACHMENTS",
    "TRANSITION_ISSUES",
    "ASSIGN_ISSUES",
}
SEED_USERS = [
    ("alice.agent@example.com", "Alice Agent", "atlassian"),
    ("bob.agent@example.com", "Bob Agent", "atlassian"),
    ("carol.customer@example.com", "Carol Customer", "customer"),
    ("dave.customer@example.com", "Dave Customer", "customer"),
]
ADF_ERROR = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
CLOUD_UNAUTHENTICATED = "Client must be authenticated to access this resource."
CLOUD_BAD_CREDENTIALS = (
    "Basic authentication with passwords is deprecated.  For more information, see: "
    "https://developer.atlassian.com/cloud/confluence/deprecation-notice-basic-auth/\n"
)


class JiraEmulator(Resettable):
    """An in-memory Jira (Cloud or Server) with seeded projects, users and a workflow."""

    def __init__(self, deployment: str = "Cloud", service_account: dict | None = None) -> None:
        if deployment not in ("Cloud", "Server"):
            raise ValueError("deployment must be 'Cloud' or 'Server'")
        self.deployment = deployment
        self.store = JiraStore(deployment)
        self.clock = lambda: datetime.now(UTC)
        # Jira Cloud's default attachment limit is 1 GB; tests lower it to see the 413.
        self.max_attachment_size = 1024 * 1024 * 1024
        self.server_title = "Jira"
        # True: a 429 says how long to wait in Beta-Retry-After instead of Retry-After.
        self.beta_rate_limits = False
        account = {**DEFAULT_SERVICE_ACCOUNT, **(service_account or {})}
        self.service_account = self.store.add_user(
            account["email"],
            account.get("display_name", "Ticket Manager Bot"),
            api_token=account["api_token"],
            username=account.get("username", account["email"]),
            account_type="app" if self.is_cloud and account.get("app") else "atlassian",
        )
        for email, name, account_type in SEED_USERS:
            self.store.add_user(
                email,
                name,
                api_token=f"{email.split('@')[0]}-token",
                account_type=account_type if self.is_cloud else "atlassian",
            )
        lead = self.store.find_user("alice.agent@example.com")
        self.store.add_project("SUP", "Support", "support", lead["id"] if lead else None)
        self.store.add_project("DEV", "Development", "development", lead["id"] if lead else None)
        self.service_desks = ServiceDeskState()
        self.app = Flask(f"jira-emulator-{deployment.lower()}")
        self.controls = SandboxControls("jira", self.render_error)
        self.controls.state_dumper = self.store.dump
        self.controls.install(self.app)
        register_routes(self)

    # -- mode -------------------------------------------------------------------------------

    @property
    def is_cloud(self) -> bool:
        return self.deployment == "Cloud"

    def api_versions(self) -> set[str]:
        """REST versions this deployment serves (Server has no v3)."""
        return {"2", "3", "latest"} if self.is_cloud else {"2", "latest"}

    # -- helpers for tests and the demo -----------------------------------------------------

    def add_user(
        self,
        email: str,
        display_name: str,
        *,
        api_token: str | None = None,
        username: str | None = None,
        account_type: str = "atlassian",
        active: bool = True,
        email_hidden: bool = False,
    ) -> dict:
        """Add a user; returns ``{"accountId"|"key", "name", "emailAddress", "displayName"}``.

        ``email_hidden``: on Cloud the user hides their email (profile visibility), so
        answers leave ``emailAddress`` out; a search by the address still finds them.
        """
        user = self.store.add_user(
            email,
            display_name,
            api_token=api_token,
            username=username,
            account_type=account_type,
            active=active,
        )
        user["email_hidden"] = email_hidden and self.is_cloud
        return self.user_info(user)

    def set_time_zone(self, email: str, time_zone: str) -> None:
        """A user's profile time zone: Jira reads absolute JQL dates in the caller's zone."""
        user = self.store.find_user(email)
        if user is None:
            raise KeyError(email)
        user["time_zone"] = time_zone

    def user_info(self, user: dict) -> dict:
        """The identifiers a test needs to refer to a user through the API."""
        info = {"emailAddress": user["email"], "displayName": user["display_name"]}
        if self.is_cloud:
            info["accountId"] = user["id"]
        else:
            info.update({"key": user["id"], "name": user["username"]})
        return info

    def user(self, email: str) -> dict:
        """Identifiers of an existing user, by email."""
        user = self.store.find_user(email)
        if user is None:
            raise KeyError(email)
        return self.user_info(user)

    def add_project(self, key: str, name: str, board_name: str) -> dict:
        """Add a project with its board; returns ``{"id", "key", "name", "boardId"}``."""
        project = self.store.add_project(key.upper(), name, board_name, self.service_account["id"])
        return {
            "id": project["id"],
            "key": project["key"],
            "name": project["name"],
            "boardId": project["board_id"],
        }

    def set_create_screen(
        self,
        project_key: str,
        *,
        hidden: tuple[str, ...] = (),
        custom: dict[str, dict] | None = None,
    ) -> None:
        """A project's create screen without the ``hidden`` system fields (labels,
        priority...) and with ``custom`` fields ``{id: {"name", "required"}}``."""
        project = self.store.find_project(project_key)
        if project is None:
            raise KeyError(project_key)
        project["create_screen"] = {"hidden": set(hidden), "custom": dict(custom or {})}

    def add_service_desk(
        self, key: str, name: str, *, request_type: str = "Emailed request", **type_options
    ) -> ServiceDesk:
        """A JSM project (no board) with its service desk and one request type."""
        project = self.store.add_project(key.upper(), name, None, self.service_account["id"])
        project["type"] = "service_desk"  # its comments may be internal notes
        desk = self.service_desks.add_desk(project["key"])
        self.service_desks.add_request_type(desk, request_type, **type_options)
        return desk

    def add_request_type(self, desk: ServiceDesk, name: str, **options) -> RequestType:
        """Another request type on a service desk (fields, required ones, custom fields)."""
        return self.service_desks.add_request_type(desk, name, **options)

    def add_customer(self, desk: ServiceDesk, email: str, display_name: str) -> dict:
        """A customer account (portal-only) already added to ``desk``."""
        user = self.store.add_user(email, display_name, username=email, account_type="customer")
        desk.customers.add(user["id"])
        return self.user_info(user)

    def request_participants(self, key: str) -> list[str]:
        """The emails of a customer request's participants."""
        issue = self.store.find_issue(key)
        if issue is None or "request" not in issue:
            raise KeyError(key)
        return [self.store.users[u]["email"] for u in issue["request"]["participants"]]

    def add_issue(
        self,
        project_key: str,
        summary: str,
        *,
        description: str | None = None,
        issue_type: str = "Task",
        labels: list[str] | tuple[str, ...] = (),
        reporter_email: str | None = None,
        priority: str = "Medium",
        created: datetime | None = None,
        properties: dict | None = None,
    ) -> str:
        """Create an issue directly (no HTTP), optionally back-dated; returns its key."""
        project = self.store.find_project(project_key)
        if project is None:
            raise KeyError(project_key)
        reporter = self.store.find_user(reporter_email) if reporter_email else None
        now = created or self.clock()
        stored_description = None
        if description is not None:
            stored_description = text_to_adf(description) if self.is_cloud else description
        fields = {
            "summary": summary,
            "description": stored_description,
            "labels": list(labels),
            "issuetype": next(t["id"] for t in ISSUE_TYPES if t["name"] == issue_type),
            "priority": next(p["id"] for p in PRIORITIES if p["name"] == priority),
            "reporter": reporter["id"] if reporter else self.service_account["id"],
        }
        issue = self.store.create_issue(project, fields, self.service_account["id"], now)
        issue["properties"].update(properties or {})
        return issue["key"]

    def issues(self) -> list[dict]:
        """Every issue, flattened for assertions (plain-text description, comment list...)."""
        with self.store.lock:
            return [self.store.issue_summary(i) for i in self.store.issues.values()]

    def issue(self, key: str) -> dict | None:
        """One issue, flattened like ``issues()``, or None."""
        with self.store.lock:
            issue = self.store.find_issue(key)
            return self.store.issue_summary(issue) if issue else None

    def set_project_type(self, key: str, project_type: str) -> None:
        """Make a project Jira Software (``software``) or Service Management (``service_desk``)."""
        if project_type not in ("software", "service_desk"):
            raise ValueError("project_type must be 'software' or 'service_desk'")
        project = self.store.find_project(key)
        if project is None:
            raise KeyError(key)
        project["type"] = project_type

    def add_comment_as(
        self, key: str, author_email: str, body_text: str, public: bool = True
    ) -> dict:
        """An agent comments in Jira, hiding it from the customer as that kind of project does.

        Service Management: an internal note, the ``sd.public.comment`` property (which Cloud
        also shows as ``jsdPublic: false``). Software: a comment restricted to a role.
        """
        issue = self.store.find_issue(key)
        author = self.store.find_user(author_email)
        if issue is None or author is None:
            raise KeyError(key if issue is None else author_email)
        body = text_to_adf(body_text) if self.is_cloud else body_text
        note = not public and self.store.is_service_desk(issue)
        visibility = None if public or note else {"type": "role", "value": "Developers"}
        comment = self.store.add_comment(
            issue, author["id"], body, self.clock(), internal=note, visibility=visibility
        )
        if note:
            comment["properties"]["sd.public.comment"] = {"internal": True}
        return {"id": comment["id"], "author": author_email, "body": body_text, "public": public}

    def comment_event(
        self, base_url: str, key: str, comment_id: str, event: str = "comment_created"
    ) -> dict:
        """The webhook payload Jira (at ``base_url``) sends for a comment: the comment as REST
        v2 shows it, without its properties (a Data Center internal note looks public)."""
        issue = self.store.find_issue(key)
        if issue is None:
            raise KeyError(key)
        with self.store.lock:
            comment = next(c for c in issue["comments"] if c["id"] == str(comment_id))
            views = JiraViews(self.store, base_url.rstrip("/") + "/", "2")
            rendered_issue = views.issue(
                issue, self.service_account["id"], fields=["summary", "status", "attachment"]
            )
            return {
                "timestamp": int(self.clock().timestamp() * 1000),
                "webhookEvent": event,
                "comment": views.comment(issue, comment),
                "issue": {k: rendered_issue[k] for k in ("id", "key", "self", "fields")},
            }

    def delete_issue(self, key: str) -> None:
        """Delete an issue as if someone removed it in Jira."""
        issue = self.store.find_issue(key)
        if issue is None:
            raise KeyError(key)
        self.store.delete_issue(issue)

    def set_issue_property(self, key: str, property_key: str, value: Any) -> None:
        """Set an issue property directly."""
        issue = self.store.find_issue(key)
        if issue is None:
            raise KeyError(key)
        issue["properties"][property_key] = value

    def revoke_permission(self, email: str, *permissions: str) -> None:
        """Take Jira permissions away from a user (403s on the matching operations)."""
        unknown = set(permissions) - PERMISSIONS
        if unknown:
            raise ValueError(f"unknown permissions: {sorted(unknown)}")
        user = self.store.find_user(email)
        if user is None:
            raise KeyError(email)
        user["revoked"].update(permissions)

    def grant_permission(self, email: str, *permissions: str) -> None:
        """Give back permissions taken with ``revoke_permission``."""
        user = self.store.find_user(email)
        if user is None:
            raise KeyError(email)
        user["revoked"].difference_update(permissions)

    # -- errors -----------------------------------------------------------------------------

    def render_error(self, status: int, retry_after: int | None = None) -> Response:
        """Jira's answer for an injected fault (429 with rate-limit headers, 503, ...)."""
        messages = {
            429: "Rate limit exceeded.",
            503: "Service Unavailable",
            500: "Internal server error",
            502: "Bad Gateway",
            504: "Gateway Timeout",
        }
        response = jira_error_response(status, [messages.get(status, "Request failed")])
        if retry_after is not None:
            # Cloud's points-based limits announce the wait as Beta-Retry-After.
            name = "Beta-Retry-After" if self.beta_rate_limits and status == 429 else "Retry-After"
            response.headers[name] = str(int(retry_after))
        if status == 429:
            reset = self.clock() + timedelta(seconds=retry_after or 0)
            if self.is_cloud:
                response.headers["X-RateLimit-Limit"] = "100"
                response.headers["X-RateLimit-Remaining"] = "0"
                response.headers["X-RateLimit-Reset"] = reset.strftime("%Y-%m-%dT%H:%MZ")
                response.headers["X-RateLimit-NearLimit"] = "true"
                response.headers["RateLimit-Reason"] = "jira-burst-based"
            else:
                response.headers["X-RateLimit-Limit"] = "100"
                response.headers["X-RateLimit-Remaining"] = "0"
                response.headers["X-RateLimit-FillRate"] = "10"
                response.headers["X-RateLimit-Interval-Seconds"] = "1"
        return response

    # -- request context --------------------------------------------------------------------

    def authenticate(self) -> Response | None:
        """Resolve the caller from Basic (or, on Server, Bearer PAT) auth; 401 when it fails."""
        header = request.headers.get("Authorization", "")
        g.user = None
        if not header:
            return self._unauthenticated(bad_credentials=False)
        scheme, _, value = header.partition(" ")
        user = None
        if scheme.lower() == "basic":
            try:
                login, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                login, secret = "", ""
            candidate = self.store.find_user(login)
            if candidate and candidate["api_token"] and secret == candidate["api_token"]:
                if self.is_cloud and login.lower() != candidate["email"].lower():
                    candidate = None
                if not self.is_cloud and login.lower() != candidate["username"].lower():
                    candidate = None
                user = candidate
        elif scheme.lower() == "bearer" and not self.is_cloud:
            user = next(
                (
                    u
                    for u in self.store.users.values()
                    if u["api_token"] and u["api_token"] == value
                ),
                None,
            )
        if user is None or not user["active"]:
            return self._unauthenticated(bad_credentials=True)
        g.user = user
        return None

    def _unauthenticated(self, *, bad_credentials: bool) -> Response:
        if self.is_cloud:
            text = CLOUD_BAD_CREDENTIALS if bad_credentials else CLOUD_UNAUTHENTICATED
            response = Response(text, status=401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Basic realm="protected"'
            return response
        if bad_credentials:
            response = Response(
                "Basic Authentication Failure - Reason : AUTHENTICATED_FAILED",
                status=401,
                mimetype="text/html",
            )
            response.headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
        else:
            response = jira_error_response(
                401,
                ["You are not authenticated. Authentication required to perform this operation."],
            )
        response.headers["WWW-Authenticate"] = 'Basic realm="protected-by-jira"'
        return response

    def require(self, permission: str, message: str) -> None:
        """403 unless the caller holds ``permission``."""
        if permission in g.user["revoked"]:
            raise JiraError(403, [message])

    def views(self, version: str) -> JiraViews:
        return JiraViews(self.store, request.host_url, "3" if version == "3" else "2")

    def get_issue_or_404(self, key: str) -> dict:
        issue = self.store.find_issue(key)
        if issue is None or "BROWSE_PROJECTS" in g.user["revoked"]:
            # Server/Data Center words it differently from Cloud.
            message = (
                "Issue does not exist or you do not have permission to see it."
                if self.is_cloud
                else "Issue Does Not Exist"
            )
            raise JiraError(404, [message])
        return issue

    # -- validation shared by create, edit and transitions -----------------------------------

    def rich_text(self, value: Any, version: str, field: str) -> Any:
        """Validate a description-like value for this API version; returns it as stored."""
        if value is None:
            return None
        if version == "3":
            if not is_valid_adf(value):
                raise JiraError(400, [], {field: ADF_ERROR})
        elif not isinstance(value, str):
            raise JiraError(400, [], {field: "Operation value must be a string"})
        return self.store.body_in(value, version)

    def resolve_user_field(self, field: str, reference: Any) -> str | None:
        """A reporter/assignee reference as stored user id (None unassigns an assignee)."""
        if reference is None or (
            isinstance(reference, dict)
            and (reference.get("accountId") or reference.get("name")) == "-1"
        ):
            if field == "reporter":
                raise JiraError(400, [], {"reporter": "Reporter is required."})
            return None
        user = self.store.user_by_reference(reference)
        if user is not None:
            if field == "assignee" and not self.is_assignable(user):
                raise JiraError(
                    400, [], {field: f"User '{user['display_name']}' cannot be assigned issues."}
                )
            return user["id"]
        if self.is_cloud:
            account = reference.get("accountId") if isinstance(reference, dict) else reference
            message = (
                f"Account ID {account} does not exist."
                if account
                else f"Specify a valid value for {field}"
            )
        elif field == "reporter":
            message = "The reporter specified is not a user."
        else:
            name = reference.get("name") if isinstance(reference, dict) else reference
            message = f"User '{name}' does not exist."
        raise JiraError(400, [], {field: message})

    def is_assignable(self, user: dict) -> bool:
        """Whether the user holds Assignable User: active agents, never service-desk customers."""
        return user["active"] and user["account_type"] != "customer"

    def jql_catalog(self) -> Catalog:
        """What JQL may name right now: projects, statuses, priorities, types and users."""
        named: dict[str, set[str]] = {
            "project": set(),
            "status": set(),
            "statuscategory": set(),
            "priority": set(),
            "issuetype": set(),
            "resolution": {"unresolved"},
        }
        for resolution in RESOLUTIONS:
            named["resolution"].update({resolution["name"].lower(), resolution["id"]})
        for project in self.store.projects.values():
            named["project"].update(
                {project["key"].lower(), project["id"], project["name"].lower()}
            )
        for status in STATUSES:
            named["status"].update({status["name"].lower(), status["id"]})
        for category in STATUS_CATEGORIES.values():
            named["statuscategory"].update(
                {category["key"], category["name"].lower(), str(category["id"])}
            )
        for priority in PRIORITIES:
            named["priority"].update({priority["name"].lower(), priority["id"]})
        for issue_type in ISSUE_TYPES:
            named["issuetype"].update({issue_type["name"].lower(), issue_type["id"]})
        caller = g.user
        return Catalog(
            named_values=named,
            current_user=self._user_refs(caller["id"]),
            now=self.clock(),
            # Jira reads absolute JQL dates in the caller's profile time zone.
            time_zone=ZoneInfo(caller.get("time_zone") or "UTC"),
            user_exists=lambda value: (
                self.store.find_user(value) is not None
                or any(
                    value.lower() == u["display_name"].lower() for u in self.store.users.values()
                )
            ),
        )

    def compile_query(self, jql: str) -> Query:
        try:
            return compile_jql(jql, self.jql_catalog())
        except JqlError as error:
            raise JiraError(400, error.messages) from error

    def _user_refs(self, user_id: str | None) -> set[str] | None:
        user = self.store.users.get(user_id) if user_id else None
        if user is None:
            return None
        return {user["id"], user["email"], user["display_name"], user["username"]}

    def search_document(self, issue: dict) -> dict:
        """The issue as the JQL evaluator sees it."""
        project = self.store.projects[issue["project"]]
        status = next(s for s in STATUSES if s["id"] == issue["status"])
        category = STATUS_CATEGORIES[status["category"]]
        priority = next(p for p in PRIORITIES if p["id"] == issue["priority"])
        issue_type = next(t for t in ISSUE_TYPES if t["id"] == issue["issuetype"])
        number = int(issue["key"].rsplit("-", 1)[1])
        return {
            "id": int(issue["id"]),
            "key": {issue["key"], issue["id"]},
            "project": {project["key"], project["id"], project["name"]},
            "labels": list(issue["labels"]),
            "status": {status["name"], status["id"]},
            "statuscategory": {category["key"], category["name"], str(category["id"])},
            "priority": {priority["name"], priority["id"]},
            "issuetype": {issue_type["name"], issue_type["id"]},
            "resolution": (
                {issue["resolution"]["name"], issue["resolution"]["id"]}
                if issue["resolution"]
                else None
            ),
            "reporter": self._user_refs(issue["reporter"]),
            "assignee": self._user_refs(issue["assignee"]),
            "creator": self._user_refs(issue["creator"]),
            "watcher": [self._user_refs(w) for w in issue["watchers"]],
            "summary": issue["summary"],
            "description": self.store.plain_text(issue["description"]),
            "comment": [self.store.plain_text(c["body"]) for c in issue["comments"]],
            "created": issue["created"],
            "updated": issue["updated"],
            "resolutiondate": issue["resolutiondate"],
            "properties": issue["properties"],
            "sort:key": (project["key"], number),
            "sort:priority": int(priority["id"]),
            "sort:status": status["name"],
            "sort:issuetype": issue_type["name"],
            "sort:project": project["key"],
            "sort:assignee": self.store.users[issue["assignee"]]["display_name"]
            if issue["assignee"] in self.store.users
            else None,
            "sort:reporter": self.store.users[issue["reporter"]]["display_name"]
            if issue["reporter"] in self.store.users
            else None,
            "sort:summary": issue["summary"].lower(),
        }

    def run_query(self, query: Query) -> list[dict]:
        """Issues matching a compiled query, in its order, hidden projects left out."""
        with self.store.lock:
            if "BROWSE_PROJECTS" in g.user["revoked"]:
                return []
            docs = {id(i): self.search_document(i) for i in self.store.issues.values()}
            by_doc = {id(docs[id(i)]): i for i in self.store.issues.values()}
            matching = [d for d in docs.values() if query.matches(d)]
            return [by_doc[id(d)] for d in query.sort(matching)]
