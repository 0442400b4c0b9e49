# ruff: noqa: RUF001  (full-width colons of CJK quote headers)
"""The new part of a follow-up email, for when Graph's ``uniqueBody`` is not available.

A reply carries the earlier conversation and often a signature; a ticket comment should carry
only what the sender just wrote, and every word of it. The body is read as lines (HTML lines
come from block elements and ``<br>``, each remembering where in the markup it starts, and
whether it sits in a quote: ``>`` lines, ``<blockquote>``, Gmail's, Yahoo's, Thunderbird's,
Proton's, Zoho's and Zimbra's quote containers). Reading top to bottom:

* quoted lines are dropped, and so is the header that introduces them ("On … wrote:" in 25
  languages, "2017-11-24 16:32 GMT+01:00 Name <addr>:", Outlook/Notes/Zimbra/GMX header
  blocks); what follows a quote is read on, so answers written below the quote or between its
  lines are kept;
* a header, an "Original Message" rule or an Outlook reply marker that is *not* followed by a
  marked quote starts the unmarked quoted conversation: it and the rest go;
* a forwarded message (a "Forwarded message" rule, or a header block in an email whose
  subject says it is a forward) is content: it and the rest are kept;
* the signature ("-- ", "Sent from my iPhone", the client's signature element) ends the part;
* when all that would be left above an unmarked quoted conversation is a salutation ("Hi,"),
  the answer may be below the quote, where it cannot be told apart: the whole body is kept.

HTML is cut in the markup itself and the elements left open are closed, so the kept part is
the sender's own HTML. When nothing would be left, the original is returned unchanged. The
vocabulary of clients and languages is in ``reply_markers.py``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

from ticket_manager.content import reply_markers as words

_QUOTED_TEXT = re.compile(r"[ \t\u00a0]*>")
# A line that is only separators (----, ____, ====) or blank carries nothing of the reply.
_NOTHING = re.compile(r"[\s\-_=~*•·.|>]*")
_MAX_MARKER_LINE = 600
_HEADER_LOOKAHEAD = 8
_ATTRIBUTION_LINES = 3
_GREETING = 60  # at most this many characters in a salutation line
_SENTENCE_END = re.compile(r"[.!?。！？]\s*$")

# HTML: elements that start a line; elements whose text is never shown; void elements.
_BLOCK_TAGS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "h1", "h2", "h3",
    "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article", "header", "footer",
    "address", "center", "body", "html", "tbody", "thead",
}  # fmt: skip
_CELL_TAGS = {"td", "th"}
_HIDDEN_TAGS = {"head", "title", "style", "script", "template"}
_VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip
# An end tag closes at most this many unclosed elements above its match (bounds the work).
_END_TAG_REACH = 64


@dataclass
class _Line:
    """One line of the body: its text, where it starts, and what kind of line it is."""

    text: str
    start: int
    quoted: bool
    marker: bool = False
    signature: bool = False
    has_image: bool = False


def new_part_of_reply(body: str, body_type: str, subject: str = "") -> str:
    """What the sender of a reply wrote: ``body`` without the quoted conversation and signature.

    ``body_type`` is Graph's ``body.contentType`` ("html" or "text"); HTML comes back as HTML.
    ``subject`` is the email's subject: a forward's ("FW: …") quoted header starts a forwarded
    message, which is kept.
    """
    if not isinstance(body, str) or not body.strip():
        return body if isinstance(body, str) else ""
    forward = _forward_kind(subject)
    if str(body_type).lower() == "html":
        return _html_reply(body, forward)
    return _text_reply(body, forward)


def is_forward(subject: str) -> bool:
    """Whether a subject says its email forwards a message ("FW:", "Fwd:", "WG:", "TR:" …)."""
    return bool(words.FORWARD_PREFIX.match(subject or ""))


def _forward_kind(subject: str) -> str:
    """ "sure" for a forward's subject, "vs" for the ambiguous "VS:", else ""."""
    match = words.FORWARD_PREFIX.match(subject or "")
    if match is None:
        return ""
    return "vs" if match.group(0).strip(" :：").lower() == "vs" else "sure"


def _text_reply(body: str, forward: str) -> str:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_Line(line, 0, bool(_QUOTED_TEXT.match(line))) for line in text.split("\n")]
    kept = _kept_lines(lines, forward)
    if kept is None:
        return body
    out: list[str] = []
    previous = -1
    after_gap = False
    for index in kept:
        text = lines[index].text.rstrip()
        after_gap = after_gap or (previous >= 0 and index != previous + 1)
        previous = index
        if text.strip():
            after_gap = False
        elif after_gap and out and not out[-1].strip():
            continue  # one blank line where a quote was taken out
        out.append(text)
    result = "\n".join(out)
    return result if _NOTHING.fullmatch(result) is None else body


