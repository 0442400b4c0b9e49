"""Write the hostile-input corpus: one .eml per case and expected.json with each outcome.

Run ``python tests/corpus/make_corpus.py`` after changing a case; the output is committed so
the files can be read (and replayed) as data. Every case is deterministic: fixed dates,
Message-IDs and MIME boundaries. Well-formed mail is built with the stdlib ``email`` package;
mail that must be malformed is written byte by byte. See docs/corpus.md for the outcomes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATE = "Mon, 23 Nov 2026 10:00:00 +0000"
CRLF = "\r\n"

# A 1x1 PNG (a tracking pixel or a tiny logo, depending on how it is used).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class Case:
    """One email of the corpus and what must become of it."""

    name: str
    covers: str
    build: Callable[[str], bytes]
    state: str = "ticket_created"
    rule: str | None = None
    phase: int = 1
    expect: dict = field(default_factory=dict)


CASES: list[Case] = []


def case(name: str, covers: str, **outcome):
    """Register the decorated builder as corpus case ``name``."""

    def register(build: Callable[[str], bytes]) -> Callable[[str], bytes]:
        keys = ("state", "rule", "phase")
        CASES.append(
            Case(
                name,
                covers,
                build,
                **{k: outcome.pop(k) for k in keys if k in outcome},
                expect=outcome,
            )
        )
        return build

    return register


def message_id(name: str) -> str:
    return f"<{name}@corpus.example.com>"


def raw(headers: list[str], body: str | bytes = "", *, newline: str = CRLF) -> bytes:
    """A message written exactly as given: header lines, a blank line, the body."""
    head = newline.join(headers) + newline + newline
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head.encode("utf-8", "surrogateescape") + data


def basic_headers(name: str, sender: str, subject: str | None, *extra: str) -> list[str]:
    lines = [f"From: {sender}", "To: Support <support@example.com>"]
    if subject is not None:
        lines.append(f"Subject: {subject}")
    lines += [f"Date: {DATE}", f"Message-ID: {message_id(name)}", "MIME-Version: 1.0", *extra]
    return lines


def mail(
    name: str,
    *,
    sender: str = "Carol Customer <carol.customer@example.com>",
    subject: str = "Help needed",
    text: str | None = "Hello,\n\nplease help.\n\nCarol",
    html: str | None = None,
    headers: list[tuple[str, str]] = (),
    attachments: list[tuple[str, bytes, str]] = (),
    inline: list[tuple[str, bytes, str, str]] = (),
) -> bytes:
    """A well-formed email built with the email package (stable boundaries)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = "Support <support@example.com>"
    message["Subject"] = subject
    message["Date"] = DATE
    message["Message-ID"] = message_id(name)
    for header, value in headers:
        message[header] = value
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
        if inline:
            html_part = next(p for p in message.walk() if p.get_content_type() == "text/html")
            for filename, data, content_type, cid in inline:
                maintype, subtype = content_type.split("/")
                html_part.add_related(data, maintype, subtype, cid=f"<{cid}>", filename=filename)
    for filename, data, content_type in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return stable(message)


def stable(message: EmailMessage) -> bytes:
    """The message's bytes with boundaries that do not change from one run to the next."""
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_corpus_{number}")
    return message.as_bytes(policy=policy.SMTP)


def multipart(boundary: str, parts: list[tuple[list[str], str]], epilogue: bool = True) -> str:
    """A multipart body by hand: each part is (header lines, content)."""
    out = []
    for lines, content in parts:
        out.append(f"--{boundary}{CRLF}" + CRLF.join(lines) + CRLF + CRLF + content + CRLF)
    return "".join(out) + (f"--{boundary}--{CRLF}" if epilogue else "")


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", CRLF)


CAROL = "Carol Customer <carol.customer@example.com>"


# --- a baseline ------------------------------------------------------------------------------


@case(
    "plain-text",
    "an ordinary plain-text request",
    summary="Printer on floor 3 is jammed",
    description_contains=["error E-42", "carol.customer@example.com"],
    attachments=[],
)
def _(name):
    return mail(
        name,
        subject="Printer on floor 3 is jammed",
        text="Hello,\n\nthe printer shows error E-42.\n\nCarol",
    )


# --- malformed and mixed MIME ----------------------------------------------------------------


@case(
    "mime-no-boundary-parameter",
    "multipart/mixed without a boundary parameter: the unparsable body is kept as a file",
    summary_contains="No boundary",
    attachment_count=1,
)
def _(name):
    body = multipart("lost", [(["Content-Type: text/plain"], "The text nobody can find.")])
    return raw(
        basic_headers(name, CAROL, "No boundary parameter", "Content-Type: multipart/mixed"), body
    )


@case(
    "mime-boundary-never-used",
    "the declared boundary never appears in the body",
    summary_contains="Boundary mismatch",
    attachment_count=1,
)
def _(name):
    body = multipart("actual", [(["Content-Type: text/plain"], "Text behind the wrong fence.")])
    ct = 'Content-Type: multipart/mixed; boundary="declared"'
    return raw(basic_headers(name, CAROL, "Boundary mismatch", ct), body)


@case(
    "mime-unterminated",
    "a multipart with no closing boundary and a truncated attachment",
    summary_contains="Unterminated",
    description_contains=["The part that made it"],
    attachments=["cut.bin"],
)
def _(name):
    body = multipart(
        "b1",
        [
            (["Content-Type: text/plain; charset=utf-8"], "The part that made it."),
            (
                [
                    "Content-Type: application/octet-stream",
                    'Content-Disposition: attachment; filename="cut.bin"',
                    "Content-Transfer-Encoding: base64",
                ],
                "AAECAwQFBgcICQ",
            ),
        ],
        epilogue=False,
    )
    ct = 'Content-Type: multipart/mixed; boundary="b1"'
    return raw(basic_headers(name, CAROL, "Unterminated multipart", ct), body)


