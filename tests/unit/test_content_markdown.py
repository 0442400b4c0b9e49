"""Markdown bodies from the REST API turned into Jira content: structure kept, nothing injected."""

from __future__ import annotations

import random
import re
import sys

import pytest
from test_content import (
    adf_nodes,
    adf_text,
    check_adf,
    links,
    unescaped_specials,
    wiki_visible,
)
from work import count_calls, linear_budget

from ticket_manager.content import (
    ADF_MAX_CHARS,
    MAX_NESTING,
    TRUNCATION_NOTE,
    WIKI_MAX_CHARS,
    EmailContent,
    adf_size,
    escape_text,
    markdown_to_blocks,
    to_adf,
    to_wiki,
)
from ticket_manager.content.document import (
    BlockQuote,
    CodeBlock,
    HardBreak,
    Heading,
    ImageRef,
    ListBlock,
    Paragraph,
    Rule,
    Table,
    TableCell,
    Text,
    plain_text,
)


def t(text: str, *marks: str, href: str | None = None) -> Text:
    return Text(text, frozenset(marks), href)


def p(*inlines) -> Paragraph:  # type: ignore[no-untyped-def]
    return Paragraph(list(inlines))


def md(body: str, **kwargs) -> EmailContent:  # type: ignore[no-untyped-def]
    return EmailContent.from_text(body, "markdown", **kwargs)


# ---------------------------------------------------------------------------------------------
# Each construct


CONSTRUCTS = [
    # A single newline inside a paragraph is a space (CommonMark); blank lines split paragraphs.
    ("one\ntwo\n\nthree", [p(t("one two")), p(t("three"))], "one two\n\nthree"),
    # Two trailing spaces or a backslash end a line.
    ("a  \nb\\\nc", [p(t("a"), HardBreak(), t("b"), HardBreak(), t("c"))], "a\nb\nc"),
    (
        "# One\n\n###### Six\n\nSetext\n---",
        [Heading(1, [t("One")]), Heading(6, [t("Six")]), Heading(2, [t("Setext")])],
        "h1. One\n\nh6. Six\n\nh2. Setext",
    ),
    ("####### seven", [p(t("####### seven"))], "&#35;###### seven"),
    (
        "**b** *i* _i_ ~~s~~ `c` ***bi*** **`code in bold`** in*word*",
        [p(t("b", "strong"), t(" "), t("i", "em"), t(" "), t("i", "em"), t(" "), t("s", "strike"),
           t(" "), t("c", "code"), t(" "), t("bi", "strong", "em"), t(" "),
           t("code in bold", "code"), t(" in"), t("word", "em"))],
        "*b* _i_ _i_ -s- {{c}} *_bi_* {{code in bold}} in{_}word{_}",
    ),
    ("snake_case and 2 * 3", [p(t("snake_case and 2 * 3"))], "snake\\_case and 2 \\* 3"),
    ("\\*not em\\* &copy; &amp;lt; &#35;", [p(t("*not em* © &lt; #"))],
     "\\*not em\\* © &amp;lt; #"),
    (
        "[site](https://x.example/a?b=1&c=2 \"title\") <https://auto.example/> <help@example.com>",
        [p(t("site", href="https://x.example/a?b=1&c=2"), t(" "),
           t("https://auto.example/", href="https://auto.example/"), t(" "),
           t("help@example.com", href="mailto:help@example.com"))],
        "[site|https://x.example/a?b=1&c=2] [https&#58;//auto.example/|https://auto.example/] "
        "[help\\@example.com|mailto:help@example.com]",
    ),
    (
        "[**bold** link][ref]\n\n[ref]: https://ref.example/",
        [p(t("bold", "strong", href="https://ref.example/"),
           t(" link", href="https://ref.example/"))],
        "[*bold* link|https://ref.example/]",
    ),
    # Plain URLs stay text, as in emails.
    ("see https://x.example/", [p(t("see https://x.example/"))], "see https&#58;//x.example/"),
    # Images are their alt text, linked to the image; inside a link they take the link.
    (
        "![Build *log*](https://img.example/a.png) ![](https://img.example/b.png) "
        "[![logo](https://img.example/c.png)](https://site.example/) ![x](ftp://h/x.png)",
        [p(t("Build log", href="https://img.example/a.png"), t(" "),
           t("https://img.example/b.png", href="https://img.example/b.png"), t(" "),
           t("logo", href="https://site.example/"), t(" x"))],
        "[Build log|https://img.example/a.png] "
        "[https&#58;//img.example/b.png|https://img.example/b.png] [logo|https://site.example/] x",
    ),
    # A quote inside a quote is merged into it (neither ADF nor {quote} nests).
    ("> quoted\n>\n> > nested", [BlockQuote([p(t("quoted")), p(t("nested"))])],
     "{quote}\nquoted\n\nnested\n{quote}"),
    (
        "- a\n- b\n  1. c\n  2. d\n- e",
        [ListBlock(False, [
            [p(t("a"))],
            [p(t("b")), ListBlock(True, [[p(t("c"))], [p(t("d"))]])],
            [p(t("e"))],
        ])],
        "* a\n* b\n*# c\n*# d\n* e",
    ),
    # The start number is not kept; an empty item is dropped.
    (
        "3. starts at three\n\n   second paragraph\n-\n",
        [ListBlock(True, [[p(t("starts at three")), p(t("second paragraph"))]])],
        "# starts at three\\\\ second paragraph",
    ),
    (
        "```python\nif x:\n    {noformat}\n```\n\n    indented *code*",
        [CodeBlock("if x:\n    {noformat}"), CodeBlock("indented *code*")],
        "{{if x:}}\n{{&#123;noformat&#125;}}\n\n{noformat}\nindented *code*\n{noformat}",
    ),
    ("```\n\n```", [], ""),
    ("---\n\n***", [Rule(), Rule()], "----\n\n----"),
    (
        "| Name | **Value** |\n|:-----|------:|\n| a \\| b | `x` |\n| short |",
        [Table([
            [TableCell(True, [p(t("Name"))]), TableCell(True, [p(t("Value", "strong"))])],
            [TableCell(False, [p(t("a | b"))]), TableCell(False, [p(t("x", "code"))])],
            [TableCell(False, [p(t("short"))]), TableCell(False, [])],
        ])],
        "||Name||*Value*||\n|a \\| b|{{x}}|\n|short| |",
    ),
    (
        "- > quote in item\n\n  | a | b |\n  |---|---|\n  | 1 | 2 |",
        [ListBlock(False, [[
            BlockQuote([p(t("quote in item"))]),
            Table([[TableCell(True, [p(t("a"))]), TableCell(True, [p(t("b"))])],
                   [TableCell(False, [p(t("1"))]), TableCell(False, [p(t("2"))])]]),
        ]])],
        "* quote in item\\\\ a\\\\ b\\\\ 1\\\\ 2",
    ),
    ("", [], ""),
    ("  \n\n\t\n", [], ""),
]  # fmt: skip