def _kept_lines(lines: list[_Line], forward: str) -> list[int] | None:
    """The indexes of the lines that make the new part, or ``None`` if nothing is to go.

    Leading and trailing lines with nothing to read are left out of the kept lines.
    """
    kept: list[int] = []
    dropped = False
    history_cut = False  # the rest went as an unmarked quoted conversation
    index = 0
    count = len(lines)
    while index < count:
        line = lines[index]
        text = _plain(line.text)
        if len(text) <= _MAX_MARKER_LINE and _starts_forward(lines, index, forward):
            kept.extend(range(index, count))
            break
        if line.marker and _starts_forward(lines, _next_content(lines, index + 1), forward):
            kept.extend(range(index, count))
            break
        if line.quoted:
            dropped = True
            index += 1
            continue
        if line.marker or line.signature or _is_signature(text):
            dropped = True
            history_cut = line.marker
            break
        span = 0 if len(text) > _MAX_MARKER_LINE else _quote_header(lines, index)
        if span:
            dropped = True
            after = _next_content(lines, index + span)
            if after < count and lines[after].quoted:
                index = after
                continue
            history_cut = True
            break
        kept.append(index)
        index += 1
    if not dropped:
        return None
    while kept and not _has_content(lines[kept[0]]):
        kept.pop(0)
    while kept and not _has_content(lines[kept[-1]]):
        kept.pop()
    if history_cut and _is_only_a_greeting([lines[i] for i in kept]):
        return None  # the answer may be below the quote (bottom-posting): keep it all
    return kept


def _is_only_a_greeting(kept: list[_Line]) -> bool:
    """Whether the new part would be a salutation alone ("Hi Bob,", "Hola:")."""
    content = [_plain(line.text) for line in kept if _has_content(line)]
    return (
        len(content) == 1 and content[0][-1:] in tuple(",:，،：") and len(content[0]) <= _GREETING
    )


def _has_content(line: _Line) -> bool:
    return line.has_image or _NOTHING.fullmatch(line.text) is None


def _plain(text: str) -> str:
    """A line without invisible formatting (bidi marks) and surrounding space."""
    if text.isascii():
        return text.strip()
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()


def _next_content(lines: list[_Line], index: int) -> int:
    while index < len(lines) and not _has_content(lines[index]):
        index += 1
    return index


def _is_signature(text: str) -> bool:
    return text == "--" or bool(words.MOBILE_SIGNATURE.fullmatch(text))


def _quote_header(lines: list[_Line], index: int) -> int:
    """How many lines from ``index`` introduce a quoted message (0 if none start there).

    An attribution without a "wrote" verb (Gmail in Russian or Japanese, Yandex) only counts
    when a marked quote follows it.
    """
    text = _plain(lines[index].text)
    if not text:
        return 0
    if words.ORIGINAL_MESSAGE.fullmatch(text):
        block = _header_block(lines, _next_content(lines, index + 1))
        return (block[0] - index) if block else 1
    block = _header_block(lines, index)
    if block:
        return block[0] - index
    return _attribution(lines, index)


def _attribution(lines: list[_Line], index: int) -> int:
    """The number of lines (1 to 3) of an "On … wrote:" line starting at ``index``, or 0.

    When the lines from ``index`` only end in an attribution that starts on a later line, the
    first lines are the sender's, unless they read like an attribution's start (a date or a
    time, and no sentence ending): "On 16 Dec 2011, at 12:47, John Doe" + "<a@b> wrote:".
    """
    span = _attribution_lines(lines, index)
    if span <= 1:
        return span
    for later in range(index + 1, index + span):
        if _attribution_lines(lines, later):
            opening = _plain(lines[index].text)
            dated = bool(words.TIME.search(opening) or words.YEAR.search(opening))
            if not dated or _SENTENCE_END.search(opening):
                return 0
            break
    return span


def _attribution_lines(lines: list[_Line], index: int) -> int:
    """The lines of an attribution starting at ``index``, without looking for a later start."""
    joined = ""
    for offset, line in enumerate(lines[index : index + _ATTRIBUTION_LINES]):
        text = _plain(line.text)
        if line.quoted or not text:
            return 0
        joined = f"{joined} {text}".strip()
        if len(joined) > words.MAX_ATTRIBUTION:
            return 0
        if not words.ATTRIBUTION_END.search(joined):
            continue
        has_verb = bool(words.WROTE.search(joined))
        has_address = bool(words.EMAIL.search(joined))
        has_date = bool(words.TIME.search(joined) or words.YEAR.search(joined))
        without_colon = not re.search(r"[:：-]\s*$", joined)
        if has_verb and (has_address or has_date) and not without_colon:
            return offset + 1
        if (has_address and has_date) or (has_verb and without_colon):
            after = _next_content(lines, index + offset + 1)
            if after < len(lines) and lines[after].quoted:
                return offset + 1
        return 0
    return 0


