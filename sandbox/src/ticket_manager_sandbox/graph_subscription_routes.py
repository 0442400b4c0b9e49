"""Routes for /subscriptions: create (with the endpoint validation handshake), list, get,
renew and delete change-notification subscriptions on messages."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from flask import Response, g, request

from ticket_manager_sandbox.graph_http import (
    folder_of,
    json_body,
    json_response,
    preferences,
    root_url,
)
from ticket_manager_sandbox.graph_query import GraphQueryError
from ticket_manager_sandbox.graph_subscriptions import (
    TLS_VERSIONS,
    Subscription,
    parse_change_type,
    parse_expiration,
    validate_endpoint,
)

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

_RESOURCE = re.compile(
    r"^/?(?:(me)|users/([^/]+))/(?:mailfolders(?:\('([^']+)'\)|/([^/]+))/)?messages/?$", re.I
)


def register_subscription_routes(emu: GraphEmulator) -> None:
    """Attach /v1.0/subscriptions and /v1.0/subscriptions/{id}."""
    app = emu.app

    # -- subscriptions ---------------------------------------------------------------------

    def subscription_of(subscription_id: str) -> Subscription:
        found = emu.subscription_map.get(subscription_id)
        if found is None or not found.active():
            raise GraphQueryError(
                404, "ResourceNotFound", f"The object '{subscription_id}' was not found."
            )
        return found

    def subscription_entity(subscription: Subscription, status: int = 200) -> Response:
        return json_response(
            {
                "@odata.context": f"{root_url()}$metadata#subscriptions/$entity",
                **subscription.render(),
            },
            status,
        )

    @app.route("/v1.0/subscriptions", methods=["GET", "POST"])
    def subscriptions():
        if request.method == "GET":
            with emu.lock:
                app_id = g.claims.get("appid") or g.claims.get("azp")
                found = [
                    s.render()
                    for s in emu.subscription_map.values()
                    if s.active() and (app_id is None or s.application_id in {None, app_id})
                ]
            return json_response(
                {"@odata.context": f"{root_url()}$metadata#subscriptions", "value": found}
            )
        body = json_body()
        change_types = parse_change_type(body.get("changeType"))
        url = body.get("notificationUrl")
        if not isinstance(url, str) or not url:
            raise GraphQueryError(400, "InvalidRequest", "notificationUrl is a required property.")
        resource = str(body.get("resource") or "")
        match = _RESOURCE.match(resource)
        if not match:
            raise GraphQueryError(
                400, "ExtensionError", f"Resource '{resource}' is not supported by the emulator."
            )
        user = "me" if match[1] else match[2]
        folder_key = match[3] or match[4]
        client_state = body.get("clientState")
        if client_state is not None and len(str(client_state)) > 128:
            raise GraphQueryError(
                400, "InvalidRequest", "clientState can't be longer than 128 characters."
            )
        expiration = parse_expiration(body.get("expirationDateTime"), emu.subscription_max_minutes)
        tls_version = body.get("latestSupportedTlsVersion") or "v1_2"
        if tls_version not in TLS_VERSIONS:
            raise GraphQueryError(
                400,
                "InvalidRequest",
                f"Invalid latestSupportedTlsVersion '{tls_version}'. Valid values are "
                "v1_0, v1_1, v1_2, v1_3.",
            )
        with emu.lock:
            box = emu.authorize(user, "read")
            folder = folder_of(box, folder_key) if folder_key else None
            delegated = bool(g.claims.get("scp")) and not g.claims.get("roles")
            signed_in = (emu.delegated_upn(g.claims) or "").lower()
            if delegated and box.upn.lower() != signed_in:
                # "Delegated permission supports subscribing to items in folders in only the
                # signed-in user's mailbox" (subscription resource, Outlook message): the
                # .Shared permissions do not reach subscriptions.
                raise GraphQueryError(
                    403,
                    "ExtensionError",
                    "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is "
                    "denied. Check credentials and try again.]",
                )
        lifecycle = body.get("lifecycleNotificationUrl")
        validate_endpoint(url, emu.notifier.verify)
        if lifecycle:
            validate_endpoint(lifecycle, emu.notifier.verify)
        immutable, _ = preferences()
        subscription = Subscription(
            id=str(uuid.uuid4()),
            resource=resource,
            change_types=change_types,
            notification_url=url,
            lifecycle_url=lifecycle,
            expiration=expiration,
            client_state=client_state,
            mailbox=box.address.lower(),
            folder_id=folder.id if folder else None,
            tenant_id=g.claims.get("tid") or emu.default_tenant_id,
            application_id=g.claims.get("appid") or g.claims.get("azp"),
            creator_id=g.claims.get("oid"),
            raw_change_type=body["changeType"],
            immutable_ids=immutable,
            tls_version=tls_version,
        )
        with emu.lock:
            emu.subscription_map[subscription.id] = subscription
        return subscription_entity(subscription, 201)

    @app.route("/v1.0/subscriptions/<subscription_id>/reauthorize", methods=["POST"])
    def reauthorize(subscription_id):
        # Answering a reauthorizationRequired challenge: nothing changes but the caller's proof.
        with emu.lock:
            subscription_of(subscription_id)
        return Response(status=204)

    @app.route("/v1.0/subscriptions/<subscription_id>", methods=["GET", "PATCH", "DELETE"])
    def subscription(subscription_id):
        with emu.lock:
            found = subscription_of(subscription_id)
            if request.method == "GET":
                return subscription_entity(found)
            if request.method == "DELETE":
                del emu.subscription_map[subscription_id]
                return Response(status=204)
        body = json_body()
        expiration = (
            parse_expiration(body["expirationDateTime"], emu.subscription_max_minutes)
            if "expirationDateTime" in body
            else None
        )
        url = body.get("notificationUrl")
        if url:
            validate_endpoint(url, emu.notifier.verify)
        with emu.lock:
            found = subscription_of(subscription_id)
            if expiration:
                found.expiration = expiration
            if url:
                found.notification_url = url
            return subscription_entity(found)
