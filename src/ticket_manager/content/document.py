"""The small document tree both Jira formats are rendered from, and the cleaning all text gets.

HTML and plain-text bodies are first turned into this tree (paragraphs, headings, lists, tables,
quotes, code blocks, rules; text runs with marks and checked links). The ADF and wiki renderers
only ever see this tree, so what an email can express in Jira is decided here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# The formatting a text run can carry, in the order renderers apply them.
MARK_ORDER = ("strong", "em", "underline", "strike", "code")

# Containers (lists, quotes, tables) nested deeper than this are flattened into their parent:
# it bounds rendering time and recursion, and keeps ADF far below the nesting Jira accepts.
MAX_NESTING = 8

# A header value (a To: line with hundreds of recipients) is cut to this many characters.
MAX_HEADER_VALUE = 1000
# At most this many oversized attachments are named one by one; the rest are counted.
MAX_OVERSIZED_LISTED = 50

TRUNCATION_NOTE = "… (truncated: the full email is attached as original.eml)"

# Embeddings, overrides and isolates reorder text on screen (the "Trojan Source" trick).
_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Bidi marks only nudge neutral characters; they are kept in bodies, where RTL mail uses them.
_BIDI_MARKS = "\u200e\u200f\u061c"
# Invisible characters with no legitimate use in a ticket: zero-width space, word joiner,
# invisible operators, BOM, soft hyphen, Mongolian vowel separator, interlinear annotation,
# Hangul fillers. Zero-width (non-)joiners stay: Persian, Indic scripts and emoji need them.
_INVISIBLE = (
    "\u200b\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\ufff9\ufffa\ufffb"
    "\u115f\u1160\u3164\uffa0"
)
_CONTROLS = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_C1 = "".join(chr(c) for c in range(0x7F, 0xA0))
_SURROGATES_AND_NONCHARS = re.compile("[\ud800-\udfff\ufffe\uffff\U000e0000-\U000e007f]")

_BODY_DROP = str.maketrans("", "", _BIDI_CONTROLS + _INVISIBLE + _CONTROLS + _C1)
_LINE_DROP = str.maketrans("", "", _BIDI_CONTROLS + _BIDI_MARKS + _INVISIBLE)


def clean_text(text: str) -> str:
    """Body text without controls (tab and newline excepted), bidi overrides or invisible marks.

    Carriage returns become newlines; Unicode tag characters (used to smuggle hidden ASCII) and
    lone surrogates go. Everything else, right-to-left text included, is kept as is.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATES_AND_NONCHARS.sub("", text.translate(_BODY_DROP))


