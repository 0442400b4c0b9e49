"""The new part of a follow-up email, for when Graph's ``uniqueBody`` is not available.

A reply carries the whole earlier conversation and a signature; a ticket comment should carry
only what the sender just wrote. The body is read as lines (HTML lines come from block elements
and ``<br>``, each remembering where in the markup it starts). The first line that begins the
quoted conversation or the signature ends the new part; quoted blocks before it (``>`` lines,
``<blockquote type="cite">``, Gmail quotes) are removed, which keeps the answers of a reply
written between the quoted lines. HTML is cut in the markup itself and the elements left open
are closed, so the kept part is the sender's own HTML. When nothing would be left, the original
is returned.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

# "On <date>, <name> wrote:" and its translations, as Gmail, Apple Mail and Thunderbird write it.
_ATTRIBUTION = re.compile(
    r"\s*(?:"
    r"On\s.{1,300}\swrote\s*:"
    r"|Am\s.{1,300}\sschrieb(?:\s.{0,200})?:"
    r"|Le\s.{1,300}\sa\s+écrit\s*:"
    r"|El\s.{1,300}\sescribió\s*:"
    r"|Op\s.{1,300}\sschreef(?:\s.{0,200})?:"
    r"|Il\s.{1,300}\sha\s+scritto\s*:"
    r"|Em\s.{1,300}\sescreveu\s*:"
    r")\s*",
    re.IGNORECASE | re.DOTALL,
)
_ATTRIBUTION_START = re.compile(r"\s*(?:On|Am|Le|El|Op|Il|Em)\s", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Oorspronkelijk bericht|Messaggio originale|Mensagem original)\s*-{2,}",
    re.IGNORECASE,
)
# Outlook's header block of the quoted message: From, then Sent/Date, then To/Subject.
_HEADER_FROM = re.compile(r"\*?(?:From|Von|De|Van|Da|Från|Fra)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_DATE = re.compile(
    r"\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Verzonden|Inviato|Data|Skickat)\s*:",
    re.IGNORECASE,
)
_HEADER_TO = re.compile(
    r"\*?(?:To|An|À|A|Para|Aan|Subject|Betreff|Objet|Asunto|Onderwerp|Oggetto|Assunto|Ämne"
    r"|Cc)\s*:",
    re.IGNORECASE,
)
_HEADER_LOOKAHEAD = 6
_MOBILE_SIGNATURE = re.compile(
    r"(?:Sent from my [\w .-]{1,40}|Sent from (?:Outlook|Mail|Yahoo Mail)(?: for [\w .-]{1,30})?"
    r"|Get Outlook for [\w .-]{1,30}|Von meinem [\w .-]{1,40} gesendet"
    r"|Gesendet von meinem [\w .-]{1,40}|Envoyé de mon [\w .-]{1,40}"
    r"|Enviado desde mi [\w .-]{1,40}|Verzonden (?:vanaf|met) (?:mijn )?[\w .-]{1,40})"
    r"\.?\s*(?:<[^<>\s]{1,300}>)?",
    re.IGNORECASE,
)
_QUOTED_TEXT = re.compile(r"[ \t]*>")
# A line that is only separators (----, ____, ====) or blank carries nothing of the reply.
_NOTHING = re.compile(r"[\s\-_=~*•·.|>]*")
_MAX_MARKER_LINE = 600

# HTML: elements that start a line; elements whose text is never shown; void elements.
_BLOCK_TAGS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "tr", "td", "th", "table", "h1", "h2", "h3",
    "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer",
    "address", "center", "body", "html",
}  # fmt: skip
_HIDDEN_TAGS = {"head", "title", "style", "script", "template"}
_VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip
# Outlook marks where the quoted message starts; Thunderbird and Gmail mark signatures.
_CUT_IDS = {"divrplyfwdmsg", "appendonsend"}
_CUT_CLASSES = {"moz-signature", "gmail_signature"}
# An end tag closes at most this many unclosed elements above its match (bounds the work).
_END_TAG_REACH = 64


@dataclass
class _Line:
    """One line of the body: its text, where it starts, and what kind of line it is."""

    text: str
    start: int
    quoted: bool
    marker: bool = False
    has_image: bool = False


def new_part_of_reply(body: str, body_type: str) -> str:
    """What the sender of a reply wrote: ``body`` without the quoted conversation and signature.

    ``body_type`` is Graph's ``body.contentType`` ("html" or "text"); HTML comes back as HTML.
    """
    if not isinstance(body, str) or not body.strip():
        return body if isinstance(body, str) else ""
    if str(body_type).lower() == "html":
        return _html_reply(body)
    return _text_reply(body)


def _text_reply(body: str) -> str:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_Line(line, 0, bool(_QUOTED_TEXT.match(line))) for line in text.split("\n")]
    end = _end_of_new_part(lines)
    if end is None:
        return body
    kept = [line.text.rstrip() for line in lines[:end] if not line.quoted]
    while kept and not kept[0].strip():
        kept.pop(0)
    result = "\n".join(kept)
    return result if _NOTHING.fullmatch(result) is None else body


def _end_of_new_part(lines: list[_Line]) -> int | None:
    """How many lines can hold the new part (quoted ones among them are dropped), or ``None``.

    ``None`` means nothing was found to strip. The new part ends after its last line with
    something to read before the first marker, so trailing blank lines and rules go too.
    """
    cut = _first_marker(lines)
    if cut == len(lines) and not any(line.quoted for line in lines):
        return None
    last = -1
    for index in range(cut):
        line = lines[index]
        if not line.quoted and (line.has_image or _NOTHING.fullmatch(line.text) is None):
            last = index
    return last + 1


def _first_marker(lines: list[_Line]) -> int:
    """The index of the first line that starts the quoted conversation or the signature."""
    for index, line in enumerate(lines):
        if line.quoted:
            continue
        if line.marker:
            return index
        text = line.text.strip()
        if len(text) > _MAX_MARKER_LINE:
            continue
        if (
            text == "--"
            or _MOBILE_SIGNATURE.fullmatch(text)
            or _ORIGINAL_MESSAGE.fullmatch(text)
            or _is_attribution(lines, index)
            or _is_header_block(lines, index)
        ):
            return index
    return len(lines)


def _is_attribution(lines: list[_Line], index: int) -> bool:
    """Whether an "On … wrote:" line (possibly wrapped over three lines) starts at ``index``."""
    if not _ATTRIBUTION_START.match(lines[index].text):
        return False
    joined = ""
    for line in lines[index : index + 3]:
        if line.quoted:
            return False
        joined = f"{joined} {line.text.strip()}".strip()
        if len(joined) > _MAX_MARKER_LINE:
            return False
        if _ATTRIBUTION.fullmatch(joined):
            return True
    return False


def _is_header_block(lines: list[_Line], index: int) -> bool:
    """Whether a quoted message's header (From, Sent/Date, To/Subject) starts at ``index``."""
    if not _HEADER_FROM.match(lines[index].text.strip()):
        return False
    following: list[str] = []
    for line in lines[index + 1 :]:
        if len(following) == _HEADER_LOOKAHEAD:
            break
        if line.text.strip():
            following.append(line.text.strip())
    return any(_HEADER_DATE.match(text) for text in following) and any(
        _HEADER_TO.match(text) for text in following
    )


