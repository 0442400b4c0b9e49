"""Create screens of the Jira emulator: what a project's create form shows and requires.

Real projects differ: a screen may lack labels or priority (setting them is refused, 400
"not on the appropriate screen"), or carry required custom fields (a create without them is
refused naming the field). ``GET issue/createmeta/{project}/issuetypes[/{id}]`` tells a
client which fields there are, in Cloud's shape (``issueTypes``, ``fields``) or Data
Center's (``values``, ``isLast``); ``GET attachment/meta`` gives the site's upload limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import g

from ticket_manager_sandbox.jira_http import API, JiraError, int_arg, json_response
from ticket_manager_sandbox.jira_store import ISSUE_TYPES, PRIORITIES

if TYPE_CHECKING:
    from ticket_manager_sandbox.jira import JiraEmulator

# The system fields of the default create screen, with their create-metadata schema.
SCREEN_FIELDS = {
    "summary": ("Summary", {"type": "string", "system": "summary"}, True),
    "issuetype": ("Issue Type", {"type": "issuetype", "system": "issuetype"}, True),
    "project": ("Project", {"type": "project", "system": "project"}, True),
    "description": ("Description", {"type": "string", "system": "description"}, False),
    "reporter": ("Reporter", {"type": "user", "system": "reporter"}, True),
    "priority": ("Priority", {"type": "priority", "system": "priority"}, False),
    "labels": ("Labels", {"type": "array", "items": "string", "system": "labels"}, False),
    "assignee": ("Assignee", {"type": "user", "system": "assignee"}, False),
}


def screen_of(project: dict) -> dict:
    """The project's create screen: hidden system fields and custom fields by id."""
    return project.setdefault("create_screen", {"hidden": set(), "custom": {}})


def check_create_screen(project: dict, fields: dict, errors: dict, clean: dict) -> None:
    """Refuse fields the screen lacks and required custom fields left out, like Jira."""
    screen = screen_of(project)
    custom: dict[str, Any] = {}
    for name, value in fields.items():
        if name in screen["hidden"]:
            errors[name] = (
                f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            )
        elif name.startswith("customfield_"):
            if name not in screen["custom"]:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                    "or unknown."
                )
            else:
                custom[name] = value
    for field_id, spec in screen["custom"].items():
        if spec.get("required") and fields.get(field_id) in (None, "", [], {}):
            errors[field_id] = f"{spec['name']} is required."
    clean["custom"] = custom


def register_create_meta_routes(emu: JiraEmulator, route) -> None:
    """Add the create-metadata and attachment-settings routes."""
    store = emu.store

    def find_project(key: str) -> dict:
        project = store.find_project(key)
        if project is None or "BROWSE_PROJECTS" in g.user["revoked"]:
            raise JiraError(404, [f"No project could be found with key '{key}'."])
        return project

    def page(values: list, items_key: str) -> dict:
        start = int_arg("startAt", 0)
        size = int_arg("maxResults", 50, 200) or 50
        chosen = values[start : start + size]
        if emu.is_cloud:
            return {items_key: chosen, "maxResults": size, "startAt": start, "total": len(values)}
        return {
            "maxResults": size,
            "startAt": start,
            "total": len(values),
            "isLast": start + size >= len(values),
            "values": chosen,
        }

    @route(f"{API}/issue/createmeta/<key>/issuetypes")
    def create_meta_issue_types(version: str, key: str):
        find_project(key)
        views = emu.views(version)
        types = [
            {
                "self": f"{views.api}/issuetype/{t['id']}",
                "id": t["id"],
                "description": t["description"],
                "iconUrl": f"{views.base}/images/icons/issuetypes/task.svg",
                "name": t["name"],
                "subtask": False,
            }
            for t in ISSUE_TYPES
        ]
        return json_response(page(types, "issueTypes"))

    @route(f"{API}/issue/createmeta/<key>/issuetypes/<type_id>")
    def create_meta_fields(version: str, key: str, type_id: str):
        project = find_project(key)
        if not any(t["id"] == type_id for t in ISSUE_TYPES):
            raise JiraError(404, ["The issue type was not found."])
        screen = screen_of(project)
        views = emu.views(version)
        fields = []
        for field_id, (name, schema, required) in SCREEN_FIELDS.items():
            if field_id in screen["hidden"]:
                continue
            meta: dict = {
                "required": required and field_id not in ("reporter",),
                "schema": schema,
                "name": name,
                "fieldId": field_id,
                "key": field_id,
                "hasDefaultValue": field_id in ("priority", "reporter"),
                "operations": ["set"] if field_id != "labels" else ["add", "set", "remove"],
            }
            if field_id == "priority":
                meta["allowedValues"] = [
                    {"self": f"{views.api}/priority/{p['id']}", "id": p["id"], "name": p["name"]}
                    for p in PRIORITIES
                ]
            if field_id == "reporter":
                meta["required"] = True
            fields.append(meta)
        for field_id, spec in screen["custom"].items():
            fields.append(
                {
                    "required": bool(spec.get("required")),
                    "schema": {
                        "type": "string",
                        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                        "customId": int(field_id.rsplit("_", 1)[-1]),
                    },
                    "name": spec["name"],
                    "fieldId": field_id,
                    "key": field_id,
                    "hasDefaultValue": False,
                    "operations": ["set"],
                }
            )
        return json_response(page(fields, "fields"))

    @route(f"{API}/attachment/meta")
    def attachment_meta(version: str):
        return json_response({"enabled": True, "uploadLimit": emu.max_attachment_size})