@case(
    "mime-nested-mixed-alternative-related",
    "mixed > alternative > (text, related > (html, inline image)) + a PDF",
    summary="Nested multipart",
    description_contains=["The HTML version wins", "[image: logo.png]"],
    description_excludes=["The text version"],
    attachments=["logo.png", "report.pdf"],
)
def _(name):
    return mail(
        name,
        subject="Nested multipart",
        text="The text version.",
        html='<p>The HTML version wins.</p><p><img src="cid:logo@corpus"></p>',
        inline=[("logo.png", PNG + b"logo", "image/png", "logo@corpus")],
        attachments=[("report.pdf", PDF, "application/pdf")],
    )


@case(
    "mime-alternative-watch-html",
    "Apple Mail's text/watch-html and a text/x-amp-html alternative are not attachments",
    summary="Three alternatives",
    description_contains=["Rich body"],
    attachments=[],
)
def _(name):
    body = multipart(
        "alt",
        [
            (["Content-Type: text/plain; charset=utf-8"], "Plain body."),
            (["Content-Type: text/watch-html; charset=utf-8"], "<b>Watch body</b>"),
            (["Content-Type: text/x-amp-html; charset=utf-8"], "<html amp4email>AMP</html>"),
            (["Content-Type: text/html; charset=utf-8"], "<p>Rich body.</p>"),
        ],
    )
    ct = 'Content-Type: multipart/alternative; boundary="alt"'
    return raw(basic_headers(name, CAROL, "Three alternatives", ct), body)


@case(
    "mime-parts-without-headers",
    "preamble, epilogue and a part with no headers at all (defaults to text/plain)",
    summary="Bare parts",
    description_contains=["A part with no headers"],
    description_excludes=["This is a multi-part message", "epilogue junk"],
)
def _(name):
    body = (
        "This is a multi-part message in MIME format." + CRLF
        + multipart("bare", [([], "A part with no headers.")])
        + "epilogue junk" + CRLF
    )  # fmt: skip
    ct = 'Content-Type: multipart/mixed; boundary="bare"'
    return raw(basic_headers(name, CAROL, "Bare parts", ct), body)


@case(
    "mime-attachments-only",
    "multipart/mixed with attachments and no text part: an empty description body",
    summary="Only files",
    attachments=["data.csv"],
)
def _(name):
    return mail(name, subject="Only files", text=None,
                attachments=[("data.csv", b"a,b\n1,2\n", "text/csv")])  # fmt: skip


@case(
    "mime-deeply-nested",
    "60 levels of multipart/mixed around one text part",
    summary="Deep MIME",
    description_contains=["At the bottom"],
)
def _(name):
    body = "At the bottom of the MIME tree."
    lines = ["Content-Type: text/plain"]
    for level in range(60):
        body = multipart(f"n{level}", [(lines, body)])
        lines = [f'Content-Type: multipart/mixed; boundary="n{level}"']
    return raw(basic_headers(name, CAROL, "Deep MIME", *lines), body)


@case(
    "mime-lf-only",
    "bare LF line endings throughout (as many scripts send)",
    summary="LF only",
    description_contains=["Unix line endings"],
)
def _(name):
    return raw(basic_headers(name, CAROL, "LF only"), "Unix line endings.\n", newline="\n")


@case(
    "mime-html-declared-plain-sent",
    "Content-Type text/html whose content is plain text with angle brackets",
    summary="Looks like HTML",
    description_contains=["if a", "then b"],
)
def _(name):
    ct = "Content-Type: text/html; charset=utf-8"
    return raw(basic_headers(name, CAROL, "Looks like HTML", ct), "if a<b and c>d then b\r\n")


@case(
    "mime-bad-transfer-encoding",
    "base64 declared over text that is not base64, and an unknown encoding on a file",
    summary="Bad encodings",
    attachments=["notes.txt"],
)
def _(name):
    body = multipart(
        "enc",
        [
            (
                ["Content-Type: text/plain", "Content-Transfer-Encoding: base64"],
                "!!! this is not base64 ###",
            ),
            (
                [
                    "Content-Type: text/plain",
                    'Content-Disposition: attachment; filename="notes.txt"',
                    "Content-Transfer-Encoding: x-made-up",
                ],
                "kept as is",
            ),
        ],
    )
    ct = 'Content-Type: multipart/mixed; boundary="enc"'
    return raw(basic_headers(name, CAROL, "Bad encodings", ct), body)


# --- missing and duplicate headers -----------------------------------------------------------


@case(
    "header-no-subject",
    "no Subject header at all",
    summary="(no subject)",
    description_contains=["Where did my subject go"],
)
def _(name):
    return raw(basic_headers(name, CAROL, None), "Where did my subject go?\r\n")


@case(
    "header-two-from",
    "two From headers: the first is the one Exchange shows and the rules check",
    summary="Two senders",
    description_contains=["carol.customer@example.com"],
)
def _(name):
    lines = basic_headers(name, CAROL, "Two senders")
    lines.insert(1, "From: Mallory <mallory@attacker.test>")
    return raw(lines, "Which one is it?\r\n")


