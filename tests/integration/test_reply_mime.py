# ruff: noqa: RUF001  (Cyrillic quote headers)
"""Follow-ups and MIME edge cases through the Graph emulator: what the ticket finally shows."""

from __future__ import annotations

import base64

from ticket_manager_sandbox.samples import PIXEL_PNG


def first_ticket(pipeline, **email) -> str:
    pipeline.deliver(**email)
    pipeline.run_once()
    [issue] = pipeline.issues()
    return issue["key"]


def only_issue(pipeline) -> dict:
    [issue] = pipeline.issues()
    return issue


def test_a_russian_outlook_reply_becomes_only_its_new_part(pipeline):
    # Outlook's "От: / Отправлено:" block ends the comment, whatever uniqueBody said.
    key = first_ticket(pipeline, sender="Olga <olga@example.com>")
    pipeline.deliver(
        subject=f"RE: [{key}] Printer jammed",
        sender="Olga <olga@example.com>",
        body=(
            "Принтер снова работает.\r\n\r\nОт: Support <support@example.com>\r\n"
            "Отправлено: 3 ноября 2025 г. 10:00\r\nКому: Olga\r\nТема: RE: Printer jammed\r\n"
            "\r\nПерезагрузите принтер.\r\n"
        ),
    )
    pipeline.run_once()
    [comment] = only_issue(pipeline)["comments"]
    assert "Принтер снова работает." in comment["body"]
    assert "Перезагрузите" not in comment["body"] and "Отправлено" not in comment["body"]


def test_an_answer_below_the_quote_reaches_the_ticket(pipeline):
    # Bottom-posting in HTML (Thunderbird): the answer under the quote is the comment.
    key = first_ticket(pipeline, sender="Olga <olga@example.com>")
    pipeline.deliver(
        subject=f"Re: [{key}] Printer jammed",
        sender="Olga <olga@example.com>",
        html=True,
        body=(
            '<p><br></p><div class="moz-cite-prefix">Am 03.11.25 um 10:00 schrieb Support:<br>'
            '</div><blockquote type="cite"><p>Bitte neu starten.</p></blockquote>'
            "<p>Erledigt, er druckt wieder.</p>"
        ),
    )
    pipeline.run_once()
    [comment] = only_issue(pipeline)["comments"]
    assert "Erledigt, er druckt wieder." in comment["body"]
    assert "Bitte neu starten" not in comment["body"] and "schrieb" not in comment["body"]


def test_fyi_with_a_forwarded_message_keeps_the_forwarded_message(pipeline):
    # "FYI" above a Gmail forward: the forwarded message is part of the comment.
    key = first_ticket(pipeline, sender="Olga <olga@example.com>")
    pipeline.deliver(
        subject=f"Fwd: [{key}] Printer jammed",
        sender="Olga <olga@example.com>",
        html=True,
        body=(
            '<div dir="ltr">FYI<br><br><div class="gmail_quote"><div dir="ltr" '
            'class="gmail_attr">---------- Forwarded message ---------<br>From: Fabrikam '
            "&lt;orders@fabrikam.example&gt;<br>Date: Mon, 3 Nov 2025 at 10:00<br>Subject: "
            "Toner<br>To: &lt;olga@example.com&gt;<br></div><br><br><div>The toner ships on "
            "10 November.</div></div></div>"
        ),
    )
    pipeline.run_once()
    [comment] = only_issue(pipeline)["comments"]
    assert "FYI" in comment["body"]
    assert "The toner ships on 10 November." in comment["body"]
    assert "orders@fabrikam.example" in comment["body"]


def test_an_inline_image_of_a_plain_text_email_is_attached(pipeline):
    # A text body cannot reference its inline image (no cid:), so the file is attached.
    pipeline.deliver(
        body="The error looks like this.",
        attachments=[
            {
                "name": "error.png",
                "content": PIXEL_PNG,
                "content_type": "image/png",
                "inline": True,
                "content_id": "error-shot",
            }
        ],
    )
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert [a["filename"] for a in issue["attachments"]] == ["error.png"]
    assert "The error looks like this." in issue["description"]


def test_every_inline_text_part_of_a_mixed_email_reaches_the_ticket(pipeline):
    # Apple Mail's text, image, text in multipart/mixed: Exchange shows both texts; so does Jira.
    png = base64.b64encode(PIXEL_PNG).decode()
    raw = (
        "From: Alice <alice@example.com>\r\nTo: support@example.com\r\n"
        "Subject: Screen\r\nMessage-ID: <mixed-parts@example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFirst part, before the image.\r\n"
        "--B\r\nContent-Type: image/png; name=shot.png\r\nContent-Disposition: inline; "
        f"filename=shot.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n"
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSecond part, after the image.\r\n"
        "--B--\r\n"
    ).encode()
    pipeline.sandbox.graph.deliver_mime(pipeline.mailbox, raw)
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert "First part, before the image." in issue["description"]
    assert "Second part, after the image." in issue["description"]
    assert [a["filename"] for a in issue["attachments"]] == ["shot.png"]


def test_an_email_with_utf8_headers_and_a_non_ascii_domain_becomes_a_ticket(make_pipeline):
    # RFC 6532 mail (8-bit UTF-8 headers, an internationalised domain) is read, and the
    # acknowledgement goes back to the same address.
    harness = make_pipeline(EMAIL_WHITELISTED_DOMAINS="")  # no domain filter
    raw = (
        "From: Jürgen Müller <jürgen@müller.example>\r\nTo: support@example.com\r\n"
        "Subject: Drucker druckt nur Störungen\r\nMessage-ID: <eai-1@müller.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus München.\r\n"
    ).encode()
    harness.sandbox.graph.deliver_mime(harness.mailbox, raw)
    harness.run_once()
    issue = only_issue(harness)
    assert issue["summary"] == "Drucker druckt nur Störungen"
    assert "jürgen@müller.example" in issue["description"]
    assert "Grüße aus München." in issue["description"]
    [ack] = harness.sandbox.graph.sent_messages(harness.mailbox)
    assert [r["emailAddress"]["address"] for r in ack["toRecipients"]] == ["jürgen@müller.example"]


def test_uniquebody_is_used_when_no_quote_is_seen_in_the_body(pipeline):
    # A bare rule is no quote marker to us; Exchange's uniqueBody knew where the reply ended.
    key = first_ticket(pipeline, sender="Olga <olga@example.com>")
    pipeline.deliver(
        subject=f"RE: [{key}] Printer jammed",
        sender="Olga <olga@example.com>",
        html=True,
        body="<div>Fixed now.</div><hr><div>Earlier text of the thread.</div>",
    )
    pipeline.run_once()
    [comment] = only_issue(pipeline)["comments"]
    assert "Fixed now." in comment["body"]
    assert "Earlier text of the thread." not in comment["body"]
