"""HTTP routes of the Jira emulator for issues and what hangs off them.

Create/edit/delete issues, comments, attachments, transitions, watchers and issue properties,
with Jira's validations (summary, labels, project, issue type, priority, users, ADF on v3,
strings on v2) and Jira's error bodies and wording.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Response, g, request

from ticket_manager_sandbox.jira_adf import adf_to_text, is_valid_adf
from ticket_manager_sandbox.jira_create_meta import (
    check_create_screen,
    register_create_meta_routes,
)
from ticket_manager_sandbox.jira_http import (
    API,
    JiraError,
    gdpr_reject,
    int_arg,
    json_response,
    list_arg,
    no_content,
    read_json,
)
from ticket_manager_sandbox.jira_store import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTION_DONE,
    RESOLUTIONS,
    STATUSES,
    TRANSITIONS,
)

if TYPE_CHECKING:
    from ticket_manager_sandbox.jira import JiraEmulator
    from ticket_manager_sandbox.jira_store import JiraStore

SETTABLE_FIELDS = {
    "summary",
    "description",
    "labels",
    "priority",
    "issuetype",
    "reporter",
    "assignee",
    "project",
}
MAX_PROPERTY_SIZE = 32768


def register_issue_routes(emu: JiraEmulator, route: Callable) -> None:
    """Add the issue routes to ``emu.app`` through ``route``."""
    store = emu.store
    register_create_meta_routes(emu, route)

    # -- issues -----------------------------------------------------------------------------

    def validate_fields(fields: Any, version: str, *, creating: bool) -> dict:
        """Check issue fields like Jira does; returns stored values for the fields given."""
        if not isinstance(fields, dict):
            raise JiraError(400, ["Can not deserialize instance of java.util.LinkedHashMap"])
        errors: dict[str, str] = {}
        clean: dict[str, Any] = {}
        for name in fields:
            if creating and name.startswith("customfield_"):
                continue  # checked against the project's create screen below
            if name not in SETTABLE_FIELDS or (name == "project" and not creating):
                errors[name] = _not_on_screen(name)
        if creating:
            project_ref = fields.get("project")
            project = None
            if isinstance(project_ref, dict):
                project = store.find_project(project_ref.get("key") or project_ref.get("id"))
            if project is None:
                if emu.is_cloud:
                    errors["project"] = "Specify a valid project ID or key"
                else:
                    errors["project"] = (
                        "valid project is required" if project_ref else "project is required"
                    )
            elif "CREATE_ISSUES" in g.user["revoked"]:
                raise JiraError(
                    403, ["You do not have permission to create issues in this project."]
                )
            clean["project"] = project
            if project is not None:
                check_create_screen(project, fields, errors, clean)
            if "issuetype" not in fields:
                errors["issuetype"] = (
                    "Specify an issue type" if emu.is_cloud else "issue type is required"
                )
        if "issuetype" in fields:
            ref = fields["issuetype"]
            found = _find_by_id_or_name(ISSUE_TYPES, ref)
            if found is None:
                errors["issuetype"] = (
                    "The issue type selected is invalid."
                    if emu.is_cloud
                    else "valid issue type is required"
                )
            else:
                clean["issuetype"] = found["id"]
        if "summary" in fields or creating:
            summary = fields.get("summary")
            if summary is None or (isinstance(summary, str) and not summary.strip()):
                errors["summary"] = "You must specify a summary of the issue."
            elif not isinstance(summary, str):
                errors["summary"] = "Operation value must be a string"
            elif "\n" in summary or "\r" in summary:
                errors["summary"] = "The summary is invalid because it contains newline characters."
            elif len(summary.encode("utf-16-le")) // 2 > 255:
                # Jira is Java: it counts UTF-16 code units (an emoji is two).
                errors["summary"] = (
                    "Summary can't exceed 255 characters."
                    if emu.is_cloud
                    else "Summary must be less than 255 characters."
                )
            else:
                clean["summary"] = summary
        if "labels" in fields:
            labels = fields["labels"] or []
            label_error = _label_error(labels)
            if label_error:
                errors["labels"] = label_error
            else:
                clean["labels"] = list(dict.fromkeys(labels))
        if "priority" in fields:
            ref = fields["priority"]
            found = _find_by_id_or_name(PRIORITIES, ref)
            if found is None:
                name = ref.get("name") if isinstance(ref, dict) else ref
                errors["priority"] = (
                    "The priority selected is invalid."
                    if emu.is_cloud
                    else f"Priority name '{name}' is not valid"
                )
            else:
                clean["priority"] = found["id"]
        for user_field in ("reporter", "assignee"):
            if user_field in fields:
                try:
                    clean[user_field] = emu.resolve_user_field(user_field, fields[user_field])
                except JiraError as error:
                    errors.update(error.errors)
        if "description" in fields:
            try:
                clean["description"] = emu.rich_text(fields["description"], version, "description")
            except JiraError as error:
                errors.update(error.errors)
        if errors:
            raise JiraError(400, [], errors)
        return clean

    def apply_update_ops(update: Any, version: str, clean: dict, issue: dict | None) -> list:
        """Turn ``update`` operations into field values; returns comment bodies to add."""
        if update is None:
            return []
        if not isinstance(update, dict):
            raise JiraError(400, ["Can not deserialize instance of java.util.LinkedHashMap"])
        comments = []
        labels = list(clean.get("labels", issue["labels"] if issue else []))
        for name, operations in update.items():
            if not isinstance(operations, list):
                raise JiraError(400, [], {name: "Operation value must be a list of operations"})
            for operation in operations:
                if not isinstance(operation, dict) or len(operation) != 1:
                    raise JiraError(400, [], {name: "Invalid operation"})
                verb, value = next(iter(operation.items()))
                if name == "labels":
                    new = value if verb == "set" else [value]
                    error = _label_error(new if isinstance(new, list) else [new])
                    if error:
                        raise JiraError(400, [], {"labels": error})
                    if verb == "add" and value not in labels:
                        labels.append(value)
                    elif verb == "remove" and value in labels:
                        labels.remove(value)
                    elif verb == "set":
                        labels = list(dict.fromkeys(value or []))
                    elif verb not in ("add", "remove", "set"):
                        raise JiraError(400, [], {"labels": f"Unsupported operation '{verb}'"})
                    clean["labels"] = labels
                elif name == "comment" and verb == "add":
                    body = value.get("body") if isinstance(value, dict) else None
                    comments.append(emu.rich_text(body, version, "comment"))
                elif verb == "set" and name in SETTABLE_FIELDS - {"project"}:
                    clean.update(validate_fields({name: value}, version, creating=False))
                else:
                    raise JiraError(400, [], {name: _not_on_screen(name)})
        return comments

    def apply_changes(issue: dict, clean: dict) -> None:
        now = emu.clock()
        items = []
        for name, value in clean.items():
            if name == "project" or issue.get(name) == value:
                continue
            if name in ("reporter", "assignee"):
                # A user change names both the user (from/to) and the display name.
                items.append(
                    {
                        "field": name,
                        "fieldtype": "jira",
                        "from": issue.get(name),
                        "fromString": _user_name(store, issue.get(name)),
                        "to": value,
                        "toString": _user_name(store, value),
                    }
                )
            else:
                items.append(
                    {
                        "field": name,
                        "fieldtype": "jira",
                        "fromString": _display(issue.get(name)),
                        "toString": _display(value),
                    }
                )
            issue[name] = value
        store.record_change(issue, g.user["id"], now, items)
        if items:
            issue["updated"] = now

    @route(f"{API}/issue", ("POST",))
    def create_issue(version: str):
        body = read_json()
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            raise JiraError(400, ["No fields were provided when attempting to create an issue."])
        _reject_overlap(body["fields"], body.get("update"))
        with store.lock:
            clean = validate_fields(body["fields"], version, creating=True)
            comments = apply_update_ops(body.get("update"), version, clean, None)
            project = clean.pop("project")
            custom = clean.pop("custom", {})
            issue = store.create_issue(project, clean, g.user["id"], emu.clock())
            issue["custom"] = custom
            for comment_body in comments:
                store.add_comment(issue, g.user["id"], comment_body, emu.clock())
            for prop in body.get("properties") or []:
                if isinstance(prop, dict) and "key" in prop:
                    issue["properties"][prop["key"]] = prop.get("value")
        views = emu.views(version)
        return json_response(
            {"id": issue["id"], "key": issue["key"], "self": f"{views.api}/issue/{issue['id']}"},
            201,
        )

    @route(f"{API}/issue/<key>")
    def get_issue(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        with store.lock:
            return json_response(
                emu.views(version).issue(
                    issue,
                    g.user["id"],
                    fields=list_arg("fields"),
                    expand=set(list_arg("expand")),
                    properties=list_arg("properties"),
                )
            )

    @route(f"{API}/issue/<key>", ("PUT",))
    def edit_issue(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        body = read_json()
        if not isinstance(body, dict):
            raise JiraError(400, ["Can not deserialize instance of java.util.LinkedHashMap"])
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise JiraError(400, ["Can not deserialize instance of java.util.LinkedHashMap"])
        update = body.get("update")
        if "EDIT_ISSUES" in g.user["revoked"]:
            # Without Edit Issues the edit screen is empty, so Jira answers 400 naming every
            # field as off-screen (the reference documents no 403 for this).
            named = [*fields, *(update if isinstance(update, dict) else {})]
            off_screen = {name: _not_on_screen(name) for name in named if name != "comment"}
            if not off_screen:
                raise JiraError(400, ["You do not have permission to edit issues in this project."])
            raise JiraError(400, [], off_screen)
        _reject_overlap(fields, update)
        with store.lock:
            clean = validate_fields(fields, version, creating=False)
            comments = apply_update_ops(update, version, clean, issue)
            apply_changes(issue, clean)
            for comment_body in comments:
                store.add_comment(issue, g.user["id"], comment_body, emu.clock())
            for prop in body.get("properties") or []:
                if isinstance(prop, dict) and "key" in prop:
                    issue["properties"][prop["key"]] = prop.get("value")
            if request.args.get("returnIssue", "").lower() == "true":
                return json_response(
                    emu.views(version).issue(issue, g.user["id"], expand=set(list_arg("expand")))
                )
        return no_content()

    @route(f"{API}/issue/<key>", ("DELETE",))
    def delete_issue(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        emu.require("DELETE_ISSUES", "You do not have permission to delete issues in this project.")
        store.delete_issue(issue)
        return no_content()

    # -- comments ---------------------------------------------------------------------------

    def find_comment(issue: dict, comment_id: str) -> dict:
        found = next((c for c in issue["comments"] if c["id"] == comment_id), None)
        if found is None:
            raise JiraError(404, [f"Can not find a comment for the id: {comment_id}."])
        return found

    def comment_body(body: Any, version: str) -> Any:
        if not isinstance(body, dict):
            raise JiraError(400, ["Can not deserialize instance of CommentJsonBean"])
        value = body.get("body")
        if version == "3":
            if value is None:
                raise JiraError(400, ["Comment body can not be empty!"])
            if not emu.is_cloud or not _is_adf(value):
                raise JiraError(400, ["Comment body is not valid!"])
            if not adf_to_text(value).strip() and not _has_media(value):
                raise JiraError(400, [], {"comment": "Comment body can not be empty!"})
        elif not isinstance(value, str):
            raise JiraError(
                400, ["Can not deserialize instance of java.lang.String out of START_OBJECT token"]
            )
        elif not value.strip():
            raise JiraError(400, [], {"comment": "Comment body can not be empty!"})
        visibility = body.get("visibility")
        if visibility is not None and (
            not isinstance(visibility, dict) or visibility.get("type") not in ("group", "role")
        ):
            raise JiraError(
                400,
                [],
                {"commentLevel": "You are currently not a member of the project role or group"},
            )
        return store.body_in(value, version)

    @route(f"{API}/issue/<key>/comment")
    def list_comments(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        order = request.args.get("orderBy") or "created"
        if order not in ("created", "-created", "+created"):
            raise JiraError(400, [f"The orderBy value '{order}' is not supported."])
        # Cloud documents a default and maximum page of 100, Server a default of 50.
        default_size, max_size = (100, 100) if emu.is_cloud else (50, 5000)
        with store.lock:
            page = emu.views(version).comment_page(
                issue,
                int_arg("startAt", 0),
                int_arg("maxResults", default_size, max_size),
                order,
                set(list_arg("expand")),
            )
        return json_response(page)

    @route(f"{API}/issue/<key>/comment", ("POST",))
    def add_comment(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        emu.require("ADD_COMMENTS", "You do not have the permission to comment on this issue.")
        body = read_json()
        stored = comment_body(body, version)
        properties = {
            p["key"]: p.get("value")
            for p in body.get("properties") or []
            if isinstance(p, dict) and "key" in p
        }
        # Only a Service Management project reads the property as "internal note"; elsewhere
        # it is just a stored property, and only a visibility restriction hides a comment.
        internal = store.is_service_desk(issue) and bool(
            (properties.get("sd.public.comment") or {}).get("internal")
        )
        visibility = body.get("visibility")
        with store.lock:
            comment = store.add_comment(
                issue, g.user["id"], stored, emu.clock(), internal=internal, visibility=visibility
            )
            comment["properties"].update(properties)
            return json_response(
                emu.views(version).comment(issue, comment, expand=set(list_arg("expand"))), 201
            )

    @route(f"{API}/issue/<key>/comment/<comment_id>")
    def get_comment(version: str, key: str, comment_id: str):
        issue = emu.get_issue_or_404(key)
        comment = find_comment(issue, comment_id)
        return json_response(
            emu.views(version).comment(issue, comment, expand=set(list_arg("expand")))
        )

    @route(f"{API}/issue/<key>/comment/<comment_id>", ("PUT",))
    def update_comment(version: str, key: str, comment_id: str):
        issue = emu.get_issue_or_404(key)
        comment = find_comment(issue, comment_id)
        body = read_json()
        stored = comment_body(body, version)
        with store.lock:
            comment.update(body=stored, update_author=g.user["id"], updated=emu.clock())
            if "visibility" in body:
                comment["visibility"] = body["visibility"]
            return json_response(emu.views(version).comment(issue, comment))

    @route(f"{API}/issue/<key>/comment/<comment_id>", ("DELETE",))
    def delete_comment(version: str, key: str, comment_id: str):
        issue = emu.get_issue_or_404(key)
        comment = find_comment(issue, comment_id)
        with store.lock:
            issue["comments"].remove(comment)
        return no_content()

    # -- attachments ------------------------------------------------------------------------

    @route(f"{API}/issue/<key>/attachments", ("POST",))
    def add_attachments(version: str, key: str):
        token = request.headers.get("X-Atlassian-Token", "").lower()
        if token not in ("no-check", "nocheck"):
            return Response("XSRF check failed", status=403, mimetype="text/plain")
        issue = emu.get_issue_or_404(key)
        emu.require(
            "CREATE_ATTACHMENTS", "You do not have permission to create attachments for this issue."
        )
        if (request.content_length or 0) > emu.max_attachment_size + 64 * 1024:
            raise JiraError(413, [_too_large_message(emu.max_attachment_size)])
        files = request.files.getlist("file")
        if not files:
            raise JiraError(400, ["No attachments provided. Use the multipart 'file' parameter."])
        payloads = []
        for part in files:
            data = part.read()
            if len(data) > emu.max_attachment_size:
                raise JiraError(413, [_too_large_message(emu.max_attachment_size)])
            filename = java_filename(part.filename)
            guessed = mimetypes.guess_type(filename)[0]
            declared = part.mimetype if part.mimetype != "application/octet-stream" else None
            payloads.append((filename, data, guessed or declared or "application/octet-stream"))
        views = emu.views(version)
        with store.lock:
            created = [
                store.add_attachment(issue, g.user["id"], name, data, mime, emu.clock())
                for name, data, mime in payloads
            ]
            return json_response([views.attachment(a) for a in created])

    def find_attachment(attachment_id: str) -> dict:
        found = store.attachments.get(attachment_id)
        if (
            found is None
            or store.find_issue(found["issue"]) is None
            or ("BROWSE_PROJECTS" in g.user["revoked"])
        ):
            raise JiraError(404, [f"The attachment with id '{attachment_id}' does not exist"])
        return found

    @route(f"{API}/attachment/<attachment_id>")
    def attachment_metadata(version: str, attachment_id: str):
        return json_response(
            emu.views(version).attachment(find_attachment(attachment_id), metadata=True)
        )

    @route(f"{API}/attachment/content/<attachment_id>")
    def attachment_content(version: str, attachment_id: str):
        found = find_attachment(attachment_id)
        if emu.is_cloud and request.args.get("redirect", "true").lower() != "false":
            # Cloud answers 303 with the download URL (its media service; here, itself).
            return Response(status=303, headers={"Location": f"{request.base_url}?redirect=false"})
        return attachment_bytes(found)

    def attachment_bytes(found: dict) -> Response:
        """The attachment's bytes; a Range header gets 206 (or 416 when unsatisfiable)."""
        response = Response(found["data"], mimetype=found["mime_type"])
        response.headers["Content-Disposition"] = f'attachment; filename="{found["filename"]}"'
        return response.make_conditional(
            request, accept_ranges=True, complete_length=len(found["data"])
        )

    @emu.app.route("/secure/attachment/<attachment_id>/<path:filename>")
    def server_attachment_content(attachment_id: str, filename: str):
        """Where Server's attachment ``content`` links point (there is no REST content URL)."""
        failure = emu.authenticate()
        if failure is not None:
            return failure
        found = find_attachment(attachment_id)
        if found["filename"] != filename:
            raise JiraError(404, [f"The attachment with id '{attachment_id}' does not exist"])
        return attachment_bytes(found)

    @route(f"{API}/attachment/<attachment_id>", ("DELETE",))
    def delete_attachment(version: str, attachment_id: str):
        found = find_attachment(attachment_id)
        with store.lock:
            issue = store.find_issue(found["issue"])
            if issue is not None and attachment_id in issue["attachments"]:
                issue["attachments"].remove(attachment_id)
            store.attachments.pop(attachment_id, None)
        return no_content()

    # -- transitions ------------------------------------------------------------------------

    @route(f"{API}/issue/<key>/transitions")
    def list_transitions(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        body = emu.views(version).transitions(
            issue,
            with_fields="transitions.fields" in list_arg("expand"),
            allowed="TRANSITION_ISSUES" not in g.user["revoked"],
        )
        wanted = request.args.get("transitionId")
        if wanted:
            body["transitions"] = [t for t in body["transitions"] if t["id"] == wanted]
        return json_response(body)

    @route(f"{API}/issue/<key>/transitions", ("POST",))
    def do_transition(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        body = read_json()
        if not isinstance(body, dict):
            raise JiraError(400, ["Can not deserialize instance of java.util.LinkedHashMap"])
        transition_ref = body.get("transition")
        transition_id = (
            str(transition_ref.get("id"))
            if isinstance(transition_ref, dict) and transition_ref.get("id") is not None
            else None
        )
        if transition_id is None:
            raise JiraError(400, ["Missing 'transition' identifier"])
        if "TRANSITION_ISSUES" in g.user["revoked"]:
            # The reference answers 400, not 403, when the caller may not transition.
            raise JiraError(400, ["You do not have permission to transition this issue."])
        transition = next(
            (t for t in TRANSITIONS if t["id"] == transition_id and t["to"] != issue["status"]),
            None,
        )
        if transition is None:
            raise JiraError(400, [f"Transition id '{transition_id}' is not valid for this issue."])
        new_status = next(s for s in STATUSES if s["id"] == transition["to"])
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise JiraError(400, ["Can not deserialize instance of java.util.LinkedHashMap"])
        _reject_overlap(fields, update)
        # Only the transition screen's fields may be set; a comment may go with any transition.
        screen = set(transition["screen"])
        off_screen = [n for n in fields if n not in screen]
        off_screen += [n for n in update if n not in screen | {"comment"}]
        if off_screen:
            raise JiraError(400, [], {name: _not_on_screen(name) for name in off_screen})
        resolution_ref = fields.get("resolution")
        operations = update.get("resolution") or []
        if not isinstance(operations, list):
            raise JiraError(400, [], {"resolution": "Operation value must be a list of operations"})
        for operation in operations:
            if isinstance(operation, dict) and "set" in operation:
                resolution_ref = operation["set"]
        resolution = dict(RESOLUTION_DONE)
        if resolution_ref is not None:
            found = _find_by_id_or_name(RESOLUTIONS, resolution_ref)
            if found is None:
                raise JiraError(400, [], {"resolution": "The resolution selected is invalid."})
            resolution = dict(found)
        comment_ops = {"comment": update["comment"]} if "comment" in update else None
        with store.lock:
            comments = apply_update_ops(comment_ops, version, {}, issue)
            now = emu.clock()
            old_status = next(s for s in STATUSES if s["id"] == issue["status"])
            issue["status"] = new_status["id"]
            if new_status["category"] == "done":
                issue["resolution"] = resolution
                issue["resolutiondate"] = now
            else:
                issue["resolution"] = None
                issue["resolutiondate"] = None
            issue["updated"] = now
            store.record_change(
                issue,
                g.user["id"],
                now,
                [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "from": old_status["id"],
                        "fromString": old_status["name"],
                        "to": new_status["id"],
                        "toString": new_status["name"],
                    }
                ],
            )
            for comment in comments:
                store.add_comment(issue, g.user["id"], comment, now)
        return no_content()

    # -- assignee ---------------------------------------------------------------------------

    @route(f"{API}/issue/<key>/assignee", ("PUT",))
    def assign_issue(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        emu.require("ASSIGN_ISSUES", "You do not have permission to assign issues.")
        body = read_json()
        if not isinstance(body, dict):
            raise JiraError(400, ["Can not deserialize instance of UserBean"])
        named = [k for k in ("accountId", "name", "key") if k in body]
        if emu.is_cloud and named != ["accountId"]:
            # Cloud takes exactly one identifier, and only accountId since GDPR strict mode.
            raise JiraError(400, ["Exactly one of 'accountId', 'name' or 'key' is required."])
        if len(named) > 1:
            raise JiraError(400, ["Only one of 'name' or 'key' may be given."])
        # Server reads a missing name as null, which unassigns.
        value = body.get(named[0]) if named else None
        if value is None or value == "-1":
            # "-1" asks for the project's default assignee: the seeded projects have none.
            assignee = None
        else:
            reference = {named[0]: value}
            try:
                assignee = emu.resolve_user_field("assignee", reference)
            except JiraError as error:
                if emu.is_cloud or store.user_by_reference(reference) is not None:
                    raise
                # Server documents 404 when the user does not exist.
                raise JiraError(404, [], error.errors) from error
        with store.lock:
            apply_changes(issue, {"assignee": assignee})
        return no_content()

    # -- watchers ---------------------------------------------------------------------------

    @route(f"{API}/issue/<key>/watchers")
    def list_watchers(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        return json_response(emu.views(version).watchers(issue, g.user["id"], with_list=True))

    @route(f"{API}/issue/<key>/watchers", ("POST",))
    def add_watcher(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        value = read_json(required=False)
        if value is None:
            user = g.user
        elif not isinstance(value, str):
            raise JiraError(400, ["Can not deserialize instance of java.lang.String"])
        else:
            user = (
                store.users.get(value)
                if emu.is_cloud
                else next((u for u in store.users.values() if u["username"] == value), None)
            )
            if user is None:
                raise JiraError(
                    404 if emu.is_cloud else 400, [f'The user "{value}" does not exist.']
                )
        with store.lock:
            if user["id"] not in issue["watchers"]:
                issue["watchers"].append(user["id"])
        return no_content()

    @route(f"{API}/issue/<key>/watchers", ("DELETE",))
    def remove_watcher(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        if emu.is_cloud:
            gdpr_reject(emu.is_cloud, "username")
            reference = request.args.get("accountId")
            user = store.users.get(reference) if reference else None
        else:
            reference = request.args.get("username")
            user = next((u for u in store.users.values() if u["username"] == reference), None)
        if not reference:
            raise JiraError(
                400,
                [
                    "The accountId query parameter must be provided."
                    if emu.is_cloud
                    else "The username query parameter was not provided"
                ],
            )
        if user is None:
            raise JiraError(404, [f'The user "{reference}" does not exist.'])
        with store.lock:
            if user["id"] in issue["watchers"]:
                issue["watchers"].remove(user["id"])
        return no_content()

    # -- issue properties -------------------------------------------------------------------

    @route(f"{API}/issue/<key>/properties")
    def property_keys(version: str, key: str):
        issue = emu.get_issue_or_404(key)
        views = emu.views(version)
        return json_response(
            {
                "keys": [
                    {"self": f"{views.api}/issue/{issue['id']}/properties/{name}", "key": name}
                    for name in issue["properties"]
                ]
            }
        )

    @route(f"{API}/issue/<key>/properties/<property_key>")
    def get_property(version: str, key: str, property_key: str):
        issue = emu.get_issue_or_404(key)
        if property_key not in issue["properties"]:
            raise JiraError(404, [f"The property with key '{property_key}' does not exist."])
        return json_response({"key": property_key, "value": issue["properties"][property_key]})

    @route(f"{API}/issue/<key>/properties/<property_key>", ("PUT",))
    def set_property(version: str, key: str, property_key: str):
        issue = emu.get_issue_or_404(key)
        emu.require("EDIT_ISSUES", "You do not have permission to edit issues in this project.")
        if len(property_key) > 255:
            raise JiraError(
                400, [], {"propertyKey": "The property key cannot be longer than 255 characters."}
            )
        raw = request.get_data(cache=True)
        if not raw.strip():
            raise JiraError(400, [], {"value": "The property value cannot be empty."})
        value = read_json()
        if len(raw) > MAX_PROPERTY_SIZE:
            raise JiraError(
                400, [], {"value": "The property value cannot be longer than 32768 characters."}
            )
        with store.lock:
            created = property_key not in issue["properties"]
            issue["properties"][property_key] = value
        return Response(status=201 if created else 200)

    @route(f"{API}/issue/<key>/properties/<property_key>", ("DELETE",))
    def delete_property(version: str, key: str, property_key: str):
        issue = emu.get_issue_or_404(key)
        if property_key not in issue["properties"]:
            raise JiraError(404, [f"The property with key '{property_key}' does not exist."])
        with store.lock:
            issue["properties"].pop(property_key)
        return no_content()

    @route(f"{API}/comment/<comment_id>/properties/<property_key>", ("PUT",))
    def set_comment_property(version: str, comment_id: str, property_key: str):
        # Comment properties live on the comment, which is found by id across issues.
        comment = next(
            (c for i in store.issues.values() for c in i["comments"] if c["id"] == comment_id),
            None,
        )
        if comment is None or "BROWSE_PROJECTS" in g.user["revoked"]:
            raise JiraError(404, [f"Can not find a comment for the id: {comment_id}."])
        value = read_json()
        with store.lock:
            created = property_key not in comment["properties"]
            comment["properties"][property_key] = value
        return Response(status=201 if created else 200)


def java_filename(name: str | None) -> str:
    """The file name as Jira's Java multipart parser keeps it.

    Clients following HTML5 (urllib3 2, browsers) send a double quote as ``%22``; the
    parser behind Jira does not percent-decode, so the name keeps ``%22`` (Werkzeug, which
    serves the emulator, decodes it: it is put back here).
    """
    return (name or "attachment").replace('"', "%22")


def _not_on_screen(name: str) -> str:
    return f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."


def _reject_overlap(fields: dict, update: Any) -> None:
    """Jira refuses a field named in both ``fields`` and ``update``."""
    both = sorted(set(fields) & set(update)) if isinstance(update, dict) else []
    if both:
        raise JiraError(
            400, [f"Field '{name}' cannot appear in both 'fields' and 'update'" for name in both]
        )


def _label_error(labels: Any) -> str | None:
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return "Operation value must be a list of strings"
    for label in labels:
        if not label or any(c.isspace() for c in label):
            return f"The label '{label}' contains spaces which is invalid."
        if len(label) > 255:
            return (
                f"The label '{label}' exceeds the maximum length for a single label of 255 "
                "characters."
            )
    return None


def _is_adf(value: Any) -> bool:
    return is_valid_adf(value)


def _has_media(node: Any) -> bool:
    """Whether an ADF tree holds something besides text (an image, a mention, a card...)."""
    if not isinstance(node, dict):
        return False
    if node.get("type") not in ("doc", "paragraph", "text", "hardBreak"):
        return True
    return any(_has_media(child) for child in node.get("content") or [])


def _user_name(store: JiraStore, user_id: str | None) -> str | None:
    user = store.users.get(user_id) if user_id else None
    return user["display_name"] if user else None


def _display(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return adf_to_text(value)
    return str(value)


def _too_large_message(limit: int) -> str:
    return f"The file is too large to attach. The maximum attachment size is {limit} bytes."


def _find_by_id_or_name(catalog: list[dict], ref: object) -> dict | None:
    """The catalogue entry a field reference names, as Jira accepts ``{"id"}`` or ``{"name"}``."""
    if not isinstance(ref, dict):
        return None
    return next(
        (e for e in catalog if str(ref.get("id")) == e["id"] or ref.get("name") == e["name"]),
        None,
    )
