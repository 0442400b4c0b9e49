"""Markdown bodies (tickets and comments sent to the REST API) parsed into the document tree.

markdown-it-py reads CommonMark plus GFM tables and strikethrough, with raw HTML switched off:
``<script>`` is text like any other and the renderers escape it. Only what the tree can express
survives: link targets go through :func:`safe_href` (a refused link keeps its text), images
become their alt text (files are attached separately), text is cleaned as email text is, and
containers nested deeper than ``MAX_NESTING`` are flattened. The parser's own recursion is
bounded: past ``_PARSER_DEPTH`` the rest of a container is kept as typed, as plain lines. The
tokens are then walked with an explicit stack, so no input can recurse the converter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token

from ticket_manager.content.document import (
    MAX_NESTING,
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

# markdown-it counts a level per open token (a list is two: list and item) and recurses a few
# Python frames per level. Past this level the rest of a container is kept as typed text, well
# beyond where our own MAX_NESTING flattening has already taken over.
_PARSER_DEPTH = 4 * MAX_NESTING
_MARKS = {"strong_open": "strong", "em_open": "em", "s_open": "strike"}
_CLOSING = {"strong_close": "strong", "em_close": "em", "s_close": "strike"}


def markdown_to_blocks(text: str) -> list[Block]:
    """The document blocks of a Markdown body."""
    return _Builder().build(_PARSER.parse(clean_text(text)))


class _Parser(MarkdownIt):
    """CommonMark with GFM tables and strikethrough, no raw HTML, no linkify or typographer."""

    def __init__(self) -> None:
        # Two levels of headroom: a list opens two levels before its items are tokenized, and
        # markdown-it silently drops everything at its own limit.
        super().__init__("commonmark", {"html": False, "maxNesting": _PARSER_DEPTH + 2})
        self.enable(["table", "strikethrough"])
        self.block.ruler.before("table", "too_deep", _keep_too_deep_as_text)

    def validateLink(self, url: str) -> bool:
        """Every target parses as a link, so that ``safe_href`` alone decides and a refused
        link shows its text rather than its Markdown source."""
        return True


def _keep_too_deep_as_text(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """Past ``_PARSER_DEPTH``, take the lines up to a blank line verbatim instead of parsing."""
    if state.level < _PARSER_DEPTH:
        return False
    if silent:
        return True
    line = start + 1
    while line < end and not state.isEmpty(line) and state.sCount[line] >= state.blkIndent:
        line += 1
    token = state.push("too_deep", "", 0)
    token.content = state.getLines(start, line, state.blkIndent, False)
    token.map = [start, line]
    state.line = line
    return True


_PARSER = _Parser()


@dataclass
class _Frame:
    """An open container; ``blocks`` is where its content goes (the parent's when flattened)."""

    kind: str  # root, quote, list, item, table, row, cell, flat (a container flattened)
    blocks: list[Block] | None = None
    ordered: bool = False
    header: bool = False
    items: list[list[Block]] = field(default_factory=list)
    rows: list[list[TableCell]] = field(default_factory=list)
    cells: list[TableCell] = field(default_factory=list)


_CONTAINERS = {"quote", "list", "table"}


class _Builder:
    """Turns markdown-it's flat token stream into blocks, one token at a time."""

    def __init__(self) -> None:
        self.root: list[Block] = []
        self.stack: list[_Frame] = [_Frame("root", self.root)]
        self.depth = 0
        self.quotes = 0
        self.heading: int | None = None

    def build(self, tokens: Sequence[Token]) -> list[Block]:
        for token in tokens:
            handler = getattr(self, f"_on_{token.type}", None)
            if handler is not None:
                handler(token)
        return self.root

    @property
    def flow(self) -> list[Block]:
        """The block list new blocks go into."""
        for frame in reversed(self.stack):
            if frame.blocks is not None:
                return frame.blocks
        return self.root

    @property
    def top(self) -> _Frame:
        return self.stack[-1]

    def _open(self, frame: _Frame, parent_kind: str | None = None) -> None:
        """Open ``frame``, or flatten it when too deep or outside the parent it belongs in."""
        if frame.kind in _CONTAINERS:
            too_deep = self.depth >= MAX_NESTING
            # Neither ADF nor {quote} nests quotes, so a quote in a quote is merged into it.
            if too_deep or (frame.kind == "quote" and self.quotes):
                frame = _Frame("flat", self.flow)
            else:
                self.depth += 1
                self.quotes += frame.kind == "quote"
        elif parent_kind is not None and self.top.kind != parent_kind:
            frame = _Frame("flat", self.flow)
        self.stack.append(frame)

    def _close(self) -> _Frame:
        frame = self.stack.pop() if len(self.stack) > 1 else _Frame("flat", self.root)
        if frame.kind in _CONTAINERS:
            self.depth -= 1
            self.quotes -= frame.kind == "quote"
        return frame

    # Containers

    def _on_blockquote_open(self, token: Token) -> None:
        self._open(_Frame("quote", []))

    def _on_blockquote_close(self, token: Token) -> None:
        frame = self._close()
        if frame.kind == "quote" and frame.blocks:
            self.flow.append(BlockQuote(frame.blocks))

    def _on_bullet_list_open(self, token: Token) -> None:
        self._open(_Frame("list", ordered=token.type == "ordered_list_open"))

    _on_ordered_list_open = _on_bullet_list_open

    def _on_bullet_list_close(self, token: Token) -> None:
        frame = self._close()
        if frame.kind == "list" and frame.items:
            self.flow.append(ListBlock(frame.ordered, frame.items))

    _on_ordered_list_close = _on_bullet_list_close

    def _on_list_item_open(self, token: Token) -> None:
        self._open(_Frame("item", []), parent_kind="list")

    def _on_list_item_close(self, token: Token) -> None:
        frame = self._close()
        if frame.kind == "item" and frame.blocks and self.top.kind == "list":
            self.top.items.append(frame.blocks)

    def _on_table_open(self, token: Token) -> None:
        self._open(_Frame("table"))

    def _on_table_close(self, token: Token) -> None:
        frame = self._close()
        if frame.kind != "table" or not any(cell.blocks for row in frame.rows for cell in row):
            return
        width = max(len(row) for row in frame.rows)
        for row in frame.rows:
            row.extend(TableCell(False, []) for _ in range(width - len(row)))
        self.flow.append(Table(frame.rows))

    def _on_tr_open(self, token: Token) -> None:
        self._open(_Frame("row"), parent_kind="table")

    def _on_tr_close(self, token: Token) -> None:
        frame = self._close()
        if frame.kind == "row" and frame.cells and self.top.kind == "table":
            self.top.rows.append(frame.cells)

    def _on_th_open(self, token: Token) -> None:
        self._open(_Frame("cell", [], header=token.type == "th_open"), parent_kind="row")

    _on_td_open = _on_th_open

    def _on_th_close(self, token: Token) -> None:
        frame = self._close()
        if frame.kind == "cell" and frame.blocks is not None and self.top.kind == "row":
            self.top.cells.append(TableCell(frame.header, frame.blocks))

    _on_td_close = _on_th_close

    # Leaf blocks

    def _on_heading_open(self, token: Token) -> None:
        self.heading = int(token.tag[1:]) if token.tag[1:].isdigit() else 1

    def _on_heading_close(self, token: Token) -> None:
        self.heading = None

    def _on_inline(self, token: Token) -> None:
        """A paragraph's, heading's or table cell's content."""
        inlines = _inlines(token.children or [])
        if not inlines:
            return
        self.flow.append(Heading(self.heading, inlines) if self.heading else Paragraph(inlines))

    def _on_fence(self, token: Token) -> None:
        text = clean_text(token.content).rstrip("\n")
        if text.strip():
            self.flow.append(CodeBlock(text))

    _on_code_block = _on_fence

    def _on_hr(self, token: Token) -> None:
        self.flow.append(Rule())

    def _on_too_deep(self, token: Token) -> None:
        inlines: list[Inline] = []
        for line in clean_text(token.content).split("\n"):
            if inlines:
                inlines.append(HardBreak())
            if line.strip():
                inlines.append(Text(line.strip()))
        inlines = _trim(inlines)
        if inlines:
            self.flow.append(Paragraph(inlines))


def _inlines(children: Sequence[Token]) -> list[Inline]:
    """Inline tokens as text runs (markdown-it balances marks and links)."""
    runs = _Runs()
    for token in children:
        kind = token.type
        if kind in ("text", "text_special"):
            runs.add(token.content)
        elif kind == "softbreak":
            runs.add(" ")
        elif kind == "hardbreak":
            runs.inlines.append(HardBreak())
        elif kind == "code_inline":
            runs.add(token.content, code=True)
        elif kind in _MARKS:
            runs.marks[_MARKS[kind]] += 1
        elif kind in _CLOSING:
            runs.marks[_CLOSING[kind]] -= 1
        elif kind == "link_open":
            runs.links.append(safe_href(str(token.attrs.get("href", ""))))
        elif kind == "link_close" and runs.links:
            runs.links.pop()
        elif kind == "image":
            runs.add_image(token)
    return _trim(runs.inlines)


class _Runs:
    """Inline content being built, with the marks and links open at this point."""

    def __init__(self) -> None:
        self.inlines: list[Inline] = []
        self.marks: Counter[str] = Counter()
        self.links: list[str | None] = []

    def add(self, text: str, *, code: bool = False) -> None:
        """Append ``text`` with the open marks, joining the previous run when they match."""
        text = clean_text(text).replace("\n", " ")
        if not text:
            return
        if code:
            marks = frozenset({"code"})  # ADF allows code only next to link
        else:
            marks = frozenset(mark for mark, count in self.marks.items() if count > 0)
        href = self.links[-1] if self.links else None
        last = self.inlines[-1] if self.inlines else None
        if isinstance(last, Text) and last.marks == marks and last.href == href:
            self.inlines[-1] = Text(last.text + text, marks, href)
        else:
            self.inlines.append(Text(text, marks, href))

    def add_image(self, image: Token) -> None:
        """An image as its alt text, linked to the image if not already in a link and safe."""
        alt = _alt_text(image)
        if self.links:
            self.add(alt)
            return
        target = safe_href(str(image.attrs.get("src", "")))
        self.links.append(target)
        self.add(alt if alt.strip() else (target or ""))
        self.links.pop()


def _alt_text(image: Token) -> str:
    """The plain text of an image's description (images inside it contribute theirs)."""
    parts: list[str] = []
    pending = list(reversed(image.children or []))
    while pending:
        token = pending.pop()
        if token.type in ("text", "text_special", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif token.type == "image":
            pending.extend(reversed(token.children or []))
    return "".join(parts)


def _trim(inlines: list[Inline]) -> list[Inline]:
    """Inline content without edge breaks and edge blanks; empty if nothing visible is left."""
    while inlines and isinstance(inlines[-1], HardBreak):
        inlines.pop()
    while inlines and isinstance(inlines[0], HardBreak):
        inlines.pop(0)
    if not any(isinstance(node, Text) and node.text.strip() for node in inlines):
        return []
    return inlines
