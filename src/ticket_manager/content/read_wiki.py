"""Jira Server/Data Center comment bodies (wiki markup) read into the document tree.

Covers the notation people actually type: text effects, headings, quotes, lists, tables, links,
mentions, images, ``{code}``/``{noformat}``/``{quote}``/``{panel}`` and ``{color}``. Anything
else is text. Links keep only http, https and mailto targets. Reading is line by line with no
recursion on the input; lists deeper than ``MAX_COMMENT_NESTING`` join the deepest level.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right

from ticket_manager.content.document import (
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
from ticket_manager.content.read_adf import MAX_COMMENT_NESTING, CommentBlock, Panel

_EFFECTS = {"*": "strong", "_": "em", "-": "strike", "+": "underline"}
_HEADING = re.compile(r"h([1-6])\.\s*(.*)")
_QUOTE_LINE = re.compile(r"bq\.\s+(.*)")
_RULE = re.compile(r"-{4,}")
_LIST_ITEM = re.compile(r"([*#]+|-)\s+(\S.*)")
_PREFORMATTED = re.compile(r"\{(code|noformat)(?::[^{}\n]*)?\}")
_CONTAINER = re.compile(r"\{(quote|panel)(?::[^{}\n]*)?\}")
_LINK = re.compile(r"\[([^\[\]\n]{1,2000})\]")
_IMAGE = re.compile(r"!([^\s!|][^!|\n]{0,500}?)(?:\|[^!\n]{0,500})?!")
_COLOR = re.compile(r"\{color(?::[^{}\n]{0,50})?\}")
_BRACED_EFFECT = re.compile(r"\{([*_+-])\}")


def wiki_to_blocks(markup: str) -> list[CommentBlock]:
    """The blocks of a wiki-markup comment; never raises."""
    return _blocks(clean_text(markup).split("\n"), containers=True)


def _blocks(lines: list[str], containers: bool) -> list[CommentBlock]:
    """Blocks of ``lines``; ``containers`` is false inside ``{quote}``/``{panel}`` (no nesting)."""
    blocks: list[CommentBlock] = []
    paragraph: list[Inline] = []
    lists = _ListBuilder(blocks)
    rows: list[list[TableCell]] = []

    def end_paragraph() -> None:
        if paragraph:
            blocks.append(Paragraph(paragraph.copy()))
            paragraph.clear()

    def end_table() -> None:
        if rows:
            blocks.append(Table(rows.copy()))
            rows.clear()

    def end_all() -> None:
        end_paragraph()
        lists.end()
        end_table()

    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        preformatted = _PREFORMATTED.match(stripped)
        container = _CONTAINER.match(stripped) if containers else None
        if preformatted or container:
            end_all()
            match = preformatted or container
            assert match is not None
            closer = re.compile(r"\{" + match.group(1) + r"\}")
            inner, index, rest = _until(lines, index, stripped[match.end() :], closer)
            if preformatted:
                blocks.append(CodeBlock("\n".join(inner).strip("\n")))
            else:
                inside = _blocks(inner, containers=False)
                if inside:
                    quote = match.group(1) == "quote"
                    blocks.append(BlockQuote(inside) if quote else Panel("info", inside))
            if rest.strip():
                # Text after the closing tag on the same line is read as a line of its own.
                index -= 1
                lines[index] = rest
            continue
        index += 1
        if not stripped:
            end_all()
            continue
        heading = _HEADING.fullmatch(stripped)
        quote_line = _QUOTE_LINE.fullmatch(stripped)
        item = _LIST_ITEM.fullmatch(stripped)
        if heading or quote_line or _RULE.fullmatch(stripped):
            end_all()
            if heading:
                blocks.append(Heading(int(heading.group(1)), wiki_inlines(heading.group(2))))
            elif quote_line:
                blocks.append(BlockQuote([Paragraph(wiki_inlines(quote_line.group(1)))]))
            else:
                blocks.append(Rule())
        elif item:
            end_paragraph()
            end_table()
            lists.add(item.group(1), wiki_inlines(item.group(2)))
        elif stripped.startswith("|"):
            end_paragraph()
            lists.end()
            cells = _cells(stripped)
            if cells:
                rows.append(cells)
        else:
            lists.end()
            end_table()
            if paragraph:
                paragraph.append(HardBreak())
            paragraph.extend(wiki_inlines(stripped))
    end_all()
    return [block for block in blocks if not isinstance(block, Paragraph) or block.inlines]


def _until(
    lines: list[str], index: int, rest: str, closer: re.Pattern[str]
) -> tuple[list[str], int, str]:
    """The lines up to ``closer`` (from ``rest`` of line ``index`` on), the next line, the rest."""
    inner: list[str] = []
    current = rest
    while True:
        match = closer.search(current)
        if match:
            inner.append(current[: match.start()])
            return inner, index + 1, current[match.end() :]
        inner.append(current)
        index += 1
        if index >= len(lines):
            return inner, index, ""
        current = lines[index]


class _ListBuilder:
    """Nested lists from ``*``/``#`` marker runs, the depth capped at ``MAX_COMMENT_NESTING``."""

    def __init__(self, blocks: list[CommentBlock]) -> None:
        self.blocks = blocks
        self.open: list[ListBlock] = []

    def add(self, markers: str, inlines: list[Inline]) -> None:
        markers = markers.replace("-", "*")[:MAX_COMMENT_NESTING]
        depth = len(markers)
        del self.open[depth:]
        if self.open and self.open[-1].ordered != (markers[len(self.open) - 1] == "#"):
            # Another list type at the same level starts a new list.
            self.open.pop()
        while len(self.open) < depth:
            nested = ListBlock(markers[len(self.open)] == "#", [])
            if self.open:
                parent = self.open[-1]
                if not parent.items:
                    parent.items.append([])
                parent.items[-1].append(nested)
            else:
                self.blocks.append(nested)
            self.open.append(nested)
        self.open[-1].items.append([Paragraph(inlines)])

    def end(self) -> None:
        self.open.clear()


