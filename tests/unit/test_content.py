"""Email bodies turned into Jira content: structure kept, markup from the email never injected."""

from __future__ import annotations

import json
import random
import re

import pytest
from work import count_calls, linear_budget

from ticket_manager.content import (
    ADF_MAX_CHARS,
    TRUNCATION_NOTE,
    WIKI_MAX_CHARS,
    EmailContent,
    adf_size,
    summary_from_subject,
    text_preview,
    to_adf,
    to_wiki,
)
from ticket_manager_sandbox.jira_adf import is_valid_adf

# ---------------------------------------------------------------------------------------------
# What Jira would accept and show

_INLINE = {"text", "hardBreak"}
_CELL = {"paragraph", "heading", "bulletList", "orderedList", "codeBlock", "blockquote", "rule"}
_ALLOWED = {
    "doc": {"paragraph", "heading", "bulletList", "orderedList", "blockquote", "codeBlock"}
    | {"rule", "table"},
    "paragraph": _INLINE,
    "heading": _INLINE,
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "blockquote": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "codeBlock": {"text"},
    "table": {"tableRow"},
    "tableRow": {"tableHeader", "tableCell"},
    "tableHeader": _CELL,
    "tableCell": _CELL,
}
_NON_EMPTY = {"bulletList", "orderedList", "listItem", "blockquote", "table", "tableRow"}
_NON_EMPTY |= {"tableHeader", "tableCell"}
_MARKS = {"strong", "em", "underline", "strike", "code", "link"}


def check_adf(adf: dict) -> int:
    """Assert ``adf`` follows the ADF schema rules for what we emit; return its depth."""
    assert is_valid_adf(adf), "the Jira emulator's validator rejects the document"
    assert adf["type"] == "doc" and adf["version"] == 1
    deepest = 0
    pending = [(adf, None, 0)]
    while pending:
        node, parent, depth = pending.pop()
        deepest = max(deepest, depth)
        kind = node["type"]
        if parent is not None:
            assert kind in _ALLOWED[parent], f"{kind} inside {parent}"
        if kind == "text":
            assert isinstance(node["text"], str) and node["text"], "empty text node"
            marks = [mark["type"] for mark in node.get("marks", [])]
            assert set(marks) <= _MARKS and len(marks) == len(set(marks)), marks
            assert parent != "codeBlock" or not marks, "marks inside a code block"
            assert "code" not in marks or set(marks) <= {"code", "link"}, marks
            for mark in node.get("marks", []):
                if mark["type"] == "link":
                    assert re.match(r"(https?://|mailto:)", mark["attrs"]["href"])
            continue
        if kind in ("hardBreak", "rule"):
            assert "content" not in node
            continue
        content = node["content"]
        assert kind not in _NON_EMPTY or content, f"empty {kind}"
        if kind == "listItem":
            assert content[0]["type"] in ("paragraph", "codeBlock")
        if kind == "heading":
            assert 1 <= node["attrs"]["level"] <= 6
        pending.extend((child, kind, depth + 1) for child in content)
    return deepest


def adf_text(adf: dict) -> str:
    """The text a reader sees in an ADF document (blocks on separate lines)."""
    out: list[str] = []
    pending = [adf]
    while pending:
        node = pending.pop()
        if node["type"] == "text":
            out.append(node["text"])
        elif node["type"] == "hardBreak":
            out.append("\n")
        else:
            if node["type"] in ("paragraph", "heading", "codeBlock", "tableCell", "tableHeader"):
                out.append("\n")
            pending.extend(reversed(node.get("content", [])))
    return "".join(out).strip()


def adf_nodes(adf: dict) -> list[dict]:
    """Every node of an ADF document, in document order."""
    found, pending = [], [adf]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(reversed(node.get("content", [])))
    return found


def links(adf: dict) -> list[tuple[str, str]]:
    """(text, href) of every link mark."""
    return [
        (node["text"], mark["attrs"]["href"])
        for node in adf_nodes(adf)
        for mark in node.get("marks", [])
        if mark["type"] == "link"
    ]


_WIKI_SPECIAL = r"!*\[\]^~+?{}()_\-|@"


def wiki_visible(markup: str) -> str:
    """What Jira's renderer shows for escaped text: ``\\X`` unescaped, entities decoded."""
    text = re.sub(rf"\\([{_WIKI_SPECIAL}])", r"\1", markup)
    text = re.sub(r"&#(\d+);", lambda match: chr(int(match.group(1))), text)
    return text.replace("&amp;", "&")