def _html_reply(body: str) -> str:
    reader = _HtmlLines(body)
    lines = reader.read()
    end = _end_of_new_part(lines)
    if not end:
        return body
    boundary = lines[end].start if end < len(lines) else len(body)
    pieces: list[str] = []
    position = 0
    for start, stop in reader.quote_spans:
        if start >= boundary:
            break
        pieces.append(body[position:start])
        position = min(stop, boundary)
    pieces.append(body[position:boundary])
    kept = "".join(pieces)
    still_open = _HtmlLines(kept)
    still_open.read()
    return kept + "".join(f"</{tag}>" for tag, _ in reversed(still_open.stack))


class _HtmlLines(HTMLParser):
    """The visible lines of an HTML body, each with the offset in the markup where it starts."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=False)
        self.markup = markup
        self.line_offsets = [0, *(match.end() for match in re.finditer("\n", markup))]
        self.lines: list[_Line] = []
        self.current = _Line("", 0, False)
        self.stack: list[tuple[str, bool]] = []
        self.quote_depth = 0
        self.quote_start = 0
        self.quote_spans: list[tuple[int, int]] = []
        self.hidden = 0
        self.preformatted = 0

    def read(self) -> list[_Line]:
        """Parse the whole body; the lines, with quote spans in ``quote_spans``."""
        self.feed(self.markup)
        self.close()
        if self.quote_depth:
            self.quote_spans.append((self.quote_start, len(self.markup)))
        self.lines.append(self.current)
        return self.lines

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_offsets[line - 1] + column

    def _new_line(self, start: int, marker: bool = False) -> None:
        self.lines.append(self.current)
        self.current = _Line("", start, self.quote_depth > 0, marker)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        offset = self._offset()
        attributes = {name: (value or "") for name, value in attrs}
        classes = set(attributes.get("class", "").lower().split())
        if tag in _BLOCK_TAGS or tag == "br":
            self._new_line(offset)
        if tag == "img":
            self.current.has_image = True
        if attributes.get("id", "").lower() in _CUT_IDS or classes & _CUT_CLASSES:
            self._new_line(offset, marker=True)
        quote = (tag == "blockquote" and attributes.get("type", "").lower() == "cite") or (
            tag in ("blockquote", "div") and "gmail_quote" in classes
        )
        if self_closing or tag in _VOID_TAGS:
            return
        if quote:
            if not self.quote_depth:
                self.quote_start = offset
            self.quote_depth += 1
            self.current.quoted = True
        self.hidden += tag in _HIDDEN_TAGS
        self.preformatted += tag in ("pre", "textarea")
        self.stack.append((tag, quote))

    def handle_endtag(self, tag: str) -> None:
        offset = self._offset()
        end = self.markup.find(">", offset)
        end = len(self.markup) if end < 0 else end + 1
        reach = max(len(self.stack) - _END_TAG_REACH, 0)
        for index in range(len(self.stack) - 1, reach - 1, -1):
            if self.stack[index][0] == tag:
                for name, quote in reversed(self.stack[index:]):
                    self.hidden -= name in _HIDDEN_TAGS
                    self.preformatted -= name in ("pre", "textarea")
                    if quote:
                        self.quote_depth -= 1
                        if not self.quote_depth:
                            self.quote_spans.append((self.quote_start, end))
                del self.stack[index:]
                break
        if tag in _BLOCK_TAGS:
            self._new_line(end)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.preformatted:
            self.current.text += data
            return
        start = self._offset()
        pieces = data.split("\n")
        self.current.text += pieces[0]
        position = start + len(pieces[0]) + 1
        for piece in pieces[1:]:
            self._new_line(position)
            self.current.text += piece
            position += len(piece) + 1

    def handle_entityref(self, name: str) -> None:
        if not self.hidden:
            self.current.text += html.unescape(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not self.hidden:
            self.current.text += html.unescape(f"&#{name};")
