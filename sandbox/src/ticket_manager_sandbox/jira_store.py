"""In-memory state of the Jira emulator and the JSON shapes Jira gives it on the wire.

Kept apart from the HTTP routes so tests and the demo can seed and inspect the same state
the REST API serves. Rich text is stored as ADF on Cloud and as wiki-markup strings on
Server/Data Center, the way each deployment keeps it; users are keyed by accountId on Cloud
and by user key on Server.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from ticket_manager_sandbox.jira_adf import adf_to_text, adf_to_wiki, text_to_adf, text_to_html

STATUS_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES = [
    {"id": "10000", "name": "To Do", "category": "new", "description": ""},
    {"id": "3", "name": "In Progress", "category": "indeterminate", "description": ""},
    {"id": "10001", "name": "Done", "category": "done", "description": ""},
]
# The default workflow's global transitions: any status may move to any other. Only the move
# into Done has a screen, and the resolution is its one field (Server lists ``opsbarSequence``).
TRANSITIONS = [
    {"id": "11", "name": "To Do", "to": "10000", "opsbar": 10, "screen": ()},
    {"id": "21", "name": "In Progress", "to": "3", "opsbar": 20, "screen": ()},
    {"id": "31", "name": "Done", "to": "10001", "opsbar": 30, "screen": ("resolution",)},
]
PRIORITIES = [
    {"id": "1", "name": "Highest", "statusColor": "#d04437"},
    {"id": "2", "name": "High", "statusColor": "#f15C75"},
    {"id": "3", "name": "Medium", "statusColor": "#f79232"},
    {"id": "4", "name": "Low", "statusColor": "#707070"},
    {"id": "5", "name": "Lowest", "statusColor": "#999999"},
]
DEFAULT_PRIORITY = "3"
ISSUE_TYPES = [
    {"id": "10001", "name": "Task", "description": "A small, distinct piece of work."},
    {"id": "10004", "name": "Bug", "description": "A problem or error."},
    {"id": "10002", "name": "Story", "description": "A user story."},
]
RESOLUTION_DONE = {
    "id": "10000",
    "name": "Done",
    "description": "Work has been completed on this issue.",
}
# Jira Cloud's default resolutions; a transition into Done may pick one through ``fields``.
RESOLUTIONS = [
    RESOLUTION_DONE,
    {"id": "10001", "name": "Won't Do", "description": "This issue won't be actioned."},
    {
        "id": "10002",
        "name": "Duplicate",
        "description": "The problem is a duplicate of an existing issue.",
    },
    {
        "id": "10003",
        "name": "Cannot Reproduce",
        "description": "All attempts at reproducing this issue failed, or not enough information "
        "was available to reproduce the issue.",
    },
]
FIELDS = [
    ("summary", "Summary", {"type": "string", "system": "summary"}, True),
    ("description", "Description", {"type": "string", "system": "description"}, True),
    ("labels", "Labels", {"type": "array", "items": "string", "system": "labels"}, True),
    ("status", "Status", {"type": "status", "system": "status"}, False),
    ("priority", "Priority", {"type": "priority", "system": "priority"}, True),
    ("issuetype", "Issue Type", {"type": "issuetype", "system": "issuetype"}, True),
    ("project", "Project", {"type": "project", "system": "project"}, False),
    ("reporter", "Reporter", {"type": "user", "system": "reporter"}, True),
    ("assignee", "Assignee", {"type": "user", "system": "assignee"}, True),
    ("creator", "Creator", {"type": "user", "system": "creator"}, False),
    ("created", "Created", {"type": "datetime", "system": "created"}, False),
    ("updated", "Updated", {"type": "datetime", "system": "updated"}, False),
    ("comment", "Comment", {"type": "comments-page", "system": "comment"}, True),
    (
        "attachment",
        "Attachment",
        {"type": "array", "items": "attachment", "system": "attachment"},
        True,
    ),
    ("watches", "Watchers", {"type": "watches", "system": "watches"}, False),
    ("resolution", "Resolution", {"type": "resolution", "system": "resolution"}, True),
    ("resolutiondate", "Resolved", {"type": "datetime", "system": "resolutiondate"}, False),
]
CLAUSE_NAMES = {
    "issuetype": ["issuetype", "type"],
    "resolutiondate": ["resolutiondate", "resolved"],
}


def jira_time(moment: datetime) -> str:
    """Jira's timestamp format: ``2024-01-02T10:00:00.000+0000``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class JiraStore:
    """Users, projects, boards, issues, comments, attachments and properties, behind one lock."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.lock = threading.RLock()
        self.users: dict[str, dict] = {}
        self.projects: dict[str, dict] = {}
        self.boards: dict[int, dict] = {}
        self.issues: dict[str, dict] = {}
        self.attachments: dict[str, dict] = {}
        self._issue_ids = itertools.count(10000)
        self._comment_ids = itertools.count(10000)
        self._attachment_ids = itertools.count(10000)
        self._board_ids = itertools.count(1)
        self._project_ids = itertools.count(10000)
        self._user_keys = itertools.count(10100)
        self._changelog_ids = itertools.count(10000)

    @property
    def cloud(self) -> bool:
        return self.deployment == "Cloud"

    # -- users ------------------------------------------------------------------------------

    def add_user(
        self,
        email: str,
        display_name: str,
        *,
        api_token: str | None = None,
        username: str | None = None,
        account_type: str = "atlassian",
        active: bool = True,
    ) -> dict:
        """Register a user; returns the stored record (``id`` is accountId or user key)."""
        with self.lock:
            user_id = (
                uuid.uuid5(uuid.NAMESPACE_URL, f"jira-sandbox:{email}").hex[:24]
                if self.cloud
                else f"JIRAUSER{next(self._user_keys)}"
            )
            user = {
                "id": user_id,
                "email": email,
                "display_name": display_name,
                "username": username or email.split("@")[0],
                "api_token": api_token,
                "account_type": account_type,
                "active": active,
                "revoked": set(),
            }
            self.users[user_id] = user
            return user

    def find_user(self, value: str | None) -> dict | None:
        """The user with this accountId/key, username or email (case-insensitive)."""
        if not value:
            return None
        with self.lock:
            if value in self.users:
                return self.users[value]
            lowered = value.lower()
            for user in self.users.values():
                if lowered in (user["email"].lower(), user["username"].lower()):
                    return user
        return None

    def user_by_reference(self, reference: Any) -> dict | None:
        """Resolve a user reference from a request body: accountId (Cloud), name/key (Server)."""
        if not isinstance(reference, dict):
            return None
        if self.cloud:
            account_id = reference.get("accountId") or reference.get("id")
            return self.users.get(account_id) if isinstance(account_id, str) else None
        name = reference.get("name") or reference.get("key")
        if not isinstance(name, str):
            return None
        user = self.users.get(name)
        if user is None:
            user = next((u for u in self.users.values() if u["username"] == name), None)
        return user

    # -- projects ---------------------------------------------------------------------------

    def add_project(self, key: str, name: str, board_name: str | None, lead_id: str | None) -> dict:
        """Create a project and its board (none for a service desk, which has no board)."""
        with self.lock:
            project = {
                "id": str(next(self._project_ids)),
                "key": key,
                "name": name,
                "lead": lead_id,
                "next_number": 1,
                "board_id": next(self._board_ids) if board_name else None,
                # "software" (Jira Software / Work Management) or "service_desk" (JSM).
                "type": "software",
            }
            self.projects[key] = project
            if board_name is None:
                return project
            self.boards[project["board_id"]] = {
                "id": project["board_id"],
                "name": board_name,
                "type": "kanban",
                "project": key,
            }
            return project

    def find_project(self, value: Any) -> dict | None:
        """The project with this key or id."""
        if value is None:
            return None
        value = str(value)
        with self.lock:
            if value.upper() in self.projects:
                return self.projects[value.upper()]
            return next((p for p in self.projects.values() if p["id"] == value), None)

    # -- issues -----------------------------------------------------------------------------

    def find_issue(self, key_or_id: str) -> dict | None:
        """The issue with this key (any case) or numeric id."""
        with self.lock:
            issue = self.issues.get(str(key_or_id).upper())
            if issue is None and str(key_or_id).isdigit():
                issue = next((i for i in self.issues.values() if i["id"] == str(key_or_id)), None)
            return issue

    def create_issue(self, project: dict, fields: dict, creator_id: str, now: datetime) -> dict:
        """Store a new issue from already validated field values."""
        with self.lock:
            key = f"{project['key']}-{project['next_number']}"
            project["next_number"] += 1
            issue = {
                "id": str(next(self._issue_ids)),
                "key": key,
                "project": project["key"],
                "summary": fields["summary"],
                "description": fields.get("description"),
                "labels": list(fields.get("labels", [])),
                "status": STATUSES[0]["id"],
                "priority": fields.get("priority", DEFAULT_PRIORITY),
                "issuetype": fields["issuetype"],
                "reporter": fields.get("reporter", creator_id),
                "assignee": fields.get("assignee"),
                "creator": creator_id,
                "created": now,
                "updated": now,
                "comments": [],
                "attachments": [],
                "watchers": [creator_id] if creator_id else [],
                "properties": {},
                "resolution": None,
                "resolutiondate": None,
                "changelog": [],
            }
            self.issues[key] = issue
            return issue

    def is_service_desk(self, issue: dict) -> bool:
        """Only Jira Service Management projects have internal notes (and jsdPublic false)."""
        project = self.projects.get(issue["project"]) or {}
        return project.get("type") == "service_desk"

    def add_comment(
        self,
        issue: dict,
        author_id: str,
        body: Any,
        now: datetime,
        *,
        internal: bool = False,
        visibility: dict | None = None,
    ) -> dict:
        """Append a comment (body already in the stored representation)."""
        with self.lock:
            comment = {
                "id": str(next(self._comment_ids)),
                "author": author_id,
                "update_author": author_id,
                "body": body,
                "created": now,
                "updated": now,
                "internal": internal,
                "visibility": visibility,
                "properties": {},
            }
            issue["comments"].append(comment)
            issue["updated"] = now
            return comment

    def add_attachment(
        self, issue: dict, author_id: str, filename: str, data: bytes, mime_type: str, now: datetime
    ) -> dict:
        """Store an attachment's bytes and link it to the issue."""
        with self.lock:
            attachment = {
                "id": str(next(self._attachment_ids)),
                "issue": issue["key"],
                "filename": filename,
                "author": author_id,
                "created": now,
                "data": data,
                "mime_type": mime_type,
            }
            self.attachments[attachment["id"]] = attachment
            issue["attachments"].append(attachment["id"])
            issue["updated"] = now
            return attachment

    def record_change(self, issue: dict, author_id: str, now: datetime, items: list[dict]) -> None:
        """Add a changelog history entry (only when something changed)."""
        if items:
            issue["changelog"].append(
                {
                    "id": str(next(self._changelog_ids)),
                    "author": author_id,
                    "created": now,
                    "items": items,
                }
            )

    def delete_issue(self, issue: dict) -> None:
        """Forget an issue and its attachments."""
        with self.lock:
            self.issues.pop(issue["key"], None)
            for attachment_id in issue["attachments"]:
                self.attachments.pop(attachment_id, None)

    # -- rich text --------------------------------------------------------------------------

    def body_out(self, stored: Any, version: str) -> Any:
        """A stored rich-text value as this API version returns it (ADF on v3, wiki on v2)."""
        if stored is None:
            return None
        if version == "3":
            return stored if isinstance(stored, dict) else text_to_adf(str(stored))
        return adf_to_wiki(stored) if isinstance(stored, dict) else stored

    def body_in(self, value: Any, version: str) -> Any:
        """A rich-text value from a request (already validated) as it is stored."""
        if value is None:
            return None
        if self.cloud:
            return value if version == "3" else text_to_adf(value)
        return value

    @staticmethod
    def plain_text(stored: Any) -> str:
        """The plain text of a stored rich-text value."""
        if isinstance(stored, dict):
            return adf_to_text(stored)
        return stored or ""

    @staticmethod
    def rendered(stored: Any) -> str | None:
        """The renderedFields HTML of a stored rich-text value."""
        if stored is None:
            return None
        return text_to_html(JiraStore.plain_text(stored))

    # -- state dump -------------------------------------------------------------------------

    def dump(self) -> dict:
        """A JSON-able snapshot for ``/_sandbox/state``."""
        with self.lock:
            return {
                "deployment": self.deployment,
                "users": [
                    {k: v for k, v in u.items() if k not in ("api_token", "revoked")}
                    for u in self.users.values()
                ],
                "projects": [
                    {**p, "board_name": (self.boards.get(p["board_id"]) or {}).get("name")}
                    for p in self.projects.values()
                ],
                "issues": [self.issue_summary(issue) for issue in self.issues.values()],
            }

    def issue_summary(self, issue: dict) -> dict:
        """A flat, readable view of an issue for tests and the state dump."""
        status = next(s for s in STATUSES if s["id"] == issue["status"])
        priority = next(p for p in PRIORITIES if p["id"] == issue["priority"])
        issue_type = next(t for t in ISSUE_TYPES if t["id"] == issue["issuetype"])

        def email(user_id: str | None) -> str | None:
            return self.users[user_id]["email"] if user_id in self.users else None

        return {
            "id": issue["id"],
            "key": issue["key"],
            "project": issue["project"],
            "summary": issue["summary"],
            "description": self.plain_text(issue["description"]),
            "description_raw": issue["description"],
            "labels": list(issue["labels"]),
            "status": status["name"],
            "priority": priority["name"],
            "issuetype": issue_type["name"],
            "reporter": email(issue["reporter"]),
            "assignee": email(issue["assignee"]),
            "created": jira_time(issue["created"]),
            "updated": jira_time(issue["updated"]),
            "resolution": issue["resolution"]["name"] if issue["resolution"] else None,
            "comments": [
                {
                    "id": c["id"],
                    "author": email(c["author"]),
                    "body": self.plain_text(c["body"]),
                    "body_raw": c["body"],
                    "public": not c["internal"] and not c["visibility"],
                    "visibility": c["visibility"],
                }
                for c in issue["comments"]
            ],
            "attachments": [
                {
                    "id": a,
                    "filename": self.attachments[a]["filename"],
                    "size": len(self.attachments[a]["data"]),
                    "mimeType": self.attachments[a]["mime_type"],
                }
                for a in issue["attachments"]
                if a in self.attachments
            ],
            "watchers": [email(w) for w in issue["watchers"]],
            "properties": {k: v for k, v in issue["properties"].items()},
            "custom": dict(issue.get("custom") or {}),
            "request": (
                {
                    "service_desk": issue["request"]["service_desk"],
                    "request_type": issue["request"]["request_type"],
                    "participants": [email(u) for u in issue["request"]["participants"]],
                    "custom": dict(issue["request"]["custom"]),
                }
                if "request" in issue
                else None
            ),
        }