def unescaped_specials(markup: str) -> list[str]:
    """Markup characters in ``markup`` that Jira would interpret (not backslash-escaped)."""
    return re.findall(rf"(?<!\\)[{_WIKI_SPECIAL}]|\\\\|(?m:^\s*(?:h[1-6]\.|bq\.|#))", markup)


def plain(body: str, **kwargs) -> EmailContent:
    return EmailContent.from_email(body=body, body_type="text", **kwargs)


def html(body: str, **kwargs) -> EmailContent:
    return EmailContent.from_email(body=body, body_type="html", **kwargs)


# ---------------------------------------------------------------------------------------------
# Real mail

OUTLOOK = """<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns="http://www.w3.org/TR/REC-html40">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="Generator" content="Microsoft Word 15 (filtered medium)">
<!--[if !mso]><style>v\\:* {behavior:url(#default#VML);}
</style><![endif]--><style><!--
@font-face
	{font-family:"Cambria Math";
	panose-1:2 4 5 3 5 4 6 3 2 4;}
p.MsoNormal, li.MsoNormal, div.MsoNormal
	{margin:0cm;
	font-size:11.0pt;
	font-family:"Calibri",sans-serif;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]-->
</head>
<body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
<p class="MsoNormal">Hi team,<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal">The export job failed again last night. <b>Error code: 0x80070005</b><o:p></o:p></p>
<p class="MsoNormal">See <a href="https://status.example.com/incidents/42">the status page</a>.<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<table class="MsoTableGrid" border="1" cellspacing="0" cellpadding="0">
<tr><td width="200" valign="top"><p class="MsoNormal"><b>Server<o:p></o:p></b></p></td>
<td width="200" valign="top"><p class="MsoNormal"><b>Status<o:p></o:p></b></p></td></tr>
<tr><td><p class="MsoNormal">db-01<o:p></o:p></p></td><td><p class="MsoNormal">down | since 02:00<o:p></o:p></p></td></tr>
</table>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal"><img width="120" height="40" style="width:1.25in;height:.4166in" id="Picture_x0020_1" src="cid:image001.png@01DA1234.56789AB0" alt="Company logo"><o:p></o:p></p>
<p class="MsoNormal">Kind regards,<o:p></o:p></p>
<p class="MsoNormal">Alice<o:p></o:p></p>
<p class="MsoNormal"><img width="1" height="1" src="cid:pixel@01DA"><o:p></o:p></p>
</div>
</body>
</html>"""  # noqa: E501 (real Outlook lines are long)

GMAIL = """<div dir="ltr"><div>Hello,</div><div><br></div><div>Please find the <b>logs</b> below:</div><ul><li>server-1: <i>ok</i></li><li>server-2: <span style="color:red">failed</span><ul><li>disk full</li></ul></li></ul><div><br></div><div>Thanks</div><div><br></div><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 23 Nov 2026 at 10:00, Bob &lt;<a href="mailto:bob@example.com">bob@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div dir="ltr">Is the server up?</div><br><div class="gmail_quote"><blockquote class="gmail_quote" style="margin:0px">Older message</blockquote></div></blockquote></div></div>
<img src="https://mail.example.com/track?id=123" width="1" height="1" alt="">"""  # noqa: E501

APPLE = """<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">Screenshot attached:<div><br></div><div><img apple-inline="yes" id="A1B2" src="cid:F00D1234-5678-4ABC-9DEF-0123456789AB" alt="Screenshot.png"></div><div><br></div><div>Cheers,<br><div><br><blockquote type="cite"><div>On 26 Nov 2026, at 18:04, Bob &lt;bob@example.com&gt; wrote:</div><br class="Apple-interchange-newline"><div><div>Can you send a screenshot?</div></div></blockquote></div><br></div></body></html>"""  # noqa: E501

SIGNED_TEXT = """Hi,

the printer on floor 3 shows *error 42* again.
Steps: power off, wait, power on.

--
Alice Example | IT Support
+44 20 7946 0000
"""