@pytest.mark.parametrize(("markdown", "tree", "wiki"), CONSTRUCTS)
def test_each_construct_becomes_the_expected_tree_adf_and_wiki(markdown, tree, wiki):
    # Markdown maps onto the document tree one construct at a time, and renders from it.
    assert markdown_to_blocks(markdown) == tree
    doc = md(markdown)
    adf = to_adf(doc)
    check_adf(adf)
    assert adf_text(adf) == adf_text(to_adf(EmailContent(tree)))
    assert to_wiki(doc) == wiki


ISSUE = """# Export job failed

The **nightly export** failed on *db-01* at 02:00; see [the log](https://ci.example/run/42).

> Is the server up?

Steps tried:

1. Restarted the service
2. Cleared `/tmp/export`
   - no change

| Server | Status |
|--------|--------|
| db-01  | ~~up~~ down |

```
ERROR 0x80070005 {noformat}? no: {code}
```

---
Thanks"""


def test_a_whole_issue_renders_to_adf_and_wiki():
    # A typical Markdown ticket keeps headings, marks, links, quote, lists, table, code and rule.
    doc = md(ISSUE)
    adf = to_adf(doc)
    check_adf(adf)
    assert [node["type"] for node in adf["content"]] == [
        "heading", "paragraph", "blockquote", "paragraph", "orderedList", "table", "codeBlock",
        "rule", "paragraph",
    ]  # fmt: skip
    assert links(adf) == [("the log", "https://ci.example/run/42")]
    ordered = adf["content"][4]
    assert ordered["content"][1]["content"][1]["type"] == "bulletList"
    assert adf["content"][6]["content"][0]["text"] == "ERROR 0x80070005 {noformat}? no: {code}"
    assert to_wiki(doc) == (
        "h1. Export job failed\n\n"
        "The *nightly export* failed on _db\\-01_ at 02:00; see "
        "[the log|https://ci.example/run/42].\n\n"
        "{quote}\nIs the server up\\?\n{quote}\n\n"
        "Steps tried:\n\n"
        "# Restarted the service\n# Cleared {{/tmp/export}}\n#* no change\n\n"
        "||Server||Status||\n|db\\-01|-up- down|\n\n"
        "{{ERROR 0x80070005 &#123;noformat&#125;\\? no: &#123;code&#125;}}\n\n"
        "----\n\n"
        "Thanks"
    )


