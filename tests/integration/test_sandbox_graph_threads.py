"""The Graph emulator's threading as Exchange does it: Sent Items, conversations, replies."""

from __future__ import annotations

import pytest

from ticket_manager_sandbox.graph import GraphEmulator

SUPPORT = "support@example.com"
TOKENS = {"app-token": {"roles": ["Mail.ReadWrite", "Mail.Send"], "tid": "t", "oid": "app"}}


@pytest.fixture
def graph() -> GraphEmulator:
    return GraphEmulator(token_validator=TOKENS.get, mailboxes=[SUPPORT])


def test_the_sent_items_copy_has_no_internet_headers(graph, base, http):
    # Exchange keeps no internetMessageHeaders on the copy in Sent Items, even when selected.
    original = graph.deliver(SUPPORT, subject="Help", body="x", sender="carol@example.org")
    draft = http.post(
        f"{base}/users/{SUPPORT}/messages/{original}/createReply",
        json={"message": {"internetMessageHeaders": [{"name": "X-Ours", "value": "1"}]}},
    ).json()
    assert http.post(f"{base}/users/{SUPPORT}/messages/{draft['id']}/send").status_code == 202
    [copy] = http.get(
        f"{base}/users/{SUPPORT}/mailFolders/sentitems/messages",
        params={"$select": "subject,internetMessageHeaders,internetMessageId"},
    ).json()["value"]
    assert "internetMessageHeaders" not in copy
    [sent] = graph.sent_messages(SUPPORT)
    assert {"name": "X-Ours", "value": "1"} in sent["internetMessageHeaders"]
    assert sent["internetMessageId"] == copy["internetMessageId"]


def test_a_strangers_reply_prefixed_subject_joins_the_conversation(graph, base, http):
    # "RE: <subject>" with no threading headers, from anyone, lands in the same conversation.
    graph.deliver(SUPPORT, subject="Printer jammed", body="x", sender="carol@example.org")
    graph.deliver(SUPPORT, subject="RE: Printer jammed", body="y", sender="eve@example.net")
    graph.deliver(SUPPORT, subject="Printer jammed", body="z", sender="zoe@example.org")
    listed = http.get(
        f"{base}/users/{SUPPORT}/messages", params={"$select": "from,conversationId"}
    ).json()["value"]
    by_sender = {m["from"]["emailAddress"]["address"]: m["conversationId"] for m in listed}
    assert by_sender["eve@example.net"] == by_sender["carol@example.org"]
    assert by_sender["zoe@example.org"] != by_sender["carol@example.org"]  # no prefix: new


def test_create_reply_on_a_sent_items_copy_answers_the_mailbox_itself(graph, base, http):
    # createReply answers the item's sender: on our own sent email, that is ourselves.
    original = graph.deliver(SUPPORT, subject="Help", body="x", sender="carol@example.org")
    draft = http.post(f"{base}/users/{SUPPORT}/messages/{original}/createReply", json={}).json()
    http.post(f"{base}/users/{SUPPORT}/messages/{draft['id']}/send")
    [copy] = graph.messages(SUPPORT, "sentitems")
    again = http.post(f"{base}/users/{SUPPORT}/messages/{copy['id']}/createReply", json={})
    assert [r["emailAddress"]["address"] for r in again.json()["toRecipients"]] == [SUPPORT]
    chosen = http.post(
        f"{base}/users/{SUPPORT}/messages/{copy['id']}/createReply",
        json={"message": {"toRecipients": [{"emailAddress": {"address": "carol@example.org"}}]}},
    )
    assert [r["emailAddress"]["address"] for r in chosen.json()["toRecipients"]] == [
        "carol@example.org"
    ]