def test_outlook_html_keeps_text_table_link_and_image_and_drops_styles():
    # Outlook's Word HTML: paragraphs, bold, a link and a table survive; CSS and pixels do not.
    doc = html(OUTLOOK, inline_images={"image001.png@01DA1234.56789AB0": "image001.png"})
    adf = to_adf(doc)
    check_adf(adf)
    text = adf_text(adf)
    assert "Hi team," in text and "Kind regards," in text and "Alice" in text
    assert "font-family" not in text and "mso" not in text and "shapedefaults" not in text
    assert links(adf) == [("the status page", "https://status.example.com/incidents/42")]
    assert any(n["type"] == "text" and n["text"] == "Error code: 0x80070005"
               and n["marks"] == [{"type": "strong"}] for n in adf_nodes(adf))  # fmt: skip
    table = next(node for node in adf["content"] if node["type"] == "table")
    assert [cell["type"] for cell in table["content"][1]["content"]] == ["tableCell"] * 2
    assert "down | since 02:00" in adf_text(table)
    assert "[image: image001.png]" in text
    assert text.count("[image:") == 1  # the 1x1 pixel is gone
    wiki = to_wiki(doc)
    assert "!image001.png!" in wiki
    assert "[the status page|https://status.example.com/incidents/42]" in wiki
    assert "|db\\-01|down \\| since 02:00|" in wiki
    assert "font-family" not in wiki


def test_gmail_html_keeps_lists_quotes_and_mailto_and_drops_tracking_pixel():
    # Gmail's div-per-line HTML: lists nest, both quote levels end up in one quote, mailto links.
    doc = html(GMAIL)
    adf = to_adf(doc)
    check_adf(adf)
    kinds = [node["type"] for node in adf["content"]]
    assert kinds[:3] == ["paragraph", "paragraph", "bulletList"]
    bullet = adf["content"][2]
    assert adf_text(bullet).split("\n") == ["server-1: ok", "server-2: failed", "disk full"]
    assert bullet["content"][1]["content"][1]["type"] == "bulletList"
    quote = next(node for node in adf["content"] if node["type"] == "blockquote")
    assert "Is the server up?" in adf_text(quote) and "Older message" in adf_text(quote)
    assert ("bob@example.com", "mailto:bob@example.com") in links(adf)
    assert "track" not in json.dumps(adf)
    wiki = to_wiki(doc)
    assert "* server\\-1: _ok_\n* server\\-2: failed\n** disk full" in wiki
    assert wiki.count("{quote}") == 2  # one quote: {quote} cannot nest


def test_apple_mail_inline_image_becomes_attachment_reference():
    # An inline image by Content-ID names the uploaded attachment in both formats.
    doc = html(APPLE, inline_images={"F00D1234-5678-4ABC-9DEF-0123456789AB": "Screenshot.png"})
    adf = to_adf(doc)
    check_adf(adf)
    assert "[image: Screenshot.png]" in adf_text(adf)
    assert not [node for node in adf_nodes(adf) if node["type"].startswith("media")]
    assert "!Screenshot.png!" in to_wiki(doc)
    assert "Can you send a screenshot?" in adf_text(adf)


def test_plain_text_with_signature_keeps_lines_and_escapes_the_dashes():
    # Plain text: blank lines split paragraphs, single newlines are hard breaks, nothing formats.
    doc = plain(SIGNED_TEXT)
    adf = to_adf(doc)
    check_adf(adf)
    assert [node["type"] for node in adf["content"]] == ["paragraph"] * 3
    signature = adf["content"][2]["content"]
    assert [node["type"] for node in signature] == ["text", "hardBreak"] * 2 + ["text"]
    assert signature[0]["text"] == "--"
    assert all("marks" not in node for node in adf_nodes(adf))
    wiki = to_wiki(doc)
    assert wiki.split("\n\n")[2] == "\\-\\-\nAlice Example \\| IT Support\n\\+44 20 7946 0000"
    assert "\\*error 42\\*" in wiki
    assert wiki_visible(wiki) == SIGNED_TEXT.strip().replace("--\n", "--\n")