def test_body_format_text_keeps_markdown_characters_as_typed():
    # "text" bodies are plain text: nothing in them is Markdown either.
    doc = EmailContent.from_text("**not bold**\n# not a heading\n\n- not a list", "text")
    adf = to_adf(doc)
    check_adf(adf)
    assert adf_text(adf) == "**not bold**\n# not a heading\n- not a list"
    assert all("marks" not in node for node in adf_nodes(adf))
    assert EmailContent.from_text("**x**", "TEXT").body == [p(t("**x**"))]
    assert EmailContent.from_text("**x**").body == [p(t("x", "strong"))]


def test_from_text_cleans_header_lines_like_an_email_and_refuses_unknown_formats():
    # Header lines get the same one-line cleaning as an email's; unknown formats are an error.
    doc = EmailContent.from_text(None, header=[("Reporter", "Bob\r\n[~admin]\u202e")])
    assert doc.body == [] and doc.header == [("Reporter", "Bob [~admin]")]
    assert to_wiki(doc) == "*Reporter:* Bob \\[\\~admin\\]\n\n----"
    with pytest.raises(ValueError, match="html"):
        EmailContent.from_text("<b>x</b>", "html")


# ---------------------------------------------------------------------------------------------
# Injection


WIKI_PAYLOADS = [
    "{color:red}alert{color}",
    "[~accountid:5b10a2844c20165700ede21g] and [~admin]",
    "{{mono}} and {{ unclosed",
    "{html}<b>x</b>{html} {panel:title=Urgent}pay now{panel} {noformat}y{noformat}",
    "[link|javascript:alert(1)] [click|http://evil.example/]",
    "!http://evil.example/x.png! !image.png|width=9999! [^secret.pdf]",
    "@admin (y) (!) :) :D ;) ??cite?? ^sup^ +under+ -strike-",
    "h1. not a heading",
    "bq. not a quote",
    "||not||a||table||",
    "mailto:x@evil.example file:///etc/passwd",
    '{"type":"mention","attrs":{"id":"admin"}}',
    "ABC-123 -- ---",
]


@pytest.mark.parametrize("payload", WIKI_PAYLOADS)
def test_wiki_markup_inside_markdown_is_shown_literally(payload):
    # Jira markup written in Markdown text, in any construct, shows as typed and does nothing.
    cell = payload.replace("|", "\\|")  # a bare pipe would split the Markdown cell
    body = (
        f"{payload}\n\n# {payload}\n\n- {payload}\n\n> {payload}\n\n"
        f"**{payload}** `{payload}`\n\n| {cell} |\n|---|\n| {cell} |"
    )
    doc = md(body)
    adf = to_adf(doc)
    check_adf(adf)
    texts = [node["text"] for node in adf_nodes(adf) if node["type"] == "text"]
    assert texts == [payload] * 4 + [payload, " ", payload] + [payload] * 2
    assert links(adf) == []
    text = escape_text(payload, line_start=True)
    code = escape_text(payload, inside="code")
    assert unescaped_specials(text) == [] and wiki_visible(text) == payload
    assert wiki_visible(code) == payload and "{" not in code and "}" not in code
    assert to_wiki(doc) == (
        f"{text}\n\nh1. {text}\n\n* {text}\n\n{{quote}}\n{text}\n{{quote}}\n\n"
        f"*{text}* {{{{{code}}}}}\n\n||{text}||\n|{text}|"
    )


