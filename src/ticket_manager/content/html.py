"""HTML email bodies parsed into the document tree, without recursion and without trusting them.

Python's event-based :class:`html.parser.HTMLParser` tokenizes; a stack of open elements turns
tags into marks, links, paragraphs and containers. Nothing of the HTML survives except what the
tree can express: scripts, styles, frames, objects, comments, hidden elements, remote images and
tracking pixels disappear, attributes (event handlers included) are never copied, and unknown
tags keep their text. Containers nested deeper than ``MAX_NESTING`` are flattened, so a
10,000-level document costs no more than a flat one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urlsplit

from ticket_manager.content.document import (
    MAX_NESTING,
    Block,
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
    TableCell,
    Text,
    clean_text,
)

# Elements dropped with everything inside them.
_DROPPED = {
    "script", "style", "head", "title", "iframe", "frame", "frameset", "object", "embed",
    "applet", "template", "noscript", "svg", "math", "audio", "video", "canvas", "select",
}  # fmt: skip
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen", "basefont", "bgsound", "frame", "image",
}  # fmt: skip
_MARK_TAGS = {
    "b": "strong", "strong": "strong", "i": "em", "em": "em", "cite": "em", "var": "em",
    "dfn": "em", "u": "underline", "ins": "underline", "s": "strike", "strike": "strike",
    "del": "strike", "code": "code", "tt": "code", "kbd": "code", "samp": "code",
}  # fmt: skip
# Tags that end a paragraph; the rest of the block-level tags only end a line (Gmail and Apple
# Mail write one <div> per line and an empty <div><br></div> between paragraphs).
_PARAGRAPH_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre", "listing", "xmp"}
_LINE_TAGS = {
    "div", "section", "article", "header", "footer", "main", "nav", "aside", "address",
    "center", "dl", "dt", "dd", "figure", "figcaption", "form", "fieldset", "legend",
    "details", "summary", "caption", "body", "html", "hgroup", "tbody", "thead", "tfoot",
}  # fmt: skip
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.IGNORECASE
)
_STYLE_MARKS = (
    (re.compile(r"font-weight\s*:\s*(bold|[6-9]00)", re.IGNORECASE), "strong"),
    (re.compile(r"font-style\s*:\s*italic", re.IGNORECASE), "em"),
    (re.compile(r"text-decoration[a-z-]*\s*:[^;]*underline", re.IGNORECASE), "underline"),
    (re.compile(r"text-decoration[a-z-]*\s*:[^;]*line-through", re.IGNORECASE), "strike"),
)
_SPACE = re.compile(r"[ \t\n\r\f\u00a0]+")
_PIXEL = re.compile(r"^\s*[01](\.0*)?\s*(px)?\s*$")
_STYLE_SIZE = re.compile(r"(?:^|;)\s*(?:width|height)\s*:\s*[01](?:\.0*)?\s*px", re.IGNORECASE)
# An end tag does not close elements beyond these (as browsers scope them).
_LISTS = frozenset({"ul", "ol", "menu", "dir"})
_END_TAG_BOUNDARIES = {
    **dict.fromkeys(("ul", "ol", "menu", "dir", "blockquote", "table"), frozenset()),
    **dict.fromkeys(("td", "th", "tr"), frozenset({"table"})),
    "li": _LISTS | {"table"},
}
_INLINE_BOUNDARIES = _LISTS | {"table", "td", "th", "li", "blockquote"}
_LINK_SCHEMES = {"http", "https", "mailto"}
_URL_SAFE = "-._~:/?#@$&'*+,;=%"
MAX_URL_LENGTH = 2048


def safe_href(value: str | None) -> str | None:
    """``value`` as a link target if it is an http, https or mailto URL, else ``None``."""
    if not value:
        return None
    url = quote(clean_text(value).strip(), safe=_URL_SAFE)
    if not url or len(url) > MAX_URL_LENGTH:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _LINK_SCHEMES:
        return None
    if scheme == "mailto":
        return url if parts.path else None
    return url if parts.netloc and url.lower().startswith(f"{scheme}://") else None


def html_to_blocks(html: str, inline_images: dict[str, str]) -> list[Block]:
    """The document blocks of an HTML body; ``inline_images`` maps Content-ID to file name."""
    builder = _Builder(inline_images)
    builder.feed(html)
    builder.close()
    return builder.finish()


class _Flow:
    """A place blocks go: the document, a quote, a list item or a table cell."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.inlines: list[Inline] = []
        self.heading: int | None = None

    def flush(self) -> None:
        """Turn the pending inline content into paragraphs (or a heading)."""
        inlines, self.inlines = self.inlines, []
        for group in _split_paragraphs(inlines):
            if self.heading:
                self.blocks.append(Heading(self.heading, group))
            else:
                self.blocks.append(Paragraph(group))