@case(
    "header-two-from-attacker-first",
    "two From headers with the foreign one first: judged by the first, like Exchange",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    lines = basic_headers(name, "Mallory <mallory@attacker.test>", "Two senders, reversed")
    lines.insert(1, f"From: {CAROL}")
    return raw(lines, "Which one is it?\r\n")


@case(
    "header-no-date",
    "no Date header (the received time is used)",
    summary="No date",
    description_contains=["Received:"],
)
def _(name):
    lines = [line for line in basic_headers(name, CAROL, "No date") if not line.startswith("Date")]
    return raw(lines, "Timeless.\r\n")


@case(
    "header-garbage-date",
    "a Date header that is not a date",
    summary="Garbage date",
)
def _(name):
    lines = [
        line for line in basic_headers(name, CAROL, "Garbage date") if not line.startswith("Date")
    ]
    return raw([*lines, "Date: yesterday-ish, around 25:61"], "When?\r\n")


@case(
    "header-no-message-id",
    "no Message-ID (Exchange assigns one; the ledger keys on it)",
    summary="No Message-ID",
)
def _(name):
    lines = [
        line
        for line in basic_headers(name, CAROL, "No Message-ID")
        if not line.startswith("Message-ID")
    ]
    return raw(lines, "Anonymous.\r\n")


@case(
    "header-no-from",
    "no From (and no Sender): nobody to answer, refused",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    lines = [
        line for line in basic_headers(name, CAROL, "No sender") if not line.startswith("From")
    ]
    return raw(lines, "Who am I?\r\n")


@case(
    "header-unparsable-from",
    "a From header that holds no address",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    return raw(basic_headers(name, '<<<@@@>>>, "unterminated', "Broken sender"), "?\r\n")


@case(
    "header-empty-message-id",
    "Message-ID: <> (CPython's header parser raises on it; Exchange assigns a new id)",
    summary="Empty Message-ID",
)
def _(name):
    lines = [line if not line.startswith("Message-ID") else "Message-ID: <>"
             for line in basic_headers(name, CAROL, "Empty Message-ID")]  # fmt: skip
    return raw(lines, "Hi\r\n")


@case(
    "header-malformed-message-id",
    "Message-ID: <x@[> (another value the structured parser cannot read)",
    summary="Odd Message-ID",
)
def _(name):
    lines = [line if not line.startswith("Message-ID") else f"Message-ID: <{name}@[>"
             for line in basic_headers(name, CAROL, "Odd Message-ID")]  # fmt: skip
    return raw(lines, "Hi\r\n")


@case(
    "header-from-unclosed-angle",
    'From: "Carol" < (no address; the structured parser raises on it)',
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    return raw(basic_headers(name, '"Carol" <', "Unclosed angle"), "Hi\r\n")


@case(
    "header-from-group-syntax",
    "a From written as a group (Customers: address;): the address in it counts",
    summary="Group sender",
    description_contains=["carol.customer@example.com"],
)
def _(name):
    return raw(basic_headers(name, "Customers: carol.customer@example.com;", "Group sender"), "Hi")


@case(
    "header-to-undisclosed",
    "To: Undisclosed recipients:; (no To address at all)",
    summary="Undisclosed",
)
def _(name):
    lines = basic_headers(name, CAROL, "Undisclosed")
    lines[1] = "To: Undisclosed recipients:;"
    return raw(lines, "Bcc'd to support.\r\n")


@case(
    "header-overlong-from-address",
    "a From address of 400 characters (over RFC 5321's 320): no address, refused",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    return raw(basic_headers(name, f"Long <{'a' * 390}@example.com>", "Overlong sender"), "Hi")


@case(
    "header-overlong-message-id",
    "a 2,000-character Message-ID",
    summary="Overlong Message-ID",
)
def _(name):
    long_id = f"<{name}-{'x' * 2000}@corpus.example.com>"
    lines = [line if not line.startswith("Message-ID") else f"Message-ID: {long_id}"
             for line in basic_headers(name, CAROL, "Overlong Message-ID")]  # fmt: skip
    return raw(lines, "Hi\r\n")


@case(
    "header-folded-subject",
    "a subject folded over three lines with tabs",
    summary="Folded over three lines",
)
def _(name):
    lines = basic_headers(name, CAROL, "Folded\r\n\tover\r\n  three lines")
    return raw(lines, "Folded.\r\n")


# --- charsets and encoded words ---------------------------------------------------------------


@case(
    "charset-latin1-declared-utf8-sent",
    "declared ISO-8859-1, written in UTF-8: read as declared (as Exchange does), no crash",
    summary="Wrong charset",
    description_contains=["Caf", "cr"],
)
def _(name):
    ct = "Content-Type: text/plain; charset=iso-8859-1"
    return raw(basic_headers(name, CAROL, "Wrong charset", ct), "Café crème\r\n")


@case(
    "charset-unknown-name",
    "a charset name nobody knows: the text is still read",
    summary="Unknown charset",
    description_contains=["Hello from an unknown charset"],
)
def _(name):
    ct = "Content-Type: text/plain; charset=x-unknown-42"
    return raw(basic_headers(name, CAROL, "Unknown charset", ct), "Hello from an unknown charset")


@case(
    "charset-unknown-in-html",
    "an HTML body with an unknown charset and 8-bit bytes",
    summary="Unknown HTML charset",
    description_contains=["Bonjour"],
)
def _(name):
    ct = "Content-Type: text/html; charset=klingon-8"
    return raw(basic_headers(name, CAROL, "Unknown HTML charset", ct), b"<p>Bonjour \xe9t\xe9</p>")


@case(
    "charset-windows-1252",
    "Windows-1252 smart quotes and the euro sign, declared correctly",
    summary="Smart quotes",
    description_contains=["\u201cquoted\u201d", "\u20ac10"],
)
def _(name):
    ct = "Content-Type: text/plain; charset=windows-1252"
    return raw(basic_headers(name, CAROL, "Smart quotes", ct), b"\x93quoted\x94 costs \x8010")


@case(
    "charset-utf16",
    "a UTF-16 body in base64",
    summary="UTF-16 body",
    description_contains=["Sixteen bits"],
)
def _(name):
    data = "Sixteen bits per unit.".encode("utf-16")
    lines = ["Content-Type: text/plain; charset=utf-16", "Content-Transfer-Encoding: base64"]
    return raw(basic_headers(name, CAROL, "UTF-16 body", *lines), b64(data))


@case(
    "header-8bit-utf8",
    "raw UTF-8 in Subject and From (8-bit headers, no encoded words)",
    summary="Grüße \u2013 Drucker kaputt",
    description_contains=["Zoë"],
)
def _(name):
    lines = basic_headers(
        name, "Zoë Müller <zoe.mueller@example.com>", "Grüße \u2013 Drucker kaputt"
    )
    return raw([*lines, "Content-Type: text/plain; charset=utf-8"], "Der Drucker ist kaputt.")


@case(
    "header-8bit-latin1",
    "raw Latin-1 bytes in the Subject (not valid UTF-8)",
    summary_contains="Drucker",
)
def _(name):
    lines = basic_headers(name, CAROL, "PLACEHOLDER")
    head = CRLF.join(lines).encode().replace(b"PLACEHOLDER", b"Gr\xfc\xdfe Drucker")
    return head + (CRLF * 2).encode() + b"Latin-1 header.\r\n"


@case(
    "encoded-words-valid",
    "RFC 2047 B and Q encoded words, adjacent ones joined",
    summary="Café ☕ déjà vu",
    description_contains=["Jürgen"],
)
def _(name):
    sender = "=?utf-8?Q?J=C3=BCrgen?= <juergen@example.com>"
    subject = "=?utf-8?Q?Caf=C3=A9_?= =?utf-8?B?4piV?= =?iso-8859-1?Q?_d=E9j=E0_vu?="
    return raw(basic_headers(name, sender, subject), "Encoded.\r\n")


@case(
    "encoded-words-broken",
    "broken encoded words: bad base64, bad Q escapes, unknown charset, unterminated",
    summary_contains="broken",
)
def _(name):
    subject = (
        "=?utf-8?B?not base64!?= =?utf-8?Q?broken=ZZ?= =?x-unknown?Q?abc?= =?utf-8?Q?unterminated"
    )
    return raw(basic_headers(name, CAROL, subject), "Broken words.\r\n")


# --- huge headers -----------------------------------------------------------------------------


@case(
    "huge-10000-recipients",
    "10,000 To recipients: the header line in the description is cut, nothing fails",
    summary="Ten thousand recipients",
    description_contains=["To:", "user0@example.com"],
)
def _(name):
    people = ",\r\n ".join(f"user{n}@example.com" for n in range(10_000))
    lines = basic_headers(name, CAROL, "Ten thousand recipients")
    lines[1] = f"To: support@example.com,\r\n {people}"
    return raw(lines, "Reply all at your peril.\r\n")


@case(
    "huge-200kb-subject",
    "a 200 KB subject (folded): cut to 255 characters for the summary",
    summary_contains="enormous",
    summary_max=255,
)
def _(name):
    words = ["enormous"] + [f"w{n:05d}" for n in range(200_000 // 7)]
    folded = "\r\n ".join(" ".join(words[i : i + 10]) for i in range(0, len(words), 10))
    return raw(basic_headers(name, CAROL, folded), "Big subject.\r\n")


# --- nested messages, calendar, S/MIME, TNEF --------------------------------------------------


def forwarded(subject: str, headers: list[tuple[str, str]] = ()) -> EmailMessage:
    inner = EmailMessage(policy=policy.SMTP)
    inner["From"] = "Dave Vendor <dave@vendor.test>"
    inner["To"] = "carol.customer@example.com"
    inner["Subject"] = subject
    inner["Date"] = DATE
    inner["Message-ID"] = "<inner-original@vendor.test>"
    for header, value in headers:
        inner[header] = value
    inner.set_content("The original message.\n{color:red}inner markup{color}")
    return inner


@case(
    "nested-message-rfc822",
    "an email attached as message/rfc822 becomes an .eml attachment",
    summary="Forwarding the original",
    attachments=["Original problem report.eml"],
)
def _(name):
    outer = EmailMessage(policy=policy.SMTP)
    for header, value in (("From", CAROL), ("To", "support@example.com"),
                          ("Subject", "Forwarding the original"), ("Date", DATE),
                          ("Message-ID", message_id(name))):  # fmt: skip
        outer[header] = value
    outer.set_content("See the attached message.")
    outer.add_attachment(forwarded("Original problem report"))
    return stable(outer)


@case(
    "nested-message-slash-subject",
    "an attached email whose subject holds slashes and a traversal",
    summary="Invoice forwarded",
    attachments=["Invoice 3_2024 for .._.._etc.eml"],
)
def _(name):
    outer = EmailMessage(policy=policy.SMTP)
    for header, value in (("From", CAROL), ("To", "support@example.com"),
                          ("Subject", "Invoice forwarded"), ("Date", DATE),
                          ("Message-ID", message_id(name))):  # fmt: skip
        outer[header] = value
    outer.set_content("Attached.")
    outer.add_attachment(forwarded("Invoice 3/2024 for ../../etc"))
    return stable(outer)


@case(
    "nested-auto-reply-inside",
    "a person forwards an auto-reply: the inner Auto-Submitted header does not count",
    summary="Look at this auto-reply",
    attachments=["Automatic reply: Your order.eml"],
)
def _(name):
    outer = EmailMessage(policy=policy.SMTP)
    for header, value in (("From", CAROL), ("To", "support@example.com"),
                          ("Subject", "Look at this auto-reply"), ("Date", DATE),
                          ("Message-ID", message_id(name))):  # fmt: skip
        outer[header] = value
    outer.set_content("Why do I get this?")
    outer.add_attachment(
        forwarded("Automatic reply: Your order", [("Auto-Submitted", "auto-replied")])
    )
    return stable(outer)


@case(
    "calendar-invite",
    "a meeting invitation (text/calendar alternative and invite.ics)",
    summary_contains="Invitation: Printer review",
    description_contains=["You have been invited"],
    attachments=["invite.ics"],
)
def _(name):
    ics = CRLF.join([
        "BEGIN:VCALENDAR", "METHOD:REQUEST", "PRODID:-//Corpus//EN", "VERSION:2.0",
        "BEGIN:VEVENT", "UID:corpus-1@example.com", "DTSTART:20261124T100000Z",
        "DTEND:20261124T110000Z", "SUMMARY:Printer review",
        "ORGANIZER;CN=Carol:mailto:carol.customer@example.com",
        "ATTENDEE;RSVP=TRUE:mailto:support@example.com", "END:VEVENT", "END:VCALENDAR",
    ])  # fmt: skip
    alternative = multipart(
        "cal-alt",
        [
            (["Content-Type: text/plain; charset=utf-8"], "You have been invited."),
            (["Content-Type: text/html; charset=utf-8"], "<p>You have been invited.</p>"),
            (["Content-Type: text/calendar; charset=utf-8; method=REQUEST"], ics),
        ],
    )
    body = multipart(
        "cal",
        [
            (['Content-Type: multipart/alternative; boundary="cal-alt"'], alternative),
            (
                [
                    'Content-Type: application/ics; name="invite.ics"',
                    'Content-Disposition: attachment; filename="invite.ics"',
                ],
                ics,
            ),
        ],
    )
    ct = 'Content-Type: multipart/mixed; boundary="cal"'
    subject = "Invitation: Printer review @ Tue 24 Nov 2026 10:00 (UTC)"
    return raw(basic_headers(name, CAROL, subject, ct), body)


@case(
    "smime-signed",
    "S/MIME clear-signed (multipart/signed): body read, signature kept as smime.p7s",
    summary="Signed request",
    description_contains=["This request is signed"],
    attachments=["smime.p7s"],
)
def _(name):
    signature = b64(bytes(range(48, 48 + 64)) * 4)
    body = multipart(
        "signed",
        [
            (["Content-Type: text/plain; charset=utf-8"], "This request is signed."),
            (
                [
                    'Content-Type: application/pkcs7-signature; name="smime.p7s"',
                    "Content-Transfer-Encoding: base64",
                    'Content-Disposition: attachment; filename="smime.p7s"',
                ],
                signature,
            ),
        ],
    )
    ct = (
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
        'micalg=sha-256; boundary="signed"'
    )
    return raw(basic_headers(name, CAROL, "Signed request", ct), body)


@case(
    "smime-opaque",
    "S/MIME opaque (application/pkcs7-mime): no readable body, the smime.p7m is attached",
    summary="Encrypted request",
    attachments=["smime.p7m"],
)
def _(name):
    lines = [
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="smime.p7m"',
    ]
    return raw(basic_headers(name, CAROL, "Encrypted request", *lines), b64(bytes(range(256))))


@case(
    "tnef-winmail-dat",
    "Outlook's winmail.dat (application/ms-tnef) is kept as a file",
    summary="Rich text from Outlook",
    attachments=["winmail.dat"],
)
def _(name):
    tnef = b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90\x08\x00" + bytes(range(200))
    return mail(name, subject="Rich text from Outlook", text="See winmail.dat.",
                attachments=[("winmail.dat", tnef, "application/ms-tnef")])  # fmt: skip


# --- attachments ------------------------------------------------------------------------------


@case(
    "attachment-zero-bytes",
    "an empty file next to a real one: Jira stores no empty file, the real one is uploaded",
    summary="Empty file",
    attachments=["notes.txt"],
)
def _(name):
    return mail(name, subject="Empty file", attachments=[
        ("empty.log", b"", "text/plain"), ("notes.txt", b"real notes", "text/plain")
    ])  # fmt: skip


@case(
    "attachment-too-large",
    "a 100 KB file over JIRA_MAX_ATTACHMENT_SIZE (64 KB in the test): named, not uploaded",
    summary="Large file",
    description_contains=["Not attached (too large): big.bin (100.0 KB)"],
    attachments=["small.txt"],
)
def _(name):
    big = bytes(range(256)) * 400
    return mail(name, subject="Large file", attachments=[
        ("big.bin", big, "application/octet-stream"), ("small.txt", b"small", "text/plain")
    ])  # fmt: skip


@case(
    "attachment-500-files",
    "500 attachments: every one uploaded",
    summary="Five hundred files",
    attachment_count=500,
)
def _(name):
    files = [(f"file-{n:03d}.txt", f"content {n}".encode(), "text/plain") for n in range(500)]
    return mail(name, subject="Five hundred files", attachments=files)


@case(
    "attachment-path-traversal",
    "file names with ../, ..\\, absolute paths and '..' keep only their last part",
    summary="Traversal names",
    attachments=["attachment", "name.txt", "passwd", "x.dll"],
)
def _(name):
    return mail(name, subject="Traversal names", attachments=[
        ("../../etc/passwd", b"root:x:0:0", "text/plain"),
        ("..\\..\\windows\\system32\\x.dll", b"MZ", "application/octet-stream"),
        ("/absolute/name.txt", b"abs", "text/plain"),
        ("..", b"dots", "text/plain"),
    ])  # fmt: skip


@case(
    "attachment-control-and-bidi-names",
    "control characters and a right-to-left override in file names are removed",
    summary="Tricky names",
    attachments=["abc.txt", "invoicefdp.exe", "newline.txt"],
)
def _(name):
    body = multipart(
        "names",
        [(["Content-Type: text/plain"], "Names with tricks.")]
        + [
            (
                [
                    "Content-Type: application/octet-stream",
                    f"Content-Disposition: attachment; filename*=utf-8''{encoded}",
                ],
                "x",
            )
            for encoded in ("invoice%E2%80%AEfdp.exe", "a%00b%07c.txt", "new%0Aline.txt")
        ],
    )
    ct = 'Content-Type: multipart/mixed; boundary="names"'
    return raw(basic_headers(name, CAROL, "Tricky names", ct), body)


@case(
    "attachment-rfc2231-and-duplicates",
    "RFC 2231 UTF-8 names, two files with one name, a 300-character name",
    summary="Names galore",
    attachments=["log (2).txt", "log.txt", "résumé.pdf", "y" * 196 + ".txt"],
)
def _(name):
    return mail(name, subject="Names galore", attachments=[
        ("résumé.pdf", PDF, "application/pdf"),
        ("log.txt", b"first", "text/plain"),
        ("log.txt", b"second", "text/plain"),
        ("y" * 296 + ".txt", b"long", "text/plain"),
    ])  # fmt: skip


# --- hostile HTML -----------------------------------------------------------------------------


@case(
    "html-active-content",
    "script, style, iframe, object, event handlers and javascript: links are dropped",
    summary="Active content",
    description_contains=["Visible text", "click me"],
    description_excludes=["alert(", "evil", "color:red", "frame text", "javascript"],
)
def _(name):
    html = (
        "<html><head><title>t</title><script>alert(1)</script>"
        "<style>p{color:red}</style></head><body>"
        '<p onclick="evil()">Visible text</p><iframe src="https://x.test/">frame text</iframe>'
        "<object data='x.swf'>evil object</object><embed src='evil.swf'>"
        '<a href="javascript:alert(2)">click me</a><img src=x onerror="evil()">'
        '<form action="https://evil.test/"><input value="evil input"></form>'
        "<svg onload=evil()><script>evil()</script></svg></body></html>"
    )
    return mail(name, subject="Active content", text=None, html=html)


@case(
    "html-tracking-pixels",
    "remote images and 1x1 tracking pixels leave nothing behind",
    summary="Newsletter-ish",
    description_contains=["Real content"],
    description_excludes=["track", "pixel"],
    attachments=[],
)
def _(name):
    html = (
        '<p>Real content</p><img src="https://track.test/pixel.gif?id=1" width="1" height="1">'
        '<img src="https://cdn.test/banner.png"><img src="data:image/png;base64,AAAA">'
    )
    return mail(name, subject="Newsletter-ish", text=None, html=html)


@case(
    "html-10000-nested-divs",
    "10,000 nested divs",
    summary="Deep divs",
    description_contains=["bottom of the divs"],
)
def _(name):
    html = "<div>" * 10_000 + "bottom of the divs" + "</div>" * 10_000
    return mail(name, subject="Deep divs", text=None, html=html)


@case(
    "html-10000-unclosed-mixed",
    "10,000 unclosed list, quote, table and inline elements",
    summary="Unclosed soup",
    description_contains=["still here"],
)
def _(name):
    html = "<ul><li><blockquote><table><tr><td><b><i>" * 1_500 + "still here"
    return mail(name, subject="Unclosed soup", text=None, html=html)


@case(
    "html-hidden-preheader",
    "hidden preheaders (display:none, hidden, mso-hide) do not show",
    summary="Preheader",
    description_contains=["Shown"],
    description_excludes=["Sneaky"],
)
def _(name):
    html = (
        '<div style="display:none">Sneaky preheader</div><div hidden>Sneaky too</div>'
        '<span style="mso-hide:all">Sneaky mso</span><p>Shown</p>'
    )
    return mail(name, subject="Preheader", text=None, html=html)


@case(
    "html-entities-bidi-and-controls",
    "bidi overrides and controls arriving as HTML entities are removed",
    summary="Entities",
    description_contains=["invoice gnp.exe"],
    description_excludes=["\u202e", "\x07"],
)
def _(name):
    return mail(name, subject="Entities", text=None,
                html="<p>invoice &#8238;gnp.exe&#8236; &#7; done</p>")  # fmt: skip


# --- markup injection -------------------------------------------------------------------------

WIKI_PAYLOAD = (
    "{color:red}red{color} {html}<b>x</b>{html} {panel:title=Pay}now{panel} "
    "[~accountid:5b10a2844c20165700ede21g] [~admin] [click|javascript:alert(1)] "
    "!https://evil.test/x.png! {{mono}} *bold* h1. heading ---- ?? (y) :D @admin"
)
ADF_PAYLOAD = (
    '{"type":"doc","version":1,"content":[{"type":"mention","attrs":{"id":"admin"}},'
    '{"type":"extension","attrs":{"extensionKey":"evil"}}]}'
)


@case(
    "inject-wiki-in-text",
    "Jira wiki markup, macros and mentions in a plain-text body are text",
    summary="Wiki injection",
    description_contains=["{color:red}red{color}", "[~accountid:5b10a2844c20165700ede21g]"],
)
def _(name):
    return mail(name, subject="Wiki injection", text=f"Hello\n{WIKI_PAYLOAD}\nh2. fake heading")


@case(
    "inject-wiki-in-html",
    "the same markup as HTML text and in link text",
    summary="Wiki in HTML",
    description_contains=["{panel:title=Pay}now{panel}", "[~admin]"],
)
def _(name):
    html = (
        f"<p>{WIKI_PAYLOAD.replace('<', '&lt;').replace('>', '&gt;')}</p>"
        '<p><a href="https://ok.test/">[~admin] | x]</a></p>'
    )
    return mail(name, subject="Wiki in HTML", text=None, html=html)


@case(
    "inject-adf-json",
    "ADF-looking JSON in the body stays text",
    summary="ADF injection",
    description_contains=['"type":"mention"'],
)
def _(name):
    return mail(name, subject="ADF injection", text=ADF_PAYLOAD)


@case(
    "inject-mentions",
    "@mentions in every form Jira knows",
    summary="Mentions",
    description_contains=["[~accountid:557058:f58131cb-b67d-43c7-b30d-6b58d40bd077]"],
)
def _(name):
    text = (
        "[~accountid:557058:f58131cb-b67d-43c7-b30d-6b58d40bd077] [~admin] @admin "
        "@[Alice Agent] <@U123> [user:admin]"
    )
    return mail(name, subject="Mentions", text=text)


@case(
    "inject-markup-in-subject-and-names",
    "markup in the subject, the display name and a file name",
    summary="{color:red}URGENT{color} [~accountid:abc] h1. x",
    attachments=["{panel}x[~admin].txt"],
)
def _(name):
    return mail(
        name,
        sender='"[~admin] {color:red}Carol{color}" <carol.customer@example.com>',
        subject="{color:red}URGENT{color} [~accountid:abc] h1. x",
        attachments=[("{panel}x[~admin].txt", b"x", "text/plain")],
    )


@case(
    "inject-html-script-as-text",
    "a plain-text body that spells out <script>: shown as text, never as HTML",
    summary="Script as text",
    description_contains=["<script>alert(1)</script>"],
)
def _(name):
    return mail(name, subject="Script as text", text="<script>alert(1)</script> <b>not bold</b>")


@case(
    "bidi-in-subject",
    "bidi overrides and invisible characters in the subject are removed",
    summary="Invoice gnp.exe ready",
)
def _(name):
    subject = (
        "=?utf-8?B?"
        + base64.b64encode("Invoice \u202egnp.exe\u202c\u200b ready\u2066".encode()).decode()
        + "?="
    )
    return raw(basic_headers(name, CAROL, subject), "Bidi.\r\n")


# --- senders ----------------------------------------------------------------------------------


@case(
    "sender-homoglyph-domain",
    "ex\u0430mple.com with a Cyrillic 'a' (U+0430) in raw UTF-8 is not example.com",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    return raw(basic_headers(name, "Carol <carol@ex\u0430mple.com>", "Homoglyph"), "Hi\r\n")


@case(
    "sender-homoglyph-punycode",
    "the same homoglyph domain as punycode",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    domain = "ex\u0430mple.com".encode("idna").decode()
    return raw(basic_headers(name, f"Carol <carol@{domain}>", "Punycode"), "Hi\r\n")


@case(
    "sender-display-name-spoof",
    'a display name that is an allowed address: "support@example.com" <evil@attacker.test>',
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    sender = '"support@example.com" <evil@attacker.test>'
    return raw(basic_headers(name, sender, "Please reset my password"), "Hi\r\n")


@case(
    "sender-lookalike-subdomain",
    "example.com.attacker.test is not example.com",
    state="rejected",
    rule="domain-not-allowed",
)
def _(name):
    return raw(basic_headers(name, "boss@example.com.attacker.test", "Lookalike"), "Hi\r\n")


@case(
    "sender-blacklisted",
    "an address in EMAIL_BLACKLIST",
    state="rejected",
    rule="blocked-sender",
)
def _(name):
    return raw(basic_headers(name, "Malicious <malicious@example.com>", "Blocked"), "Hi\r\n")


@case(
    "sender-own-mailbox",
    "mail from the monitored mailbox itself",
    state="rejected",
    rule="own-mailbox",
)
def _(name):
    return raw(basic_headers(name, "Support <support@example.com>", "From ourselves"), "Hi\r\n")


@case(
    "sender-loop-header",
    "mail carrying our X-Ticket-Manager loop marker",
    state="rejected",
    rule="own-mailbox",
)
def _(name):
    lines = basic_headers(name, CAROL, "Re: [SUP-1] Ticket received", "X-Ticket-Manager: ack")
    return raw(lines, "Loop.\r\n")


@case(
    "sender-exchange-rules-loop-ours",
    "X-MS-Exchange-Inbox-Rules-Loop naming our mailbox: it went through our own rules",
    state="rejected",
    rule="own-mailbox",
)
def _(name):
    extra = "X-MS-Exchange-Inbox-Rules-Loop: support@example.com"
    return raw(basic_headers(name, CAROL, "Looped by a rule", extra), "Loop.\r\n")


@case(
    "sender-exchange-rules-forward",
    "a customer's inbox rule forwarded this to us (Rules-Loop naming them): a request",
    summary="Forwarded by my rule",
)
def _(name):
    extra = "X-MS-Exchange-Inbox-Rules-Loop: carol.customer@example.com"
    return raw(basic_headers(name, CAROL, "Forwarded by my rule", extra), "Please help.\r\n")


# --- auto-replies -----------------------------------------------------------------------------


def auto(name: str, subject: str, *extra: str, sender: str = CAROL) -> bytes:
    return raw(basic_headers(name, sender, subject, *extra), "I am out of the office.\r\n")


AUTO_REPLIES = [
    ("auto-submitted-auto-replied", "Auto-Submitted: auto-replied", "Out today"),
    ("auto-submitted-auto-generated", "Auto-Submitted: auto-generated", "Report"),
    ("x-autoreply", "X-Autoreply: yes", "Away"),
    ("x-autorespond", "X-Autorespond: Away", "Away too"),
    ("precedence-bulk", "Precedence: bulk", "Newsletter"),
    ("precedence-junk", "Precedence: junk", "Offer"),
    ("precedence-list", "Precedence: list", "Digest"),
    ("x-auto-response-suppress", "X-Auto-Response-Suppress: All", "Automated notice"),
    ("list-id", "List-Id: Printer users <printers.lists.example.com>", "[printers] jam"),
]
for slug, header, subject in AUTO_REPLIES:
    case(f"auto-{slug}", f"{header} marks automatic mail", state="rejected", rule="auto-reply")(
        lambda name, header=header, subject=subject: auto(name, subject, header)
    )


@case(
    "auto-submitted-no",
    "Auto-Submitted: no is a person",
    summary="Person says no",
)
def _(name):
    return auto(name, "Person says no", "Auto-Submitted: no")


@case(
    "auto-outlook-subject-only",
    'Outlook\'s "Automatic reply:" subject with no marker header',
    state="rejected",
    rule="auto-reply",
)
def _(name):
    return auto(name, "Automatic reply: Printer on floor 3 is jammed")


@case(
    "auto-localised-subject",
    'a German "Automatische Antwort:" subject',
    state="rejected",
    rule="auto-reply",
)
def _(name):
    return auto(name, "Automatische Antwort: Drucker")


@case(
    "auto-exchange-oof",
    "an Exchange out-of-office reply as Exchange writes it",
    state="rejected",
    rule="auto-reply",
)
def _(name):
    return auto(
        name,
        "Automatic reply: Your ticket",
        "Auto-Submitted: auto-generated",
        "X-Auto-Response-Suppress: All",
        "X-MS-Exchange-Inbox-Rules-Loop: carol.customer@example.com",
        "In-Reply-To: <nothing-we-know@example.com>",
        "Thread-Topic: Your ticket",
    )


# --- bounces ----------------------------------------------------------------------------------


def dsn(name: str, sender: str, subject: str, report_type: str = "delivery-status") -> bytes:
    status = CRLF.join(
        ["Reporting-MTA: dns; mx.example.com", "", "Final-Recipient: rfc822; gone@example.org",
         "Action: failed", "Status: 5.1.1"]
    )  # fmt: skip
    body = multipart(
        "dsn",
        [
            (["Content-Type: text/plain"], "Delivery to gone@example.org failed."),
            (["Content-Type: message/delivery-status"], status),
            (["Content-Type: text/rfc822-headers"], "Subject: Your ticket SUP-1"),
        ],
    )
    ct = f'Content-Type: multipart/report; report-type={report_type}; boundary="dsn"'
    return raw(basic_headers(name, sender, subject, "Return-Path: <>", ct), body)


@case("bounce-mailer-daemon", "a DSN from MAILER-DAEMON", state="rejected", rule="auto-reply")
def _(name):
    return dsn(name, "Mail Delivery System <MAILER-DAEMON@mx.example.com>", "Undelivered Mail")


@case("bounce-postmaster", "a Microsoft NDR from postmaster", state="rejected", rule="auto-reply")
def _(name):
    sender = "Microsoft Outlook <postmaster@example.com>"
    return dsn(name, sender, "Undeliverable: Your ticket SUP-1")


@case(
    "bounce-report-from-ordinary-address",
    "a multipart/report DSN from an address that looks like a person's",
    state="rejected",
    rule="auto-reply",
)
def _(name):
    return dsn(name, "Mail System <mail@example.com>", "Delivery Status Notification (Failure)")


@case(
    "bounce-read-receipt",
    "a read receipt (multipart/report; report-type=disposition-notification)",
    state="rejected",
    rule="auto-reply",
)
def _(name):
    return dsn(name, CAROL, "Read: Your ticket", report_type="disposition-notification")


@case(
    "bounce-null-return-path",
    "an old-style text bounce: only the empty Return-Path <> says what it is",
    state="rejected",
    rule="auto-reply",
)
def _(name):
    lines = basic_headers(name, "Mail Delivery Subsystem <bounces@example.com>",
                          "Returned mail: see transcript", "Return-Path: <>")  # fmt: skip
    return raw(lines, "The original message was received at ...\r\n")


@case(
    "bounce-x-failed-recipients",
    "an Exim bounce (X-Failed-Recipients)",
    state="rejected",
    rule="auto-reply",
)
def _(name):
    lines = basic_headers(name, "Mail System <mailer@example.com>",
                          "Mail delivery failed: returning message to sender",
                          "X-Failed-Recipients: gone@example.org")  # fmt: skip
    return raw(lines, "This message was created automatically by mail delivery software.\r\n")


# --- follow-ups (delivered after the first round) ---------------------------------------------


@case(
    "followup-reply",
    "a reply to the plain-text request becomes a comment on its ticket",
    state="commented",
    phase=2,
    comment_on="plain-text",
    comment_contains=["It works again"],
    comment_excludes=["the printer shows error E-42"],
)
def _(name):
    extra = (f"In-Reply-To: {message_id('plain-text')}", f"References: {message_id('plain-text')}")
    text = (
        "It works again, thanks!\r\n\r\nOn Mon, 23 Nov 2026 Carol wrote:\r\n"
        "> the printer shows error E-42.\r\n"
    )
    return raw(basic_headers(name, CAROL, "Re: Printer on floor 3 is jammed", *extra), text)


@case(
    "followup-with-injection",
    "a reply full of markup: the comment is as safe as a description",
    state="commented",
    phase=2,
    comment_on="inject-wiki-in-text",
    comment_contains=["{panel:title=Pay}now{panel}"],
)
def _(name):
    extra = (f"In-Reply-To: {message_id('inject-wiki-in-text')}",)
    html = f"<p>{WIKI_PAYLOAD}</p><script>alert(1)</script>"
    lines = basic_headers(name, CAROL, "Re: Wiki injection", *extra,
                          "Content-Type: text/html; charset=utf-8")  # fmt: skip
    return raw(lines, html)


@case(
    "followup-auto-reply-to-ticket",
    "an auto-reply in a ticket's thread is still refused, not commented",
    state="rejected",
    rule="auto-reply",
    phase=2,
)
def _(name):
    extra = (f"In-Reply-To: {message_id('plain-text')}", "Auto-Submitted: auto-replied")
    return auto(name, "Automatic reply: Printer on floor 3 is jammed", *extra)


def main() -> None:
    """Write every case (numbered in order) and expected.json; remove stale files."""
    for old in HERE.glob("*.eml"):
        old.unlink()
    expected: dict[str, dict] = {}
    names = {}
    for number, item in enumerate(CASES, 1):
        filename = f"{number:03d}-{item.name}.eml"
        names[item.name] = filename
        (HERE / filename).write_bytes(item.build(item.name))
        entry: dict = {"covers": item.covers, "state": item.state}
        if item.rule:
            entry["rule"] = item.rule
        if item.phase != 1:
            entry["phase"] = item.phase
        entry.update(item.expect)
        expected[filename] = entry
    for entry in expected.values():
        if "comment_on" in entry:
            entry["comment_on"] = names[entry["comment_on"]]
    text = json.dumps(expected, indent=2, ensure_ascii=False)
    (HERE / "expected.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {len(expected)} emails to {HERE}")


if __name__ == "__main__":
    main()
