"""HTTP routes of the Graph emulator for users, mail folders, messages, attachments and sending;
delta, subscriptions and $batch are registered from their own modules."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import Response, g, request

from ticket_manager_sandbox.graph_batch import register_batch_routes
from ticket_manager_sandbox.graph_delta import register_delta_routes
from ticket_manager_sandbox.graph_http import (
    action_body,
    action_json,
    filter_view,
    folder_of,
    graph_error,
    item_of,
    json_body,
    json_response,
    mail_route,
    not_found,
    paginate,
    parse_expand,
    root_url,
)
from ticket_manager_sandbox.graph_http import entity as message_entity
from ticket_manager_sandbox.graph_http import render as render_message
from ticket_manager_sandbox.graph_query import (
    MESSAGE_PROPERTIES,
    GraphQueryError,
    check_filter_order,
    parse_filter,
    parse_orderby,
    parse_select,
    sort_messages,
)
from ticket_manager_sandbox.graph_send import (
    mime_request_body,
    outgoing_from_draft,
    outgoing_from_json,
    outgoing_from_mime,
    parse_attachments,
    parse_headers,
    parse_recipients,
    reply_outgoing,
    save_draft,
    transmit,
)
from ticket_manager_sandbox.graph_store import (
    Folder,
    Mailbox,
    MailItem,
    new_attachment,
    render_attachment,
)
from ticket_manager_sandbox.graph_subscription_routes import register_subscription_routes
from ticket_manager_sandbox.graph_uploads import check_posted_attachment, register_upload_routes

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

_FLAG_STATUSES = {"notFlagged", "complete", "flagged"}
USER_ROLES = {"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All"}


def register_routes(emu: GraphEmulator) -> None:
    """Attach every Graph route to ``emu.app``."""
    app = emu.app
    app.url_map.redirect_defaults = False
    app.url_map.strict_slashes = False

    def route(path: str, methods: tuple[str, ...] = ("GET",)):
        return mail_route(app, path, methods)

    @app.errorhandler(GraphQueryError)
    def _graph_query_error(error: GraphQueryError):
        return graph_error(error.status, error.code, error.message)

    @app.errorhandler(404)
    def _unknown_segment(_error):
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    @app.errorhandler(405)
    def _method_not_allowed(_error):
        return graph_error(
            405, "Request_BadRequest", "The requested HTTP method is not allowed on this resource."
        )

    def render(box: Mailbox, item: MailItem, **options) -> dict:
        return render_message(emu, box, item, **options)

    def entity(box: Mailbox, item: MailItem, status: int = 200, **options) -> Response:
        return message_entity(emu, box, item, status, **options)

    # -- users -----------------------------------------------------------------------------

    def user_entity(box: Mailbox) -> dict:
        given, _, surname = box.display_name.partition(" ")
        return {
            "businessPhones": [],
            "displayName": box.display_name,
            "givenName": given,
            "jobTitle": None,
            "mail": box.address,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": surname or None,
            "userPrincipalName": box.upn,
            "id": box.user_id,
            "proxyAddresses": box.proxy_addresses,
        }

    def select_user(rendered: dict) -> dict:
        """The default user properties (proxyAddresses only when $select'ed), or the $select."""
        select = request.args.get("$select")
        if not select:
            return {k: v for k, v in rendered.items() if k != "proxyAddresses"}
        wanted = {s.strip() for s in select.split(",")}
        return {k: v for k, v in rendered.items() if k in wanted}

    @route("")
    def get_user(user):
        with emu.lock:
            box = emu.authorize(user, "user")
        return json_response(
            {
                "@odata.context": f"{root_url()}$metadata#users/$entity",
                **select_user(user_entity(box)),
            }
        )

    @app.route("/v1.0/users", methods=["GET"])
    def list_users():
        """Users by ``mail eq '…'`` or ``proxyAddresses/any(x:x eq 'smtp:…')``."""
        claims = g.claims
        granted = set(claims.get("roles") or []) | set(str(claims.get("scp") or "").split())
        if emu.deny_user_reads or not granted & USER_ROLES:
            raise GraphQueryError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        text = (request.args.get("$filter") or "").strip()
        proxy = re.fullmatch(r"proxyAddresses/any\((\w+):\s*\1 eq '([^']*)'\)", text, re.I)
        mail = re.fullmatch(r"mail eq '([^']*)'", text, re.I)
        with emu.lock:
            if proxy:
                wanted = proxy.group(2).lower()
                found = emu.find_users(
                    lambda box: wanted in {p.lower() for p in box.proxy_addresses}
                )
            elif mail:
                found = emu.find_users(lambda box: box.address.lower() == mail.group(1).lower())
            elif not text:
                found = emu.find_users(lambda box: True)
            else:
                raise GraphQueryError(
                    400,
                    "Request_UnsupportedQuery",
                    "Unsupported or invalid query filter clause specified for property.",
                )
            values = [select_user(user_entity(box)) for box in found]
        return json_response({"@odata.context": f"{root_url()}$metadata#users", "value": values})

    # -- folders ---------------------------------------------------------------------------

    def folder_collection(box: Mailbox, parent: Folder) -> Response:
        hidden = request.args.get("includeHiddenFolders", "").lower() == "true"
        folders = sorted(
            (f for f in box.children(parent.id) if hidden or not f.hidden),
            key=lambda f: f.display_name.lower(),
        )
        chunk, link = paginate(folders)
        body: dict = {
            "@odata.context": f"{root_url()}$metadata#users('{box.user_id}')/mailFolders",
            "value": [box.render_folder(f) for f in chunk],
        }
        if request.args.get("$count", "").lower() == "true":
            body["@odata.count"] = len(folders)
        if link:
            body["@odata.nextLink"] = link
        return json_response(body)

    def create_folder(box: Mailbox, parent: Folder) -> Response:
        body = json_body()
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise GraphQueryError(
                400, "ErrorInvalidParameter", "The value of the parameter 'DisplayName' is empty."
            )
        if any(f.display_name.lower() == name.lower() for f in box.children(parent.id)):
            raise GraphQueryError(
                409, "ErrorFolderExists", "A folder with the specified name already exists."
            )
        folder = box.add_folder(name, parent.id, hidden=bool(body.get("isHidden")))
        return json_response(
            {
                "@odata.context": f"{root_url()}$metadata#users('{box.user_id}')"
                "/mailFolders/$entity",
                **box.render_folder(folder),
            },
            201,
        )

    @route("/mailFolders", methods=("GET", "POST"))
    def mail_folders(user):
        with emu.lock:
            box = emu.authorize(user, "read" if request.method == "GET" else "write")
            if request.method == "POST":
                return create_folder(box, box.root)
            return folder_collection(box, box.root)

    @route("/mailFolders/<folder>")
    def mail_folder(user, folder):
        with emu.lock:
            box = emu.authorize(user, "read")
            target = folder_of(box, folder)
            return json_response(
                {
                    "@odata.context": f"{root_url()}$metadata#users('{box.user_id}')"
                    "/mailFolders/$entity",
                    **box.render_folder(target),
                }
            )

    @route("/mailFolders/<folder>/childFolders", methods=("GET", "POST"))
    def child_folders(user, folder):
        with emu.lock:
            box = emu.authorize(user, "read" if request.method == "GET" else "write")
            parent = folder_of(box, folder)
            if request.method == "POST":
                return create_folder(box, parent)
            return folder_collection(box, parent)

    # -- messages --------------------------------------------------------------------------

    def message_collection(box: Mailbox, folder: Folder | None) -> Response:
        args = request.args
        select = parse_select(args.get("$select"))
        expand, extended_ids = parse_expand(args.get("$expand"))
        filter_props, test = parse_filter(args["$filter"]) if args.get("$filter") else ([], None)
        order = parse_orderby(args["$orderby"]) if args.get("$orderby") else None
        if order:
            check_filter_order(filter_props, order)
        items = box.items_in(folder.id) if folder else box.unique_items()
        views = [(filter_view(i), i) for i in items]
        if test:
            views = [(v, i) for v, i in views if test(v)]
        ordered = sort_messages([v for v, _ in views], order or [("receivedDateTime", True)])
        by_view = {id(v): i for v, i in views}
        matched = [by_view[id(v)] for v in ordered]
        chunk, link = paginate(matched)
        context = (
            f"users('{box.user_id}')/messages"
            if folder is None
            else (f"users('{box.user_id}')/mailFolders('{folder.id}')/messages")
        )
        if select:
            # OData names the selected properties in the context URL, as Graph's examples show.
            context += f"({','.join(select)})"
        body: dict = {"@odata.context": f"{root_url()}$metadata#{context}"}
        if args.get("$count", "").lower() == "true":
            body["@odata.count"] = len(matched)
        body["value"] = [
            render(box, i, select=select, expand=expand, extended_ids=extended_ids) for i in chunk
        ]
        if link:
            body["@odata.nextLink"] = link
        return json_response(body)

    def mime_message() -> dict | None:
        """The message of a text/plain (base64 MIME) request body; None for JSON requests."""
        if request.mimetype != "text/plain":
            return None
        return outgoing_from_mime(mime_request_body(request.get_data()))

    def create_draft(box: Mailbox, folder: Folder | None) -> Response:
        outgoing = mime_message() or outgoing_from_json(json_body())
        outgoing["body"] = outgoing["body"] or {"contentType": "text", "content": ""}
        outgoing["subject"] = outgoing["subject"] or ""
        item = save_draft(emu, box, outgoing)
        if folder is not None and folder.id != item.folder_id:
            box.move(item, folder)
        return entity(box, item, 201)

    @route("/messages", methods=("GET", "POST"))
    def messages(user):
        with emu.lock:
            box = emu.authorize(user, "read" if request.method == "GET" else "write")
            if request.method == "POST":
                return create_draft(box, None)
            return message_collection(box, None)

    @route("/mailFolders/<folder>/messages", methods=("GET", "POST"))
    def folder_messages(user, folder):
        with emu.lock:
            box = emu.authorize(user, "read" if request.method == "GET" else "write")
            target = folder_of(box, folder)
            if request.method == "POST":
                return create_draft(box, target)
            return message_collection(box, target)

    @route("/messages/<message_id>", methods=("GET", "PATCH", "DELETE"))
    def message(user, message_id):
        need = {"GET": "read", "PATCH": "write", "DELETE": "write"}[request.method]
        with emu.lock:
            box = emu.authorize(user, need)
            item = item_of(box, message_id)
            if request.method == "DELETE":
                emu.notify(box, item, "deleted")
                box.remove(item)
                return Response(status=204)
            if request.method == "PATCH":
                update_message(box, item, json_body())
                return entity(box, item)
            expand, extended_ids = parse_expand(request.args.get("$expand"))
            return entity(
                box,
                item,
                select=parse_select(request.args.get("$select")),
                expand=expand,
                extended_ids=extended_ids,
            )

    def update_message(box: Mailbox, item: MailItem, body: dict) -> None:
        props = item.props
        draft_only = {"subject", "body", "toRecipients", "ccRecipients", "bccRecipients", "replyTo"}
        for key, value in body.items():
            if key.startswith("@odata."):
                continue
            if key not in MESSAGE_PROPERTIES:
                raise GraphQueryError(
                    400,
                    "RequestBodyRead",
                    f"The property '{key}' does not exist on type 'microsoft.graph.message'. "
                    "Make sure to only use property names that are defined by the type or mark "
                    "the type as open type.",
                )
            if key == "isRead":
                if not isinstance(value, bool):
                    raise GraphQueryError(
                        400,
                        "RequestBodyRead",
                        f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'.",
                    )
                props["isRead"] = value
            elif key == "categories":
                if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                    raise GraphQueryError(
                        400, "RequestBodyRead", "Cannot read the value of 'categories'."
                    )
                props["categories"] = list(value)
            elif key == "flag":
                status = (value or {}).get("flagStatus", "notFlagged")
                if status not in _FLAG_STATUSES:
                    raise GraphQueryError(
                        400,
                        "RequestBodyRead",
                        f"The value '{status}' is not valid for flagStatus.",
                    )
                props["flag"] = {k: v for k, v in value.items() if not k.startswith("@odata.")}
            elif key == "importance":
                if value not in {"low", "normal", "high"}:
                    raise GraphQueryError(
                        400, "RequestBodyRead", f"The value '{value}' is not valid for importance."
                    )
                props["importance"] = value
            elif key == "singleValueExtendedProperties":
                for prop in value or []:
                    existing = next(
                        (k for k in item.extended if k.lower() == prop["id"].lower()), None
                    )
                    item.extended[existing or prop["id"]] = str(prop.get("value"))
            elif key in draft_only and props["isDraft"]:
                if key == "body":
                    kind = str((value or {}).get("contentType") or "text").lower()
                    props["body"] = {
                        "contentType": "html" if kind == "html" else "text",
                        "content": (value or {}).get("content") or "",
                    }
                elif key == "subject":
                    props["subject"] = str(value or "")
                else:
                    props[key] = parse_recipients(value, key) or []
            elif key == "internetMessageHeaders" and props["isDraft"]:
                item.context["headers"] = parse_headers(value)
        box.touch(item, [k for k in body if not k.startswith("@odata.")])
        emu.notify(box, item, "updated")

    @route("/messages/<message_id>/$value")
    def message_mime(user, message_id):
        with emu.lock:
            box = emu.authorize(user, "read")
            item = item_of(box, message_id)
            return Response(item.mime, status=200, content_type="text/plain")

    @route("/messages/<message_id>/move", methods=("POST",))
    def move(user, message_id):
        body = action_body()
        with emu.lock:
            box = emu.authorize(user, "write")
            item = item_of(box, message_id)
            destination = body.get("destinationId")
            if not isinstance(destination, str) or not destination:
                raise GraphQueryError(
                    400,
                    "ErrorInvalidParameter",
                    "The value of the parameter 'DestinationId' is empty.",
                )
            target = folder_of(box, destination)
            emu.notify(box, item, "deleted")
            box.move(item, target)
            emu.notify(box, item, "created")
            return entity(box, item, 201)

    # -- attachments -----------------------------------------------------------------------

    def attachment_of(item: MailItem, attachment_id: str) -> dict:
        found = next((a for a in item.attachments if a["id"] == attachment_id), None)
        if found is None:
            raise not_found()
        return found

    def select_attachment(rendered: dict) -> dict:
        select = request.args.get("$select")
        if not select:
            return rendered
        keep = {"@odata.type", "@odata.mediaContentType", "id"} | {
            s.strip() for s in select.split(",")
        }
        return {k: v for k, v in rendered.items() if k in keep}

    @route("/messages/<message_id>/attachments", methods=("GET", "POST"))
    def attachments(user, message_id):
        with emu.lock:
            box = emu.authorize(user, "read" if request.method == "GET" else "write")
            item = item_of(box, message_id)
            context = (
                f"{root_url()}$metadata#users('{box.user_id}')/messages('{message_id}')/attachments"
            )
            if request.method == "POST":
                specs = parse_attachments([json_body()])
                check_posted_attachment(specs[0]["bytes"])
                added = new_attachment(specs[0])
                item.attachments.append(added)
                item.props["hasAttachments"] = any(not a["isInline"] for a in item.attachments)
                box.touch(item, ["hasAttachments"])
                return json_response(
                    {"@odata.context": f"{context}/$entity", **render_attachment(added)}, 201
                )
            return json_response(
                {
                    "@odata.context": context,
                    "value": [select_attachment(render_attachment(a)) for a in item.attachments],
                }
            )

    @route("/messages/<message_id>/attachments/<attachment_id>")
    def attachment(user, message_id, attachment_id):
        with emu.lock:
            box = emu.authorize(user, "read")
            found = attachment_of(item_of(box, message_id), attachment_id)
            context = (
                f"{root_url()}$metadata#users('{box.user_id}')/messages('{message_id}')"
                "/attachments/$entity"
            )
            return json_response(
                {"@odata.context": context, **select_attachment(render_attachment(found))}
            )

    @route("/messages/<message_id>/attachments/<attachment_id>/$value")
    def attachment_value(user, message_id, attachment_id):
        with emu.lock:
            box = emu.authorize(user, "read")
            found = attachment_of(item_of(box, message_id), attachment_id)
            content_type = "text/plain" if found["kind"] == "item" else found["contentType"]
            return Response(found["bytes"], status=200, content_type=content_type)

    # -- sending ---------------------------------------------------------------------------

    def reply_view(user: str, message_id: str, *, reply_all: bool, draft: bool) -> Response:
        mime = mime_message()
        payload = {} if mime is not None else action_json()
        with emu.lock:
            box = emu.authorize(user, "write" if draft else "send")
            item = item_of(box, message_id)
            outgoing = reply_outgoing(box, item, payload, reply_all=reply_all, mime=mime)
            if draft:
                return entity(box, save_draft(emu, box, outgoing), 201)
            transmit(emu, box, outgoing)
        return Response(status=202)

    @route("/messages/<message_id>/reply", methods=("POST",))
    def reply(user, message_id):
        return reply_view(user, message_id, reply_all=False, draft=False)

    @route("/messages/<message_id>/replyAll", methods=("POST",))
    def reply_all(user, message_id):
        return reply_view(user, message_id, reply_all=True, draft=False)

    @route("/messages/<message_id>/createReply", methods=("POST",))
    def create_reply(user, message_id):
        return reply_view(user, message_id, reply_all=False, draft=True)

    @route("/messages/<message_id>/createReplyAll", methods=("POST",))
    def create_reply_all(user, message_id):
        return reply_view(user, message_id, reply_all=True, draft=True)

    @route("/messages/<message_id>/send", methods=("POST",))
    def send_draft(user, message_id):
        with emu.lock:
            box = emu.authorize(user, "send")
            item = item_of(box, message_id)
            if not item.props["isDraft"]:
                raise GraphQueryError(
                    400, "ErrorInvalidOperation", "Only draft messages can be sent."
                )
            transmit(emu, box, outgoing_from_draft(item))
            emu.notify(box, item, "deleted")
            box.remove(item)
        return Response(status=202)

    @route("/sendMail", methods=("POST",))
    def send_mail(user):
        outgoing = mime_message()
        save: object = True
        if outgoing is None:
            body = action_body()
            if "message" not in body:
                raise GraphQueryError(
                    400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty."
                )
            outgoing = outgoing_from_json(body["message"])
            outgoing["body"] = outgoing["body"] or {"contentType": "text", "content": ""}
            outgoing["to"] = outgoing["to"] or []
            save = body.get("saveToSentItems", True)
        if isinstance(save, str):
            save = save.lower() == "true"
        with emu.lock:
            box = emu.authorize(user, "send")
            transmit(emu, box, outgoing, save=bool(save))
        return Response(status=202)

    register_delta_routes(emu)
    register_subscription_routes(emu)
    register_batch_routes(emu)
    register_upload_routes(emu)