def _header_fields(text: str) -> tuple[str, str] | None:
    """The label and value of a "Label: value" header line, if the label is a known one."""
    match = words.HEADER_LINE.fullmatch(text)
    if match is None:
        return None
    label = re.sub(r"\s+", " ", match.group("label")).strip(" *").lower()
    if label not in words.HEADER_LABELS:
        return None
    return label, (match.group("value") or "").strip()


def _header_block(lines: list[_Line], index: int) -> tuple[int, bool] | None:
    """A quoted message's header block (From, Sent/Date, To/Subject) starting at ``index``.

    Returns the index after its last line and whether its labels are Finnish, or ``None``.
    """
    if index >= len(lines) or _header_fields(_plain(lines[index].text)) is None:
        return None
    labels: set[str] = set()
    end = index
    seen = 0
    position = index
    while position < len(lines) and seen < _HEADER_LOOKAHEAD:
        text = _plain(lines[position].text)
        position += 1
        if not text:
            continue
        fields = _header_fields(text)
        if fields is None:
            if seen == 0:
                return None
            break
        seen += 1
        labels.add(fields[0])
        end = position
    has_from = bool(labels & words.FROM_LABELS)
    has_date = bool(labels & words.DATE_LABELS)
    has_to = bool(labels & (words.TO_LABELS | words.SUBJECT_LABELS))
    if seen >= 3 and has_from and has_date and has_to:
        return end, bool(labels & words.FINNISH_LABELS)
    return None


def _starts_forward(lines: list[_Line], index: int, forward: str) -> bool:
    """Whether a forwarded message (content, not history) starts at ``index``."""
    if index >= len(lines):
        return False
    text = _plain(lines[index].text)
    if not text:
        return False
    if words.FORWARDED_MESSAGE.fullmatch(text):
        return True
    if not forward:
        return False
    block = _header_block(lines, index)
    return block is not None and not (forward == "vs" and block[1])


def _html_reply(body: str, forward: str) -> str:
    reader = _HtmlLines(body)
    lines = reader.read()
    kept = _kept_lines(lines, forward)
    if not kept:
        return body
    keep = set(kept)
    pieces: list[str] = []
    position = 0
    index = 0
    last = kept[-1]

    def removable(at: int) -> bool:
        line = lines[at]
        return at not in keep and (line.quoted or _has_content(line))

    while index <= last:
        if not removable(index):
            index += 1
            continue
        stop = index
        while stop + 1 <= last and removable(stop + 1):
            stop += 1
        pieces.append(body[position : lines[index].start])
        position = lines[stop + 1].start
        index = stop + 1
    boundary = lines[last + 1].start if last + 1 < len(lines) else len(body)
    pieces.append(body[position:boundary])
    result = "".join(pieces)
    if boundary == len(body) and result == body:
        return body
    still_open = _HtmlLines(result)
    still_open.read()
    return result + "".join(f"</{tag}>" for tag, _ in reversed(still_open.stack))


def _is_quote_element(tag: str, attributes: dict[str, str], classes: set[str]) -> bool:
    """Whether an element holds a quoted message, by the marks each mail client gives it."""
    element_id = attributes.get("id", "").lower()
    return (
        (tag == "blockquote" and not _is_indent(attributes, classes))
        or bool(classes & words.QUOTE_CLASSES)
        or element_id.startswith("yahoo_quoted")
        or element_id in words.QUOTE_IDS
        or attributes.get("data-marker", "").lower() in words.QUOTE_MARKERS
        or (tag == "div" and attributes.get("name", "").lower() == "quote")
    )


def _is_indent(attributes: dict[str, str], classes: set[str]) -> bool:
    """Gmail's and Apple Mail's "indent" is a borderless blockquote: the sender's own text."""
    style = re.sub(r"\s+", "", attributes.get("style", "")).lower()
    cited = attributes.get("type", "").lower() == "cite" or "gmail_quote" in classes
    return not cited and "border:none" in style


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
        self.hidden = 0
        self.preformatted = 0

    def read(self) -> list[_Line]:
        """Parse the whole body into its lines."""
        self.feed(self.markup)
        self.close()
        self.lines.append(self.current)
        for line in self.lines:
            line.quoted = line.quoted or bool(_QUOTED_TEXT.match(line.text))
        return self.lines

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_offsets[line - 1] + column

    def _new_line(self, start: int, marker: bool = False, signature: bool = False) -> None:
        self.lines.append(self.current)
        self.current = _Line("", start, self.quote_depth > 0, marker, signature)

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
        elif tag in _CELL_TAGS:
            self.current.text += " "
        if tag == "img":
            self.current.has_image = True
        if attributes.get("id", "").lower() in words.CUT_IDS:
            self._new_line(offset, marker=True)
        elif classes & words.SIGNATURE_CLASSES or "data-signature-widget" in attributes:
            self._new_line(offset, signature=True)
        quote = _is_quote_element(tag, attributes, classes)
        if self_closing or tag in _VOID_TAGS:
            return
        if quote:
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
                    self.quote_depth -= quote
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
