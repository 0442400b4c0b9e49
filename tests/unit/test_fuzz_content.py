"""Generated email bodies through the email-to-Jira conversion: it never raises, always gives
valid ADF, never lets markup from the email through to wiki text, and loses no text.

Hypothesis draws plain text and HTML trees from an alphabet heavy in Jira markup, HTML
entities, controls and bidi characters. The run is derandomized (the same examples every time)
and kept small enough to take a few seconds.
"""

from __future__ import annotations

import html as html_lib
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_content import adf_text, check_adf, unescaped_specials, wiki_visible

from ticket_manager.content import EmailContent, summary_from_subject, to_adf, to_wiki
from ticket_manager.content.document import clean_text

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pieces of text that mean something to Jira, HTML, Unicode or the converter itself.
MARKUP = [
    "{color:red}", "{color}", "{panel}", "{code}", "{noformat}", "{html}", "{quote}", "{{",
    "}}", "[~admin]", "[~accountid:5b10a2844c20165700ede21g]", "[x|http://evil.test]", "[^f]",
    "!x.png!", "!http://e.test/a.png|width=1!", "h1. ", "bq. ", "# ", "* ", "- ", "----",
    "||", "|", "\\\\", "\\", "*b*", "_i_", "-s-", "+u+", "^x^", "~y~", "??c??", "(y)", "(!)",
    ":)", ":D", "@admin", "http://x.test/", "mailto:a@b.test", "&", "&amp;", "&lt;", "&#123;",
    "&#8238;", ";", ":", '{"type":"mention","attrs":{"id":"x"}}', "\n", "\r\n", "\t", " ",
    "\u00a0",
]  # fmt: skip
SPECIAL_CHARS = [
    "\x00", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\u200e", "\u202e", "\u2066", "\u2069",
    "\ufeff", "\u00ad", "\U000e0041", "\ud800", "\ufffe", "😀", "ש", "م", "\u0301", "\u2028",
]  # fmt: skip

text_pieces = st.one_of(
    st.sampled_from(MARKUP),
    st.sampled_from(SPECIAL_CHARS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.text(alphabet="abc XYZ 123.,", min_size=1, max_size=12),
)
texts = st.lists(text_pieces, max_size=40).map("".join)

# Raw entities as senders write them (left unescaped in the HTML): decoded, then cleaned.
ENTITIES = ["&lt;", "&gt;", "&amp;", "&quot;", "&nbsp;", "&#8238;", "&#x202E;", "&#0;",
            "&#x1F600;", "&copy;", "&#123;", "&#91;&#126;", "&#128;", "&unknown;", "&"]  # fmt: skip

BLOCK_TAGS = ["p", "div", "blockquote", "ul", "ol", "li", "table", "tr", "td", "th", "pre",
              "h1", "h3", "span", "font", "o:p", "section", "center"]  # fmt: skip
INLINE_TAGS = ["b", "i", "u", "s", "code", "em", "strong", "tt", "a", "sup"]
DROPPED_TAGS = ["script", "style", "iframe", "object", "noscript", "template", "svg", "title"]
ATTRIBUTES = [
    "", ' class="MsoNormal"', ' style="font-weight:bold"', ' onclick="handlermarker()"',
    ' href="https://ok.test/a?b=1&amp;c=2"', ' href="javascript:handlermarker()"',
    ' href="mailto:a@b.test"', ' href="https://ok.test/]|[~admin]"', ' dir="rtl"',
]  # fmt: skip


def _element(children, tags):
    return st.tuples(st.sampled_from(tags), st.sampled_from(ATTRIBUTES), children)


leaf = st.one_of(
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("entity"), st.sampled_from(ENTITIES)),
    st.tuples(st.just("br"), st.just("")),
    st.tuples(st.just("hr"), st.just("")),
    st.tuples(st.just("img"), st.sampled_from(['src="https://t.test/p.gif"', 'src="cid:x"'])),
)
trees = st.recursive(
    st.lists(leaf, max_size=6),
    lambda children: st.lists(
        st.one_of(
            leaf,
            _element(children, BLOCK_TAGS + INLINE_TAGS),
            _element(children, DROPPED_TAGS),
        ),
        max_size=6,
    ),
    max_leaves=60,
)


