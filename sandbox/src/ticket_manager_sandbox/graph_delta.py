"""Delta query on a mail folder's messages: paged rounds that end in a deltaLink, then only
the changes since (new, updated, and removed items), and 410 once the sync state is gone."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import g, request

from ticket_manager_sandbox.graph_http import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    filter_view,
    folder_of,
    graph_error,
    json_response,
    mail_route,
    parse_expand,
    preferences,
    root_url,
)
from ticket_manager_sandbox.graph_http import render as render_message
from ticket_manager_sandbox.graph_query import (
    GraphQueryError,
    parse_filter,
    parse_int_option,
    parse_select,
)
from ticket_manager_sandbox.graph_store import Folder, Mailbox, MailItem, random_token

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

# Exchange keeps a few generations of a folder's sync state; an older delta token answers 410
# (delta-query-overview: "the delta token is expired and data must be synchronized again").
DELTA_GENERATIONS = 3


def register_delta_routes(emu: GraphEmulator) -> None:
    """Attach GET .../mailFolders/{id}/messages/delta."""
    app = emu.app

    def route(path: str, methods: tuple[str, ...] = ("GET",)):
        return mail_route(app, path, methods)

    def render(box: Mailbox, item: MailItem, **options) -> dict:
        return render_message(emu, box, item, **options)

    # -- delta -----------------------------------------------------------------------------

    @route("/mailFolders/<folder>/messages/delta")
    def message_delta(user, folder):
        with emu.lock:
            box = emu.authorize(user, "read")
            target = folder_of(box, folder)
            immutable, _ = preferences()
            token = request.args.get("$deltatoken") or request.args.get("$deltaToken")
            skip = request.args.get("$skiptoken") or request.args.get("$skipToken")
            if token or skip:
                state = emu.sync_states.get(token or skip)
                expected_kind = "delta" if token else "skip"
                if (
                    state is None
                    or state["kind"] != expected_kind
                    or state["mailbox"] != box.address.lower()
                    or state["folder"] != target.id
                ):
                    return graph_error(
                        410,
                        "syncStateNotFound",
                        "The sync state generation is not found. The delta token is expired and "
                        "data must be synchronized again.",
                        {"Location": request.base_url},
                    )
                params = state["params"]
                if token:
                    entries, snapshot = changes_since(box, target, state["seq"], params), box.seq
                else:
                    entries, snapshot = state["pending"], state["snapshot"]
            else:
                params = initial_delta_params()
                entries, snapshot = initial_entries(box, target, params), box.seq
            size = params.get("page_size") or params.get("top") or DEFAULT_PAGE_SIZE
            wanted = g.prefer.get("odata.maxpagesize")
            if wanted:
                size = max(1, min(int(wanted) if wanted.isdigit() else size, MAX_PAGE_SIZE))
                params = {**params, "page_size": size}
                g.applied.append(f"odata.maxpagesize={size}")
            live = [
                e
                for e in entries
                if e[0] == "removed"
                or (box.find(e[1].rest_id) is e[1] and e[1].folder_id == target.id)
            ]
            page, rest = live[:size], live[size:]
            values = []
            for entry in page:
                if entry[0] == "removed":
                    values.append(
                        {
                            "@odata.type": "#microsoft.graph.message",
                            "id": entry[2] if immutable else entry[1],
                            "@removed": {"reason": "deleted"},
                        }
                    )
                elif entry[0] == "updated":
                    values.append(partial_update(box, entry[1], entry[2], params))
                else:
                    values.append(
                        {
                            "@odata.type": "#microsoft.graph.message",
                            **render(
                                box,
                                entry[1],
                                select=params.get("select"),
                                expand=set(params.get("expand") or []),
                                extended_ids=params.get("extended_ids"),
                            ),
                        }
                    )
            new_token = random_token()
            common = {"mailbox": box.address.lower(), "folder": target.id, "params": params}
            body: dict = {"@odata.context": f"{root_url()}$metadata#Collection(message)"}
            if rest:
                emu.sync_states[new_token] = {
                    "kind": "skip",
                    "pending": rest,
                    "snapshot": snapshot,
                    **common,
                }
                body["@odata.nextLink"] = f"{request.base_url}?$skiptoken={new_token}"
            else:
                emu.sync_states[new_token] = {"kind": "delta", "seq": snapshot, **common}
                forget_old_generations(box, target)
                body["@odata.deltaLink"] = f"{request.base_url}?$deltatoken={new_token}"
            body["value"] = values
            return json_response(body)

    def partial_update(box: Mailbox, item: MailItem, seq: int, params: dict) -> dict:
        """An updated item as Graph gives it: its id and the properties changed since ``seq``."""
        changed = [name for name, at in item.changed_props.items() if at > seq]
        select = params.get("select")
        wanted = [name for name in changed if not select or name in select]
        rendered = render(box, item, select=wanted or ["id"])
        keep = {"id", "@odata.etag", *wanted}
        return {
            "@odata.type": "#microsoft.graph.message",
            **{k: v for k, v in rendered.items() if k in keep},
        }

    def forget_old_generations(box: Mailbox, folder: Folder) -> None:
        """Keep only the newest DELTA_GENERATIONS delta tokens of a folder, as Exchange does."""
        tokens = [
            token
            for token, state in emu.sync_states.items()
            if state["kind"] == "delta"
            and state["mailbox"] == box.address.lower()
            and state["folder"] == folder.id
        ]
        for token in tokens[:-DELTA_GENERATIONS]:
            del emu.sync_states[token]

    def initial_delta_params() -> dict:
        args = request.args
        select = parse_select(args.get("$select"))
        expand, extended_ids = parse_expand(args.get("$expand"))
        top = parse_int_option("$top", args.get("$top"), minimum=1)
        filter_text = args.get("$filter")
        if filter_text:
            props, _ = parse_filter(filter_text)
            # Only "receivedDateTime ge|gt {value}" is supported on a message delta.
            operators = re.findall(r"\s(eq|ne|gt|ge|lt|le)\s", filter_text, re.I)
            if any(p != "receivedDateTime" for p in props) or any(
                op.lower() not in {"ge", "gt"} for op in operators
            ):
                raise GraphQueryError(
                    400,
                    "ErrorInvalidUrlQueryFilter",
                    "The query filter contains one or more invalid nodes.",
                )
        orderby = args.get("$orderby")
        if orderby and " ".join(orderby.split()).lower() != "receiveddatetime desc":
            raise GraphQueryError(
                400,
                "BadRequest",
                "The only supported $orderby on a message delta is 'receivedDateTime desc'.",
            )
        change_type = args.get("changeType")
        kinds = {"created", "updated", "deleted"}
        if change_type:
            if change_type not in kinds:
                raise GraphQueryError(
                    400, "BadRequest", f"Invalid value '{change_type}' for 'changeType'."
                )
            kinds = {change_type}
        return {
            "select": select,
            "expand": sorted(expand),
            "extended_ids": extended_ids,
            "top": min(top, MAX_PAGE_SIZE) if top else None,
            "filter": filter_text,
            "kinds": sorted(kinds),
        }

    def _matches(params: dict, item: MailItem) -> bool:
        if not params.get("filter"):
            return True
        _, test = parse_filter(params["filter"])
        return test(filter_view(item))

    def _newest_first(items: list[MailItem]) -> list[MailItem]:
        return sorted(items, key=lambda i: i.props["receivedDateTime"], reverse=True)

    def initial_entries(box: Mailbox, folder: Folder, params: dict) -> list[tuple]:
        if "created" not in params["kinds"]:
            return []
        items = [i for i in box.items_in(folder.id) if _matches(params, i)]
        return [("item", i) for i in _newest_first(items)]

    def changes_since(box: Mailbox, folder: Folder, seq: int, params: dict) -> list[tuple]:
        kinds = set(params["kinds"])
        changed = []
        for item in box.items_in(folder.id):
            if item.changed_seq <= seq:
                continue
            created = item.arrived_seq > seq
            if ("created" if created else "updated") not in kinds:
                continue
            if created and not _matches(params, item):
                continue
            changed.append(item)
        entries: list[tuple] = [
            ("item", i) if i.arrived_seq > seq else ("updated", i, seq)
            for i in _newest_first(changed)
        ]
        if "deleted" in kinds:
            for removed_at, arrived, rest_id, immutable_id in folder.tombstones:
                if removed_at > seq and arrived <= seq:
                    entries.append(("removed", rest_id, immutable_id))
        return entries
