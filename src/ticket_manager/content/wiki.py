"""The document tree as Jira Server/Data Center wiki markup, every meaningful character escaped.

Jira's renderer turns ``\\X`` into the literal character for ``! [ ] ^ ~ + ? % { } ( ) * _ - | @``
(its BackslashEscapeRendererComponent), and passes numeric HTML entities through to the page. Text
from the email is escaped with a backslash where that works and with a numeric entity where it
does not: the backslash itself (``\\\\`` is a forced line break), ``#``/``h1.``/``bq.`` at the start
of a line, the colon of ``scheme:`` (autolinks) and of ``:D``/``:P`` (emoticons), braces inside
``{{monospace}}`` and brackets or pipes inside link text. Entity-like ``&name;`` text gets its
``&`` escaped so that it shows as typed. Preformatted text goes in ``{noformat}`` unless it could
close that block, in which case it is escaped line by line instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from ticket_manager.content.document import (
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

# Jira Server/Data Center's jira.text.field.character.limit defaults to 32,767 characters.
WIKI_MAX_CHARS = 32_767

# The characters Jira Server's BackslashEscapeRendererComponent unescapes (``%`` has no
# meaning in Jira markup and stays as typed).
BACKSLASH_ESCAPED = frozenset("!*[]^~+?{}()_-|@")
_MARKERS = {"strong": "*", "em": "_", "underline": "+", "strike": "-"}
_LINE_START = re.compile(r"[ \t]*(h[1-6]\.|bq\.|#)")
# What escape_text replaces: the backslash, newlines, the ``&`` of entity-like text, a colon
# that could start a URL or an emoticon, and the backslash-escapable characters.
_SPECIAL_CORE = r"\\|\n|&(?=#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)|:(?=[^\s\d])"
_SPECIAL = re.compile(_SPECIAL_CORE + r"|[!*\[\]^~+?{}()_\-|@]")
_NOFORMAT = re.compile(r"\{\s*noformat", re.IGNORECASE)
_SAFE_IMAGE_NAME = re.compile(r"[\w][\w .+-]*", re.UNICODE)
_URL_SAFE = "-._~:/?#@$&'*+,;=%"
_LINE_BREAK = "\\\\ "  # a forced line break, for places where a newline would end the block


def to_wiki(doc: EmailContent, *, max_chars: int = WIKI_MAX_CHARS) -> str:
    """``doc`` as wiki markup of at most ``max_chars`` characters."""
    body, truncated = fit_body(
        doc.body, lambda blocks, cut: java_length(_document(doc, blocks, cut)), max_chars
    )
    return _document(doc, body, truncated)


def escape_text(text: str, *, line_start: bool = False, inside: str = "") -> str:
    """``text`` as wiki markup that renders as exactly ``text``.

    ``line_start`` when the text may begin a line; ``inside`` is "code" within ``{{…}}`` and
    "link" within the text of ``[…|…]``.
    """
    replace = _REPLACERS[inside]
    prefix = ""
    if line_start:
        match = _LINE_START.match(text)
        if match:
            first = match.start(1)
            prefix = _SPECIAL.sub(replace, text[:first]) + f"&#{ord(text[first])};"
            text = text[first + 1 :]
    return prefix + _SPECIAL.sub(replace, text)


def _replacer(as_entities: str) -> Callable[[re.Match[str]], str]:
    """How each special character is written; ``as_entities`` must not use a backslash."""

    def replace(match: re.Match[str]) -> str:
        char = match.group()
        if char == "\n":
            return " "
        if char == "&":
            return "&amp;"
        if char in as_entities or char in "\\:":
            return f"&#{ord(char)};"
        return "\\" + char

    return replace


# Inside {{…}} a backslash-escaped brace, and inside link text an escaped bracket or pipe,
# could still end the construct: those become entities.
_REPLACERS = {"": _replacer(""), "code": _replacer("{}"), "link": _replacer("[]|")}


def wiki_url(href: str) -> str:
    """A link target that cannot end the ``[text|url]`` it sits in."""
    return quote(href, safe=_URL_SAFE)


def _document(doc: EmailContent, body: list[Block], truncated: bool) -> str:
    parts: list[str] = []
    header = doc.header_blocks()
    if header:
        parts += _blocks(header, "doc")
        parts.append("----")
    parts += _blocks(body, "doc")
    if truncated:
        parts += _blocks([Paragraph([Text(TRUNCATION_NOTE, frozenset({"em"}))])], "doc")
    parts += _blocks(doc.tail_blocks(), "doc")
    return "\n\n".join(part for part in parts if part)


def _blocks(blocks: list[Block], where: str) -> list[str]:
    """Markup for each block inside ``where``: doc or quote."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            parts.append(_inlines(block.inlines, "\n"))
        elif isinstance(block, Heading):
            parts.append(f"h{min(max(block.level, 1), 6)}. {_inlines(block.inlines, ' ')}")
        elif isinstance(block, CodeBlock):
            parts.append(_code_block(block.text))
        elif isinstance(block, Rule):
            parts.append("----")
        elif isinstance(block, BlockQuote):
            inner = _blocks(block.blocks, "quote")
            if where == "quote":
                parts += inner
            elif inner:
                # {quote} cannot nest: an inner {quote} would close the outer one.
                parts.append("{quote}\n" + "\n\n".join(inner) + "\n{quote}")
        elif isinstance(block, ListBlock):
            parts.append("\n".join(_list_lines(block, "")))
        else:
            parts.append(_table(block))
    return [part for part in parts if part]