def clean_line(text: str) -> str:
    """``text`` as one line: controls and line breaks become spaces, runs of space collapse."""
    text = _SURROGATES_AND_NONCHARS.sub("", text.translate(_LINE_DROP))
    text = "".join(" " if ch in _CONTROLS or ch in _C1 or ch in "\t\n\r" else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


@dataclass(frozen=True)
class Text:
    """A run of text with its formatting; ``href`` is set only for a checked link."""

    text: str
    marks: frozenset[str] = frozenset()
    href: str | None = None


@dataclass(frozen=True)
class HardBreak:
    """A line break inside a paragraph."""


@dataclass(frozen=True)
class ImageRef:
    """An inline image of the email, by the file name it was attached to the issue under."""

    filename: str


Inline = Text | HardBreak | ImageRef


@dataclass
class Paragraph:
    """A paragraph of inline content."""

    inlines: list[Inline]


@dataclass
class Heading:
    """A heading, level 1 to 6."""

    level: int
    inlines: list[Inline]


@dataclass
class CodeBlock:
    """Preformatted text shown verbatim."""

    text: str


@dataclass
class Rule:
    """A horizontal rule."""


@dataclass
class BlockQuote:
    """Quoted content (the earlier messages of a reply, usually)."""

    blocks: list[Block]


@dataclass
class ListBlock:
    """A bullet or numbered list; each item is a list of blocks."""

    ordered: bool
    items: list[list[Block]]


@dataclass
class TableCell:
    """One table cell; ``header`` for a heading cell."""

    header: bool
    blocks: list[Block]


@dataclass
class Table:
    """A table of rows of cells (rows are padded to the same width)."""

    rows: list[list[TableCell]]


Block = Paragraph | Heading | CodeBlock | Rule | BlockQuote | ListBlock | Table


@dataclass
class EmailContent:
    """An email body as a document, with the header lines and the attachments left out."""

    body: list[Block]
    header: list[tuple[str, str]] = field(default_factory=list)
    oversized: list[tuple[str, int]] = field(default_factory=list)

    @classmethod
    def from_email(
        cls,
        body: str | None,
        body_type: str = "text",
        header: list[tuple[str, str]] | None = None,
        inline_images: dict[str, str] | None = None,
        oversized: list[tuple[str, int]] | None = None,
    ) -> EmailContent:
        """Parse an email body ("html" or "text", as Graph names them) into a document."""
        from ticket_manager.content.html import html_to_blocks

        if body_type.lower() == "html":
            blocks = html_to_blocks(body or "", inline_images or {})
        else:
            blocks = text_to_blocks(body or "")
        lines = [
            (clean_line(str(name)), cut(clean_line(str(value)), MAX_HEADER_VALUE))
            for name, value in (header or [])
        ]
        listed = [
            (cut(clean_line(name), 255) or "(unnamed)", int(size)) for name, size in oversized or []
        ]
        return cls(body=blocks, header=[(n, v) for n, v in lines if n], oversized=listed)

    @classmethod
    def from_text(
        cls,
        body: str | None,
        body_format: str = "markdown",
        header: list[tuple[str, str]] | None = None,
    ) -> EmailContent:
        """Parse a body sent to the REST API ("markdown" or "text") into a document."""
        from ticket_manager.content.markdown import markdown_to_blocks

        body_format = body_format.lower()
        if body_format == "markdown":
            blocks = markdown_to_blocks(body or "")
        elif body_format == "text":
            blocks = text_to_blocks(body or "")
        else:
            raise ValueError(f"unknown body format {body_format!r}: use 'markdown' or 'text'")
        # The header lines are cleaned exactly as an email's are.
        return cls(body=blocks, header=cls.from_email(None, header=header).header)

    def header_blocks(self) -> list[Block]:
        """The From/To/Cc/Received lines as one paragraph with bold labels."""
        inlines: list[Inline] = []
        for name, value in self.header:
            if inlines:
                inlines.append(HardBreak())
            inlines.append(Text(f"{name}:", frozenset({"strong"})))
            if value:
                inlines.append(Text(f" {value}"))
        return [Paragraph(inlines)] if inlines else []

    def tail_blocks(self) -> list[Block]:
        """One line per attachment that was too large to upload."""
        blocks: list[Block] = [
            Paragraph([Text(f"Not attached (too large): {name} ({format_size(size)})")])
            for name, size in self.oversized[:MAX_OVERSIZED_LISTED]
        ]
        if len(self.oversized) > MAX_OVERSIZED_LISTED:
            more = len(self.oversized) - MAX_OVERSIZED_LISTED
            blocks.append(Paragraph([Text(f"Not attached (too large): {more} more files")]))
        return blocks


def format_size(size: int) -> str:
    """A byte count as people read it: 512 bytes, 14.2 KB, 30.0 MB, 1.5 GB."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def text_to_blocks(text: str) -> list[Block]:
    """Plain text as paragraphs split on blank lines, keeping its line breaks."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n[ \t]*\n", clean_text(text)):
        lines = chunk.strip("\n").split("\n")
        inlines: list[Inline] = []
        for line in lines:
            if inlines:
                inlines.append(HardBreak())
            line = line.rstrip()
            if line:
                inlines.append(Text(line))
        if any(isinstance(node, Text) for node in inlines):
            blocks.append(Paragraph(inlines))
    return blocks


def summary_from_subject(subject: str | None) -> str:
    """A Jira summary from an email subject: one clean line of at most 255 characters.

    Jira counts characters as Java does, in UTF-16 code units: an emoji outside the Basic
    Multilingual Plane counts two.
    """
    line = clean_line(subject or "")
    return cut_utf16(line, 255) if line else "(no subject)"


def utf16_length(text: str) -> int:
    """The length of ``text`` as Java (and so Jira) counts it."""
    return len(text.encode("utf-16-le")) // 2


def cut_utf16(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units, ending in an ellipsis when cut."""
    if utf16_length(text) <= limit:
        return text
    kept, used = [], 1  # the ellipsis is one unit
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit:
            break
        kept.append(char)
        used += size
    return "".join(kept).rstrip() + "…"


def plain_text(blocks: list[Block]) -> str:
    """The visible text of ``blocks``, paragraphs separated by blank lines."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph | Heading):
            parts.append(inline_text(block.inlines))
        elif isinstance(block, CodeBlock):
            parts.append(block.text)
        elif isinstance(block, BlockQuote):
            parts.append(plain_text(block.blocks))
        elif isinstance(block, ListBlock):
            parts.extend(plain_text(item) for item in block.items)
        elif isinstance(block, Table):
            for row in block.rows:
                parts.append(" | ".join(plain_text(cell.blocks) for cell in row))
    return "\n\n".join(part for part in parts if part)


def inline_text(inlines: list[Inline]) -> str:
    """The visible text of inline content; images appear as ``[image: name]``."""
    out = []
    for node in inlines:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, HardBreak):
            out.append("\n")
        else:
            out.append(f"[image: {node.filename}]")
    return "".join(out)


