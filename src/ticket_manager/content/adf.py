"""The document tree as Atlassian Document Format, for Jira Cloud's v3 API.

ADF is JSON, so escaping is structural: every character of the email ends up inside a ``text``
node's string and Jira never parses it for markup. Mentions, emoji, status lozenges, cards and
media nodes are never produced; the only link marks come from checked ``<a href>`` targets.
Where ADF forbids a node (a heading in a list item, a table in a quote, a quote in a quote) its
content is kept in a form the parent allows.
"""

from __future__ import annotations

import json
from typing import Any

from ticket_manager.content.document import (
    MARK_ORDER,
    TRUNCATION_NOTE,
    Block,
    BlockQuote,
    CodeBlock,
    EmailContent,
    HardBreak,
    Heading,
    ImageRef,
    Inline,
    ListBlock,
    Paragraph,
    Rule,
    Table,
    Text,
    fit_body,
    java_length,
)

# Jira Cloud rejects a rich-text field over 32,767 characters with CONTENT_LIMIT_EXCEEDED
# (JRACLOUD-78553). We count the compact JSON of the whole document, which is never shorter
# than its text, in UTF-16 units as Java does.
ADF_MAX_CHARS = 32_767

Node = dict[str, Any]


def to_adf(doc: EmailContent, *, max_chars: int = ADF_MAX_CHARS) -> Node:
    """``doc`` as an ADF document whose serialized size stays within ``max_chars``."""
    body, truncated = fit_body(
        doc.body, lambda blocks, cut: adf_size(_document(doc, blocks, cut)), max_chars
    )
    return _document(doc, body, truncated)


def adf_size(adf: Node) -> int:
    """The size Jira measures an ADF document by: its compact JSON, in UTF-16 units."""
    return java_length(json.dumps(adf, ensure_ascii=False, separators=(",", ":")))


def _document(doc: EmailContent, body: list[Block], truncated: bool) -> Node:
    content: list[Node] = []
    header = doc.header_blocks()
    if header:
        content += _blocks(header, "doc")
        content.append({"type": "rule"})
    content += _blocks(body, "doc")
    if truncated:
        content += _blocks([Paragraph([Text(TRUNCATION_NOTE, frozenset({"em"}))])], "doc")
    content += _blocks(doc.tail_blocks(), "doc")
    return {"type": "doc", "version": 1, "content": content}


def _blocks(blocks: list[Block], where: str) -> list[Node]:
    """ADF nodes for ``blocks`` inside ``where``: doc, quote, item or cell."""
    nodes: list[Node] = []
    for block in blocks:
        nodes += _block(block, where)
    return nodes


def _block(block: Block, where: str) -> list[Node]:
    if isinstance(block, Paragraph):
        return [_paragraph(block.inlines)]
    if isinstance(block, Heading):
        if where in ("doc", "cell"):
            return [
                {
                    "type": "heading",
                    "attrs": {"level": min(max(block.level, 1), 6)},
                    "content": _inlines(block.inlines),
                }
            ]
        return [_paragraph(block.inlines, extra_mark="strong")]
    if isinstance(block, CodeBlock):
        text = [{"type": "text", "text": block.text}] if block.text else []
        return [{"type": "codeBlock", "content": text}]
    if isinstance(block, Rule):
        return [{"type": "rule"}] if where in ("doc", "cell") else []
    if isinstance(block, BlockQuote):
        if where in ("quote", "item"):
            return _blocks(block.blocks, where)
        inner = _blocks(block.blocks, "quote")
        return [{"type": "blockquote", "content": inner}] if inner else []
    if isinstance(block, ListBlock):
        items = [_list_item(item) for item in block.items]
        kind = "orderedList" if block.ordered else "bulletList"
        return [{"type": kind, "content": items}] if items else []
    if where != "doc":
        # Tables only live at the top level (ADF has no nested tables, none in lists or quotes).
        return [node for row in block.rows for cell in row for node in _blocks(cell.blocks, where)]
    return [_table(block)]


def _list_item(blocks: list[Block]) -> Node:
    content = _blocks(blocks, "item")
    if not content or content[0]["type"] not in ("paragraph", "codeBlock"):
        content.insert(0, {"type": "paragraph", "content": []})
    return {"type": "listItem", "content": content}


def _table(table: Table) -> Node:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row:
            content = _blocks(cell.blocks, "cell") or [{"type": "paragraph", "content": []}]
            kind = "tableHeader" if cell.header else "tableCell"
            cells.append({"type": kind, "attrs": {}, "content": content})
        rows.append({"type": "tableRow", "content": cells})
    return {
        "type": "table",
        "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
        "content": rows,
    }


def _paragraph(inlines: list[Inline], extra_mark: str | None = None) -> Node:
    return {"type": "paragraph", "content": _inlines(inlines, extra_mark)}


def _inlines(inlines: list[Inline], extra_mark: str | None = None) -> list[Node]:
    nodes: list[Node] = []
    for node in inlines:
        if isinstance(node, HardBreak):
            nodes.append({"type": "hardBreak"})
        elif isinstance(node, ImageRef):
            # Media nodes need a Media API file id that REST cannot create: name the attachment.
            nodes.append({"type": "text", "text": f"[image: {node.filename}]"})
        elif node.text:
            nodes.append(_text(node, extra_mark))
    return nodes


def _text(node: Text, extra_mark: str | None) -> Node:
    names = set(node.marks)
    if extra_mark and "code" not in names:
        names.add(extra_mark)
    marks: list[Node] = [{"type": name} for name in MARK_ORDER if name in names]
    if node.href:
        marks.append({"type": "link", "attrs": {"href": node.href}})
    result: Node = {"type": "text", "text": node.text}
    if marks:
        result["marks"] = marks
    return result