def test_raw_html_is_text_never_markup():
    # Raw HTML is switched off: tags, comments and handlers are shown as typed.
    body = (
        "<script>alert(1)</script>\n\n"
        'Inline <img src=x onerror="alert(1)"> <a href="javascript:x">y</a> <!-- c -->\n\n'
        "<div>\n*still markdown*\n</div>"
    )
    doc = md(body)
    adf = to_adf(doc)
    check_adf(adf)
    assert adf_text(adf).split("\n") == [
        "<script>alert(1)</script>",
        'Inline <img src=x onerror="alert(1)"> <a href="javascript:x">y</a> <!-- c -->',
        "<div> still markdown </div>",
    ]
    assert links(adf) == []
    wiki = to_wiki(doc)
    assert wiki.startswith("<script>alert\\(1\\)</script>\n\n")
    assert wiki_visible(wiki).split("\n\n")[1] == (
        'Inline <img src=x onerror="alert(1)"> <a href="javascript:x">y</a> <!-- c -->'
    )


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "&#106;avascript:alert(1)",
        "java\u200bscript:alert(1)",
        "vbscript:x",
        "data:text/html,<script>x</script>",
        "file:///etc/passwd",
        "/relative/path",
        "//evil.example/",
        "https:no-host",
    ],
)
def test_unsafe_link_targets_lose_the_link_and_keep_the_text(target):
    # Only http, https and mailto targets become links; the text stays either way.
    for body in (f"[click **here**]({target})", f"[click **here**][r]\n\n[r]: {target}"):
        doc = md(body)
        adf = to_adf(doc)
        check_adf(adf)
        assert adf_text(adf) == "click here"
        assert links(adf) == []
        assert to_wiki(doc) == "click *here*"
    doc = md(f"![alt]({target}) <{target}>")
    assert links(to_adf(doc)) == []
    assert "](" not in adf_text(to_adf(doc))


def test_link_text_and_target_cannot_break_out_of_the_link():
    # Brackets and pipes in link text become entities; the target is percent-encoded.
    doc = md("[a\\] \\[~admin\\] |x](https://ok.example/a|b]c)")
    wiki = to_wiki(doc)
    assert wiki == "[a&#93; &#91;\\~admin&#93; &#124;x|https://ok.example/a%7Cb%5Dc]"
    assert links(to_adf(doc)) == [("a] [~admin] |x", "https://ok.example/a%7Cb%5Dc")]


def test_code_span_and_block_cannot_close_their_wiki_markup():
    # "}}" in a code span and "{noformat}" in a code block stay text.
    doc = md("`a}} *x* {{b`\n\n```\nline\n{noformat}\n{panel}y\n```")
    wiki = to_wiki(doc)
    assert wiki == (
        "{{a&#125;&#125; \\*x\\* &#123;&#123;b}}\n\n"
        "{{line}}\n{{&#123;noformat&#125;}}\n{{&#123;panel&#125;y}}"
    )


def test_unicode_controls_and_bidi_overrides_are_removed_everywhere():
    # Controls, overrides and invisible marks go from text, code, headings, cells, alt and URLs.
    body = (
        "Invoice \u202egnp.exe\u202c ok\u2066x\u2069\u200b\x00\x07\x1b[31m\u00ad &#8238;e "
        "`c\u202ed` [l\u202ei](https://x.example/\u202e) ![a\u202eb](https://i.example/)\n\n"
        "# h\u202ex\n\n```\nco\u202ede\x00\n```\n\n|a\u202e|b|\n|-|-|\n|c|d\u200b|\n\n"
        "שלום \u200fA\u200e 👨\u200d👩\u200d👧 tab\there"
    )
    doc = md(body)
    adf = to_adf(doc)
    check_adf(adf)
    assert [line for line in adf_text(adf).split("\n") if line] == [
        "Invoice gnp.exe okx[31m e cd li ab", "hx", "code", "a", "b", "c", "d",
        "שלום \u200fA\u200e 👨\u200d👩\u200d👧 tab\there",
    ]  # fmt: skip
    assert links(adf) == [("li", "https://x.example/"), ("ab", "https://i.example/")]
    wiki = to_wiki(doc)
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200b\x00-\x08\x1b]", wiki)


def test_markdown_never_produces_image_references():
    # Files are attached separately: no image macro or media node comes from Markdown.
    doc = md("![shot.png](https://img.example/shot.png) ![a](cid:image001.png)")
    assert not any(
        isinstance(node, ImageRef) for block in doc.body for node in getattr(block, "inlines", [])
    )
    assert "!" not in to_wiki(doc).replace("\\!", "")
    assert not [node for node in adf_nodes(to_adf(doc)) if node["type"].startswith("media")]


# ---------------------------------------------------------------------------------------------
# Bounds


DEEP = [
    ">" * 1000 + " deep",
    "> " * 1000 + "deep",
    "- " * 1000 + "deep",
    "1. " * 1000 + "deep",
    "> - 1. " * 1000 + "deep",
    "".join("  " * level + "- item\n" for level in range(1000)) + "\ndeep",
    "".join(">" * level + " line\n" for level in range(1, 1000)) + "deep",
    "[" * 1000 + "deep" + "](https://x.example/)" * 1000,
    "![" * 1000 + "deep" + "](https://x.example/)" * 1000,
    "*" * 1000 + "deep" + "*" * 1000,
    "**a " * 1000 + "deep",
    "x" + "`" * 1000 + "deep",
    "".join("  " * level + "- x\n\n" + "  " * (level + 1) + "|a|b|\n" + "  " * (level + 1)
            + "|-|-|\n" for level in range(300)) + "deep",
]  # fmt: skip