def _code_block(text: str) -> str:
    if not _NOFORMAT.search(text):
        return "{noformat}\n" + text + "\n{noformat}"
    return "\n".join(_monospace(line) for line in text.split("\n") if line.strip())


def _monospace(line: str) -> str:
    return "{{" + escape_text(line.strip(), inside="code") + "}}"


def _list_lines(block: ListBlock, prefix: str) -> list[str]:
    marker = prefix + ("#" if block.ordered else "*")
    lines: list[str] = []
    for item in block.items:
        flat: list[Block] = []
        nested: list[ListBlock] = []
        for child in item:
            (nested if isinstance(child, ListBlock) else flat).append(child)
        lines.append(f"{marker} {_flat(flat)}".rstrip())
        for child in nested:
            lines += _list_lines(child, marker)
    return lines


def _table(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row:
            separator = "||" if cell.header else "|"
            cells.append(f"{separator}{_flat(cell.blocks) or ' '}")
        closing = "||" if row and row[-1].header else "|"
        rows.append("".join(cells) + closing)
    return "\n".join(rows)


def _flat(blocks: list[Block]) -> str:
    """Blocks on one line (a list item or table cell), separated by forced line breaks."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph | Heading):
            inlines = block.inlines
            if isinstance(block, Heading):
                inlines = [_with_mark(node, "strong") for node in inlines]
            parts.append(_inlines(inlines, _LINE_BREAK))
        elif isinstance(block, CodeBlock):
            lines = block.text.split("\n")
            parts.append(_LINE_BREAK.join(_monospace(line) for line in lines if line.strip()))
        elif isinstance(block, BlockQuote):
            parts.append(_flat(block.blocks))
        elif isinstance(block, ListBlock):
            parts.append(
                _LINE_BREAK.join(
                    ("• " if not block.ordered else f"{number}. ") + _flat(item)
                    for number, item in enumerate(block.items, 1)
                )
            )
        elif isinstance(block, Table):
            parts.append(_flat([b for row in block.rows for cell in row for b in cell.blocks]))
    return _LINE_BREAK.join(part for part in parts if part)


def _with_mark(node: Inline, mark: str) -> Inline:
    if isinstance(node, Text) and "code" not in node.marks:
        return Text(node.text, node.marks | {mark}, node.href)
    return node


def _inlines(inlines: list[Inline], line_break: str) -> str:
    """Inline content as markup; consecutive runs with the same link share one ``[…|…]``."""
    out: list[str] = []
    index = 0
    line_start = True
    while index < len(inlines):
        node = inlines[index]
        if isinstance(node, HardBreak):
            out.append(line_break)
            line_start = True
            index += 1
            continue
        if isinstance(node, ImageRef):
            out.append(_image(node.filename, line_start))
            line_start = False
            index += 1
            continue
        if node.href:
            end = index
            while end < len(inlines):
                candidate = inlines[end]
                if not (isinstance(candidate, Text) and candidate.href == node.href):
                    break
                end += 1
            group = inlines[index:end]
            text = "".join(
                _run(run, "", _first_char(group, position + 1), False, "link")
                for position, run in enumerate(group)
            )
            out.append(f"[{text}|{wiki_url(node.href)}]")
            index = end
            line_start = False
            continue
        before = out[-1][-1:] if out and out[-1] else ""
        out.append(_run(node, before, _first_char(inlines, index + 1), line_start, ""))
        line_start = line_start and not node.text.strip()
        index += 1
    return "".join(out)


def _first_char(inlines: list[Inline], index: int) -> str:
    if index >= len(inlines):
        return ""
    node = inlines[index]
    if isinstance(node, Text):
        return node.text[:1]
    return " " if isinstance(node, HardBreak) else "!"


def _run(node: Text, before: str, after: str, line_start: bool, inside: str) -> str:
    """One text run with its marks; markers next to letters use Jira's ``{*}`` form."""
    text = node.text
    core = text.strip(" ")
    if not core:
        return escape_text(text, line_start=line_start, inside=inside)
    lead = text[: len(text) - len(text.lstrip(" "))]
    trail = text[len(text.rstrip(" ")) :]
    if "code" in node.marks:
        body = "{{" + escape_text(core, inside="code") + "}}"
        return lead + body + trail
    body = escape_text(core, line_start=line_start, inside=inside)
    markers = [marker for mark, marker in _MARKERS.items() if mark in node.marks]
    if not markers:
        return lead + body + trail
    braced = (not lead and before[-1:].isalnum()) or (not trail and after[:1].isalnum())
    for marker in reversed(markers):
        wrapper = f"{{{marker}}}" if braced else marker
        body = wrapper + body + wrapper
    return lead + body + trail


def _image(filename: str, line_start: bool) -> str:
    if _SAFE_IMAGE_NAME.fullmatch(filename) and not filename.endswith(" "):
        return f"!{filename}!"
    return escape_text(f"[image: {filename}]", line_start=line_start)