def render_html(nodes, *, close: bool, dropped: bool = False) -> tuple[str, str]:
    """HTML for ``nodes`` and the text a reader should find in it (before whitespace)."""
    markup: list[str] = []
    visible: list[str] = []
    for node in nodes:
        if len(node) == 3:
            tag, attributes, children = node
            hidden = dropped or tag in DROPPED_TAGS
            inner, inner_visible = render_html(children, close=close, dropped=hidden)
            if tag in ("script", "style"):
                # Raw text up to the first "</script" or "</style": tags inside are not tags.
                inner = "if (a < b && c > d) handlermarker(); p{color:red}"
            end = f"</{tag}>" if close or tag in DROPPED_TAGS else ""
            markup.append(f"<{tag}{attributes}>{inner}{end}")
            visible.append(inner_visible)
            continue
        kind, content = node
        if kind == "text":
            markup.append(html_lib.escape(content, quote=False))
            visible.append("" if dropped else content)
        elif kind == "entity":
            markup.append(content)
            visible.append("" if dropped else html_lib.unescape(content))
        elif kind == "img":
            markup.append(f"<img {content}>")
        else:
            markup.append(f"<{kind}>")
    return "".join(markup), "".join(visible)


def without_space(text: str) -> str:
    return "".join(text.split())


def rendered_ok(doc: EmailContent) -> tuple[dict, str]:
    adf = to_adf(doc)
    check_adf(adf)
    return adf, to_wiki(doc)


@FUZZ
@given(texts)
def test_plain_text_converts_to_valid_inert_output_keeping_its_text(text):
    # Any plain text: valid ADF of text only, wiki without one live markup character, and the
    # same characters (controls and bidi overrides removed, whitespace aside) in both.
    doc = EmailContent.from_email(body=text, body_type="text")
    adf, wiki = rendered_ok(doc)
    expected = without_space(clean_text(text))
    assert without_space(adf_text(adf)) == expected
    assert all("marks" not in node for node in _nodes(adf))
    assert unescaped_specials(wiki) == []
    assert without_space(wiki_visible(wiki)) == expected


@FUZZ
@given(trees, st.booleans())
def test_html_converts_to_valid_output_without_live_markup_keeping_its_text(tree, close):
    # Any tree of tags (closed or not), entities and hostile text: valid ADF, wiki in which no
    # macro, mention or image came from the email, and the visible text kept.
    markup, visible = render_html(tree, close=close)
    doc = EmailContent.from_email(body=markup, body_type="html", inline_images={"x": "x.png"})
    adf, wiki = rendered_ok(doc)
    expected = without_space(clean_text(visible))
    shown = without_space(adf_text(adf).replace("[image: x.png]", ""))
    assert shown == expected
    assert "handlermarker" not in str(adf) and "handlermarker" not in wiki
    # Our own markup: {quote} and ---- lines, {noformat} blocks, {{code}}, {*}-style marks and
    # the !x.png! image. Any other unescaped brace, mention, attachment link or image came
    # from the email.
    for line in re.sub(r"(?s)\{noformat\}\n.*?\n\{noformat\}", "", wiki).split("\n"):
        if line in ("{quote}", "----"):
            continue
        line = line.replace("{{", "").replace("!x.png!", "")
        assert not re.search(r"(?<!\\)\{(?![*_+-]\})", line), line
        assert not re.search(r"(?<!\\)\[[~^]", line), line
        assert not re.search(r"(?<!\\)!", line), line


@FUZZ
@given(texts)
def test_a_subject_is_always_one_clean_line(subject):
    # Summaries never carry controls, line breaks or bidi overrides and never exceed 255.
    summary = summary_from_subject(subject)
    assert 0 < len(summary) <= 255
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\ufeff]", summary)
    assert summary == summary.strip()


def _nodes(adf: dict) -> list[dict]:
    found, pending = [], [adf]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(node.get("content", []))
    return found