@pytest.mark.parametrize("nested", DEEP, ids=range(len(DEEP)))
def test_deep_nesting_is_bounded_and_keeps_the_text(nested):
    # 1,000 levels of quotes, lists, links or emphasis neither recurse deeply nor make work
    # grow faster than the input.

    def convert() -> tuple[EmailContent, dict, str]:  # type: ignore[type-arg]
        doc = md(nested)
        return doc, to_adf(doc), to_wiki(doc)

    (doc, adf, wiki), calls = count_calls(_within_frames, 150, convert)
    assert calls < linear_budget(len(nested))
    assert check_adf(adf) < 40
    assert _container_depth(doc.body) <= MAX_NESTING
    assert "deep" in plain_text(doc.body)
    assert len(wiki) <= WIKI_MAX_CHARS


def test_large_body_converts_in_linear_work_and_is_truncated_with_a_note():
    # A 240 KB Markdown body converts in work linear in its size and fits Jira's field limit.
    body = "Job **{n}**: see [log](https://ci.example/{n}) and *details* at 10:00 & later.\n\n"
    text = "".join(body.format(n=n) for n in range(3000))

    def convert():  # type: ignore[no-untyped-def]
        doc = md(text)
        return to_adf(doc), to_wiki(doc)

    (adf, wiki), calls = count_calls(convert)
    assert calls < linear_budget(len(text))
    check_adf(adf)
    assert ADF_MAX_CHARS * 0.95 < adf_size(adf) <= ADF_MAX_CHARS
    assert adf_text(adf["content"][-1]) == TRUNCATION_NOTE
    assert len(wiki) <= WIKI_MAX_CHARS


_SOUP = [
    "text", " ", "\n", "\n\n", "# ", "> ", "- ", "1. ", "  ", "    ", "*", "**", "_", "~~", "`",
    "```", "---", "|", "|-|", "[", "]", "(", ")", "![", "](https://x.example/)", "](javascript:x)",
    "<", ">", "<script>", "&amp;", "&#8238;", "\\", "{panel}", "[~a]", "{{", "h1. ", "\u202e",
    "\x00", "😀",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(150))
def test_random_markdown_always_gives_valid_safe_output(seed):
    # Any mix of Markdown syntax and wiki markup yields valid ADF and inert wiki markup.
    rng = random.Random(seed)
    body = "".join(rng.choice(_SOUP) for _ in range(rng.randint(1, 150)))
    doc = md(body)
    adf = to_adf(doc)
    check_adf(adf)
    assert all(href.startswith("https://x.example/") for _, href in links(adf))
    wiki = to_wiki(doc)
    assert "\u202e" not in wiki and "\x00" not in wiki
    # {noformat} content is literal; headings, list markers and table pipes at a line start are
    # our own markup, so what follows them is what must be inert.
    outside_noformat = re.sub(r"(?s)\{noformat\}\n.*?\n\{noformat\}", "", wiki)
    for line in outside_noformat.split("\n"):
        line = re.sub(r"^(h[1-6]\. |[*#]+( |$)|\|\|?)", "", line)
        assert not re.match(r"\s*(h[1-6]\.|bq\.|#)", line), line
        assert "{panel}" not in line and "[~a]" not in line and "javascript:" not in line


# ---------------------------------------------------------------------------------------------
# Helpers


def _within_frames(budget: int, run):  # type: ignore[no-untyped-def]
    """``run()`` with the recursion limit ``budget`` frames above the current stack depth."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + budget)
    try:
        return run()
    finally:
        sys.setrecursionlimit(limit)


def _container_depth(blocks: list) -> int:  # type: ignore[type-arg]
    """The deepest nesting of quotes, lists and tables in a document."""
    deepest, pending = 0, [(block, 1) for block in blocks]
    while pending:
        block, depth = pending.pop()
        children: list = []  # type: ignore[type-arg]
        if isinstance(block, BlockQuote):
            children = block.blocks
        elif isinstance(block, ListBlock):
            children = [child for item in block.items for child in item]
        elif isinstance(block, Table):
            children = [child for row in block.rows for cell in row for child in cell.blocks]
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest
