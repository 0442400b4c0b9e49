"""Microsoft's own Graph SDK (msgraph-sdk) against the Graph emulator, over real HTTPS.

The SDK is generated from Graph's metadata: what it sends (``delta()`` with parentheses,
action parameters in PascalCase, ``internetMessageId`` on a new draft) is what Graph takes.
Each call the product makes, or may make, is driven through it here so that the emulator
cannot drift from Microsoft's metadata.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.internet_message_header import InternetMessageHeader
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.messages.item.create_reply.create_reply_post_request_body import (
    CreateReplyPostRequestBody,
)
from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
    MovePostRequestBody,
)
from msgraph.generated.users.item.messages.item.reply.reply_post_request_body import (
    ReplyPostRequestBody,
)
from msgraph.generated.users.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from ticket_manager.graph.messages import MESSAGE_FIELDS
from ticket_manager_sandbox.graph import GraphEmulator

SUPPORT = "support@example.com"
SUPPORT_UPN = "support.svc@example.onmicrosoft.com"
ALIAS = "helpdesk@example.com"
TOKENS = {
    "app-token": {
        "roles": ["Mail.ReadWrite", "Mail.Send", "User.Read.All"],
        "tid": "t",
        "appid": "app",
    }
}


class _StaticToken(AccessTokenProvider):
    """The emulator's app token, for every host (the emulator runs on 127.0.0.1)."""

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return "app-token"

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


@pytest.fixture
def emulator() -> GraphEmulator:
    graph = GraphEmulator(token_validator=TOKENS.get, mailboxes=["bob@example.com"])
    graph.add_mailbox(SUPPORT, upn=SUPPORT_UPN, aliases=[ALIAS])
    return graph


@pytest.fixture
def run(emulator, serve, sandbox_ca):
    """Run one coroutine with a GraphServiceClient pointed at the emulator."""
    base = serve(emulator.app) + "/v1.0"

    def _run(make_coroutine):
        async def main():
            trusted = ssl.create_default_context(cafile=str(sandbox_ca.bundle_path))
            async with httpx.AsyncClient(verify=trusted) as http:
                adapter = GraphRequestAdapter(
                    BaseBearerTokenAuthenticationProvider(_StaticToken()), client=http
                )
                adapter.base_url = base
                return await make_coroutine(GraphServiceClient(request_adapter=adapter))

        return asyncio.run(main())

    return _run


def _paths(emulator, method: str) -> list[str]:
    return [f"{r.path} {r.status}" for r in emulator.controls.requests if r.method == method]


def test_the_sdk_resolves_the_mailbox_by_upn_and_by_proxy_address(emulator, run):
    # The user read and the proxyAddresses filter the product resolves MAILBOX with.
    select = ["id", "userPrincipalName", "mail", "proxyAddresses"]

    async def calls(client):
        user = await client.users.by_user_id(SUPPORT_UPN).get(
            request_configuration=UserItemRequestBuilder.UserItemRequestBuilderGetRequestConfiguration(
                query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
                    select=select
                )
            )
        )
        found = await client.users.get(
            request_configuration=UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    filter=f"proxyAddresses/any(x:x eq 'smtp:{ALIAS}')", select=select
                )
            )
        )
        return user, found

    user, found = run(calls)
    assert user.mail == SUPPORT and user.user_principal_name == SUPPORT_UPN
    assert f"smtp:{ALIAS}" in user.proxy_addresses
    assert [u.id for u in found.value] == [user.id]


def test_the_sdk_walks_a_delta_round_with_parentheses_and_change_type(emulator, run):
    # messages/delta() with $select and changeType=created pages to a delta link; our own
    # marking of the message (PATCH isRead/categories) then brings nothing.
    user_id = emulator.mailbox(SUPPORT).user_id
    for n in range(3):
        emulator.deliver(SUPPORT, subject=f"Case {n}", body="hi", sender="c@example.org")

    async def calls(client):
        inbox = client.users.by_user_id(user_id).mail_folders.by_mail_folder_id("inbox")
        config = DeltaRequestBuilder.DeltaRequestBuilderGetRequestConfiguration(
            query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=list(MESSAGE_FIELDS), change_type="created"
            )
        )
        config.headers.add("Prefer", "odata.maxpagesize=2")
        page = await inbox.messages.delta.get(request_configuration=config)
        seen = list(page.value)
        while page.odata_next_link:
            page = await inbox.messages.delta.with_url(page.odata_next_link).get()
            seen += page.value
        first = seen[0]
        await (
            client.users.by_user_id(user_id)
            .messages.by_message_id(first.id)
            .patch(Message(is_read=True, categories=["Ticket SUP-1"]))
        )
        again = await inbox.messages.delta.with_url(page.odata_delta_link).get()
        return seen, again

    seen, again = run(calls)
    assert sorted(m.subject for m in seen) == ["Case 0", "Case 1", "Case 2"]
    assert all(m.internet_message_id and m.from_ for m in seen)
    assert again.value == []
    assert all(" 200" in p for p in _paths(emulator, "GET"))


def test_the_sdk_moves_replies_drafts_and_sends_with_pascal_case_parameters(emulator, run):
    # move (DestinationId), createReply and reply (Message, Comment), a new draft with our own
    # internetMessageId and a file, send, and sendMail (Message, SaveToSentItems) all work.
    user_id = emulator.mailbox(SUPPORT).user_id
    first = emulator.deliver(SUPPORT, subject="Printer", body="jammed", sender="bob@example.com")
    second = emulator.deliver(SUPPORT, subject="Scanner", body="dead", sender="bob@example.com")
    our_id = "<ticket-SUP-1-ack@tickets.example.com>"

    async def calls(client):
        mailbox = client.users.by_user_id(user_id)
        archive = await mailbox.mail_folders.by_mail_folder_id("archive").get()
        moved = await mailbox.messages.by_message_id(first).move.post(
            MovePostRequestBody(destination_id=archive.id)
        )
        draft = await mailbox.messages.by_message_id(moved.id).create_reply.post(
            CreateReplyPostRequestBody(
                message=Message(
                    body=ItemBody(content_type=BodyType.Html, content="<p>On it</p>"),
                    internet_message_headers=[
                        InternetMessageHeader(name="X-Ticket-Manager", value="acknowledgement")
                    ],
                )
            )
        )
        await mailbox.messages.by_message_id(draft.id).send.post()
        await mailbox.messages.by_message_id(second).reply.post(
            ReplyPostRequestBody(comment="We are looking into it.")
        )
        new = await mailbox.messages.post(
            Message(
                subject="Your ticket SUP-1",
                internet_message_id=our_id,
                body=ItemBody(content_type=BodyType.Text, content="Created."),
                to_recipients=[Recipient(email_address=EmailAddress(address="bob@example.com"))],
            )
        )
        await mailbox.messages.by_message_id(new.id).attachments.post(
            FileAttachment(
                odata_type="#microsoft.graph.fileAttachment",
                name="log.txt",
                content_type="text/plain",
                content_bytes=b"printer log",
            )
        )
        listed = await mailbox.messages.by_message_id(new.id).attachments.get()
        await mailbox.messages.by_message_id(new.id).send.post()
        await mailbox.send_mail.post(
            SendMailPostRequestBody(
                message=Message(
                    subject="Sending test",
                    body=ItemBody(content_type=BodyType.Text, content="test"),
                    to_recipients=[
                        Recipient(email_address=EmailAddress(address="bob@example.com"))
                    ],
                ),
                save_to_sent_items=False,
            )
        )
        drafts = await mailbox.messages.get(
            request_configuration=MessagesRequestBuilder.MessagesRequestBuilderGetRequestConfiguration(
                query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
                    filter="isDraft eq true", select=["id"]
                )
            )
        )
        return new, listed, drafts

    new, listed, drafts = run(calls)
    assert new.internet_message_id == our_id
    assert [a.name for a in listed.value] == ["log.txt"]
    assert drafts.value == []
    sent = emulator.sent_messages(SUPPORT)
    subjects = [m.get("subject") for m in sent]
    assert "RE: Printer" in subjects and "RE: Scanner" in subjects
    assert "Your ticket SUP-1" in subjects and "Sending test" in subjects
    inbox_of_bob = emulator.messages("bob@example.com")
    assert our_id in {m["internetMessageId"] for m in inbox_of_bob}
    assert all(p.split()[-1] in {"200", "201", "202"} for p in _paths(emulator, "POST"))


def test_the_sdk_lists_and_reads_an_attached_event(emulator, run):
    # An attached event is an itemAttachment to the SDK, in the listing and read alone. (The
    # SDK has no builder for an attachment's $value; the product reads it over plain HTTP.)
    user_id = emulator.mailbox(SUPPORT).user_id
    message_id = emulator.deliver(SUPPORT, subject="Meeting", body="see", sender="c@example.org")
    event = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Review\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    emulator.attach_item(SUPPORT, message_id, "Review", event)

    async def calls(client):
        message = client.users.by_user_id(user_id).messages.by_message_id(message_id)
        [listed] = (await message.attachments.get()).value
        alone = await message.attachments.by_attachment_id(listed.id).get()
        return listed, alone

    listed, alone = run(calls)
    assert listed.odata_type == alone.odata_type == "#microsoft.graph.itemAttachment"
    assert alone.name == "Review" and alone.size == len(event)