def _cells(line: str) -> list[TableCell]:
    """The cells of a table row: ``||`` starts a heading cell, ``|`` a cell."""
    cells: list[TableCell] = []
    header: bool | None = None
    current: list[str] = []
    brackets = 0
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            current.append(line[index : index + 2])
            index += 2
            continue
        if char == "[":
            brackets += 1
        elif char == "]" and brackets:
            brackets -= 1
        if char == "|" and not brackets:
            if header is not None:
                cells.append(TableCell(header, _cell_blocks("".join(current))))
            header = line.startswith("||", index)
            index += 2 if header else 1
            current = []
            continue
        current.append(char)
        index += 1
    if header is not None and "".join(current).strip():
        cells.append(TableCell(header, _cell_blocks("".join(current))))
    return cells


def _cell_blocks(text: str) -> list[CommentBlock]:
    inlines = wiki_inlines(text.strip())
    return [Paragraph(inlines)] if inlines else []


def wiki_inlines(line: str) -> list[Inline]:
    """One line of wiki text as inline content: effects, links, mentions, images, breaks."""
    return _InlineReader(line).read()


class _InlineReader:
    """A left-to-right scan of one line, with the set of text effects currently open."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.out: list[Inline] = []
        self.buffer: list[str] = []
        self.open: list[str] = []
        # Where each effect character could close, found once so the scan stays linear.
        self.closers = {
            char: [at for at, found in enumerate(line) if found == char and self._closes(at)]
            for char in _EFFECTS
        }

    def marks(self) -> frozenset[str]:
        return frozenset(_EFFECTS[char] for char in self.open)

    def flush(self) -> None:
        if self.buffer:
            text = html.unescape("".join(self.buffer))
            if text:
                self.out.append(Text(text, self.marks()))
            self.buffer = []

    def emit(self, node: Inline) -> None:
        self.flush()
        self.out.append(node)

    def read(self) -> list[Inline]:
        line = self.line
        index = 0
        while index < len(line):
            index = self._step(index)
        self.flush()
        return self.out

    def _step(self, index: int) -> int:
        """Read what starts at ``index``; return where reading continues."""
        line = self.line
        char = line[index]
        if char == "\\":
            if line.startswith("\\\\", index):
                self.emit(HardBreak())
                return index + 2
            self.buffer.append(line[index + 1 : index + 2] or "\\")
            return index + 2
        if line.startswith("{{", index):
            end = line.find("}}", index + 2)
            if end > index + 2:
                self.emit(Text(line[index + 2 : end], self.marks() | {"code"}))
                return end + 2
        if char == "{":
            color = _COLOR.match(line, index)
            if color:
                self.flush()
                return color.end()
            braced = _BRACED_EFFECT.match(line, index)
            if braced:
                self.flush()
                self._toggle(braced.group(1))
                return braced.end()
        if char == "[":
            link = _LINK.match(line, index)
            if link and self._link(link.group(1)):
                return link.end()
        if char == "!":
            image = _IMAGE.match(line, index)
            if image and "." in image.group(1):
                self.emit(Text(f"[image: {image.group(1).strip()}]", self.marks()))
                return image.end()
        if char in _EFFECTS:
            if char in self.open and self._closes(index):
                self.flush()
                self.open.remove(char)
                return index + 1
            if char not in self.open and self._opens(index):
                self.flush()
                self.open.append(char)
                return index + 1
        self.buffer.append(char)
        return index + 1

    def _toggle(self, char: str) -> None:
        if char in self.open:
            self.open.remove(char)
        else:
            self.open.append(char)

    def _opens(self, at: int) -> bool:
        line, char = self.line, self.line[at]
        if at > 0 and (line[at - 1].isalnum() or (char == "-" and line[at - 1] == "-")):
            return False
        if at + 1 >= len(line) or line[at + 1].isspace() or (char == "-" and line[at + 1] == "-"):
            return False
        closers = self.closers[char]
        position = bisect_right(closers, at + 1)
        return position < len(closers)

    def _closes(self, at: int) -> bool:
        line, char = self.line, self.line[at]
        if at == 0 or line[at - 1].isspace() or line[at - 1] == "\\":
            return False
        if at + 1 < len(line) and line[at + 1].isalnum():
            return False
        dashes = char == "-" and (line[at - 1] == "-" or line[at + 1 : at + 2] == "-")
        return not dashes

    def _link(self, inner: str) -> bool:
        """Emit ``[inner]`` as a mention, attachment or link; false if it is plain text."""
        marks = self.marks()
        if inner.startswith("~"):
            self.emit(Text(f"@{inner[1:].strip()}", marks))
            return True
        if inner.startswith("^"):
            self.emit(Text(f"[attachment: {inner[1:].strip()}]", marks))
            return True
        if "|" in inner:
            label, target = inner.split("|", 2)[:2]
        else:
            label, target = "", inner
        href = safe_href(target.strip())
        label = html.unescape(re.sub(r"\\(.)", r"\1", label)).strip()
        if href is None and not label:
            return False
        self.emit(Text(label or target.strip(), marks, href))
        return True
