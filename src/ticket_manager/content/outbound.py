"""Jira comments rendered for the email the customer receives: safe HTML and a plain-text part.

The comment (ADF from Jira Cloud, wiki markup from Server/Data Center) is read into the document
tree, then written out by this module, which escapes every piece of text and writes only the
tags and attributes it chose. ``nh3`` then cleans the HTML against the same allow-list, so a bug
here cannot let a script, an event handler or a ``javascript:`` link reach a customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

import nh3

from ticket_manager.content.document import (
    MARK_ORDER,
    BlockQuote,
    CodeBlock,
    HardBreak,
    Heading,
    ImageRef,
    Inline,
    ListBlock,
    Paragraph,
    Rule,
    Table,
    Text,
)
from ticket_manager.content.read_adf import CommentBlock, Panel, adf_to_blocks
from ticket_manager.content.read_wiki import wiki_to_blocks

_MARK_TAGS = {
    "strong": "strong", "em": "em", "underline": "u", "strike": "s", "code": "code",
    "sub": "sub", "sup": "sup",
}  # fmt: skip
_MARKS_IN_ORDER = (*MARK_ORDER, "sub", "sup")

ALLOWED_TAGS = {
    "p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "u", "s", "code", "sub",
    "sup", "pre", "a", "ul", "ol", "li", "table", "tbody", "tr", "th", "td", "blockquote",
    "hr", "div",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href"},
    "div": {"style"},
    "table": {"border", "cellpadding", "cellspacing", "style"},
}
ALLOWED_STYLES = {"border-left", "background-color", "padding", "margin", "border-collapse"}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

# Jira's panel colours (border, background), so a warning still looks like one in the email.
_PANEL_COLOURS = {
    "info": ("#0052cc", "#deebff"),
    "note": ("#6554c0", "#eae6ff"),
    "tip": ("#00875a", "#e3fcef"),
    "success": ("#00875a", "#e3fcef"),
    "warning": ("#ff991f", "#fffae6"),
    "error": ("#de350b", "#ffebe6"),
    "custom": ("#6b778c", "#f4f5f7"),
}
_TABLE_OPEN = '<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse">'


@dataclass(frozen=True)
class RenderedComment:
    """A Jira comment as the two parts of a multipart/alternative email."""

    html: str
    text: str


def jira_to_email(body: dict[str, Any] | str) -> RenderedComment:
    """A Jira comment body (ADF dict or wiki-markup string) as safe email HTML and plain text."""
    blocks = wiki_to_blocks(body) if isinstance(body, str) else adf_to_blocks(body)
    return RenderedComment(html=sanitize(_html_blocks(blocks)), text=_text_blocks(blocks, "\n\n"))


def sanitize(markup: str) -> str:
    """``markup`` cleaned against the allow-list: the last line of defence, not the first."""
    return nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        url_relative="deny",
        filter_style_properties=ALLOWED_STYLES,
        link_rel="noopener noreferrer",
    )


def _html_blocks(blocks: list[CommentBlock], compact: bool = False) -> str:
    """HTML for ``blocks``; ``compact`` (list items, cells) writes paragraphs as lines."""
    parts: list[str] = []
    after_paragraph = False
    for block in blocks:
        if isinstance(block, Paragraph):
            inner = _html_inlines(block.inlines)
            if compact:
                parts.append(f"<br>{inner}" if after_paragraph else inner)
            else:
                parts.append(f"<p>{inner}</p>")
            after_paragraph = True
            continue
        after_paragraph = False
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{_html_inlines(block.inlines)}</h{block.level}>")
        elif isinstance(block, CodeBlock):
            parts.append(f"<pre>{escape(block.text)}</pre>")
        elif isinstance(block, Rule):
            parts.append("<hr>")
        elif isinstance(block, BlockQuote):
            parts.append(f"<blockquote>{_html_blocks(block.blocks)}</blockquote>")
        elif isinstance(block, Panel):
            border, background = _PANEL_COLOURS.get(block.kind, _PANEL_COLOURS["info"])
            style = (
                f"border-left:4px solid {border};background-color:{background};"
                "padding:8px 12px;margin:8px 0"
            )
            parts.append(f'<div style="{style}">{_html_blocks(block.blocks)}</div>')
        elif isinstance(block, ListBlock):
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_html_blocks(item, compact=True)}</li>" for item in block.items)
            parts.append(f"<{tag}>{items}</{tag}>")
        elif isinstance(block, Table):
            rows = []
            for row in block.rows:
                cells = "".join(
                    f"<{kind}>{_html_blocks(cell.blocks, compact=True)}</{kind}>"
                    for cell in row
                    for kind in ["th" if cell.header else "td"]
                )
                rows.append(f"<tr>{cells}</tr>")
            parts.append(f"{_TABLE_OPEN}<tbody>{''.join(rows)}</tbody></table>")
    return "\n".join(parts)


def _html_inlines(inlines: list[Inline]) -> str:
    out: list[str] = []
    for node in inlines:
        if isinstance(node, HardBreak):
            out.append("<br>")
        elif isinstance(node, ImageRef):
            out.append(escape(f"[image: {node.filename}]"))
        else:
            html = escape(node.text)
            for mark in reversed(_MARKS_IN_ORDER):
                if mark in node.marks:
                    html = f"<{_MARK_TAGS[mark]}>{html}</{_MARK_TAGS[mark]}>"
            if node.href:
                html = f'<a href="{escape(node.href)}" rel="noopener noreferrer">{html}</a>'
            out.append(html)
    return "".join(out)


def _text_blocks(blocks: list[CommentBlock], separator: str) -> str:
    """Plain text for ``blocks``, joined by ``separator`` (a blank line, or a newline in items)."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph | Heading):
            parts.append(_text_inlines(block.inlines))
        elif isinstance(block, CodeBlock):
            parts.append(block.text)
        elif isinstance(block, Rule):
            parts.append("-" * 10)
        elif isinstance(block, BlockQuote | Panel):
            inner = _text_blocks(block.blocks, "\n\n")
            parts.append("\n".join(f"> {line}".rstrip() for line in inner.split("\n")))
        elif isinstance(block, ListBlock):
            lines = []
            for number, item in enumerate(block.items, start=1):
                marker = f"{number}. " if block.ordered else "- "
                body = _text_blocks(item, "\n").split("\n")
                lines.append(marker + body[0])
                lines += [f"{' ' * len(marker)}{line}".rstrip() for line in body[1:]]
            parts.append("\n".join(lines))
        elif isinstance(block, Table):
            rows = (
                " | ".join(_one_line(_text_blocks(cell.blocks, " ")) for cell in row)
                for row in block.rows
            )
            parts.append("\n".join(rows))
    return separator.join(part for part in parts if part.strip())


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _text_inlines(inlines: list[Inline]) -> str:
    out: list[str] = []
    for node in inlines:
        if isinstance(node, HardBreak):
            out.append("\n")
        elif isinstance(node, ImageRef):
            out.append(f"[image: {node.filename}]")
        elif isinstance(node, Text):
            out.append(_text_run(node))
    return "".join(out)


def _text_run(node: Text) -> str:
    if not node.href or node.href in (node.text, f"mailto:{node.text}"):
        return node.text
    return f"{node.text} <{node.href}>"
