"""HTTP routes of the Jira emulator: instance info, projects, boards, users and search.

Paths, parameters, status codes and bodies follow Atlassian's REST documentation (the Cloud
OpenAPI description for v3 and agile/1.0, the Server REST reference for v2). The issue routes
(issues, comments, attachments, transitions, watchers, properties) are in ``jira_issue_api``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from ticket_manager_sandbox.jira_http import (
    AGILE,
    API,
    JiraError,
    gdpr_reject,
    int_arg,
    jira_error_response,
    json_response,
    list_arg,
    read_json,
    route_decorator,
)
from ticket_manager_sandbox.jira_issue_api import register_issue_routes
from ticket_manager_sandbox.jira_servicedesk import register_servicedesk_routes
from ticket_manager_sandbox.jira_store import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUSES,
    jira_time,
)

if TYPE_CHECKING:
    from ticket_manager_sandbox.jira import JiraEmulator

CLOUD_VERSION = {
    "version": "1001.0.0-SNAPSHOT",
    "versionNumbers": [1001, 0, 0],
    "buildNumber": 100289,
    "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
}
SERVER_VERSION = {
    "version": "9.12.12",
    "versionNumbers": [9, 12, 12],
    "buildNumber": 9120012,
    "scmInfo": "6c2fd1b0e7f7c9a27d08b28a1fdd8b3a1f4e6c0d",
}
BUILD_DATE = datetime(2024, 9, 17, tzinfo=UTC)
SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
PERMISSIONS_KNOWN = {
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "EDIT_ISSUES",
    "DELETE_ISSUES",
    "ADD_COMMENTS",
    "CREATE_ATTACHMENTS",
    "TRANSITION_ISSUES",
    "ASSIGN_ISSUES",
}
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)


def register_routes(emu: JiraEmulator) -> None:
    """Add every REST route to ``emu.app``."""
    app = emu.app
    store = emu.store

    @app.before_request
    def _authenticate():
        path = request.path
        if not path.startswith("/rest/"):
            return None
        if path.startswith("/rest/api/"):
            version = path.split("/")[3]
            if version not in emu.api_versions():
                return Response("Not Found", status=404, mimetype="text/plain")
            if path.rstrip("/").endswith("/serverInfo"):
                return None
        return emu.authenticate()

    @app.errorhandler(JiraError)
    def _jira_error(error: JiraError):
        return jira_error_response(error.status, error.messages, error.errors)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if request.path.startswith("/rest/"):
            return jira_error_response(error.code or 500, [error.description or error.name])
        return error

    route = route_decorator(app)
    register_issue_routes(emu, route)
    register_servicedesk_routes(emu, route)

    # -- instance ---------------------------------------------------------------------------

    @route(f"{API}/serverInfo")
    def server_info(version: str):
        info = CLOUD_VERSION if emu.is_cloud else SERVER_VERSION
        return json_response(
            {
                "baseUrl": request.host_url.rstrip("/"),
                "version": info["version"],
                "versionNumbers": info["versionNumbers"],
                "deploymentType": emu.deployment,
                "buildNumber": info["buildNumber"],
                "buildDate": jira_time(BUILD_DATE),
                "serverTime": jira_time(emu.clock()),
                "scmInfo": info["scmInfo"],
                "serverTitle": emu.server_title,
            }
        )

    @route(f"{API}/mypermissions")
    def my_permissions(version: str):
        # The emulator knows one global permission: Jira administrators may create JSM
        # customers (POST /rest/servicedeskapi/customer), as Atlassian documents.
        wanted = list_arg("permissions")
        if not wanted:
            raise JiraError(400, ["The 'permissions' query parameter is required."])
        found = {}
        for key in wanted:
            if key == "ADMINISTER":
                have = emu.service_desks.customer_creation_allowed
            else:
                have = key in PERMISSIONS_KNOWN and key not in g.user["revoked"]
            found[key] = {
                "id": str(sorted(PERMISSIONS_KNOWN | {"ADMINISTER"}).index(key))
                if key in PERMISSIONS_KNOWN | {"ADMINISTER"}
                else "0",
                "key": key,
                "name": key.replace("_", " ").title(),
                "type": "GLOBAL" if key == "ADMINISTER" else "PROJECT",
                "description": "",
                "havePermission": have,
            }
        return json_response({"permissions": found})

    @route(f"{API}/myself")
    def myself(version: str):
        return json_response(emu.views(version).myself(g.user["id"]))

    @route(f"{API}/field")
    def fields(version: str):
        return json_response(emu.views(version).field_list())

    @route(f"{API}/priority")
    def priorities(version: str):
        views = emu.views(version)
        return json_response([views.priority(p["id"]) for p in PRIORITIES])

    @route(f"{API}/issuetype")
    def issue_types(version: str):
        views = emu.views(version)
        return json_response([views.issue_type(t["id"]) for t in ISSUE_TYPES])

    @route(f"{API}/status")
    def statuses(version: str):
        views = emu.views(version)
        return json_response([views.status(s["id"]) for s in STATUSES])

    @route(f"{API}/resolution")
    def resolutions(version: str):
        views = emu.views(version)
        return json_response([views.resolution(r) for r in RESOLUTIONS])

    # -- projects and boards ----------------------------------------------------------------

    def visible_projects() -> list[dict]:
        if "BROWSE_PROJECTS" in g.user["revoked"]:
            return []
        return sorted(store.projects.values(), key=lambda p: p["key"])

    @route(f"{API}/project")
    def projects(version: str):
        views = emu.views(version)
        return json_response([views.project(p) for p in visible_projects()])

    @route(f"{API}/project/search")
    def project_search(version: str):
        views = emu.views(version)
        start_at = int_arg("startAt", 0)
        max_results = int_arg("maxResults", 50, 100)
        query = (request.args.get("query") or "").lower()
        keys = {k.upper() for k in list_arg("keys")}
        found = [
            p
            for p in visible_projects()
            if (not query or query in p["key"].lower() or query in p["name"].lower())
            and (not keys or p["key"] in keys)
        ]
        page = found[start_at : start_at + max_results]
        is_last = start_at + len(page) >= len(found)
        self_url = request.url
        body = {
            "self": self_url,
            "maxResults": max_results,
            "startAt": start_at,
            "total": len(found),
            "isLast": is_last,
            "values": [views.project(p) for p in page],
        }
        if not is_last:
            body["nextPage"] = (
                f"{views.api}/project/search?startAt={start_at + max_results}"
                f"&maxResults={max_results}"
            )
        return json_response(body)

    @route(f"{API}/project/<key>")
    def project(version: str, key: str):
        found = store.find_project(key)
        if found is None or "BROWSE_PROJECTS" in g.user["revoked"]:
            raise JiraError(404, [f"No project could be found with key '{key}'."])
        return json_response(emu.views(version).project(found, full=True))

    @route(f"{AGILE}/board")
    def boards():
        views = emu.views("3")
        start_at = int_arg("startAt", 0)
        max_results = int_arg("maxResults", 50, 50)
        name = (request.args.get("name") or "").lower()
        project_ref = request.args.get("projectKeyOrId")
        board_type = request.args.get("type")
        if project_ref and store.find_project(project_ref) is None:
            raise JiraError(400, [f"No project could be found with key or id '{project_ref}'"])
        found = [
            b
            for b in sorted(store.boards.values(), key=lambda b: b["id"])
            if name in b["name"].lower()
            and (not project_ref or store.find_project(project_ref)["key"] == b["project"])
            and (not board_type or b["type"] in board_type.split(","))
            and "BROWSE_PROJECTS" not in g.user["revoked"]
        ]
        page = found[start_at : start_at + max_results]
        return json_response(
            {
                "maxResults": max_results,
                "startAt": start_at,
                "total": len(found),
                "isLast": start_at + len(page) >= len(found),
                "values": [views.board(b) for b in page],
            }
        )

    @route(f"{AGILE}/board/<int:board_id>")
    def board(board_id: int):
        found = store.boards.get(board_id)
        if found is None or "BROWSE_PROJECTS" in g.user["revoked"]:
            raise JiraError(404, ["Board does not exist or you do not have permission to see it."])
        return json_response(emu.views("3").board(found))

    # -- users ------------------------------------------------------------------------------

    @route(f"{API}/user/search")
    def user_search(version: str):
        views = emu.views(version)
        start_at = int_arg("startAt", 0)
        max_results = int_arg("maxResults", 50, 1000)
        if emu.is_cloud:
            gdpr_reject(emu.is_cloud, "username")
            term = request.args.get("query")
            account_id = request.args.get("accountId")
            if not term and not account_id:
                raise JiraError(
                    400, ["One of 'query' or 'accountId' query parameters must be provided."]
                )
            if term and account_id:
                raise JiraError(
                    400, ["Only one of 'query' or 'accountId' query parameters may be provided."]
                )
            # Cloud lists active users only.
            include_active, include_inactive = True, False
        else:
            term = request.args.get("username")
            account_id = None
            if not term:
                raise JiraError(400, ["The username query parameter was not provided"])
            include_active = request.args.get("includeActive", "true").lower() != "false"
            include_inactive = request.args.get("includeInactive", "false").lower() == "true"
        found = []
        for user in store.users.values():
            if not (include_active if user["active"] else include_inactive):
                continue
            if account_id and user["id"] != account_id:
                continue
            # "." is Server's wildcard for every user; Cloud matches it like any other text.
            if term and not (term == "." and not emu.is_cloud) and not _user_matches(user, term):
                continue
            found.append(user)
        found.sort(key=lambda u: u["display_name"].lower())
        page = found[start_at : start_at + max_results]
        return json_response([views.user(u["id"], full=True) for u in page])

    @route(f"{API}/user")
    def user(version: str):
        views = emu.views(version)
        if emu.is_cloud:
            gdpr_reject(emu.is_cloud, "username")
            gdpr_reject(emu.is_cloud, "key")
            account_id = request.args.get("accountId")
            if not account_id:
                raise JiraError(400, ["The query parameter 'accountId' is required."])
            found = store.users.get(account_id)
            if found is None:
                raise JiraError(
                    404, ["Specified user does not exist or you do not have required permissions"]
                )
        else:
            name = request.args.get("username") or request.args.get("key")
            if not name:
                raise JiraError(
                    400, ["Either the 'username' or the 'key' query parameters need to be provided"]
                )
            found = store.users.get(name) or next(
                (u for u in store.users.values() if u["username"] == name), None
            )
            if found is None:
                raise JiraError(404, [f"The user named '{name}' does not exist"])
        return json_response(views.user(found["id"], full=True))

    # -- search -----------------------------------------------------------------------------

    @route(f"{API}/search", ("GET", "POST"))
    def legacy_search(version: str):
        if emu.is_cloud:
            raise JiraError(410, [SEARCH_REMOVED])
        body = read_json() if request.method == "POST" else {}
        if not isinstance(body, dict):
            raise JiraError(400, ["Can not deserialize instance of SearchRequestBean"])
        args = request.args
        jql = body.get("jql", args.get("jql", ""))
        start_at = int(body.get("startAt", int_arg("startAt", 0)))
        max_results = min(int(body.get("maxResults", int_arg("maxResults", 50))), 1000)
        fields = body.get("fields") or list_arg("fields")
        expand = body.get("expand") or list_arg("expand")
        expand = set(expand.split(",") if isinstance(expand, str) else expand)
        query = emu.compile_query(jql)
        found = emu.run_query(query)
        page = found[start_at : start_at + max_results]
        views = emu.views(version)
        with store.lock:
            issues = [
                views.issue(
                    i,
                    g.user["id"],
                    fields=fields,
                    expand=expand,
                    properties=list_arg("properties"),
                    default_fields="*navigable",
                )
                for i in page
            ]
        return json_response(
            {
                "expand": "names,schema",
                "startAt": start_at,
                "maxResults": max_results,
                "total": len(found),
                "issues": issues,
            }
        )

    def page_token(jql: str, offset: int) -> str:
        digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
        raw = json.dumps({"o": offset, "q": digest}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def token_offset(token: str | None, jql: str) -> int:
        if not token:
            return 0
        try:
            padded = token + "=" * (-len(token) % 4)
            decoded = json.loads(base64.urlsafe_b64decode(padded))
            if decoded["q"] != hashlib.sha256(jql.encode()).hexdigest()[:12]:
                raise ValueError("token issued for another query")
            return int(decoded["o"])
        except (ValueError, KeyError, TypeError) as error:
            raise JiraError(400, ["The provided next page token is invalid or expired."]) from error

    @route(f"{API}/search/jql", ("GET", "POST"))
    def enhanced_search(version: str):
        if not emu.is_cloud:
            return Response("Not Found", status=404, mimetype="text/plain")
        if request.method == "POST":
            body = read_json()
            if not isinstance(body, dict):
                raise JiraError(400, ["Invalid request payload."])
            unknown = set(body) - {
                "jql",
                "nextPageToken",
                "maxResults",
                "fields",
                "expand",
                "properties",
                "fieldsByKeys",
                "failFast",
                "reconcileIssues",
            }
            if unknown:
                raise JiraError(400, [f'Unrecognized field "{sorted(unknown)[0]}"'])
            jql = body.get("jql") or ""
            token = body.get("nextPageToken")
            max_results = body.get("maxResults", 50)
            fields = body.get("fields") or []
            if isinstance(fields, str):
                fields = [f.strip() for f in fields.split(",") if f.strip()]
            expand = body.get("expand") or ""
            properties = body.get("properties") or []
        else:
            jql = request.args.get("jql", "")
            token = request.args.get("nextPageToken")
            max_results = int_arg("maxResults", 50)
            fields = list_arg("fields")
            expand = request.args.get("expand", "")
            properties = list_arg("properties")
        query = emu.compile_query(jql)
        if not query.is_bounded:
            raise JiraError(400, [UNBOUNDED])
        offset = token_offset(token, jql)
        only_ids = not fields or set(fields) <= {"id", "key"}
        max_results = max(0, min(int(max_results), 5000 if only_ids else 100))
        found = emu.run_query(query)
        page = found[offset : offset + max_results]
        views = emu.views(version)
        expand_set = set(expand.split(",")) if isinstance(expand, str) else set(expand)
        expand_set.discard("")
        # The default (fields=id) gives bare {"id"} objects: "By default, this resource
        # returns IDs only."
        ids_only = all(f == "id" for f in fields) and not expand_set and not properties
        with store.lock:
            issues = [
                {"id": i["id"]}
                if ids_only
                else views.issue(
                    i,
                    g.user["id"],
                    fields=fields or ["id"],
                    expand=expand_set,
                    properties=properties,
                    default_fields="id",
                )
                for i in page
            ]
        is_last = offset + len(page) >= len(found)
        body: dict[str, Any] = {"issues": issues, "isLast": is_last}
        if not is_last:
            body["nextPageToken"] = page_token(jql, offset + len(page))
        return json_response(body)

    @route(f"{API}/search/approximate-count", ("POST",))
    def approximate_count(version: str):
        if not emu.is_cloud:
            return Response("Not Found", status=404, mimetype="text/plain")
        body = read_json()
        jql = body.get("jql", "") if isinstance(body, dict) else ""
        query = emu.compile_query(jql)
        if not query.is_bounded:
            raise JiraError(400, [UNBOUNDED])
        return json_response({"count": len(emu.run_query(query))})


def _user_matches(user: dict, term: str) -> bool:
    term = term.lower()
    words = user["display_name"].lower().split()
    return (
        user["email"].lower().startswith(term)
        or user["username"].lower().startswith(term)
        or user["display_name"].lower().startswith(term)
        or any(w.startswith(term) for w in words)
    )
