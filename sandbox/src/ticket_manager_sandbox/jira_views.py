"""JSON representations of the Jira emulator's objects, as Jira Cloud and Server return them.

Every ``self`` link is built from the request's host so it points at the emulator's actual
port, and from the API version the client called (v2 or v3), like Jira does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ticket_manager_sandbox.jira_store import (
    CLAUSE_NAMES,
    FIELDS,
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    TRANSITIONS,
    JiraStore,
    jira_time,
)

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
ALL_FIELDS = [f[0] for f in FIELDS] + [
    "lastViewed",
    "duedate",
    "environment",
    "components",
    "fixVersions",
    "versions",
    "issuelinks",
    "subtasks",
    "votes",
    "statuscategorychangedate",
]
# On Server the search default is *navigable, which leaves out comments.
NAVIGABLE_EXCLUDED = {"comment"}


class JiraViews:
    """Renders stored objects for one request (one host, one API version)."""

    def __init__(self, store: JiraStore, host_url: str, version: str) -> None:
        self.store = store
        self.base = host_url.rstrip("/")
        self.version = version
        self.api = f"{self.base}/rest/api/{version}"

    # -- users ------------------------------------------------------------------------------

    def avatar_urls(self, seed: str) -> dict:
        return {
            size: f"{self.base}/secure/useravatar?size={name}&ownerId={seed}"
            for size, name in (
                ("48x48", "large"),
                ("24x24", "small"),
                ("16x16", "xsmall"),
                ("32x32", "medium"),
            )
        }

    def user(self, user_id: str | None, *, full: bool = False) -> dict | None:
        """A user as embedded in issues (UserDetails) or, with ``full``, as /user returns it."""
        user = self.store.users.get(user_id) if user_id else None
        if user is None:
            return None
        if self.store.cloud:
            body = {
                "self": f"{self.api}/user?accountId={user['id']}",
                "accountId": user["id"],
                "emailAddress": user["email"],
                "avatarUrls": self.avatar_urls(user["id"]),
                "displayName": user["display_name"],
                "active": user["active"],
                "timeZone": user.get("time_zone") or "Etc/UTC",
                "accountType": user["account_type"],
            }
            if user.get("email_hidden"):
                # Profile visibility "only you": Cloud leaves the address out entirely.
                del body["emailAddress"]
        else:
            body = {
                "self": f"{self.api}/user?username={user['username']}",
                "name": user["username"],
                "key": user["id"],
                "emailAddress": user["email"],
                "avatarUrls": self.avatar_urls(user["id"]),
                "displayName": user["display_name"],
                "active": user["active"],
                "timeZone": user.get("time_zone") or "Etc/UTC",
            }
        if full:
            body["locale"] = "en_US"
        return body

    def myself(self, user_id: str) -> dict:
        body = self.user(user_id, full=True) or {}
        body["groups"] = {"size": 1, "items": []}
        body["applicationRoles"] = {"size": 1, "items": []}
        body["expand"] = "groups,applicationRoles"
        return body

    # -- reference data ---------------------------------------------------------------------

    def status_category(self, key: str) -> dict:
        category = STATUS_CATEGORIES[key]
        return {"self": f"{self.api}/statuscategory/{category['id']}", **category}

    def status(self, status_id: str) -> dict:
        status = next(s for s in STATUSES if s["id"] == status_id)
        return {
            "self": f"{self.api}/status/{status['id']}",
            "description": status["description"],
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": status["name"],
            "id": status["id"],
            "statusCategory": self.status_category(status["category"]),
        }

    def priority(self, priority_id: str) -> dict:
        priority = next(p for p in PRIORITIES if p["id"] == priority_id)
        return {
            "self": f"{self.api}/priority/{priority['id']}",
            "statusColor": priority["statusColor"],
            "description": f"{priority['name']} priority",
            "iconUrl": f"{self.base}/images/icons/priorities/{priority['name'].lower()}.svg",
            "name": priority["name"],
            "id": priority["id"],
        }

    def issue_type(self, type_id: str) -> dict:
        issue_type = next(t for t in ISSUE_TYPES if t["id"] == type_id)
        return {
            "self": f"{self.api}/issuetype/{issue_type['id']}",
            "id": issue_type["id"],
            "description": issue_type["description"],
            "iconUrl": f"{self.base}/images/icons/issuetypes/{issue_type['name'].lower()}.svg",
            "name": issue_type["name"],
            "subtask": False,
            "avatarId": 10300 + int(issue_type["id"]) % 100,
            "hierarchyLevel": 0,
        }

    def project(self, project: dict, *, full: bool = False) -> dict:
        """A project as listed (compact) or as GET project/{key} returns it (``full``)."""
        body: dict[str, Any] = {
            "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
            "self": f"{self.api}/project/{project['id']}",
            "id": project["id"],
            "key": project["key"],
            "name": project["name"],
            "avatarUrls": {
                size: f"{self.base}/secure/projectavatar?size={name}&pid={project['id']}"
                for size, name in (
                    ("48x48", "large"),
                    ("24x24", "small"),
                    ("16x16", "xsmall"),
                    ("32x32", "medium"),
                )
            },
            "projectTypeKey": project["type"],
        }
        if self.store.cloud:
            body.update(
                {"simplified": False, "style": "classic", "isPrivate": False, "properties": {}}
            )
        if full:
            body["description"] = ""
            body["lead"] = self.user(project["lead"], full=True)
            body["issueTypes"] = [self.issue_type(t["id"]) for t in ISSUE_TYPES]
            body["assigneeType"] = "UNASSIGNED"
        return body

    def embedded_project(self, project: dict) -> dict:
        body = self.project(project)
        body.pop("expand", None)
        body.pop("style", None)
        body.pop("isPrivate", None)
        body.pop("properties", None)
        return body

    def field_list(self) -> list[dict]:
        out = []
        for field_id, name, schema, orderable in FIELDS:
            out.append(
                {
                    "id": field_id,
                    "key": field_id,
                    "name": name,
                    "custom": False,
                    "orderable": orderable,
                    "navigable": field_id not in NAVIGABLE_EXCLUDED,
                    "searchable": True,
                    "clauseNames": CLAUSE_NAMES.get(field_id, [field_id]),
                    "schema": schema,
                }
            )
        out.append(
            {
                "id": "issuekey",
                "key": "issuekey",
                "name": "Key",
                "custom": False,
                "orderable": False,
                "navigable": True,
                "searchable": False,
                "clauseNames": ["id", "issue", "issuekey", "key"],
            }
        )
        return out

    def board(self, board: dict) -> dict:
        project = self.store.projects[board["project"]]
        label = f"{project['name']} ({project['key']})"
        return {
            "id": board["id"],
            "self": f"{self.base}/rest/agile/1.0/board/{board['id']}",
            "name": board["name"],
            "type": board["type"],
            "location": {
                "projectId": int(project["id"]),
                "displayName": label,
                "projectName": project["name"],
                "projectKey": project["key"],
                "projectTypeKey": project["type"],
                "avatarURI": f"{self.base}/secure/projectavatar?size=small&pid={project['id']}",
                "name": label,
            },
        }

    # -- issue parts ------------------------------------------------------------------------

    def comment(self, issue: dict, comment: dict, *, expand: set[str] | None = None) -> dict:
        body = {
            "self": f"{self.api}/issue/{issue['id']}/comment/{comment['id']}",
            "id": comment["id"],
            "author": self.user(comment["author"]),
            "body": self.store.body_out(comment["body"], self.version),
            "updateAuthor": self.user(comment["update_author"]),
            "created": jira_time(comment["created"]),
            "updated": jira_time(comment["updated"]),
        }
        if self.store.cloud:
            # Cloud always says jsdPublic (true outside Service Management); Server never does.
            body["jsdPublic"] = not comment["internal"]
        if comment["visibility"]:
            body["visibility"] = comment["visibility"]
        expand = expand or set()
        if "renderedBody" in expand:
            body["renderedBody"] = self.store.rendered(comment["body"])
        if "properties" in expand:
            body["properties"] = [{"key": k, "value": v} for k, v in comment["properties"].items()]
        return body

    def comment_page(
        self,
        issue: dict,
        start_at: int = 0,
        max_results: int = 5000,
        order: str = "created",
        expand: set[str] | None = None,
    ) -> dict:
        comments = sorted(
            issue["comments"],
            key=lambda c: (c["created"], int(c["id"])),
            reverse=order.startswith("-"),
        )
        page = comments[start_at : start_at + max_results]
        return {
            "comments": [self.comment(issue, c, expand=expand) for c in page],
            "maxResults": max_results,
            "total": len(comments),
            "startAt": start_at,
        }

    def embedded_comments(self, issue: dict) -> dict:
        """The ``comment`` field of an issue: every comment, with the page's ``self`` link."""
        page = self.comment_page(issue, max_results=len(issue["comments"]))
        return {
            "comments": page["comments"],
            "self": f"{self.api}/issue/{issue['id']}/comment",
            "maxResults": page["maxResults"],
            "total": page["total"],
            "startAt": 0,
        }

    def attachment(self, attachment: dict, *, metadata: bool = False) -> dict:
        """An attachment as embedded in issues, or as GET attachment/{id} returns it."""
        body = {
            "self": f"{self.api}/attachment/{attachment['id']}",
            "id": int(attachment["id"]) if metadata else attachment["id"],
            "filename": attachment["filename"],
            "author": self.user(attachment["author"], full=metadata),
            "created": jira_time(attachment["created"]),
            "size": len(attachment["data"]),
            "mimeType": attachment["mime_type"],
            "content": (
                f"{self.api}/attachment/content/{attachment['id']}"
                if self.store.cloud
                else f"{self.base}/secure/attachment/{attachment['id']}/"
                f"{quote(attachment['filename'])}"
            ),
        }
        if metadata:
            body["properties"] = {}
        return body

    def watchers(self, issue: dict, caller_id: str, *, with_list: bool) -> dict:
        body: dict[str, Any] = {
            "self": f"{self.api}/issue/{issue['key']}/watchers",
            "isWatching": caller_id in issue["watchers"],
            "watchCount": len(issue["watchers"]),
        }
        if with_list:
            body["watchers"] = [self.user(w) for w in issue["watchers"]]
        return body

    def transitions(self, issue: dict, *, with_fields: bool = False, allowed: bool = True) -> dict:
        """The transitions open to ``issue``; ``with_fields`` adds each screen's fields.

        Cloud describes a transition with ``hasScreen``, ``isGlobal`` and the other flags;
        Server/Data Center with its ``opsbarSequence``. Without the Transition Issues
        permission (``allowed`` false) the list is empty, as Jira documents.
        """
        out = []
        for transition in TRANSITIONS if allowed else []:
            if transition["to"] == issue["status"]:
                continue
            body: dict[str, Any] = {"id": transition["id"], "name": transition["name"]}
            if self.store.cloud:
                body["to"] = self.status(transition["to"])
                body.update(
                    {
                        "hasScreen": bool(transition["screen"]),
                        "isGlobal": True,
                        "isInitial": False,
                        "isAvailable": True,
                        "isConditional": False,
                        "looped": False,
                    }
                )
            else:
                body["opsbarSequence"] = transition["opsbar"]
                body["to"] = self.status(transition["to"])
            if with_fields:
                body["fields"] = {name: self.resolution_field() for name in transition["screen"]}
            out.append(body)
        return {"expand": "transitions", "transitions": out}

    def resolution_field(self) -> dict:
        """The resolution field as a transition screen describes it (FieldMetadata).

        Cloud names the field with ``key``, Server/Data Center with ``fieldId``.
        """
        body: dict[str, Any] = {
            "required": True,
            "schema": {"type": "resolution", "system": "resolution"},
            "name": "Resolution",
        }
        body["key" if self.store.cloud else "fieldId"] = "resolution"
        if self.store.cloud:
            body["hasDefaultValue"] = True
        body["operations"] = ["set"]
        body["allowedValues"] = [self.resolution(r) for r in RESOLUTIONS]
        return body

    def resolution(self, resolution: dict | None) -> dict | None:
        if resolution is None:
            return None
        return {"self": f"{self.api}/resolution/{resolution['id']}", **resolution}

    # -- issues -----------------------------------------------------------------------------

    def issue_fields(self, issue: dict, caller_id: str) -> dict:
        project = self.store.projects[issue["project"]]
        return {
            "summary": issue["summary"],
            "description": self.store.body_out(issue["description"], self.version),
            "labels": list(issue["labels"]),
            "status": self.status(issue["status"]),
            "priority": self.priority(issue["priority"]),
            "issuetype": self.issue_type(issue["issuetype"]),
            "project": self.embedded_project(project),
            "reporter": self.user(issue["reporter"]),
            "assignee": self.user(issue["assignee"]),
            "creator": self.user(issue["creator"]),
            "created": jira_time(issue["created"]),
            "updated": jira_time(issue["updated"]),
            "comment": self.embedded_comments(issue),
            "attachment": [
                self.attachment(self.store.attachments[a])
                for a in issue["attachments"]
                if a in self.store.attachments
            ],
            "watches": self.watchers(issue, caller_id, with_list=False),
            "resolution": self.resolution(issue["resolution"]),
            "resolutiondate": jira_time(issue["resolutiondate"])
            if issue["resolutiondate"]
            else None,
            "lastViewed": None,
            "duedate": None,
            "environment": None,
            "components": [],
            "fixVersions": [],
            "versions": [],
            "issuelinks": [],
            "subtasks": [],
            "votes": {
                "self": f"{self.api}/issue/{issue['key']}/votes",
                "votes": 0,
                "hasVoted": False,
            },
            "statuscategorychangedate": jira_time(issue["updated"]),
        }

    def issue(
        self,
        issue: dict,
        caller_id: str,
        *,
        fields: list[str] | None = None,
        expand: set[str] | None = None,
        properties: list[str] | None = None,
        default_fields: str = "*all",
    ) -> dict:
        """An issue with the requested fields, expansions and properties."""
        wanted = _select_fields(fields, default_fields)
        all_fields = self.issue_fields(issue, caller_id)
        body: dict[str, Any] = {
            "expand": ISSUE_EXPAND,
            "id": issue["id"],
            "self": f"{self.api}/issue/{issue['id']}",
            "key": issue["key"],
        }
        if wanted:
            body["fields"] = {k: v for k, v in all_fields.items() if k in wanted}
        expand = expand or set()
        if "renderedFields" in expand:
            body["renderedFields"] = {
                "description": self.store.rendered(issue["description"]),
                "created": issue["created"].strftime("%d/%b/%y %I:%M %p"),
                "updated": issue["updated"].strftime("%d/%b/%y %I:%M %p"),
                "comment": {
                    **self.embedded_comments(issue),
                    "comments": [
                        {**self.comment(issue, c), "body": self.store.rendered(c["body"])}
                        for c in issue["comments"]
                    ],
                },
            }
        if "names" in expand:
            body["names"] = {f[0]: f[1] for f in FIELDS if not wanted or f[0] in wanted}
        if "changelog" in expand:
            histories = [
                {
                    "id": h["id"],
                    "author": self.user(h["author"]),
                    "created": jira_time(h["created"]),
                    "items": h["items"],
                }
                for h in issue["changelog"]
            ]
            body["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": histories,
            }
        if "transitions" in expand:
            caller = self.store.users.get(caller_id) or {"revoked": set()}
            allowed = "TRANSITION_ISSUES" not in caller["revoked"]
            body["transitions"] = self.transitions(issue, allowed=allowed)["transitions"]
        if properties:
            keys = issue["properties"].keys() if "*all" in properties else properties
            body["properties"] = {
                k: issue["properties"][k] for k in keys if k in issue["properties"]
            }
        return body


def _select_fields(fields: list[str] | None, default: str) -> set[str]:
    requested = [f.strip() for f in (fields or []) if f and f.strip()] or [default]
    wanted: set[str] = set()
    excluded: set[str] = set()
    for name in requested:
        if name == "*all":
            wanted |= set(ALL_FIELDS)
        elif name == "*navigable":
            wanted |= set(ALL_FIELDS) - NAVIGABLE_EXCLUDED
        elif name.startswith("-"):
            excluded.add(name[1:])
        elif name not in ("id", "key", "*none"):
            wanted.add(name)
    return wanted - excluded