INJECTIONS = [
    "{html}<script>alert(1)</script>{html}",
    "[~admin]",
    "[~accountid:5b10a2844c20165700ede21g]",
    "[link|javascript:alert(1)]",
    "[click here|http://evil.example/]",
    "{panel:title=Urgent}pay now{panel}",
    "{code}x{code} {noformat}y{noformat} {color:red}z{color}",
    "*bold* _italic_ -strike- +under+ ^sup^ ~sub~ ??cite?? {{mono}}",
    "h1. Not a heading",
    "bq. Not a quote",
    "# not a numbered list",
    "* not a bullet",
    "- not a dash list",
    "|| not || a table ||",
    "----",
    "line\\\\break and C:\\path\\to\\file \\*",
    "!http://evil.example/x.png!",
    "!image001.png|width=9999!",
    "[^secret.pdf]",
    "@admin please look",
    ":) :( :P :D ;) (y) (n) (i) (/) (x) (!) (on) (*r)",
    "http://evil.example/autolink mailto:x@evil.example file:///etc/passwd",
    "&lt;b&gt;not bold&lt;/b&gt; &#123;panel&#125; &copy;",
    "ABC-123 -- --- em dashes",
    '{"type":"mention","attrs":{"id":"admin"}} {"type":"doc","version":1}',
    ":warning: :status: <@U123>",
    "   h2. indented heading",
    "  # indented list",
    "\t* tabbed bullet",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_markup_in_plain_text_is_shown_literally(payload):
    # Whatever markup the text contains, Jira shows exactly the text and interprets none of it.
    doc = plain(f"Hello\n{payload}\nBye")
    adf = to_adf(doc)
    check_adf(adf)
    nodes = adf_nodes(adf)
    assert {node["type"] for node in nodes} == {"doc", "paragraph", "text", "hardBreak"}
    assert [node["text"] for node in nodes if node["type"] == "text"] == ["Hello", payload, "Bye"]
    assert all("marks" not in node for node in nodes)
    wiki = to_wiki(doc)
    assert unescaped_specials(wiki) == []
    assert not re.search(r"[a-z]+:/|&(?!#\d+;|amp;)", wiki.replace("&#58;", "")), wiki
    assert wiki_visible(wiki) == f"Hello\n{payload}\nBye"


@pytest.mark.parametrize("payload", INJECTIONS)
def test_markup_in_html_text_is_shown_literally(payload):
    # The same payloads as HTML text (entity-encoded by the sender) are escaped just as well.
    encoded = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    doc = html(f"<p>{encoded}</p>")
    adf = to_adf(doc)
    check_adf(adf)
    assert adf_text(adf) == " ".join(payload.split())
    wiki = to_wiki(doc)
    assert unescaped_specials(wiki) == []
    assert wiki_visible(wiki) == " ".join(payload.split())


def test_only_http_https_and_mailto_anchors_become_links():
    # javascript:, data:, file: and relative hrefs lose the link but keep their text.
    doc = html(
        '<p><a href="javascript:alert(1)">one</a> <a href="data:text/html,x">two</a> '
        '<a href="file:///c:/x">three</a> <a href="/relative">four</a> '
        '<a href=" JAVASCRIPT:alert(1)">five</a> '
        '<a href="https://ok.example/a?b=1&amp;c=2">six</a> '
        '<a href="mailto:help@example.com">seven</a> '
        '<a href="http://x.example/a|b]c d">eight</a></p>'
    )
    adf = to_adf(doc)
    check_adf(adf)
    assert adf_text(adf) == "one two three four five six seven eight"
    assert links(adf) == [
        ("six", "https://ok.example/a?b=1&c=2"),
        ("seven", "mailto:help@example.com"),
        ("eight", "http://x.example/a%7Cb%5Dc%20d"),
    ]
    wiki = to_wiki(doc)
    assert wiki == (
        "one two three four five [six|https://ok.example/a?b=1&c=2] "
        "[seven|mailto:help@example.com] [eight|http://x.example/a%7Cb%5Dc%20d]"
    )


def test_link_text_cannot_break_out_of_the_link():
    # Brackets and pipes inside a real link's text become entities, not link syntax.
    doc = html('<a href="https://ok.example/">a] [~admin] |x</a>')
    wiki = to_wiki(doc)
    assert wiki == "[a&#93; &#91;\\~admin&#93; &#124;x|https://ok.example/]"
    assert wiki_visible(wiki) == "[a] [~admin] |x|https://ok.example/]"


def test_scripts_styles_frames_objects_comments_and_handlers_are_dropped():
    # Active content never reaches Jira; the text around it does.
    doc = html(
        "<head><title>T</title><script>evil()</script></head><body>"
        '<p onclick="evil()" style="color:red">Visible<script>evil()</script></p>'
        "<style>p{color:red}</style><iframe src='https://x'>frame text</iframe>"
        "<object data='x.swf'><param name=a value=b>object text</object>"
        "<!-- hidden comment --><![if !supportLists]>·<![endif]>"
        '<img src=x onerror="evil()"><svg><text>svg text</text></svg>'
        "<div style='display:none'>preheader <b>hidden</b></div>"
        "<noscript>enable js</noscript><template><p>tpl</p></template>After</body>"
    )
    adf = to_adf(doc)
    check_adf(adf)
    text = adf_text(adf)
    assert text == "Visible\n·After"
    assert "evil" not in json.dumps(adf) and "evil" not in to_wiki(doc)


def test_unknown_tags_keep_their_text():
    # Tags the converter does not know are dropped but their text stays.
    doc = html(
        "<p><o:p>Office</o:p> <custom-tag data-x=1>custom</custom-tag> <font>font</font></p>"
    )
    assert adf_text(to_adf(doc)) == "Office custom font"


def test_remote_and_tracking_images_are_dropped():
    # Remote images, data: images, pixels and unknown Content-IDs produce nothing.
    doc = html(
        '<p>a<img src="https://t.example/p.gif">b<img src="data:image/png;base64,AAAA">'
        '<img src="cid:known" width="1" height="1">'
        '<img src="cid:known" style="width:1px;height:1px">'
        '<img src="cid:unknown">c<img src="CID:%3CKnown%3E"></p>',
        inline_images={"<known>": "photo.jpg"},
    )
    adf = to_adf(doc)
    assert adf_text(adf) == "abc[image: photo.jpg]"
    assert to_wiki(doc) == "abc!photo.jpg!"


def test_image_with_markup_in_its_name_is_not_an_image_macro():
    # An attachment name that could carry parameters or a URL is shown as escaped text instead.
    doc = html('<img src="cid:a">', inline_images={"a": "x.png|width=9999"})
    wiki = to_wiki(doc)
    assert "!" not in wiki.replace("\\!", "")
    assert wiki_visible(wiki) == "[image: x.png|width=9999]"


@pytest.mark.parametrize(
    "nested",
    [
        "<div>" * 10_000 + "deep" + "</div>" * 10_000,
        "<ul><li>" * 10_000 + "deep",
        "<ol><li>" * 10_000 + "deep" + "</li></ol>" * 10_000,
        "<blockquote>" * 10_000 + "deep",
        "<table><tr><td>" * 10_000 + "deep",
        "<b><i><u><a href='https://x.example/'>" * 10_000 + "deep",
        "deep" + "<ul><li><blockquote><table><tr><td>h</td><td>" * 3_000,
        "<pre>" * 10_000 + "deep",
        "</div></li></td>" * 10_000 + "deep",
        "<h1><p>" * 10_000 + "deep",
    ],
)
def test_deep_nesting_is_flattened_in_linear_work(nested):
    # 10,000 levels of nesting neither crash nor make work grow faster than the input.

    def convert():  # type: ignore[no-untyped-def]
        doc = html(nested)
        return to_adf(doc), to_wiki(doc)

    (adf, wiki), calls = count_calls(convert)
    assert calls < linear_budget(len(nested))
    assert check_adf(adf) < 40
    assert "deep" in adf_text(adf)
    assert "deep" in wiki


def test_large_body_converts_in_linear_work_and_is_truncated_with_a_note():
    # A 200 KB body converts in work linear in its size and fits Jira's field limit with a note.
    paragraph = "<p>Status of job <b>{n}</b>: see [log] and *details* at 10:00 &amp; later.</p>\n"
    body = "".join(paragraph.format(n=n) for n in range(2700))
    assert len(body) > 200_000

    def convert():  # type: ignore[no-untyped-def]
        doc = html(
            body, header=[("From", "Alice <alice@example.com>")], oversized=[("big.zip", 31457280)]
        )
        return to_adf(doc), to_wiki(doc)

    (adf, wiki), calls = count_calls(convert)
    assert calls < linear_budget(len(body))
    check_adf(adf)
    assert ADF_MAX_CHARS * 0.95 < adf_size(adf) <= ADF_MAX_CHARS
    assert len(wiki) <= WIKI_MAX_CHARS
    assert adf["content"][0]["content"][0]["text"] == "From:"
    texts = [adf_text(node) for node in adf["content"][-2:]]
    assert texts == [TRUNCATION_NOTE, "Not attached (too large): big.zip (30.0 MB)"]
    assert wiki.endswith(
        "_… \\(truncated: the full email is attached as original.eml\\)_\n\n"
        "Not attached \\(too large\\): big.zip \\(30.0 MB\\)"
    )


def test_large_plain_text_without_blank_lines_is_cut_inside_the_paragraph():
    # A single huge paragraph is cut inside, not dropped whole.
    doc = plain("word " * 60_000)
    adf = to_adf(doc)
    check_adf(adf)
    assert len(adf["content"][0]["content"][0]["text"]) > 30_000
    assert adf_text(adf["content"][-1]) == TRUNCATION_NOTE
    assert 30_000 < len(to_wiki(doc)) <= WIKI_MAX_CHARS


def test_size_limit_counts_characters_outside_the_basic_plane_twice():
    # Jira counts UTF-16 units: a body of emoji is cut at half as many characters.
    doc = plain("😀" * 40_000)
    adf = to_adf(doc)
    assert adf_size(adf) <= ADF_MAX_CHARS
    assert 15_000 < adf_text(adf).count("😀") <= 16_384


def test_small_body_is_not_truncated():
    # A body under the limit is converted whole, with no note.
    doc = plain("short")
    assert TRUNCATION_NOTE not in json.dumps(to_adf(doc), ensure_ascii=False)
    assert to_wiki(doc) == "short"


def test_header_block_comes_first_then_a_rule():
    # From/To/Cc/Received are bold-labelled lines before a rule; values are escaped one-liners.
    doc = plain(
        "Body",
        header=[
            ("From", "Alice <alice@example.com>"),
            ("To", "[~admin] <support@example.com>"),
            ("Cc", "Bob\r\nInjected: header"),
            ("Received", "2026-11-27 10:00 UTC"),
        ],
    )
    adf = to_adf(doc)
    check_adf(adf)
    assert [node["type"] for node in adf["content"]] == ["paragraph", "rule", "paragraph"]
    header = adf["content"][0]["content"]
    labels = [node["text"] for node in header if node.get("marks") == [{"type": "strong"}]]
    assert labels == ["From:", "To:", "Cc:", "Received:"]
    assert adf_text(adf["content"][0]).split("\n") == [
        "From: Alice <alice@example.com>",
        "To: [~admin] <support@example.com>",
        "Cc: Bob Injected: header",
        "Received: 2026-11-27 10:00 UTC",
    ]
    wiki = to_wiki(doc)
    assert wiki == (
        "*From:* Alice <alice\\@example.com>\n*To:* \\[\\~admin\\] <support\\@example.com>\n"
        "*Cc:* Bob Injected: header\n*Received:* 2026-11-27 10:00 UTC\n\n----\n\nBody"
    ).replace("2026-11-27", "2026\\-11\\-27")


def test_comment_without_header_starts_with_the_body():
    # A follow-up (comment) has no header block and no rule.
    adf = to_adf(plain("Thanks, that fixed it."))
    assert adf["content"] == [
        {"type": "paragraph", "content": [{"type": "text", "text": "Thanks, that fixed it."}]}
    ]


def test_oversized_attachments_are_listed_at_the_end():
    # Attachments too large to upload are named with their size after the body.
    doc = plain("Body", oversized=[("big.zip", 31457280), ("huge.iso", 3 * 1024**3), ("a", 10)])
    adf = to_adf(doc)
    assert [adf_text(node) for node in adf["content"][1:]] == [
        "Not attached (too large): big.zip (30.0 MB)",
        "Not attached (too large): huge.iso (3.0 GB)",
        "Not attached (too large): a (10 bytes)",
    ]
    assert to_wiki(doc).endswith(
        "Not attached \\(too large\\): big.zip \\(30.0 MB\\)"
        + (
            "\n\nNot attached \\(too large\\): huge.iso \\(3.0 GB\\)"
            "\n\nNot attached \\(too large\\): a \\(10 bytes\\)"
        )
    )


def test_marks_map_to_adf_marks_and_wiki_effects():
    # Bold, italic, underline, strike and code become marks; code stands alone (ADF rule).
    doc = html(
        "<p><b>b</b> <i>i</i> <u>u</u> <s>s</s> <code>c</code> <b><code>bc</code></b> "
        "mid<b>word</b>bold <span style='font-weight:bold'>styled</span></p>"
    )
    adf = to_adf(doc)
    check_adf(adf)
    marked = {
        node["text"]: [mark["type"] for mark in node.get("marks", [])]
        for node in adf_nodes(adf)
        if node["type"] == "text" and node.get("marks")
    }
    assert marked == {
        "b": ["strong"], "i": ["em"], "u": ["underline"], "s": ["strike"], "c": ["code"],
        "bc": ["code"], "word": ["strong"], "styled": ["strong"],
    }  # fmt: skip
    assert to_wiki(doc) == ("*b* _i_ +u+ -s- {{c}} {{bc}} mid{*}word{*}bold *styled*")


def test_code_span_text_cannot_close_the_code_span():
    # Braces inside {{monospace}} are entities, so "}}" in the text does not end it.
    wiki = to_wiki(html("<code>a}} *x* {{b</code>"))
    assert wiki == "{{a&#125;&#125; \\*x\\* &#123;&#123;b}}"


def test_preformatted_text_goes_in_noformat_which_it_cannot_close():
    # <pre> becomes a code block; a {noformat} inside it is escaped line by line instead.
    doc = html("<pre>\nline 1\n  *indented*\n</pre><pre>x\n{noformat}\n{panel}y</pre>")
    adf = to_adf(doc)
    check_adf(adf)
    assert [node["type"] for node in adf["content"]] == ["codeBlock", "codeBlock"]
    assert adf["content"][0]["content"][0]["text"] == "line 1\n  *indented*"
    wiki = to_wiki(doc)
    assert wiki.startswith("{noformat}\nline 1\n  *indented*\n{noformat}\n\n")
    assert wiki.count("{noformat}") == 2
    assert wiki.endswith("{{x}}\n{{&#123;noformat&#125;}}\n{{&#123;panel&#125;y}}")


def test_headings_tables_and_rules():
    # Headings keep their level, header cells stay headers, <hr> is a rule.
    doc = html(
        "<h2>Title *x*</h2><hr><table><tr><th>Name</th><th>Value</th></tr>"
        "<tr><td>a|b</td><td><ul><li>one</li></ul></td></tr><tr><td>short row</td></tr></table>"
    )
    adf = to_adf(doc)
    check_adf(adf)
    assert adf["content"][0] == {
        "type": "heading",
        "attrs": {"level": 2},
        "content": [{"type": "text", "text": "Title *x*"}],
    }
    assert adf["content"][1] == {"type": "rule"}
    rows = adf["content"][2]["content"]
    assert [cell["type"] for cell in rows[0]["content"]] == ["tableHeader", "tableHeader"]
    assert [len(row["content"]) for row in rows] == [2, 2, 2]
    assert to_wiki(doc) == (
        "h2. Title \\*x\\*\n\n----\n\n||Name||Value||\n|a\\|b|• one|\n|short row| |"
    )


def test_blocks_adf_forbids_in_lists_and_quotes_are_rewritten():
    # A heading in a list item becomes a bold paragraph; a table in a quote becomes paragraphs.
    doc = html(
        "<ul><li><h3>Heading</h3><hr><blockquote>q</blockquote></li><li><ul><li>x</li></ul></li></ul>"
        "<blockquote><table><tr><td>c1</td><td>c2</td></tr></table><h1>h</h1></blockquote>"
    )
    adf = to_adf(doc)
    check_adf(adf)
    first_item = adf["content"][0]["content"][0]["content"]
    assert first_item[0]["content"][0]["marks"] == [{"type": "strong"}]
    assert adf_text(adf["content"][1]).split("\n") == ["c1", "c2", "h"]


def test_bidi_controls_and_invisible_characters_are_removed_from_bodies():
    # Overrides, isolates, zero-width spaces and C0 controls go; RTL text and emoji stay.
    body = "Invoice \u202egnp.exe\u202c ok\u2066x\u2069\u200b\x00\x07\x1b[31m\u00ad"
    body += "\nשלום עולם مرحبا \u200fA\u200e 👨\u200d👩\u200d👧 tab\there"  # noqa: RUF001
    adf = to_adf(plain(body))
    check_adf(adf)
    assert adf_text(adf) == (
        "Invoice gnp.exe okx[31m\nשלום עולם مرحبا \u200fA\u200e 👨\u200d👩\u200d👧 tab\there"  # noqa: RUF001
    )


def test_html_entities_for_bidi_controls_are_removed_too():
    # Characters arriving as HTML entities are cleaned after decoding.
    adf = to_adf(html("<p>a&#8238;b&#x2067;c&#0;d&#xFEFF;e</p>"))
    assert adf_text(adf) == "ab\ufffdde".replace("\ufffd", "c\ufffd")


def test_summary_is_one_clean_line_of_at_most_255_characters():
    # Subjects become single-line summaries without controls, bidi overrides or excess length.
    assert (
        summary_from_subject("  Re: printer\r\n\tbroken\x00again  ") == "Re: printer broken again"
    )
    assert summary_from_subject("Invoice \u202egnp.exe\u202c \u200f") == "Invoice gnp.exe"
    assert summary_from_subject("") == "(no subject)"
    assert summary_from_subject(" \u200b\n ") == "(no subject)"
    assert summary_from_subject(None) == "(no subject)"
    assert summary_from_subject("שלום עולם") == "שלום עולם"
    long = summary_from_subject("x" * 300)
    assert len(long) == 255 and long.endswith("…")
    assert summary_from_subject("y" * 255) == "y" * 255


def test_text_preview_is_a_short_single_line():
    # The preview collapses the body to one line and cuts it with an ellipsis.
    doc = html("<p>Hello</p><ul><li>world</li></ul>" + "<p>more</p>" * 100)
    assert text_preview(doc, 20) == "Hello world more mo…"


def test_line_starts_are_escaped_even_after_hard_breaks():
    # Text that would start a heading, quote or numbered list on a new line is neutralised.
    wiki = to_wiki(plain("x\nh3. y\n  bq. z\n#1 w"))
    assert wiki == "x\n&#104;3. y\n  &#98;q. z\n&#35;1 w"


def test_ampersand_and_entities_show_as_typed():
    # "&lt;" typed in an email stays "&lt;" in Jira rather than becoming "<".
    doc = plain("AT&T &lt;tag&gt; &#123; & done")
    wiki = to_wiki(doc)
    assert wiki == "AT&T &amp;lt;tag&amp;gt; &amp;#123; & done"
    assert wiki_visible(wiki) == "AT&T &lt;tag&gt; &#123; & done"


def test_plain_urls_are_not_linkified():
    # URLs written as text are not turned into links (only real <a href> anchors are).
    doc = plain("see https://example.com/x and mailto:a@b.example")
    assert links(to_adf(doc)) == []
    assert to_wiki(doc) == "see https&#58;//example.com/x and mailto&#58;a\\@b.example"


def test_empty_bodies_give_an_empty_but_valid_document():
    # No body (or only whitespace and dropped content) still yields a valid document.
    for doc in (plain(""), html(""), html("<p>&nbsp;</p><div><br></div><script>x</script>")):
        adf = to_adf(doc)
        check_adf(adf)
        assert adf["content"] == []
        assert to_wiki(doc) == ""


def test_malformed_html_is_parsed_forgivingly():
    # Unclosed and mis-nested tags still give a sensible document.
    doc = html("<p>one<p>two<b>bold<i>both</b>italic?</i><li>stray item<td>stray cell</p>three")
    adf = to_adf(doc)
    check_adf(adf)
    assert adf_text(adf).split("\n") == ["one", "twoboldbothitalic?", "stray item", "stray cell",
                                         "three"]  # fmt: skip


_SOUP_TAGS = [
    "p", "div", "b", "i", "u", "s", "code", "a", "ul", "ol", "li", "table", "tr", "td", "th",
    "blockquote", "pre", "h1", "h4", "br", "hr", "img", "span", "script", "x-y",
]  # fmt: skip
_SOUP_TEXT = ["text", " ", "{panel}", "[~a]", "*", "h1. ", "\n# ", "&amp;", "&lt;", "\u202e", "|",
              "\\", "!x!", "😀", "שלום", "\x00"]  # fmt: skip


@pytest.mark.parametrize("seed", range(200))
def test_random_tag_soup_always_gives_valid_safe_output(seed):
    # Any mix of tags, stray end tags and markup-laden text yields valid ADF and inert wiki text.
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(1, 80)):
        roll = rng.random()
        tag = rng.choice(_SOUP_TAGS)
        if roll < 0.4:
            attrs = rng.choice(["", ' href="https://x.example/"', ' href="javascript:x"',
                                ' src="cid:c"', ' style="display:none"'])  # fmt: skip
            parts.append(f"<{tag}{attrs}>")
        elif roll < 0.6:
            parts.append(f"</{tag}>")
        else:
            parts.append(rng.choice(_SOUP_TEXT))
    doc = html("".join(parts), inline_images={"c": "pic.png"})
    adf = to_adf(doc)
    check_adf(adf)
    wiki = to_wiki(doc)
    assert "\u202e" not in wiki and "\x00" not in wiki
    # {noformat} content is literal; headings, list markers and table pipes at a line start are
    # our own markup, so what follows them is what must be inert.
    outside_noformat = re.sub(r"(?s)\{noformat\}\n.*?\n\{noformat\}", "", wiki)
    for line in outside_noformat.split("\n"):
        line = re.sub(r"^(h[14]\. |[*#]+ |\|\|?)", "", line)
        assert not re.match(r"\s*(h[1-6]\.|bq\.|#)", line), line
        assert "{panel}" not in line and "[~a]" not in line