def text_preview(doc: EmailContent, limit: int = 200) -> str:
    """A one-line preview of the body (for logs and notifications), cut to ``limit``."""
    return cut(re.sub(r"\s+", " ", plain_text(doc.body)).strip(), limit)


def text_length(blocks: list[Block]) -> int:
    """How many characters :func:`truncate_blocks` counts in ``blocks``."""
    total = 0
    for block in blocks:
        if isinstance(block, Paragraph | Heading):
            total += _inline_length(block.inlines)
        elif isinstance(block, CodeBlock):
            total += len(block.text)
        elif isinstance(block, Rule):
            total += 1
        elif isinstance(block, BlockQuote):
            total += text_length(block.blocks)
        elif isinstance(block, ListBlock):
            total += sum(text_length(item) for item in block.items)
        else:
            total += sum(text_length(cell.blocks) for row in block.rows for cell in row)
    return total


def _inline_length(inlines: list[Inline]) -> int:
    total = 0
    for node in inlines:
        if isinstance(node, Text):
            total += len(node.text)
        elif isinstance(node, ImageRef):
            total += len(node.filename)
        else:
            total += 1
    return total


def truncate_blocks(blocks: list[Block], keep: int) -> list[Block]:
    """The first ``keep`` characters of ``blocks``, structure kept and emptied containers gone."""
    return _Truncator(keep).blocks(blocks)


class _Truncator:
    """Walks a document once, keeping text until a character budget runs out."""

    def __init__(self, budget: int) -> None:
        self.left = budget

    def _take(self, size: int) -> int:
        """How much of ``size`` still fits."""
        taken = min(size, self.left)
        self.left -= taken
        return taken

    def _done(self) -> bool:
        return self.left <= 0

    def blocks(self, blocks: list[Block]) -> list[Block]:
        kept: list[Block] = []
        for block in blocks:
            if self._done():
                break
            result = self._block(block)
            if result is not None:
                kept.append(result)
        return kept

    def _block(self, block: Block) -> Block | None:
        size = text_length([block])
        if size <= self.left:
            self.left -= size
            return block
        if isinstance(block, Paragraph):
            inlines = self.inlines(block.inlines)
            return Paragraph(inlines) if inlines else None
        if isinstance(block, Heading):
            inlines = self.inlines(block.inlines)
            return Heading(block.level, inlines) if inlines else None
        if isinstance(block, CodeBlock):
            text = block.text[: self._take(len(block.text))]
            return CodeBlock(text) if text else None
        if isinstance(block, Rule):
            return block if self._take(1) else None
        if isinstance(block, BlockQuote):
            inner = self.blocks(block.blocks)
            return BlockQuote(inner) if inner else None
        if isinstance(block, ListBlock):
            items = []
            for item in block.items:
                if self._done():
                    break
                kept = self.blocks(item)
                if kept:
                    items.append(kept)
            return ListBlock(block.ordered, items) if items else None
        rows = []
        for row in block.rows:
            if self._done():
                break
            rows.append([TableCell(cell.header, self.blocks(cell.blocks)) for cell in row])
        return Table(rows) if rows else None

    def inlines(self, inlines: list[Inline]) -> list[Inline]:
        kept: list[Inline] = []
        for node in inlines:
            if self._done():
                break
            if isinstance(node, Text):
                text = node.text[: self._take(len(node.text))]
                if text:
                    kept.append(Text(text, node.marks, node.href))
            elif isinstance(node, ImageRef):
                if self._take(len(node.filename)) == len(node.filename):
                    kept.append(node)
            elif self._take(1):
                kept.append(node)
        while kept and isinstance(kept[-1], HardBreak):
            kept.pop()
        return kept


def fit_body(
    body: list[Block], size_of: Callable[[list[Block], bool], int], limit: int
) -> tuple[list[Block], bool]:
    """A longest prefix of ``body`` whose rendering fits ``limit``, and whether it was cut.

    ``size_of(blocks, truncated)`` measures the whole rendered field (header, note and tail
    included). Every kept character costs at least one output character, so the answer is at
    most ``limit`` characters of text and the search only ever renders small documents.
    """
    total = text_length(body)
    if total <= limit and size_of(body, False) <= limit:
        return body, False
    low, high = 0, min(total, limit)
    # Within one percent of the best cut is good enough, and halves the renders needed.
    while high - low > max(limit // 100, 1):
        middle = (low + high + 1) // 2
        if size_of(truncate_blocks(body, middle), True) <= limit:
            low = middle
        else:
            high = middle - 1
    return truncate_blocks(body, low), True


def java_length(text: str) -> int:
    """The length Jira (Java, UTF-16) counts: characters beyond the BMP count twice."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
