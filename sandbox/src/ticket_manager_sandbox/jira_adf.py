"""Atlassian Document Format (ADF) checks and conversions for the Jira emulator.

Jira Cloud's v3 API takes and returns rich text as ADF documents and rejects anything else
(a plain string included); its v2 API speaks wiki markup strings. The emulator stores rich
text as ADF on Cloud, so it needs to validate ADF, render it as wiki markup for v2, as plain
text for JQL text search, and turn v2 strings into ADF.
"""

from __future__ import annotations

import html
from typing import Any

BLOCK_NODES = {
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "listItem",
    "codeBlock",
    "blockquote",
    "rule",
    "panel",
    "table",
    "tableRow",
    "tableHeader",
    "tableCell",
    "mediaSingle",
    "mediaGroup",
    "media",
    "expand",
    "nestedExpand",
    "taskList",
    "taskItem",
    "decisionList",
    "decisionItem",
    "layoutSection",
    "layoutColumn",
    "bodiedExtension",
    "extension",
    "blockCard",
    "embedCard",
    "multiBodiedExtension",
    "extensionFrame",
}
INLINE_NODES = {
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "status",
    "date",
    "mediaInline",
    "inlineExtension",
    "placeholder",
}
MARKS = {
    "strong",
    "em",
    "code",
    "strike",
    "underline",
    "link",
    "subsup",
    "textColor",
    "backgroundColor",
    "border",
    "alignment",
    "indentation",
    "annotation",
    "breakout",
    "dataConsumer",
    "fragment",
}
# Nodes whose content must be a list of child nodes when present; leaves carry none.
LEAF_NODES = {"text", "hardBreak", "rule", "mention", "emoji", "inlineCard", "status", "date"}


def is_valid_adf(value: Any) -> bool:
    """Whether ``value`` is an ADF document Jira Cloud would accept (type doc, version 1)."""
    if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
        return False
    content = value.get("content")
    if not isinstance(content, list):
        return False
    return all(_is_valid_node(node, depth=1) for node in content)


def _is_valid_node(node: Any, depth: int) -> bool:
    if depth > 64 or not isinstance(node, dict):
        return False
    node_type = node.get("type")
    if node_type not in BLOCK_NODES and node_type not in INLINE_NODES:
        return False
    if node_type == "text":
        text = node.get("text")
        if not isinstance(text, str) or not text:
            return False
    if "attrs" in node and not isinstance(node["attrs"], dict):
        return False
    if node_type == "heading":
        level = (node.get("attrs") or {}).get("level")
        if not isinstance(level, int) or not 1 <= level <= 6:
            return False
    marks = node.get("marks", [])
    if not isinstance(marks, list) or not all(
        isinstance(mark, dict) and mark.get("type") in MARKS for mark in marks
    ):
        return False
    if "content" in node:
        if node_type in LEAF_NODES or not isinstance(node["content"], list):
            return False
        return all(_is_valid_node(child, depth + 1) for child in node["content"])
    return True


def text_to_adf(text: str) -> dict:
    """An ADF document holding ``text``: blank lines split paragraphs, newlines become breaks."""
    paragraphs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        content: list[dict] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_to_text(doc: Any) -> str:
    """The plain text of an ADF document (what JQL text search and summaries look at)."""
    if not isinstance(doc, dict):
        return "" if doc is None else str(doc)
    return "\n\n".join(_inline_text(node, plain=True) for node in doc.get("content", [])).strip()


def adf_to_wiki(doc: Any) -> str:
    """A wiki-markup rendering of an ADF document, as Jira Cloud's v2 API returns rich text."""
    if not isinstance(doc, dict):
        return "" if doc is None else str(doc)
    return "\n\n".join(_block_wiki(node) for node in doc.get("content", [])).strip()


def _block_wiki(node: dict) -> str:
    node_type = node.get("type")
    children = node.get("content", [])
    if node_type == "heading":
        return f"h{node.get('attrs', {}).get('level', 1)}. {_inline_text(node, plain=False)}"
    if node_type in ("bulletList", "orderedList"):
        bullet = "*" if node_type == "bulletList" else "#"
        lines = []
        for item in children:
            text = " ".join(_block_wiki(child) for child in item.get("content", []))
            lines.append(f"{bullet} {text}")
        return "\n".join(lines)
    if node_type == "codeBlock":
        return "{code}\n" + _inline_text(node, plain=True) + "\n{code}"
    if node_type == "blockquote":
        return "{quote}" + "\n\n".join(_block_wiki(child) for child in children) + "{quote}"
    if node_type == "rule":
        return "----"
    if node_type in BLOCK_NODES and children and children[0].get("type") in BLOCK_NODES:
        return "\n\n".join(_block_wiki(child) for child in children)
    return _inline_text(node, plain=False)


def _inline_text(node: dict, *, plain: bool) -> str:
    node_type = node.get("type")
    if node_type == "text":
        text = node.get("text", "")
        if plain:
            return text
        for mark in node.get("marks", []):
            text = _wiki_mark(text, mark)
        return text
    if node_type == "hardBreak":
        return "\n"
    if node_type == "mention":
        attrs = node.get("attrs", {})
        return attrs.get("text") or f"[~accountid:{attrs.get('id', '')}]"
    if node_type == "emoji":
        return node.get("attrs", {}).get("text") or node.get("attrs", {}).get("shortName", "")
    if node_type == "inlineCard":
        return node.get("attrs", {}).get("url", "")
    separator = "\n" if node_type in BLOCK_NODES and node_type != "paragraph" else ""
    return separator.join(_inline_text(child, plain=plain) for child in node.get("content", []))


def _wiki_mark(text: str, mark: dict) -> str:
    wrappers = {"strong": "*", "em": "_", "strike": "-", "underline": "+"}
    mark_type = mark.get("type")
    if mark_type in wrappers:
        return f"{wrappers[mark_type]}{text}{wrappers[mark_type]}"
    if mark_type == "code":
        return "{{" + text + "}}"
    if mark_type == "link":
        return f"[{text}|{mark.get('attrs', {}).get('href', '')}]"
    return text


def text_to_html(text: str) -> str:
    """The renderedFields-style HTML of a plain/wiki text (paragraphs and line breaks only)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br/>')}</p>" for p in paragraphs)
