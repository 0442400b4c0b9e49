"""Jira comments rendered for the customer's email: what they can read, and nothing that runs."""

from __future__ import annotations

import random
from html.parser import HTMLParser

import pytest
from work import count_calls, linear_budget

from ticket_manager.content import RenderedComment, jira_to_email
from ticket_manager.content.outbound import ALLOWED_TAGS, sanitize

# A comment as Jira Cloud's REST v3 returns it (GET /rest/api/3/issue/HELP-12/comment).
CLOUD_COMMENT = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "Hi "},
                {
                    "type": "mention",
                    "attrs": {
                        "id": "5b10ac8d82e05b22cc7d4ef5",
                        "text": "@Bob Example",
                        "accessLevel": "",
                        "localId": "a1b2c3",
                    },
                },
                {"type": "text", "text": ", please install the "},
                {
                    "type": "text",
                    "text": "new driver",
                    "marks": [
                        {"type": "strong"},
                        {"type": "link", "attrs": {"href": "https://support.example.com/drv"}},
                    ],
                },
                {"type": "text", "text": " "},
                {"type": "emoji", "attrs": {"shortName": ":smile:", "id": "1f604", "text": "😄"}},
            ],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "Uninstall"}]},
                        {
                            "type": "orderedList",
                            "attrs": {"order": 1},
                            "content": [
                                {
                                    "type": "listItem",
                                    "content": [
                                        {
                                            "type": "paragraph",
                                            "content": [{"type": "text", "text": "Open Settings"}],
                                        }
                                    ],
                                },
                                {
                                    "type": "listItem",
                                    "content": [
                                        {
                                            "type": "paragraph",
                                            "content": [{"type": "text", "text": "Remove it"}],
                                        }
                                    ],
                                },
                            ],
                        },
                    ],
                },
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "Reboot"}]}
                    ],
                },
            ],
        },
        {
            "type": "codeBlock",
            "attrs": {"language": "powershell"},
            "content": [{"type": "text", "text": "Get-Printer | Where Name -lt 'B' <# x #>"}],
        },
        {
            "type": "table",
            "attrs": {"isNumberColumnEnabled": False, "layout": "default", "localId": "t1"},
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": "tableHeader",
                            "attrs": {},
                            "content": [
                                {
                                    "type": "paragraph",
                                    "content": [
                                        {
                                            "type": "text",
                                            "text": "Model",
                                            "marks": [{"type": "strong"}],
                                        }
                                    ],
                                }
                            ],
                        },
                        {
                            "type": "tableHeader",
                            "attrs": {},
                            "content": [
                                {
                                    "type": "paragraph",
                                    "content": [{"type": "text", "text": "Driver"}],
                                }
                            ],
                        },
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": "tableCell",
                            "attrs": {},
                            "content": [
                                {
                                    "type": "paragraph",
                                    "content": [{"type": "text", "text": "LJ 400"}],
                                }
                            ],
                        },
                        {
                            "type": "tableCell",
                            "attrs": {"colspan": 1},
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": "v2.1"}]}
                            ],
                        },
                    ],
                },
            ],
        },
        {
            "type": "panel",
            "attrs": {"panelType": "warning"},
            "content": [
                {
                    "type": "paragraph",
                    "content": [{"type": "text", "text": "Restart after installing."}],
                }
            ],
        },
        {
            "type": "mediaSingle",
            "attrs": {"layout": "center"},
            "content": [
                {
                    "type": "media",
                    "attrs": {
                        "id": "0d3f9d4e-8c1a-4c52-9d5b-2f7c5d2c1e11",
                        "type": "file",
                        "collection": "",
                        "width": 800,
                        "height": 600,
                        "alt": "screenshot.png",
                    },
                }
            ],
        },
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "Status: "},
                {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
                {"type": "text", "text": " see "},
                {
                    "type": "inlineCard",
                    "attrs": {"url": "https://example.atlassian.net/browse/HELP-12"},
                },
                {"type": "hardBreak"},
                {"type": "text", "text": "Support team", "marks": [{"type": "em"}]},
            ],
        },
    ],
}

# A comment as Jira Server / Data Center stores it (REST v2 ``body``).
SERVER_COMMENT = (
    "h2. Printer driver\r\n"
    "Hi [~bob.example], please install the *new driver* from "
    "[our portal|https://support.example.com/drv] (_takes 5 minutes_).\r\n"
    "Keep {{C:\\Drivers}} as it is, -old steps- are +obsolete+.\r\n"
    "\r\n"
    "# Uninstall\r\n"
    "## Open Settings\r\n"
    "## Remove it\r\n"
    "# Reboot\r\n"
    "\r\n"
    "||Model||Driver||\r\n"
    "|LJ 400|[v2.1|https://support.example.com/v21]|\r\n"
    "\r\n"
    "{code:powershell}\r\n"
    "Get-Printer | Where Name -lt 'B' *not bold*\r\n"
    "{code}\r\n"
    "{quote}Please restart after installing.{quote}\r\n"
    "bq. A one-line quote\r\n"
    "!screenshot.png|thumbnail!\r\n"
    "{color:red}Important{color}: line one\\\\line two\r\n"
    "----\r\n"
    "Regards, Support"
)


class _Tags(HTMLParser):
    """The tags and attributes of an HTML fragment, and its visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def links(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "a"]

    def visible(self) -> str:
        return "".join(self.text)


def assert_safe(rendered: RenderedComment) -> None:
    """Only allow-listed tags; links only http(s)/mailto with rel; no event handlers or scripts."""
    tags = _Tags(rendered.html)
    assert tags.names() <= ALLOWED_TAGS
    for tag, attrs in tags.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "a":
            href = attrs.get("href") or ""
            assert href.startswith(("http://", "https://", "mailto:")) or "href" not in attrs
            assert attrs.get("rel") == "noopener noreferrer"
    assert "<script" not in rendered.html.lower()


# --------------------------------------------------------------------------------------------
# ADF (Jira Cloud)


def test_adf_mention_emoji_status_card_and_media_render_as_text() -> None:
    # Mentions, emoji, status lozenges, smart links and images appear as readable text.
    rendered = jira_to_email(CLOUD_COMMENT)
    assert_safe(rendered)
    visible = _Tags(rendered.html).visible()
    for expected in (
        "Hi @Bob Example, please",
        "😄",
        "IN PROGRESS",
        "[attachment: screenshot.png]",
    ):
        assert expected in visible
        assert expected in rendered.text
    assert "@@" not in rendered.text
    assert {
        "href": "https://example.atlassian.net/browse/HELP-12",
        "rel": "noopener noreferrer",
    } in (_Tags(rendered.html).links())


def test_adf_link_is_a_safe_anchor_and_text_shows_the_url() -> None:
    # A link mark becomes <a href rel="noopener noreferrer">; the text part shows "text <url>".
    rendered = jira_to_email(CLOUD_COMMENT)
    assert (
        '<a href="https://support.example.com/drv" rel="noopener noreferrer">'
        "<strong>new driver</strong></a>"
    ) in rendered.html
    assert "new driver <https://support.example.com/drv>" in rendered.text


def test_adf_nested_lists_keep_their_structure() -> None:
    # A numbered list inside a bullet item stays nested, in HTML and in the text part.
    rendered = jira_to_email(CLOUD_COMMENT)
    assert "<ul><li>Uninstall\n<ol><li>Open Settings</li><li>Remove it</li></ol></li>" in (
        rendered.html
    )
    assert "- Uninstall\n  1. Open Settings\n  2. Remove it\n- Reboot" in rendered.text


def test_adf_code_block_is_preformatted_and_escaped() -> None:
    # A code block becomes <pre> with its text escaped, verbatim in the text part.
    rendered = jira_to_email(CLOUD_COMMENT)
    assert "<pre>Get-Printer | Where Name -lt 'B' &lt;# x #&gt;</pre>" in rendered.html
    assert "Get-Printer | Where Name -lt 'B' <# x #>" in rendered.text


def test_adf_table_renders_header_and_cells() -> None:
    # Header cells become <th>, cells <td>; the text part writes rows with " | ".
    rendered = jira_to_email(CLOUD_COMMENT)
    assert "<tr><th><strong>Model</strong></th><th>Driver</th></tr>" in rendered.html
    assert "<tr><td>LJ 400</td><td>v2.1</td></tr>" in rendered.html
    assert "Model | Driver\nLJ 400 | v2.1" in rendered.text


def test_adf_panel_is_a_highlighted_box() -> None:
    # A warning panel is a div with a coloured left border; in text it reads like a quote.
    rendered = jira_to_email(CLOUD_COMMENT)
    divs = [attrs for tag, attrs in _Tags(rendered.html).tags if tag == "div"]
    assert len(divs) == 1 and "border-left:4px solid #ff991f" in (divs[0]["style"] or "")
    assert "> Restart after installing." in rendered.text


def test_adf_hard_break_and_marks() -> None:
    # A hard break is <br> (a newline in text) and marks become their tags.
    rendered = jira_to_email(CLOUD_COMMENT)
    assert "HELP-12</a><br><em>Support team</em>" in rendered.html
    assert "HELP-12\nSupport team" in rendered.text


def test_adf_script_in_text_comes_out_escaped() -> None:
    # Markup typed into a comment is shown as text, never parsed as HTML.
    payload = '<script>alert(1)</script><img src=x onerror=alert(2)>"&'
    rendered = jira_to_email(
        {"type": "doc", "version": 1, "content": [_paragraph({"type": "text", "text": payload})]}
    )
    assert_safe(rendered)
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in rendered.html
    )
    assert _Tags(rendered.html).visible() == payload
    assert rendered.text == payload


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example.com/x",
        "/relative/path",
    ],
)
def test_adf_unsafe_links_are_dropped_and_text_kept(href: str) -> None:
    # A link to anything but http(s)/mailto keeps its text and loses the link.
    text = {"type": "text", "text": "click", "marks": [{"type": "link", "attrs": {"href": href}}]}
    card = {"type": "inlineCard", "attrs": {"url": href}}
    rendered = jira_to_email({"type": "doc", "content": [_paragraph(text, card)]})
    assert_safe(rendered)
    assert _Tags(rendered.html).links() == []
    assert "script" not in rendered.html.lower() or "alert" not in rendered.html
    assert rendered.text == "click"


def test_adf_mailto_link_is_kept() -> None:
    # A mailto link stays a link; the text part shows the address once.
    text = {
        "type": "text",
        "text": "support@example.com",
        "marks": [{"type": "link", "attrs": {"href": "mailto:support@example.com"}}],
    }
    rendered = jira_to_email({"type": "doc", "content": [_paragraph(text)]})
    assert _Tags(rendered.html).links() == [
        {"href": "mailto:support@example.com", "rel": "noopener noreferrer"}
    ]
    assert rendered.text == "support@example.com"


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"type": "doc"},
        {"type": "doc", "content": None},
        {"type": "doc", "content": "text"},
        {"type": "doc", "content": [None, 1, "x", [], {"content": 5}]},
        {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text"}]}]},
        {"type": "doc", "content": [{"type": "text", "text": 42, "marks": "strong"}]},
        {"type": "doc", "content": [{"type": "heading", "attrs": {"level": "9"}}]},
        {"type": "doc", "content": [{"type": "table", "content": [{"content": [1, None]}]}]},
        {"type": "doc", "content": [{"type": "bulletList", "content": [{"type": "listItem"}]}]},
        {"type": "doc", "content": [{"type": "mention", "attrs": None}]},
        {"type": "doc", "content": [{"type": "date", "attrs": {"timestamp": "9" * 40}}]},
        {"type": "doc", "content": [{"type": "text", "text": "x", "marks": [None, {"type": 3}]}]},
        [],
        None,
        42,
        ["not", "a", "doc"],
    ],
)
def test_malformed_adf_never_raises(document: object) -> None:
    # Broken or wrongly typed ADF renders what it can and never raises.
    rendered = jira_to_email(document)  # type: ignore[arg-type]
    assert isinstance(rendered.html, str) and isinstance(rendered.text, str)
    assert_safe(rendered)


def test_malformed_adf_keeps_what_is_readable() -> None:
    # Text found at the wrong level or inside unknown nodes is still shown.
    document = {
        "type": "doc",
        "content": [
            {"type": "text", "text": "loose text"},
            {"type": "futureNode", "content": [_paragraph({"type": "text", "text": "inside"})]},
            {"type": "paragraph", "content": [{"type": "mystery", "content": [_text("deep")]}]},
            {"type": "mention", "attrs": {}},
            {"type": "date", "attrs": {"timestamp": "1762164000000"}},
        ],
    }
    rendered = jira_to_email(document)
    # Inline nodes left at block level are gathered into one paragraph.
    assert rendered.text == "loose text\n\ninside\n\ndeep\n\n@user2025-11-03"


@pytest.mark.parametrize(
    "wrapper",
    [
        lambda inner: {"type": "blockquote", "content": [inner]},
        lambda inner: {"type": "bulletList", "content": [{"type": "listItem", "content": [inner]}]},
        lambda inner: {"type": "panel", "attrs": {"panelType": "info"}, "content": [inner]},
        lambda inner: {"type": "unknownWrapper", "content": [inner]},
        lambda inner: {"type": "paragraph", "content": [inner]},
        lambda inner: {
            "type": "table",
            "content": [
                {"type": "tableRow", "content": [{"type": "tableCell", "content": [inner]}]}
            ],
        },
        lambda inner: {"type": "expand", "attrs": {"title": "t"}, "content": [inner]},
    ],
)
def test_deep_nesting_is_bounded(wrapper) -> None:  # type: ignore[no-untyped-def]
    # 10,000 levels of nesting render in linear work, without recursion errors, keeping the text.
    node: dict = _paragraph(_text("bottom <b>"))
    for _ in range(10_000):
        node = wrapper(node)
    rendered, calls = count_calls(jira_to_email, {"type": "doc", "version": 1, "content": [node]})
    assert calls < linear_budget(10_000)
    assert "bottom &lt;b&gt;" in rendered.html
    assert "bottom <b>" in rendered.text
    assert_safe(rendered)


def test_random_malformed_adf_never_raises() -> None:
    # Seeded random trees of valid and invalid nodes always render safely.
    rng = random.Random(1234)
    kinds = [
        "doc", "paragraph", "text", "heading", "bulletList", "orderedList", "listItem", "table",
        "tableRow", "tableCell", "tableHeader", "panel", "blockquote", "codeBlock", "mention",
        "emoji", "status", "inlineCard", "media", "mediaGroup", "hardBreak", "rule", "taskList",
        "taskItem", "expand", "date", None, 5, "",
    ]  # fmt: skip
    values = [None, 1, "x", "<script>", [], {}, "javascript:alert(1)", True, -1, "9" * 30]

    def tree(depth: int) -> object:
        if depth > 6 or rng.random() < 0.2:
            return rng.choice(values)
        node: dict = {"type": rng.choice(kinds)}
        if rng.random() < 0.8:
            node["content"] = [tree(depth + 1) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.5:
            node["attrs"] = {k: rng.choice(values) for k in ("text", "url", "level", "href")}
        if rng.random() < 0.5:
            node["text"] = rng.choice(values)
        if rng.random() < 0.3:
            node["marks"] = [{"type": "link", "attrs": {"href": rng.choice(values)}}, "x"]
        return node

    for _ in range(300):
        assert_safe(jira_to_email({"type": "doc", "content": [tree(0) for _ in range(3)]}))


def test_task_list_shows_checkboxes() -> None:
    # Task items read "[x]" when done and "[ ]" when not.
    document = {
        "type": "doc",
        "content": [
            {
                "type": "taskList",
                "attrs": {"localId": "l"},
                "content": [
                    {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [_text("Backup")]},
                    {"type": "taskItem", "attrs": {"state": "TODO"}, "content": [_text("Update")]},
                ],
            }
        ],
    }
    assert jira_to_email(document).text == "- [x] Backup\n- [ ] Update"


# --------------------------------------------------------------------------------------------
# Wiki markup (Jira Server / Data Center)


def test_wiki_comment_renders_like_jira_shows_it() -> None:
    # A typical Server comment keeps headings, effects, links, mentions, lists and tables.
    rendered = jira_to_email(SERVER_COMMENT)
    assert_safe(rendered)
    html = rendered.html
    assert "<h2>Printer driver</h2>" in html
    assert "Hi @bob.example, please install the <strong>new driver</strong> from " in html
    assert (
        '<a href="https://support.example.com/drv" rel="noopener noreferrer">our portal</a>' in html
    )
    assert "(<em>takes 5 minutes</em>)" in html
    assert "<code>C:\\Drivers</code>" in html
    assert "<s>old steps</s> are <u>obsolete</u>" in html
    assert "<ol><li>Uninstall\n<ol><li>Open Settings</li><li>Remove it</li></ol></li>" in html
    assert "<tr><th>Model</th><th>Driver</th></tr>" in html
    assert "<pre>Get-Printer | Where Name -lt 'B' *not bold*</pre>" in html
    assert "<blockquote><p>Please restart after installing.</p></blockquote>" in html
    assert "<blockquote><p>A one-line quote</p></blockquote>" in html
    assert "[image: screenshot.png]" in html
    assert "Important: line one<br>line two" in html
    assert "<hr>" in html
    assert "{color" not in html


def test_wiki_comment_plain_text_part() -> None:
    # The text part of a Server comment reads naturally: list markers, links, table rows.
    text = jira_to_email(SERVER_COMMENT).text
    assert text.startswith("Printer driver\n\nHi @bob.example, please install the new driver")
    assert "our portal <https://support.example.com/drv>" in text
    assert "1. Uninstall\n   1. Open Settings\n   2. Remove it\n2. Reboot" in text
    assert "Model | Driver\nLJ 400 | v2.1 <https://support.example.com/v21>" in text
    assert "> Please restart after installing." in text
    assert "Important: line one\nline two" in text


@pytest.mark.parametrize(
    ("markup", "html", "text"),
    [
        ("[click|javascript:alert(1)]", "<p>click</p>", "click"),
        ("[javascript:alert(1)]", "<p>[javascript:alert(1)]</p>", "[javascript:alert(1)]"),
        ("[see above]", "<p>[see above]</p>", "[see above]"),
        ("[https://example.com]", '<p><a href="https://example.com" rel="noopener noreferrer">'
         "https://example.com</a></p>", "https://example.com"),
        ("[mail us|mailto:help@example.com]", '<p><a href="mailto:help@example.com" '
         'rel="noopener noreferrer">mail us</a></p>', "mail us <mailto:help@example.com>"),
        ("[^report.pdf]", "<p>[attachment: report.pdf]</p>", "[attachment: report.pdf]"),
        ("[~jsmith] please check", "<p>@jsmith please check</p>", "@jsmith please check"),
        ("!diagram.png!", "<p>[image: diagram.png]</p>", "[image: diagram.png]"),
        ("Wow! Really!", "<p>Wow! Really!</p>", "Wow! Really!"),
    ],
)  # fmt: skip
def test_wiki_links_mentions_and_images(markup: str, html: str, text: str) -> None:
    # Wiki links keep only http(s)/mailto targets; mentions and images become text.
    rendered = jira_to_email(markup)
    assert_safe(rendered)
    assert rendered.html == html
    assert rendered.text == text


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("\\*not bold\\*", "*not bold*"),
        ("2*3*4 = 24", "2*3*4 = 24"),
        ("well-known and semi-final", "well-known and semi-final"),
        ("a -- b --- c", "a -- b --- c"),
        ("* not closed", "- not closed"),
        ("{{unclosed", "{{unclosed"),
        ("x_y_z snake_case", "x_y_z snake_case"),
        ("&lt;b&gt; &amp; {color:#ff0000}red{color}", "<b> & red"),
        ("{noformat}\n*raw* [x|https://e.com]\n{noformat}", "*raw* [x|https://e.com]"),
        ("{panel:title=Note}\nInside\n{panel}", "> Inside"),
        ("{quote}\nunclosed quote", "> unclosed quote"),
    ],
)
def test_wiki_edge_cases_read_as_jira_would(markup: str, text: str) -> None:
    # Escapes, word-internal markers, dashes and unclosed macros do not produce false markup.
    assert jira_to_email(markup).text == text


def test_wiki_html_is_escaped() -> None:
    # HTML typed in a Server comment is shown, not run.
    rendered = jira_to_email('<script>alert(1)</script> <a href="javascript:x">y</a> *<b>*')
    assert_safe(rendered)
    assert _Tags(rendered.html).links() == []
    assert rendered.text == '<script>alert(1)</script> <a href="javascript:x">y</a> <b>'


def test_wiki_deep_lists_and_long_lines_are_bounded() -> None:
    # 10,000 list levels and a 200,000-character line of markers render in linear work.
    deep, deep_calls = count_calls(jira_to_email, "*" * 10_000 + " deep item")
    wide, wide_calls = count_calls(jira_to_email, "*a* _b_ -c- +d+ " * 12_500)
    assert deep_calls < linear_budget(10_010)
    assert wide_calls < linear_budget(200_000)
    assert "deep item" in deep.text and deep.html.count("<ul>") <= 16
    assert wide.html.count("<strong>a</strong>") == 12_500


def test_sanitize_is_a_real_allow_list() -> None:
    # The final nh3 pass removes anything outside the allow-list, even if a renderer let it in.
    cleaned = sanitize(
        '<p onclick="x()">a</p><script>alert(1)</script><iframe src="https://e"></iframe>'
        '<a href="javascript:alert(1)">b</a><div style="position:fixed;border-left:1px solid red">'
        '<img src="https://e/x.png">c</div><a href="https://ok.example">d</a>'
    )
    assert cleaned == (
        '<p>a</p><a rel="noopener noreferrer">b</a><div style="border-left:1px solid red">c</div>'
        '<a href="https://ok.example" rel="noopener noreferrer">d</a>'
    )


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _paragraph(*inlines: dict) -> dict:
    return {"type": "paragraph", "content": list(inlines)}


def test_random_wiki_markup_never_raises() -> None:
    # Seeded random sequences of wiki notation always render, and never as live HTML.
    rng = random.Random(7)
    atoms = [
        "*", "_", "-", "+", "{{", "}}", "[", "]", "|", "||", "!", "\\", "\\\\", "{code}",
        "{quote}", "{panel:title=x}", "{noformat}", "{color:red}", "{color}", "h1. ", "bq. ",
        "# ", "* ", "** ", "----", "\n", "\n\n", "a", "word ", "https://x.example", ".png",
        "javascript:x", "~u", "^f", "&amp;", "&#0;", "<script>", "\r", " ",
    ]  # fmt: skip
    for _ in range(1000):
        markup = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 60)))
        assert_safe(jira_to_email(markup))
