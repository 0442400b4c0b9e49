"""The Graph emulator's MIME conversion on mail Exchange reads in its own way."""

from __future__ import annotations

from ticket_manager_sandbox.graph_mime import build_mime, new_message_id, parse_rfc822


def mixed(*parts: tuple[str, str]) -> bytes:
    body = "".join(
        f"--B\r\nContent-Type: {kind}; charset=utf-8\r\n\r\n{text}\r\n" for kind, text in parts
    )
    return (
        "From: a@example.com\r\nTo: s@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="B"\r\n\r\n{body}--B--\r\n'
    ).encode()


def test_several_inline_text_parts_are_one_text_body() -> None:
    # Two text/plain parts of a multipart/mixed are both in the body, in order.
    parsed = parse_rfc822(mixed(("text/plain", "One."), ("text/plain", "Two.")))
    assert parsed["body"] == {"contentType": "text", "content": "One.\r\nTwo."}
    assert parsed["attachments"] == []


def test_text_and_html_inline_parts_become_one_html_body() -> None:
    # With an HTML part among them, every part is shown in one HTML document.
    parsed = parse_rfc822(
        mixed(("text/plain", "One <b>."), ("text/html", "<html><body><p>Two</p></body></html>"))
    )
    assert parsed["body"]["contentType"] == "html"
    assert "<div>One &lt;b&gt;.</div><p>Two</p>" in parsed["body"]["content"]


def test_an_internationalised_address_is_sent_with_utf8_headers() -> None:
    # RFC 6531/6532: a non-ASCII address or domain is written in UTF-8, and read back as is.
    raw = build_mime(
        sender={"emailAddress": {"name": "Jürgen", "address": "jürgen@müller.example"}},
        to=[{"emailAddress": {"name": "Support", "address": "support@example.com"}}],
        subject="Grüße",
        body={"contentType": "text", "content": "Hallo"},
        message_id=new_message_id("jürgen@müller.example"),
    )
    assert "jürgen@müller.example".encode() in raw
    parsed = parse_rfc822(raw)
    assert parsed["from"] == [
        {"emailAddress": {"name": "Jürgen", "address": "jürgen@müller.example"}}
    ]
    assert parsed["messageId"].endswith(".müller.example>")
    assert parsed["subject"] == "Grüße"
