"""Jira Cloud comment bodies (ADF) read into the document tree, whatever shape they arrive in.

A comment written in Jira can hold mentions, emoji, status lozenges, smart links, media, panels
and expands; the tree keeps what an email can show and turns the rest into text. The input is
not trusted: wrong types are skipped, unknown nodes give their children, containers nested
deeper than ``MAX_COMMENT_NESTING`` are flattened into paragraphs without recursion, and a node
budget bounds the work on any input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ticket_manager.content.document import (
    Block,
    BlockQuote,
    CodeBlock,
    HardBreak,
    Heading,
    Inline,
    ListBlock,
    Paragraph,
    Rule,
    Table,
    TableCell,
    Text,
    clean_text,
)
from ticket_manager.content.html import safe_href

# Containers (quotes, panels, lists, tables, unknown wrappers) deeper than this are flattened:
# it bounds recursion while leaving room for any comment a person writes.
MAX_COMMENT_NESTING = 16
# The most nodes one comment is read through; more than any real comment holds.
MAX_NODES = 200_000

_PANEL_KINDS = {"info", "note", "tip", "success", "warning", "error", "custom"}
_LIST_KINDS = {"bulletList", "orderedList", "taskList", "decisionList"}
_CARD_KINDS = {"inlineCard", "blockCard", "embedCard"}
_MEDIA_KINDS = {"media", "mediaInline"}
# Inline nodes that show nothing in an email (a placeholder is an editor hint; extensions are
# app macros whose output only Jira can render).
_SILENT_KINDS = {"placeholder", "inlineExtension", "extension"}
_SIMPLE_MARKS = {"strong", "em", "underline", "strike", "code"}
_FILE_NAME_ATTRS = ("alt", "__fileName", "fileName", "name")


@dataclass
class Panel:
    """A highlighted box (ADF ``panel``, wiki ``{panel}``); ``kind`` is info, note, warning, …

    It only exists in comments read from Jira, so it may sit inside the document tree's quotes,
    list items and cells although their type hints name ``Block``; the comment renderer in
    ``outbound`` knows it, the email-to-Jira renderers never see it.
    """

    kind: str
    blocks: list[CommentBlock]


CommentBlock = Block | Panel


def adf_to_blocks(document: object) -> list[CommentBlock]:
    """The blocks of an ADF document (or of any node or node list); never raises."""
    if isinstance(document, dict):
        nodes = _children(document) if document.get("type") == "doc" else [document]
    elif isinstance(document, list):
        nodes = document
    else:
        nodes = []
    return _Reader().blocks(nodes, 0)


def _children(node: object) -> list[Any]:
    content = node.get("content") if isinstance(node, dict) else None
    return content if isinstance(content, list) else []


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _string(value: object) -> str:
    return clean_text(value) if isinstance(value, str) else ""


class _Reader:
    """One pass over an ADF tree, with a budget of nodes it may still visit."""

    def __init__(self) -> None:
        self.budget = MAX_NODES

    def _visit(self, node: object) -> bool:
        """Whether ``node`` is a node to read (and the budget allows it)."""
        if not isinstance(node, dict) or self.budget <= 0:
            return False
        self.budget -= 1
        return True

    def blocks(self, nodes: list[Any], depth: int) -> list[CommentBlock]:
        """``nodes`` as blocks; inline nodes found among blocks are gathered into paragraphs."""
        if depth > MAX_COMMENT_NESTING:
            return self.flatten(nodes)
        blocks: list[CommentBlock] = []
        pending: list[Inline] = []
        for node in nodes:
            if not self._visit(node):
                continue
            inline = self.inline(node)
            if inline is not None:
                pending += inline
                continue
            if pending:
                blocks.append(Paragraph(pending))
                pending = []
            blocks += self.block(node, depth)
        if pending:
            blocks.append(Paragraph(pending))
        return blocks

    def block(self, node: dict[str, Any], depth: int) -> list[CommentBlock]:
        """One block node; unknown ones give their children's blocks."""
        kind = node.get("type")
        attrs = _attrs(node)
        if kind == "paragraph":
            inlines = self.inlines(_children(node))
            return [Paragraph(inlines)] if inlines else []
        if kind == "heading":
            level = attrs.get("level")
            level = level if isinstance(level, int) and not isinstance(level, bool) else 1
            inlines = self.inlines(_children(node))
            return [Heading(min(max(level, 1), 6), inlines)] if inlines else []
        if kind == "codeBlock":
            return [CodeBlock(self.code_text(_children(node)))]
        if kind == "rule":
            return [Rule()]
        if kind == "blockquote":
            inner = self.blocks(_children(node), depth + 1)
            return [BlockQuote(inner)] if inner else []
        if kind == "panel":
            panel_kind = attrs.get("panelType")
            panel_kind = panel_kind if panel_kind in _PANEL_KINDS else "info"
            inner = self.blocks(_children(node), depth + 1)
            return [Panel(panel_kind, inner)] if inner else []
        if kind in _LIST_KINDS:
            return self.list_block(node, depth)
        if kind == "table":
            return self.table(node, depth)
        if kind in ("expand", "nestedExpand"):
            # Collapsed sections are shown open: an email cannot fold.
            title = _string(attrs.get("title")).strip()
            head: list[CommentBlock] = [Paragraph([Text(title, frozenset({"strong"}))])]
            return (head if title else []) + self.blocks(_children(node), depth + 1)
        if kind == "mediaGroup":
            return [
                Paragraph(self.inline(child) or [])
                for child in _children(node)
                if self._visit(child) and child.get("type") in _MEDIA_KINDS
            ]
        return self.blocks(_children(node), depth + 1)

    def list_block(self, node: dict[str, Any], depth: int) -> list[CommentBlock]:
        """A bullet, numbered, task or decision list."""
        items: list[list[CommentBlock]] = []
        for child in _children(node):
            if not self._visit(child):
                continue
            if child.get("type") in _LIST_KINDS:
                # Task lists nest a list directly in the list: it belongs to the item above.
                nested = self.blocks([child], depth + 1)
                if items:
                    items[-1] += nested
                else:
                    items.append(nested)
                continue
            blocks = self.blocks(_children(child), depth + 1)
            if child.get("type") == "taskItem":
                box = Text("[x] " if _attrs(child).get("state") == "DONE" else "[ ] ")
                if blocks and isinstance(blocks[0], Paragraph):
                    blocks[0] = Paragraph([box, *blocks[0].inlines])
                else:
                    blocks.insert(0, Paragraph([box]))
            items.append(blocks)
        if not items:
            return []
        return [ListBlock(node.get("type") == "orderedList", items)]

    def table(self, node: dict[str, Any], depth: int) -> list[CommentBlock]:
        """A table; rows and cells of the wrong type are skipped."""
        rows: list[list[TableCell]] = []
        for row in _children(node):
            if not self._visit(row):
                continue
            cells = [
                TableCell(
                    cell.get("type") == "tableHeader",
                    self.blocks(_children(cell), depth + 1),
                )
                for cell in _children(row)
                if self._visit(cell)
            ]
            if cells:
                rows.append(cells)
        return [Table(rows)] if rows else []

    def inlines(self, nodes: list[Any]) -> list[Inline]:
        """The inline content of ``nodes``, reading through unknown wrappers without recursion."""
        found: list[Inline] = []
        stack = list(reversed(nodes))
        while stack:
            node = stack.pop()
            if not self._visit(node):
                continue
            inline = self.inline(node)
            if inline is None:
                stack += reversed(_children(node))
            else:
                found += inline
        return found

    def code_text(self, nodes: list[Any]) -> str:
        """The text of a code block (its text nodes; marks are meaningless there)."""
        return "".join(
            "\n" if isinstance(node, HardBreak) else node.text
            for node in self.inlines(nodes)
            if isinstance(node, HardBreak | Text)
        )

    def flatten(self, nodes: list[Any]) -> list[CommentBlock]:
        """Content nested too deep, as one paragraph per block it holds, without recursion."""
        paragraphs: list[CommentBlock] = []
        current: list[Inline] = []
        boundary = object()
        stack: list[Any] = list(reversed(nodes))
        while stack:
            node = stack.pop()
            if node is boundary:
                if current:
                    paragraphs.append(Paragraph(current))
                    current = []
                continue
            if not self._visit(node):
                continue
            inline = self.inline(node)
            if inline is not None:
                current += inline
                continue
            stack.append(boundary)
            stack += reversed(_children(node))
            stack.append(boundary)
        if current:
            paragraphs.append(Paragraph(current))
        return paragraphs

    def inline(self, node: dict[str, Any]) -> list[Inline] | None:
        """The inline content of one inline-level node, or ``None`` if it is not one."""
        kind = node.get("type")
        attrs = _attrs(node)
        if kind == "text":
            text = _string(node.get("text"))
            return [Text(text, *_marks(node.get("marks")))] if text else []
        if kind == "hardBreak":
            return [HardBreak()]
        if kind == "mention":
            name = _string(attrs.get("text")).strip().lstrip("@") or "user"
            return [Text(f"@{name}")]
        if kind == "emoji":
            shown = _string(attrs.get("text")) or _string(attrs.get("shortName"))
            return [Text(shown)] if shown else []
        if kind == "status":
            shown = _string(attrs.get("text")).strip()
            return [Text(shown)] if shown else []
        if kind == "date":
            return [Text(shown)] if (shown := _date(attrs.get("timestamp"))) else []
        if kind in _CARD_KINDS:
            url = attrs.get("url")
            data = attrs.get("data")
            if not isinstance(url, str) and isinstance(data, dict):
                url = data.get("url")
            href = safe_href(_string(url))
            return [Text(href, href=href)] if href else []
        if kind in _MEDIA_KINDS:
            name = next(
                (value for key in _FILE_NAME_ATTRS if (value := _string(attrs.get(key)).strip())),
                "",
            )
            return [Text(f"[attachment: {name}]" if name else "[attachment]")]
        if kind in _SILENT_KINDS:
            return []
        return None


def _marks(raw: object) -> tuple[frozenset[str], str | None]:
    """The formatting and the checked link target of a text node's ``marks``."""
    names: set[str] = set()
    href = None
    for mark in raw if isinstance(raw, list) else []:
        if not isinstance(mark, dict):
            continue
        kind = mark.get("type")
        if kind in _SIMPLE_MARKS:
            names.add(kind)
        elif kind == "link":
            href = safe_href(_string(_attrs(mark).get("href")))
        elif kind == "subsup" and _attrs(mark).get("type") in ("sub", "sup"):
            names.add(_attrs(mark)["type"])
    return frozenset(names), href


def _date(timestamp: object) -> str:
    """An ADF date (milliseconds since the epoch, as a string) as YYYY-MM-DD, UTC."""
    try:
        millis = int(str(timestamp))
        return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).date().isoformat()
    except (ValueError, OverflowError, OSError):
        return ""
