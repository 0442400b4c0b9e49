"""The Graph mail emulator, exercised over real HTTPS the way the product's client uses it."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from flask import Flask, Response, request

from ticket_manager_sandbox.graph import GraphEmulator

SUPPORT = "support@example.com"
ALICE = "alice@example.com"
TENANT = "8f3b1c2d-5e6f-4a7b-9c8d-0e1f2a3b4c5d"
TOKENS = {
    "app-token": {"roles": ["Mail.ReadWrite", "Mail.Send"], "tid": TENANT, "oid": "app-oid"},
    "alice-token": {
        "scp": "Mail.ReadWrite Mail.Send User.Read",
        "upn": ALICE,
        "tid": TENANT,
        "oid": "alice-oid",
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


@pytest.fixture
def graph() -> GraphEmulator:
    return GraphEmulator(token_validator=TOKENS.get, mailboxes=[SUPPORT, ALICE])


def _at(minutes: int) -> datetime:
    return datetime(2024, 5, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_delta_pages_to_a_delta_link_then_reports_only_changes(graph, base, http):
    # A full delta round pages by maxpagesize; the deltaLink then yields only the new message
    # and the removal.
    ids = [
        graph.deliver(
            SUPPORT, subject=f"Case {n}", body="hi", sender="c@example.org", received=_at(n)
        )
        for n in range(25)
    ]
    url = (
        f"{base}/users/{SUPPORT}/mailFolders/inbox/messages/delta?$select=subject,receivedDateTime"
    )
    pages, seen = [], []
    headers = {"Prefer": "odata.maxpagesize=10"}
    while url:
        response = http.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=10"
        body = response.json()
        pages.append(len(body["value"]))
        seen += [m["id"] for m in body["value"]]
        assert set(body["value"][0]) == {
            "@odata.type",
            "@odata.etag",
            "id",
            "subject",
            "receivedDateTime",
        }
        url = body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
        assert (url is None) != (delta_link is None)
        if url:
            assert "$skiptoken=" in url
    assert pages == [10, 10, 5]
    assert sorted(seen) == sorted(ids)
    assert "$deltatoken=" in delta_link

    new_id = graph.deliver(SUPPORT, subject="Fresh", body="new", sender="c@example.org")
    graph.remove_message(SUPPORT, ids[3])
    body = http.get(delta_link).json()
    assert [m["id"] for m in body["value"] if "@removed" not in m] == [new_id]
    assert body["value"][0]["subject"] == "Fresh"
    removed = [m for m in body["value"] if "@removed" in m]
    assert removed == [
        {"@odata.type": "#microsoft.graph.message", "id": ids[3], "@removed": {"reason": "deleted"}}
    ]
    again = http.get(body["@odata.deltaLink"]).json()
    assert again["value"] == []


def test_expired_delta_token_answers_410_so_the_client_resyncs(graph, base, http):
    # After Exchange forgets the sync state, the deltaLink answers 410 Gone with syncStateNotFound.
    graph.deliver(SUPPORT, subject="One", body="x", sender="c@example.org")
    first = http.get(f"{base}/users/{SUPPORT}/mailFolders/inbox/messages/delta").json()
    graph.expire_delta_tokens(SUPPORT)
    response = http.get(first["@odata.deltaLink"])
    assert response.status_code == 410
    error = response.json()["error"]
    assert error["code"] == "syncStateNotFound"
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert response.headers["Location"].endswith("/messages/delta")
    restarted = http.get(response.headers["Location"])
    assert restarted.status_code == 200
    assert len(restarted.json()["value"]) == 1


def test_list_with_filter_orderby_top_and_next_link(graph, base, http):
    # $filter/$orderby/$top select and order the page; nextLink continues with the same query.
    for n in range(6):
        graph.deliver(SUPPORT, subject=f"M{n}", body="b", sender="c@example.org", received=_at(n))
    graph.deliver(ALICE, subject="elsewhere", body="b", sender="c@example.org", received=_at(9))
    params = {
        "$filter": f"receivedDateTime ge {_at(2):%Y-%m-%dT%H:%M:%SZ} and isRead eq false",
        "$orderby": "receivedDateTime desc",
        "$top": "3",
        "$select": "subject,receivedDateTime",
        "$count": "true",
    }
    first = http.get(f"{base}/users/{SUPPORT}/messages", params=params).json()
    assert [m["subject"] for m in first["value"]] == ["M5", "M4", "M3"]
    assert first["@odata.count"] == 4
    second = http.get(first["@odata.nextLink"]).json()
    assert [m["subject"] for m in second["value"]] == ["M2"]
    assert "@odata.nextLink" not in second

    default = http.get(f"{base}/users/{SUPPORT}/mailFolders/inbox/messages").json()
    assert len(default["value"]) == 6
    assert default["value"][0]["subject"] == "M5"

    bad = http.get(f"{base}/users/{SUPPORT}/messages", params={"$filter": "nosuch eq 'x'"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "RequestBroker--ParseUri"
    quoted = http.get(
        f"{base}/users/{SUPPORT}/messages", params={"$filter": "receivedDateTime ge '2024-01-01'"}
    )
    assert quoted.status_code == 400
    mismatch = http.get(
        f"{base}/users/{SUPPORT}/messages",
        params={"$filter": "isRead eq false", "$orderby": "receivedDateTime desc"},
    )
    assert mismatch.json()["error"]["code"] == "InefficientFilter"


def test_filter_by_internet_message_id_and_conversation(graph, base, http):
    # Replies share the conversationId of the thread; internetMessageId filters find one mail.
    graph.deliver(
        SUPPORT,
        subject="Printer",
        body="broken",
        sender="c@example.org",
        message_id="<root@example.org>",
    )
    graph.deliver(
        SUPPORT,
        subject="RE: Printer",
        body="still broken",
        sender="c@example.org",
        message_id="<child@example.org>",
        in_reply_to="<root@example.org>",
    )
    graph.deliver(SUPPORT, subject="Other", body="x", sender="c@example.org")
    found = http.get(
        f"{base}/users/{SUPPORT}/messages",
        params={"$filter": "internetMessageId eq '<child@example.org>'"},
    ).json()["value"]
    assert len(found) == 1
    conversation = found[0]["conversationId"]
    thread = http.get(
        f"{base}/users/{SUPPORT}/messages",
        params={"$filter": f"conversationId eq '{conversation}'", "$select": "subject"},
    ).json()["value"]
    assert sorted(m["subject"] for m in thread) == ["Printer", "RE: Printer"]


def test_headers_and_unique_body_only_when_selected(graph, base, http):
    # internetMessageHeaders and uniqueBody appear only when $select asks for them.
    message_id = graph.deliver(
        SUPPORT,
        subject="Hi",
        body="New text\n\nOn Mon, Bob wrote:\n> old text",
        sender="Bob <bob@example.org>",
        headers={"X-Ticket": "T-9"},
    )
    plain = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}").json()
    assert "internetMessageHeaders" not in plain
    assert "uniqueBody" not in plain
    assert plain["from"] == {"emailAddress": {"name": "Bob", "address": "bob@example.org"}}
    assert plain["body"]["contentType"] == "text"
    selected = http.get(
        f"{base}/users/{SUPPORT}/messages/{message_id}",
        params={"$select": "internetMessageHeaders,uniqueBody,subject"},
    ).json()
    assert {"name": "X-Ticket", "value": "T-9"} in selected["internetMessageHeaders"]
    assert selected["uniqueBody"]["content"] == "New text"
    assert "body" not in selected


def test_html_body_and_prefer_text(graph, base, http):
    # An html mail has an html body; Prefer outlook.body-content-type="text" converts it.
    message_id = graph.deliver(
        SUPPORT, subject="H", body="<p>Hello <b>world</b></p>", sender="b@example.org", html=True
    )
    html_body = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}").json()["body"]
    assert html_body["contentType"] == "html"
    assert "<b>world</b>" in html_body["content"]
    response = http.get(
        f"{base}/users/{SUPPORT}/messages/{message_id}",
        headers={"Prefer": 'outlook.body-content-type="text"'},
    )
    assert response.json()["body"] == {"contentType": "text", "content": "Hello world"}
    assert response.headers["Preference-Applied"] == 'outlook.body-content-type="text"'
    mime = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}/$value")
    assert mime.status_code == 200
    assert b"Subject: H" in mime.content


def test_attachments_with_inline_image_and_value(graph, base, http):
    # File attachments, an inline image with contentId, an attached .eml, and $value bytes.
    inner = b"From: x@example.org\r\nTo: y@example.org\r\nSubject: Forwarded\r\n\r\nbody\r\n"
    message_id = graph.deliver(
        SUPPORT,
        subject="Files",
        body='<p>see <img src="cid:logo1"></p>',
        sender="b@example.org",
        html=True,
        attachments=[
            ("report.pdf", b"%PDF-1.4 data", "application/pdf"),
            {
                "name": "logo.png",
                "content": PNG,
                "content_type": "image/png",
                "inline": True,
                "content_id": "logo1",
            },
            ("fwd.eml", inner, "message/rfc822"),
        ],
    )
    message = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}").json()
    assert message["hasAttachments"] is True
    listing = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}/attachments").json()["value"]
    by_name = {a["name"]: a for a in listing}
    pdf = by_name["report.pdf"]
    assert pdf["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert base64.b64decode(pdf["contentBytes"]) == b"%PDF-1.4 data"
    assert pdf["isInline"] is False
    logo = by_name["logo.png"]
    assert logo["isInline"] is True
    assert logo["contentId"] == "logo1"
    assert logo["size"] == len(PNG)
    item = by_name["Forwarded"]
    assert item["@odata.type"] == "#microsoft.graph.itemAttachment"
    value = http.get(
        f"{base}/users/{SUPPORT}/messages/{message_id}/attachments/{logo['id']}/$value"
    )
    assert value.content == PNG
    assert value.headers["Content-Type"] == "image/png"
    single = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}/attachments/{pdf['id']}")
    assert single.json()["name"] == "report.pdf"
    expanded = http.get(
        f"{base}/users/{SUPPORT}/messages/{message_id}", params={"$expand": "attachments"}
    ).json()
    assert len(expanded["attachments"]) == 3


def test_only_inline_attachments_do_not_count_as_has_attachments(graph, base, http):
    # Exchange reports hasAttachments false when the only attachments are inline images.
    message_id = graph.deliver(
        SUPPORT,
        subject="Sig",
        body='<img src="cid:s">',
        sender="b@example.org",
        html=True,
        attachments=[
            {
                "name": "s.png",
                "content": PNG,
                "content_type": "image/png",
                "inline": True,
                "content_id": "s",
            }
        ],
    )
    assert (
        http.get(f"{base}/users/{SUPPORT}/messages/{message_id}").json()["hasAttachments"] is False
    )


def test_patch_categories_and_is_read(graph, base, http):
    # PATCH updates isRead/categories/flag, returns the message and changes the changeKey.
    message_id = graph.deliver(SUPPORT, subject="P", body="b", sender="b@example.org")
    before = http.get(f"{base}/users/{SUPPORT}/messages/{message_id}").json()
    response = http.patch(
        f"{base}/users/{SUPPORT}/messages/{message_id}",
        json={"isRead": True, "categories": ["Ticket created"], "flag": {"flagStatus": "flagged"}},
    )
    assert response.status_code == 200
    after = response.json()
    assert after["isRead"] is True
    assert after["categories"] == ["Ticket created"]
    assert after["flag"]["flagStatus"] == "flagged"
    assert after["changeKey"] != before["changeKey"]
    unread = http.get(f"{base}/users/{SUPPORT}/messages", params={"$filter": "isRead eq false"})
    assert unread.json()["value"] == []
    bad = http.patch(f"{base}/users/{SUPPORT}/messages/{message_id}", json={"colour": "red"})
    assert bad.status_code == 400
    missing = http.patch(f"{base}/users/{SUPPORT}/messages/AAMkADnope=", json={"isRead": True})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_move_changes_the_id_unless_immutable_ids_are_asked_for(graph, base, http):
    # Moving gives a new REST id (the old one is gone); with Prefer ImmutableId the id stays.
    first = graph.deliver(SUPPORT, subject="A", body="b", sender="b@example.org")
    moved = http.post(
        f"{base}/users/{SUPPORT}/messages/{first}/move", json={"destinationId": "archive"}
    )
    assert moved.status_code == 201
    assert moved.json()["id"] != first
    archive = http.get(f"{base}/users/{SUPPORT}/mailFolders/archive").json()
    assert moved.json()["parentFolderId"] == archive["id"]
    assert http.get(f"{base}/users/{SUPPORT}/messages/{first}").status_code == 404

    prefer = {"Prefer": 'IdType="ImmutableId"'}
    second = graph.deliver(SUPPORT, subject="B", body="b", sender="b@example.org")
    immutable = http.get(
        f"{base}/users/{SUPPORT}/messages", params={"$filter": "subject eq 'B'"}, headers=prefer
    ).json()["value"][0]["id"]
    assert immutable != second
    again = http.post(
        f"{base}/users/{SUPPORT}/messages/{immutable}/move",
        json={"destinationId": archive["id"]},
        headers=prefer,
    )
    assert again.json()["id"] == immutable
    assert again.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    assert http.get(f"{base}/users/{SUPPORT}/messages/{immutable}").status_code == 200


def test_reply_reaches_the_other_mailbox_with_threading_and_x_header(graph, base, http):
    # A reply carries In-Reply-To/References and the x- header and lands in the customer's inbox.
    original = graph.deliver(
        SUPPORT,
        subject="Help",
        body="My laptop",
        sender="Alice <alice@example.com>",
        message_id="<q1@example.com>",
    )
    response = http.post(
        f"{base}/users/{SUPPORT}/messages/{original}/reply",
        json={
            "comment": "We are on it.",
            "message": {"internetMessageHeaders": [{"name": "x-ticket-key", "value": "SUP-1"}]},
        },
    )
    assert response.status_code == 202
    sent = graph.sent_messages(SUPPORT)
    assert len(sent) == 1
    assert {"name": "x-ticket-key", "value": "SUP-1"} in sent[0]["internetMessageHeaders"]
    received = graph.messages(ALICE, folder="inbox")
    assert len(received) == 1
    reply = received[0]
    assert reply["subject"] == "RE: Help"
    headers = {h["name"].lower(): h["value"] for h in reply["internetMessageHeaders"]}
    assert headers["in-reply-to"] == "<q1@example.com>"
    assert "<q1@example.com>" in headers["references"]
    assert headers["x-ticket-key"] == "SUP-1"
    assert reply["uniqueBody"]["content"] == "<html><body><div>We are on it.</div></body></html>"
    sent_items = http.get(f"{base}/users/{SUPPORT}/mailFolders/sentitems/messages").json()["value"]
    original_message = http.get(f"{base}/users/{SUPPORT}/messages/{original}").json()
    assert sent_items[0]["conversationId"] == original_message["conversationId"]

    rejected = http.post(
        f"{base}/users/{SUPPORT}/messages/{original}/reply",
        json={"message": {"internetMessageHeaders": [{"name": "Ticket", "value": "SUP-1"}]}},
    )
    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "InvalidInternetMessageHeader"


def test_create_reply_draft_then_send_and_send_mail(graph, base, http):
    # createReplyAll makes a draft in Drafts; send delivers it; sendMail delivers a new mail.
    original = graph.deliver(
        SUPPORT, subject="Hi", body="x", sender="alice@example.com", cc=["boss@example.org"]
    )
    draft = http.post(f"{base}/users/{SUPPORT}/messages/{original}/createReplyAll", json={})
    assert draft.status_code == 201
    assert draft.json()["isDraft"] is True
    recipients = draft.json()["toRecipients"] + draft.json()["ccRecipients"]
    assert {r["emailAddress"]["address"] for r in recipients} == {
        "alice@example.com",
        "boss@example.org",
    }
    assert (
        http.post(f"{base}/users/{SUPPORT}/messages/{draft.json()['id']}/send").status_code == 202
    )
    assert http.get(f"{base}/users/{SUPPORT}/mailFolders/drafts/messages").json()["value"] == []
    sent = http.post(
        f"{base}/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "Status",
                "body": {"contentType": "HTML", "content": "<p>Done</p>"},
                "toRecipients": [{"emailAddress": {"address": ALICE}}],
            },
            "saveToSentItems": False,
        },
    )
    assert sent.status_code == 202
    assert sorted(m["subject"] for m in graph.messages(ALICE)) == ["RE: Hi", "Status"]
    assert len(graph.messages(SUPPORT, folder="sentitems")) == 1
    empty = http.post(f"{base}/users/{SUPPORT}/sendMail", json={"message": {"subject": "x"}})
    assert empty.json()["error"]["code"] == "ErrorInvalidRecipients"


def test_batch_runs_sub_requests_and_rejects_more_than_20(graph, base, http):
    # $batch answers each step by id (with dependsOn) and refuses more than 20 steps.
    message_id = graph.deliver(SUPPORT, subject="B", body="b", sender="b@example.org")
    steps = [
        {
            "id": "1",
            "method": "PATCH",
            "url": f"/users/{SUPPORT}/messages/{message_id}",
            "body": {"isRead": True},
            "headers": {"Content-Type": "application/json"},
        },
        {
            "id": "2",
            "method": "GET",
            "url": f"/users/{SUPPORT}/messages/{message_id}?$select=isRead",
            "dependsOn": ["1"],
        },
        {"id": "3", "method": "GET", "url": "/users/nobody@example.com/messages"},
    ]
    response = http.post(f"{base}/$batch", json={"requests": steps})
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["1"]["status"] == 200
    assert answers["2"]["body"]["isRead"] is True
    assert answers["3"]["status"] == 404
    assert answers["3"]["body"]["error"]["code"] == "ErrorInvalidUser"
    too_many = [
        {"id": str(n), "method": "GET", "url": "/users/support@example.com"} for n in range(21)
    ]
    rejected = http.post(f"{base}/$batch", json={"requests": too_many})
    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "BadRequest"


def _get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=10, **kwargs)


def _receiver(echo: bool = True) -> tuple[Flask, list[dict], list[str]]:
    app = Flask("receiver")
    notifications: list[dict] = []
    tokens: list[str] = []

    @app.post("/hook")
    def hook():
        token = request.args.get("validationToken")
        if token is not None:
            tokens.append(token)
            return Response(token if echo else "nope", status=200, content_type="text/plain")
        notifications.append(request.get_json())
        return Response(status=202)

    return app, notifications, tokens


def test_subscription_handshake_and_change_notification(graph, base, http, serve):
    # Creating a subscription validates the endpoint; a delivered mail then triggers a POST.
    app, notifications, tokens = _receiver()
    hook = serve(app) + "/hook"
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "changeType": "created",
        "notificationUrl": hook,
        "resource": f"users/{SUPPORT}/mailFolders('Inbox')/messages",
        "expirationDateTime": expiry,
        "clientState": "s3cret",
    }
    created = http.post(f"{base}/subscriptions", json=body)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert tokens and tokens[0].startswith("Validation:")
    message_id = graph.deliver(SUPPORT, subject="N", body="b", sender="b@example.org")
    graph.deliver(SUPPORT, subject="Sent", body="b", sender="b@example.org", folder="sentitems")
    assert graph.wait_for_notifications()
    assert len(notifications) == 1
    change = notifications[0]["value"][0]
    assert change["subscriptionId"] == subscription["id"]
    assert change["changeType"] == "created"
    assert change["clientState"] == "s3cret"
    assert change["tenantId"] == TENANT
    assert change["resourceData"]["id"] == message_id
    assert change["resourceData"]["@odata.type"] == "#Microsoft.Graph.Message"

    listed = http.get(f"{base}/subscriptions").json()["value"]
    assert [s["id"] for s in listed] == [subscription["id"]]
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    renewed = http.patch(
        f"{base}/subscriptions/{subscription['id']}", json={"expirationDateTime": later}
    )
    assert renewed.json()["expirationDateTime"].startswith(later[:16])
    graph.expire_subscription(subscription["id"])
    graph.deliver(SUPPORT, subject="Late", body="b", sender="b@example.org")
    assert graph.wait_for_notifications()
    assert len(notifications) == 1

    too_long = {**body, "expirationDateTime": (datetime.now(UTC) + timedelta(days=8)).isoformat()}
    assert http.post(f"{base}/subscriptions", json=too_long).status_code == 400


def test_subscription_refused_when_the_endpoint_does_not_echo(base, http, serve):
    # An endpoint that does not echo the validationToken makes creation fail with 400.
    app, _, _ = _receiver(echo=False)
    response = http.post(
        f"{base}/subscriptions",
        json={
            "changeType": "created",
            "notificationUrl": serve(app) + "/hook",
            "resource": f"users/{SUPPORT}/messages",
            "expirationDateTime": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 400
    assert "validation request failed" in response.json()["error"]["message"]


def test_lifecycle_notification_reaches_the_lifecycle_url(graph, base, http, serve):
    # The lifecycle knob POSTs lifecycleEvent to lifecycleNotificationUrl.
    app, notifications, _ = _receiver()
    url = serve(app) + "/hook"
    subscription = http.post(
        f"{base}/subscriptions",
        json={
            "changeType": "created,updated",
            "notificationUrl": url,
            "lifecycleNotificationUrl": url,
            "resource": "users/support@example.com/messages",
            "expirationDateTime": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    ).json()
    graph.send_lifecycle_notification(subscription["id"], "reauthorizationRequired")
    assert graph.wait_for_notifications()
    assert notifications[-1]["value"][0]["lifecycleEvent"] == "reauthorizationRequired"


def test_authentication_and_mailbox_permissions(graph, base):
    # No token -> 401 InvalidAuthenticationToken; a delegated token reaches only its own mailbox.
    anonymous = _get(f"{base}/users/{SUPPORT}/messages")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    invalid = _get(f"{base}/me/messages", headers={"Authorization": "Bearer forged"})
    assert invalid.status_code == 401
    alice = {"Authorization": "Bearer alice-token"}
    assert _get(f"{base}/me/messages", headers=alice).status_code == 200
    assert _get(f"{base}/me", headers=alice).json()["userPrincipalName"] == ALICE
    other = _get(f"{base}/users/{SUPPORT}/messages", headers=alice)
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "ErrorAccessDenied"
    app_on_me = _get(f"{base}/me/messages", headers={"Authorization": "Bearer app-token"})
    assert app_on_me.status_code == 400


def test_fault_knob_429_carries_retry_after(graph, base, http):
    # A forced 429 reaches the client with Retry-After and Graph's throttling error body.
    graph.controls.fail_next(1, status=429, retry_after=7, path_contains="/messages")
    throttled = http.get(f"{base}/users/{SUPPORT}/messages")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert http.get(f"{base}/users/{SUPPORT}/messages").status_code == 200
    graph.controls.fail_next(1, status=503, retry_after=3)
    unavailable = http.get(f"{base}/users/{SUPPORT}/messages")
    assert unavailable.status_code == 503
    assert unavailable.json()["error"]["code"] == "serviceNotAvailable"


def test_concurrency_cap_per_mailbox_answers_429(graph, base, http):
    # More than max_concurrent_per_mailbox requests in flight on one mailbox get 429.
    graph.max_concurrent_per_mailbox = 2
    graph.controls.set_latency(0.4)
    barrier = threading.Barrier(5)

    def call(_n: int) -> requests.Response:
        barrier.wait()
        return _get(
            f"{base}/users/{SUPPORT}/messages", headers={"Authorization": "Bearer app-token"}
        )

    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(call, range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1
    assert statuses.count(200) <= 2
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled
    assert throttled[0].json()["error"]["message"].endswith("MailboxConcurrency limit.")
    assert throttled[0].headers["Retry-After"]
    graph.controls.clear_faults()
    # The slots are given back as the answers finish going out: poll until they have.
    answer = http.get(f"{base}/users/{SUPPORT}/messages")
    while answer.status_code == 429:
        time.sleep(0.05)
        answer = http.get(f"{base}/users/{SUPPORT}/messages")
    assert answer.status_code == 200


def test_request_quota_per_app_and_mailbox_answers_429_until_the_window_frees(serve):
    # Outlook allows 10,000 requests per 10 minutes per app id and mailbox; scaled down to 5
    # per 60 s (on a clock the test moves): the 6th request gets 429 RequestRate with a
    # Retry-After saying when the window frees up. Throttled requests count against the window
    # too ("Microsoft Graph continues to log resource usage while a client is being
    # throttled"), so a client that keeps knocking stays locked out longer. Other mailboxes and
    # other apps are not affected, and once the window has moved on the mailbox answers again.
    tokens = {
        f"{name}-token": {"roles": ["Mail.ReadWrite"], "tid": TENANT, "appid": f"{name}-id"}
        for name in ("app-a", "app-b")
    }
    graph = GraphEmulator(
        token_validator=tokens.get, mailboxes=[SUPPORT, ALICE], request_quota=5, quota_window=60
    )
    now = [1000.0]
    graph.quota_clock = lambda: now[0]
    base = serve(graph.app) + "/v1.0"
    app_a = {"Authorization": "Bearer app-a-token"}
    app_b = {"Authorization": "Bearer app-b-token"}
    support = f"{base}/users/{SUPPORT}/messages"

    statuses = []
    for _ in range(5):
        statuses.append(_get(support, headers=app_a).status_code)
        now[0] += 10  # five requests at t = 0, 10, ... 40 s
    assert statuses == [200] * 5
    throttled = _get(support, headers=app_a)  # t = 50 s
    assert throttled.status_code == 429
    # The window holds t = 0 ... 40 and the refused request at 50: room for one more once
    # the requests at 0 and 10 have left, at t = 70 s.
    assert throttled.headers["Retry-After"] == "20"
    error = throttled.json()["error"]
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its RequestRate limit."
    assert error["innerError"]["request-id"] == throttled.headers["request-id"]
    assert _get(f"{base}/users/{ALICE}/messages", headers=app_a).status_code == 200
    assert _get(support, headers=app_b).status_code == 200
    batch = requests.post(
        f"{base}/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": f"/users/{SUPPORT}/messages"}]},
        headers=app_a,
        timeout=10,
    )
    assert batch.status_code == 200
    assert batch.json()["responses"][0]["status"] == 429  # a batch step counts like a request
    assert graph.quota_usage() == {
        f"app-a-id {SUPPORT}": 7,  # five let in, two refused
        f"app-a-id {ALICE}": 1,
        f"app-b-id {SUPPORT}": 1,
    }

    now[0] += 20  # t = 70 s: 0 and 10 have left, but the two refused requests still count
    assert _get(support, headers=app_a).status_code == 429
    now[0] += 10  # t = 80 s: 20 has left, but 30, 40, 50, 50, 70 fill the window
    knocked = _get(support, headers=app_a)
    assert knocked.status_code == 429
    assert knocked.headers["Retry-After"] == "20"  # and 80 counts too: free when 40 leaves
    now[0] += 60  # a whole window after the last request everything is free again
    assert [_get(support, headers=app_a).status_code for _ in range(5)] == [200] * 5
    assert _get(support, headers=app_a).status_code == 429


def test_request_quota_is_set_from_another_process_through_the_control_route(graph, base, http):
    # POST /_sandbox/quota scales the quota down (and starts the window afresh); DELETE
    # restores the default, 10,000 requests per 600 s; {"requests": null} turns it off.
    # (These test tokens carry no app id: their requests count as app "-".)
    control = base.removesuffix("/v1.0") + "/_sandbox/quota"
    assert requests.get(control, timeout=10).json() == {
        "requests": 10_000,
        "window": 600.0,
        "usage": {},
    }
    assert requests.post(control, json={"requests": 2, "window": 30}, timeout=10).ok
    assert [http.get(f"{base}/users/{SUPPORT}/messages").status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert requests.get(control, timeout=10).json()["usage"] == {f"- {SUPPORT}": 3}  # refused too
    assert requests.post(control, json={"requests": None}, timeout=10).json()["requests"] is None
    assert http.get(f"{base}/users/{SUPPORT}/messages").status_code == 200
    assert requests.post(control, json={"requests": -1}, timeout=10).status_code == 400
    restored = requests.delete(control, timeout=10).json()
    assert (restored["requests"], restored["window"]) == (10_000, 600.0)


def test_mail_folders_paging_and_create(graph, base, http):
    # mailFolders pages with $top and nextLink; POST creates a folder, duplicates give 409.
    first = http.get(f"{base}/users/{SUPPORT}/mailFolders", params={"$top": "5"}).json()
    assert len(first["value"]) == 5
    rest = http.get(first["@odata.nextLink"]).json()
    names = {f["displayName"] for f in first["value"] + rest["value"]}
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items", "Archive", "Junk Email"} <= names
    created = http.post(
        f"{base}/users/{SUPPORT}/mailFolders/inbox/childFolders", json={"displayName": "Processed"}
    )
    assert created.status_code == 201
    assert (
        http.post(
            f"{base}/users/{SUPPORT}/mailFolders/inbox/childFolders",
            json={"displayName": "Processed"},
        ).status_code
        == 409
    )
    inbox = http.get(f"{base}/users/{SUPPORT}/mailFolders/Inbox").json()
    assert inbox["childFolderCount"] == 1


def test_child_folder_paths_and_case_insensitive_segments(graph, base, http):
    # Child folders are reachable through their parent's path; segment names ignore case.
    child = http.post(
        f"{base}/users/{SUPPORT}/mailFolders/inbox/childFolders", json={"displayName": "Triage"}
    ).json()
    message_id = graph.deliver(SUPPORT, subject="T", body="b", sender="b@example.org")
    http.post(
        f"{base}/users/{SUPPORT}/messages/{message_id}/move", json={"destinationId": child["id"]}
    )
    nested = http.get(
        f"{base}/users/{SUPPORT}/mailfolders/inbox/childfolders/{child['id']}/messages"
    ).json()
    assert [m["subject"] for m in nested["value"]] == ["T"]
    folder = http.get(f"{base}/users/{SUPPORT}/mailFolders/inbox/childFolders/{child['id']}")
    assert folder.json()["displayName"] == "Triage"


def test_delta_supports_expand_and_rejects_unsupported_filter_and_orderby(graph, base, http):
    # Message delta supports $expand and $top; only receivedDateTime ge/gt and desc are allowed.
    graph.deliver(
        SUPPORT,
        subject="With file",
        body="b",
        sender="b@example.org",
        attachments=[("a.txt", b"hello", "text/plain")],
    )
    url = f"{base}/users/{SUPPORT}/mailFolders/inbox/messages/delta"
    page = http.get(url, params={"$expand": "attachments", "$select": "subject"}).json()
    assert page["value"][0]["attachments"][0]["name"] == "a.txt"
    assert "@odata.deltaLink" in page
    graph.deliver(SUPPORT, subject="Second", body="b", sender="b@example.org")
    topped = http.get(url, params={"$top": "1"}).json()
    assert len(topped["value"]) == 1 and "@odata.nextLink" in topped
    lt = http.get(url, params={"$filter": "receivedDateTime lt 2030-01-01T00:00:00Z"})
    assert lt.status_code == 400
    ge = http.get(url, params={"$filter": "receivedDateTime ge 2000-01-01T00:00:00Z"})
    assert ge.status_code == 200
    assert http.get(url, params={"$orderby": "subject"}).status_code == 400
    assert http.get(url, params={"$orderby": "receivedDateTime desc"}).status_code == 200


def test_batch_ids_are_case_insensitive_and_a_body_needs_content_type(graph, base, http):
    # Batch ids must be unique ignoring case, and a step with a body must name its Content-Type.
    duplicate = [
        {"id": "a", "method": "GET", "url": f"/users/{SUPPORT}"},
        {"id": "A", "method": "GET", "url": f"/users/{SUPPORT}"},
    ]
    rejected = http.post(f"{base}/$batch", json={"requests": duplicate})
    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "BadRequest"
    message_id = graph.deliver(SUPPORT, subject="B", body="b", sender="b@example.org")
    no_type = [
        {
            "id": "1",
            "method": "PATCH",
            "url": f"/users/{SUPPORT}/messages/{message_id}",
            "body": {"isRead": True},
        }
    ]
    missing = http.post(f"{base}/$batch", json={"requests": no_type})
    assert missing.status_code == 400
    assert "Content-Type" in missing.json()["error"]["message"]
    ok = http.post(
        f"{base}/$batch",
        json={"requests": [{"id": "x", "method": "GET", "url": f"/users/{SUPPORT}/messages"}]},
    )
    headers = ok.json()["responses"][0]["headers"]
    assert headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    assert headers["Cache-Control"] == "no-cache"


def _subscription_body(url: str, **extra) -> dict:
    return {
        "changeType": "created",
        "notificationUrl": url,
        "resource": f"users/{SUPPORT}/messages",
        "expirationDateTime": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        **extra,
    }


def test_subscription_echoes_expiry_and_tls_version_and_can_be_reauthorized(base, http, serve):
    # The created subscription echoes expirationDateTime and latestSupportedTlsVersion;
    # POST /subscriptions/{id}/reauthorize answers 204.
    app, _, _ = _receiver()
    hook = serve(app) + "/hook"
    expiry = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=935691)
    created = http.post(
        f"{base}/subscriptions",
        json=_subscription_body(
            hook,
            expirationDateTime=expiry.strftime("%Y-%m-%dT%H:%M:%S.9356913Z"),
            latestSupportedTlsVersion="v1_3",
        ),
    )
    assert created.status_code == 201
    subscription = created.json()
    assert subscription["expirationDateTime"] == expiry.strftime("%Y-%m-%dT%H:%M:%S.9356910Z")
    assert subscription["latestSupportedTlsVersion"] == "v1_3"
    reauthorized = http.post(f"{base}/subscriptions/{subscription['id']}/reauthorize")
    assert reauthorized.status_code == 204
    assert http.post(f"{base}/subscriptions/nope/reauthorize").status_code == 404
    bad_tls = http.post(
        f"{base}/subscriptions", json=_subscription_body(hook, latestSupportedTlsVersion="v9")
    )
    assert bad_tls.status_code == 400


def test_notification_to_a_slow_endpoint_gives_up_after_three_seconds(graph, base, http, serve):
    # Graph publishes notifications with a 3-second timeout; a slower receiver misses them.
    app = Flask("slow-receiver")
    released = threading.Event()

    @app.post("/hook")
    def hook():
        token = request.args.get("validationToken")
        if token is not None:
            return Response(token, status=200, content_type="text/plain")
        released.wait(timeout=60)  # slower than Graph waits: answers only once the test is done
        return Response(status=202)

    url = serve(app) + "/hook"
    assert http.post(f"{base}/subscriptions", json=_subscription_body(url)).status_code == 201
    try:
        graph.deliver(SUPPORT, subject="Slow", body="b", sender="b@example.org")
        assert graph.wait_for_notifications()
        assert graph.notifications[-1].status is None
        assert "read timeout=3)" in graph.notifications[-1].error
    finally:
        released.set()


def _b64_mime(text: str) -> str:
    return base64.b64encode(text.replace("\n", "\r\n").encode()).decode()


def test_send_mail_reply_and_draft_accept_base64_mime(graph, base, http):
    # sendMail, reply and POST /messages take base64 MIME with Content-Type text/plain;
    # malformed base64 is 400 ErrorMimeContentInvalidBase64String.
    mime = _b64_mime(
        f"From: Support <{SUPPORT}>\nTo: Alice <{ALICE}>\nSubject: MIME hello\n"
        "X-Ticket: T-1\nContent-Type: text/plain\n\nSent as MIME\n"
    )
    plain = {"Content-Type": "text/plain"}
    sent = http.post(f"{base}/users/{SUPPORT}/sendMail", data=mime, headers=plain)
    assert sent.status_code == 202, sent.text
    received = graph.messages(ALICE)[0]
    assert received["subject"] == "MIME hello"
    assert received["body"]["content"].strip() == "Sent as MIME"
    assert {"name": "X-Ticket", "value": "T-1"} in received["internetMessageHeaders"]
    bad = http.post(f"{base}/users/{SUPPORT}/sendMail", data="not base64!!", headers=plain)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "ErrorMimeContentInvalidBase64String"
    assert bad.json()["error"]["message"] == "Invalid base64 string for MIME content."

    original = graph.deliver(SUPPORT, subject="Question", body="?", sender=f"Bob <bob@{'x.org'}>")
    reply = _b64_mime("Subject: RE: Question\nContent-Type: text/plain\n\nAnswer\n")
    replied = http.post(
        f"{base}/users/{SUPPORT}/messages/{original}/reply", data=reply, headers=plain
    )
    assert replied.status_code == 202
    out = graph.sent_messages(SUPPORT)[-1]
    assert out["toRecipients"][0]["emailAddress"]["address"] == "bob@x.org"
    assert out["body"]["content"].strip() == "Answer"
    names = {h["name"].lower(): h["value"] for h in out["internetMessageHeaders"]}
    assert "in-reply-to" in names

    draft = http.post(f"{base}/users/{SUPPORT}/messages", data=mime, headers=plain)
    assert draft.status_code == 201
    assert draft.json()["isDraft"] is True
    assert draft.json()["subject"] == "MIME hello"


def test_message_list_context_names_the_user_id_and_selected_properties(graph, base, http):
    # @odata.context is users('{id}')/messages(sender,subject) when $select is given.
    graph.deliver(SUPPORT, subject="Ctx", body="b", sender="b@example.org")
    user_id = graph.mailbox(SUPPORT).user_id
    body = http.get(f"{base}/users/{SUPPORT}/messages", params={"$select": "sender,subject"})
    assert body.json()["@odata.context"].endswith(
        f"/v1.0/$metadata#users('{user_id}')/messages(sender,subject)"
    )