@dataclass
class _ListBuild:
    ordered: bool
    items: list[list[Block]] = field(default_factory=list)


@dataclass
class _TableBuild:
    rows: list[list[TableCell]] = field(default_factory=list)


@dataclass
class _Open:
    """An open element and what it changed, so that closing it can undo exactly that."""

    tag: str
    kind: str = "plain"  # plain, line, paragraph, heading, pre, quote, list, item, table, row,
    # cell, opaque (a container flattened for depth: closes like one, builds nothing)
    marks: tuple[str, ...] = ()
    link: bool = False
    href: str | None = None
    cells: list[TableCell] | None = None
    flow: _Flow | None = None
    build: _ListBuild | _TableBuild | None = None
    content_mark: int = 0
    previous_heading: int | None = None
    pre_parts: list[str] | None = None


_STRUCTURAL = {"quote", "list", "item", "table", "row", "cell", "opaque"}


class _Builder(HTMLParser):
    def __init__(self, inline_images: dict[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.images = {_cid_key(key): name for key, name in inline_images.items()}
        self.root = _Flow()
        self.flows: list[_Flow] = [self.root]
        self.stack: list[_Open] = []
        self.structure: list[_Open] = []
        self.open_tags: Counter[str] = Counter()
        self.marks: Counter[str] = Counter()
        self.links: list[str | None] = []
        self.skipping: list[str] = []
        self.pre: _Open | None = None
        self.content = 0
        self.depth = 0
        self.tables = 0
        self.quotes = 0

    # Parser events

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if self.skipping:
            if tag == "body" and self.skipping[0] == "head":
                self.skipping.clear()
            elif tag not in _VOID:
                self.skipping.append(tag)
                return
            else:
                return
        if (
            tag in _DROPPED
            or "hidden" in attributes
            or _HIDDEN_STYLE.search(attributes.get("style", ""))
        ):
            if tag not in _VOID:
                self.skipping.append(tag)
            return
        if self.pre is not None:
            self._start_in_pre(tag)
            return
        if tag == "br":
            self.flow.inlines.append(HardBreak())
        elif tag == "img":
            self._image(attributes)
        elif tag == "hr":
            self.flow.flush()
            self.flow.blocks.append(Rule())
        elif tag in _VOID:
            return
        else:
            self._push(self._open(tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag in self.skipping:
                while self.skipping.pop() != tag:
                    pass
            return
        target = self._find_open(tag)
        if target is None:
            # Browsers read a stray </p> as an empty paragraph and </br> as <br>.
            if tag == "p" and self.pre is None:
                self.flow.flush()
            elif tag == "br":
                self.handle_starttag(tag, [])
            return
        self._pop_to(target)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping or not data:
            return
        data = clean_text(data)
        if self.pre is not None:
            assert self.pre.pre_parts is not None
            self.pre.pre_parts.append(data)
            return
        text = _SPACE.sub(" ", data)
        if text.strip():
            self._ensure_inline_place()
            self.content += 1
        self._append_text(text)

    def finish(self) -> list[Block]:
        while self.stack:
            self._pop()
        self.root.flush()
        return self.root.blocks

    # Opening and closing elements

    @property
    def flow(self) -> _Flow:
        return self.flows[-1]

    def _innermost(self) -> str | None:
        return self.structure[-1].kind if self.structure else None

    def _open(self, tag: str, attributes: dict[str, str]) -> _Open:
        if tag in ("ul", "ol", "menu", "dir"):
            return self._open_container(tag, "list")
        if tag == "blockquote":
            return self._open_container(tag, "quote")
        if tag == "table":
            return self._open_container(tag, "table")
        if tag == "li":
            if self._innermost() == "item":
                self._pop_to(self.structure[-1])
            if self._innermost() == "list":
                return self._open_member(tag, "item")
            return self._opaque(tag)
        if tag in ("td", "th"):
            if self._innermost() == "cell":
                self._pop_to(self.structure[-1])
            if self._innermost() == "table":
                self._push(self._open_member("", "row"))
            if self._innermost() == "row":
                return self._open_member(tag, "cell")
            return self._opaque(tag)
        if tag == "tr":
            if self._innermost() == "cell":
                self._pop_to(self.structure[-1])
            if self._innermost() == "row":
                self._pop_to(self.structure[-1])
            if self._innermost() == "table":
                return self._open_member(tag, "row")
            return self._opaque(tag)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.flow.flush()
            entry = _Open(tag, "heading", previous_heading=self.flow.heading)
            self.flow.heading = int(tag[1])
            return entry
        if tag in ("pre", "listing", "xmp", "plaintext"):
            self.flow.flush()
            entry = _Open(tag, "pre", pre_parts=[])
            self.pre = entry
            return entry
        if tag == "p" and "msonormal" not in attributes.get("class", "").lower():
            open_paragraph = self._find_open("p")
            if open_paragraph is not None:
                self._pop_to(open_paragraph)
            self.flow.flush()
            return _Open(tag, "paragraph")
        entry = _Open(tag)
        if tag in _LINE_TAGS or tag == "p":
            self._line_break()
            entry.kind = "line"
            entry.content_mark = self.content
        marks = [_MARK_TAGS[tag]] if tag in _MARK_TAGS else []
        style = attributes.get("style", "")
        marks += [mark for pattern, mark in _STYLE_MARKS if style and pattern.search(style)]
        entry.marks = tuple(marks)
        if tag == "a":
            entry.link = True
            entry.href = safe_href(attributes.get("href"))
        return entry

    def _find_open(self, tag: str) -> _Open | None:
        """The open element an end tag closes; a container is not closed from outside it."""
        if self.open_tags[tag] <= 0:
            return None
        boundaries = _END_TAG_BOUNDARIES.get(tag, _INLINE_BOUNDARIES)
        for entry in reversed(self.stack):
            if entry.tag == tag:
                return entry
            if entry.tag in boundaries:
                return None
        return None

    def _open_container(self, tag: str, kind: str) -> _Open:
        if (
            self.depth >= MAX_NESTING
            or (kind == "table" and self.tables)
            or (kind == "quote" and self.quotes)
        ):
            return self._opaque(tag)
        self.flow.flush()
        if kind == "quote":
            return _Open(tag, kind, flow=_Flow())
        if kind == "list":
            return _Open(tag, kind, build=_ListBuild(ordered=tag == "ol"))
        return _Open(tag, kind, build=_TableBuild())

    def _open_member(self, tag: str, kind: str) -> _Open:
        if kind == "row":
            return _Open(tag, kind, cells=[])
        return _Open(tag, kind, flow=_Flow())

    def _opaque(self, tag: str) -> _Open:
        self.flow.flush()
        return _Open(tag, "opaque")

    def _push(self, entry: _Open) -> None:
        self.stack.append(entry)
        self.open_tags[entry.tag] += 1
        if entry.kind in _STRUCTURAL:
            self.structure.append(entry)
        if entry.kind in ("quote", "list", "table"):
            self.depth += 1
            self.tables += entry.kind == "table"
            self.quotes += entry.kind == "quote"
        if entry.flow is not None:
            self.flows.append(entry.flow)
        self.marks.update(entry.marks)
        if entry.link:
            self.links.append(entry.href)

    def _pop_to(self, target: _Open) -> None:
        while self.stack:
            if self._pop() is target:
                return

    def _pop(self) -> _Open:
        entry = self.stack.pop()
        self.open_tags[entry.tag] -= 1
        if entry.kind in _STRUCTURAL:
            self.structure.pop()
        self.marks.subtract(entry.marks)
        if entry.link:
            self.links.pop()
        getattr(self, f"_close_{entry.kind}", _ignore)(entry)
        return entry

    def _close_line(self, entry: _Open) -> None:
        if self.content == entry.content_mark:
            self.flow.flush()
        else:
            self._line_break()

    def _close_paragraph(self, entry: _Open) -> None:
        self.flow.flush()

    def _close_opaque(self, entry: _Open) -> None:
        self.flow.flush()

    def _close_heading(self, entry: _Open) -> None:
        self.flow.flush()
        self.flow.heading = entry.previous_heading

    def _close_pre(self, entry: _Open) -> None:
        self.pre = None
        text = "".join(entry.pre_parts or [])
        text = text[1:] if text.startswith("\n") else text
        text = "\n".join(line.rstrip() for line in text.rstrip().split("\n"))
        if text.strip():
            self.flow.blocks.append(CodeBlock(text))

    def _close_quote(self, entry: _Open) -> None:
        self._leave_container(entry)
        flow = self.flows.pop()
        flow.flush()
        if flow.blocks:
            self.flow.blocks.append(BlockQuote(flow.blocks))

    def _close_list(self, entry: _Open) -> None:
        self._leave_container(entry)
        assert isinstance(entry.build, _ListBuild)
        if entry.build.items:
            self.flow.blocks.append(ListBlock(entry.build.ordered, entry.build.items))

    def _close_item(self, entry: _Open) -> None:
        flow = self.flows.pop()
        flow.flush()
        parent = self.structure[-1].build
        if flow.blocks and isinstance(parent, _ListBuild):
            parent.items.append(flow.blocks)

    def _close_table(self, entry: _Open) -> None:
        self._leave_container(entry)
        assert isinstance(entry.build, _TableBuild)
        rows = [row for row in entry.build.rows if row]
        if not any(cell.blocks for row in rows for cell in row):
            return
        if all(len(row) == 1 for row in rows):
            # A one-column table is page layout (newsletters, signatures): keep its content.
            for row in rows:
                self.flow.blocks.extend(row[0].blocks)
            return
        width = max(len(row) for row in rows)
        for row in rows:
            row.extend(TableCell(False, []) for _ in range(width - len(row)))
        self.flow.blocks.append(Table(rows))

    def _close_row(self, entry: _Open) -> None:
        table = self.structure[-1].build
        if isinstance(table, _TableBuild) and entry.cells:
            table.rows.append(entry.cells)

    def _close_cell(self, entry: _Open) -> None:
        flow = self.flows.pop()
        flow.flush()
        cells = self.structure[-1].cells
        if cells is not None:
            cells.append(TableCell(entry.tag == "th", flow.blocks))

    def _leave_container(self, entry: _Open) -> None:
        self.depth -= 1
        self.tables -= entry.kind == "table"
        self.quotes -= entry.kind == "quote"

    # Content

    def _ensure_inline_place(self) -> None:
        """Give text that sits directly in a list, table or row the item or cell it lacks."""
        kind = self._innermost()
        if kind == "list":
            self._push(self._open_member("", "item"))
        elif kind in ("table", "row"):
            if kind == "table":
                self._push(self._open_member("", "row"))
            self._push(self._open_member("", "cell"))

    def _append_text(self, text: str) -> None:
        inlines = self.flow.inlines
        last = inlines[-1] if inlines else None
        if text.startswith(" ") and (
            last is None
            or isinstance(last, HardBreak)
            or (isinstance(last, Text) and last.text.endswith(" "))
        ):
            text = text[1:]
        if not text:
            return
        marks = frozenset(mark for mark, count in self.marks.items() if count > 0)
        if "code" in marks:
            marks = frozenset({"code"})  # ADF allows code only next to link
        href = self.links[-1] if self.links else None
        if isinstance(last, Text) and last.marks == marks and last.href == href:
            inlines[-1] = Text(last.text + text, marks, href)
        else:
            inlines.append(Text(text, marks, href))

    def _line_break(self) -> None:
        inlines = self.flow.inlines
        if inlines and not isinstance(inlines[-1], HardBreak):
            inlines.append(HardBreak())

    def _image(self, attributes: dict[str, str]) -> None:
        src = attributes.get("src", "").strip()
        if not src.lower().startswith("cid:") or _is_pixel(attributes):
            return
        filename = self.images.get(_cid_key(src[4:]))
        if filename:
            self._ensure_inline_place()
            self.content += 1
            self.flow.inlines.append(ImageRef(clean_text(filename).replace("\n", " ")))

    def _start_in_pre(self, tag: str) -> None:
        assert self.pre is not None and self.pre.pre_parts is not None
        parts = self.pre.pre_parts
        if tag == "br" or (tag in _LINE_TAGS | _PARAGRAPH_TAGS | {"li", "tr"} and parts):
            parts.append("\n")
        if tag not in _VOID:
            self.stack.append(_Open(tag))
            self.open_tags[tag] += 1


def _ignore(entry: _Open) -> None:
    """Closing a plain element changes nothing beyond its marks and link."""


def _cid_key(value: str) -> str:
    return unquote(value).strip().strip("<>").lower()


def _is_pixel(attributes: dict[str, str]) -> bool:
    for name in ("width", "height"):
        if _PIXEL.match(attributes.get(name, "x")):
            return True
    return bool(_STYLE_SIZE.search(attributes.get("style", "")))


def _split_paragraphs(inlines: list[Inline]) -> list[list[Inline]]:
    """Inline content cut into paragraphs at blank lines, with edge spaces and breaks trimmed."""
    groups: list[list[Inline]] = [[]]
    breaks = 0
    for node in inlines:
        if isinstance(node, HardBreak):
            breaks += 1
            continue
        if isinstance(node, Text) and not node.text.strip() and breaks:
            continue
        if breaks >= 2 and groups[-1]:
            groups.append([])
        elif breaks == 1 and groups[-1]:
            groups[-1].append(HardBreak())
        breaks = 0
        groups[-1].append(node)
    return [trimmed for group in groups if (trimmed := _trim(group))]


def _trim(group: list[Inline]) -> list[Inline]:
    result: list[Inline] = []
    for index, node in enumerate(group):
        if isinstance(node, Text):
            text = node.text
            at_start = not result or isinstance(result[-1], HardBreak)
            at_end = index + 1 == len(group) or isinstance(group[index + 1], HardBreak)
            text = text.lstrip(" ") if at_start else text
            text = text.rstrip(" ") if at_end else text
            if text:
                result.append(Text(text, node.marks, node.href))
        else:
            result.append(node)
    while result and isinstance(result[-1], HardBreak):
        result.pop()
    while result and isinstance(result[0], HardBreak):
        result.pop(0)
    if not any(isinstance(node, Text | ImageRef) for node in result):
        return []
    return result
