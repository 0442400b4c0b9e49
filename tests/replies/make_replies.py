# ruff: noqa: E501, RUF001
"""Write the reply corpus: follow-up emails as each mail client writes them, in 25 languages.

Run ``python tests/replies/make_replies.py`` after changing a client or a language; the
``.eml`` files and ``manifest.json`` it writes are committed so they can be read as data.
Every email has a text and an HTML part laid out the way that client lays out a reply
(quote header, quote markers, forward rules), and a manifest entry with its language, client,
layout, the customer's words that must be kept and the quoted words that must not leak.
Dates, Message-IDs and MIME boundaries are fixed, so the output is reproducible.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from languages import LANGUAGES, Language  # noqa: E402

DESK = "Contoso Support"
DESK_ADDRESS = "support@contoso.com"
SUPPLIER = "Fabrikam Parts"
SUPPLIER_ADDRESS = "orders@fabrikam.example"
FORWARDED_BODY = (
    "Order 4711: the toner cartridges ship on 10 November.",
    "Fabrikam Parts, Dispatch",
)
SUBJECT = "[HELP-12] Printer offline"


def esc(text: str) -> str:
    return html.escape(text, quote=False)


@dataclass
class Reply:
    """One email: its parts and what the extractor must return."""

    text: str
    html: str
    keep: list[str]
    leak: list[str]
    expected: str | None  # None: the whole body is the new part (a forwarded message)


# ---------------------------------------------------------------- the customer's words


def new_lines(lang: Language) -> list[str]:
    return [lang.greeting, *lang.answers, lang.signoff]


def new_text(lang: Language) -> str:
    return f"{lang.greeting}\n\n" + "\n".join(lang.answers) + f"\n\n{lang.signoff}"


def new_html(lang: Language, tag: str = "div", cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    blank = f"<{tag}{attr}><br></{tag}>"
    answers = "".join(f"<{tag}{attr}>{esc(a)}</{tag}>" for a in lang.answers)
    return (
        f"<{tag}{attr}>{esc(lang.greeting)}</{tag}>{blank}{answers}{blank}"
        f"<{tag}{attr}>{esc(lang.signoff)}</{tag}>"
    )


def quoted_text(lang: Language, prefix: str = "> ") -> str:
    return "\n".join(f"{prefix}{line}".rstrip() for line in _between(lang.quoted, ""))


def _between(lines: tuple[str, ...], blank: str) -> list[str]:
    out: list[str] = []
    for line in lines:
        if out:
            out.append(blank)
        out.append(line)
    return out


def quoted_html(lang: Language) -> str:
    return "".join(f"<div>{esc(line)}</div><div><br></div>" for line in lang.quoted)


def header_lines(lang: Language, sent_label: int = 1, date: str | None = None) -> list[str]:
    """Outlook's header block of the quoted message, in the language's labels."""
    from_, sent, date_label, to, _cc, subject = lang.labels
    label = sent if sent_label == 1 else date_label
    return [
        f"{from_.strip()}{_colon(from_)} {DESK} <{DESK_ADDRESS}>",
        f"{label.strip()}{_colon(label)} {date or lang.long_date}",
        f"{to.strip()}{_colon(to)} Bob <bob@example.com>",
        f"{subject.strip()}{_colon(subject)} {lang.reply_prefix} {SUBJECT}",
    ]


def _colon(label: str) -> str:
    """French writes a (non-breaking) space before the colon."""
    return "\u00a0:" if label.endswith("\u00a0") else ":"


def header_html(lang: Language, sent_label: int = 1, bold: str = "b") -> str:
    rows = []
    for line in header_lines(lang, sent_label):
        label, _, value = line.partition(":")
        rows.append(f"<{bold}>{esc(label)}:</{bold}> {esc(value.strip())}")
    return "<br>".join(rows)


def leak(lang: Language) -> list[str]:
    return [*lang.quoted, DESK]


def attribution(fmt: str) -> str:
    return fmt.format(name=DESK, addr=DESK_ADDRESS)


def attribution_html(fmt: str, link: bool = True) -> str:
    address = f'<a href="mailto:{DESK_ADDRESS}">{DESK_ADDRESS}</a>' if link else esc(DESK_ADDRESS)
    return esc(fmt).replace("{name}", esc(DESK)).replace("{addr}", address)


def forward_lines(lang: Language, style: str) -> list[str]:
    """The header of a forwarded message, as Gmail ("gmail") or Outlook ("outlook") writes it."""
    from_, sent, date, to, _cc, subject = (label.strip() for label in lang.labels)
    if style == "outlook":
        return [
            f"{from_}: {SUPPLIER} <{SUPPLIER_ADDRESS}>",
            f"{sent}: {lang.long_date}",
            f"{to}: Bob <bob@example.com>",
            f"{subject}: Order 4711",
        ]
    return [
        f"{from_}: {SUPPLIER} <{SUPPLIER_ADDRESS}>",
        f"{date}: {lang.long_date}",
        f"{subject}: Order 4711",
        f"{to}: <bob@example.com>",
    ]


def forward_keep(lang: Language) -> list[str]:
    return [lang.fyi, *FORWARDED_BODY, SUPPLIER_ADDRESS]


def forward_reply(
    lang: Language,
    rule_text: str,
    header: list[str],
    rule_html: str,
    header_html_: str,
    tail_html: str = "",
) -> Reply:
    """ "FYI" above a forwarded message: all of it is the customer's content."""
    text = (
        f"{lang.fyi}\n\n{rule_text}\n"
        + "\n".join(header)
        + "\n\n"
        + "\n\n".join(FORWARDED_BODY)
        + "\n"
    )
    body = "".join(f"<div>{esc(line)}</div>" for line in FORWARDED_BODY)
    markup = (
        f'<div dir="ltr"><div>{esc(lang.fyi)}</div><br>{rule_html}{header_html_}<br><br>'
        f"{body}{tail_html}</div>"
    )
    return Reply(text, markup, forward_keep(lang), [DESK], None)


def page(inner: str, head: str = "") -> str:
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f"{head}</head><body>{inner}</body></html>"
    )


# ---------------------------------------------------------------- the clients


def gmail(lang: Language, layout: str) -> Reply:
    attr = attribution(lang.gmail)
    attr_html = attribution_html(lang.gmail)
    quote = f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div dir="ltr">{quoted_html(lang)}</div></blockquote>'
    container = (
        '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
        f"{attr_html}<br></div>{quote}</div>"
    )
    if layout == "top":
        text = f"{new_text(lang)}\n\n{attr}\n\n{quoted_text(lang)}\n"
        markup = f'<div dir="ltr">{new_html(lang)}</div><br>{container}'
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    if layout == "bottom":
        text = f"{attr}\n\n{quoted_text(lang)}\n\n{new_text(lang)}\n"
        markup = f'<div dir="ltr"><br></div><br>{container}<div><br></div>{new_html(lang)}'
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    if layout == "inline":
        q1, q2 = lang.questions
        a1, a2 = lang.inline_answers
        text = f"{lang.greeting}\n\n{attr}\n\n> {q1}\n\n{a1}\n\n> {q2}\n\n{a2}\n"
        bq = '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        markup = (
            f'<div dir="ltr"><div>{esc(lang.greeting)}</div></div><br><div class="gmail_quote">'
            f'<div dir="ltr" class="gmail_attr">{attr_html}<br></div>{bq}{esc(q1)}</blockquote>'
            f"<div>{esc(a1)}</div><div><br></div>{bq}{esc(q2)}</blockquote><div>{esc(a2)}</div>"
            "</div>"
        )
        keep = [lang.greeting, a1, a2]
        return Reply(text, markup, keep, [q1, q2, DESK], "\n".join(keep))
    fwd = forward_lines(lang, "gmail")
    rule = f"---------- {lang.forwarded} ---------"
    header = "<br>".join(esc(line) for line in fwd)
    return forward_reply(
        lang,
        rule,
        fwd,
        f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{esc(rule)}<br>',
        header,
        "</div></div>",
    )


def gmail_signature(lang: Language, layout: str) -> Reply:
    """Gmail with a "-- " signature between the new text and the quote."""
    reply = gmail(lang, "top")
    signature = "Bob Example\nACME Corp, +1 555 0100"
    reply.text = reply.text.replace(
        lang.signoff + "\n\n", f"{lang.signoff}\n\n-- \n{signature}\n\n", 1
    )
    sig_html = (
        '<div><br clear="all"></div><span class="gmail_signature_prefix">-- </span><br>'
        '<div dir="ltr" class="gmail_signature"><div dir="ltr">Bob Example<div>ACME Corp, '
        "+1 555 0100</div></div></div>"
    )
    reply.html = reply.html.replace(
        '</div><br><div class="gmail_quote', sig_html + '</div><br><div class="gmail_quote', 1
    )
    return reply


def gmail_old(lang: Language, layout: str) -> Reply:
    """Gmail before 2018: a header that starts with the date and has no "wrote"."""
    attr = f"2025-11-03 10:00 GMT+01:00 {DESK} <{DESK_ADDRESS}>:"
    text = f"{new_text(lang)}\n\n{attr}\n\n{quoted_text(lang)}\n"
    markup = (
        f'<div dir="ltr">{new_html(lang)}</div><div class="gmail_extra"><br><div class="gmail_quote">'
        f'2025-11-03 10:00 GMT+01:00 {esc(DESK)} <span dir="ltr">&lt;<a href="mailto:'
        f'{DESK_ADDRESS}">{DESK_ADDRESS}</a>&gt;</span>:<br><blockquote class="gmail_quote" '
        f'style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex">'
        f"{quoted_html(lang)}</blockquote></div></div>"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def outlook_desktop(lang: Language, layout: str) -> Reply:
    head = (
        '<meta name=Generator content="Microsoft Word 15 (filtered medium)"><style><!--'
        " p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm;font-size:11.0pt;"
        'font-family:"Calibri",sans-serif;} --></style>'
    )
    if layout == "forward":
        fwd = forward_lines(lang, "outlook")
        rows = "<br>".join(
            f"<b>{esc(line.partition(':')[0])}:</b> {esc(line.partition(':')[2].strip())}"
            for line in fwd
        )
        block = (
            "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
            f"<p class=MsoNormal>{rows}<o:p></o:p></p></div>"
        )
        reply = forward_reply(lang, "", fwd, "", block)
        reply.html = page(f"<div class=WordSection1>{reply.html}</div>", head)
        return reply
    if layout == "bottom":
        # A greeting on top, the answer typed under Outlook's unmarked quote: undecidable, so
        # the extractor must keep everything (it passes "kept" and fails "nothing leaked").
        block = (
            "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
            f"<p class=MsoNormal>{header_html(lang)}<o:p></o:p></p></div>"
        )
        paragraphs = "".join(
            f"<p class=MsoNormal>{esc(line) if line else '<o:p>&nbsp;</o:p>'}<o:p></o:p></p>"
            for line in [*lang.quoted, "", *lang.answers, "", lang.signoff]
        )
        markup = page(
            f"<div class=WordSection1><p class=MsoNormal>{esc(lang.greeting)}<o:p></o:p></p>"
            f"<p class=MsoNormal><o:p>&nbsp;</o:p></p>{block}{paragraphs}</div>",
            head,
        )
        text = (
            f"{lang.greeting}\n\n"
            + "\n".join(header_lines(lang))
            + "\n\n"
            + "\n\n".join(lang.quoted)
            + "\n\n"
            + "\n".join(lang.answers)
            + f"\n\n{lang.signoff}\n"
        )
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    paragraphs = "".join(
        f"<p class=MsoNormal>{esc(line) if line else '<o:p>&nbsp;</o:p>'}<o:p></o:p></p>"
        for line in [lang.greeting, "", *lang.answers, "", lang.signoff, ""]
    )
    block = (
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
        f"<p class=MsoNormal>{header_html(lang)}<o:p></o:p></p></div>"
        "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        + "".join(f"<p class=MsoNormal>{esc(line)}<o:p></o:p></p>" for line in lang.quoted)
    )
    markup = page(f"<div class=WordSection1>{paragraphs}<div>{block}</div></div>", head)
    text = (
        f"{new_text(lang)}\n\n"
        + "\n".join(header_lines(lang))
        + "\n\n"
        + "\n\n".join(lang.quoted)
        + "\n"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def outlook_classic_text(lang: Language, layout: str) -> Reply:
    """Outlook 2010-2016 in plain-text mode: the "-----Original Message-----" rule."""
    rule = f"-----{lang.original}-----"
    text = (
        f"{new_text(lang)}\n\n{rule}\n"
        + "\n".join(header_lines(lang))
        + "\n\n"
        + "\n".join(lang.quoted)
        + "\n"
    )
    markup = (
        f"<div>{new_html(lang)}</div><div><br></div><div>{esc(rule)}<br>{header_html(lang, bold='span')}"
        f"</div><div><br></div>" + "".join(f"<div>{esc(q)}</div>" for q in lang.quoted)
    )
    return Reply(text, page(markup), new_lines(lang), leak(lang), new_text(lang))


def outlook_web(lang: Language, layout: str) -> Reply:
    """Outlook on the web and the new Outlook: appendonsend, a rule, divRplyFwdMsg."""
    head = (
        '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>'
    )
    new = new_html(lang, "div", "elementToProof")
    if layout == "forward":
        fwd = forward_lines(lang, "outlook")
        rows = "<br>".join(
            f"<b>{esc(line.partition(':')[0])}:</b> {esc(line.partition(':')[2].strip())}"
            for line in fwd
        )
        reply = forward_reply(
            lang,
            "________________________________",
            fwd,
            '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">',
            f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
            f'style="font-size:11pt" color="#000000">{rows}</font><div>&nbsp;</div></div>',
        )
        reply.html = page(f'<body dir="ltr">{reply.html}', head)
        return reply
    markup = (
        f'<div class="elementToProof" style="font-family: Aptos, sans-serif;">{new}</div>'
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt"'
        f' color="#000000">{header_html(lang)}</font><div>&nbsp;</div></div>'
        f'<div dir="ltr">{quoted_html(lang)}</div>'
    )
    text = (
        f"{new_text(lang)}\n\n________________________________\n"
        + "\n".join(header_lines(lang))
        + "\n\n"
        + "\n\n".join(lang.quoted)
        + "\n"
    )
    return Reply(text, page(markup, head), new_lines(lang), leak(lang), new_text(lang))


def outlook_mac(lang: Language, layout: str) -> Reply:
    """Outlook for Mac: a border-top block with From/Date/To/Subject."""
    lines = header_lines(lang, sent_label=2)
    rows = "<br>".join(
        f"<b>{esc(line.partition(':')[0])}: </b>{esc(line.partition(':')[2].strip())}"
        for line in lines
    )
    markup = (
        f'<div class="WordSection1">{new_html(lang, "p", "MsoNormal")}'
        '<div id="mail-editor-reference-message-container"><div class="MsoNormal">'
        '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0in 0in 0in">'
        f'<p class="MsoNormal"><span style="font-size:12.0pt;color:black">{rows}</span></p>'
        f"</div></div>{quoted_html(lang)}</div></div>"
    )
    text = f"{new_text(lang)}\n\n" + "\n".join(lines) + "\n\n" + "\n\n".join(lang.quoted) + "\n"
    return Reply(text, page(markup), new_lines(lang), leak(lang), new_text(lang))


def outlook_com(lang: Language, layout: str) -> Reply:
    """Outlook.com / Hotmail: the older header block that starts with "Date:"."""
    from_, sent, date, to, _cc, subject = (label.strip() for label in lang.labels)
    if lang.code == "fr":
        sent = "Envoyé le"
    lines = [
        f"{date}{_colon(lang.labels[2])} {lang.long_date}",
        f"{from_}{_colon(lang.labels[0])} {DESK_ADDRESS}",
        f"{to}{_colon(lang.labels[3])} bob@example.com",
        f"{subject}{_colon(lang.labels[5])} {lang.reply_prefix} {SUBJECT}",
    ]
    if lang.code == "fr":
        lines = [
            f"De\u00a0: {DESK} <{DESK_ADDRESS}>",
            f"{sent}\u00a0: {lang.long_date}",
            "À\u00a0: bob@example.com",
            f"Objet\u00a0: {lang.reply_prefix} {SUBJECT}",
        ]
    markup = (
        f'<div dir="ltr">{new_html(lang)}<br><div><hr id="stopSpelling">'
        + "<br>".join(esc(line) for line in lines)
        + f'<br><br><div dir="ltr">{quoted_html(lang)}</div></div></div>'
    )
    text = f"{new_text(lang)}\n\n" + "\n".join(lines) + "\n\n" + "\n\n".join(lang.quoted) + "\n"
    return Reply(text, page(markup), new_lines(lang), [*lang.quoted, DESK_ADDRESS], new_text(lang))


def apple_mail(lang: Language, layout: str) -> Reply:
    attr = attribution(lang.apple)
    attr_html = attribution_html(lang.apple, link=False)
    cite = f'<blockquote type="cite"><div dir="ltr">{quoted_html(lang)}</div></blockquote>'
    if layout == "top":
        # iOS: "Sent from my iPhone", the attribution in a cite blockquote of its own.
        text = f"{new_text(lang)}\n\nSent from my iPhone\n\n> {attr}\n> \n{quoted_text(lang)}\n"
        markup = page(
            f'<div dir="ltr">{new_html(lang)}</div><div dir="ltr"><br></div>'
            '<div dir="ltr">Sent from my iPhone</div><div dir="ltr"><br>'
            f'<blockquote type="cite">{attr_html}<br><br></blockquote></div>{cite}'
        )
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    if layout == "bottom":
        text = f"> {attr}\n> \n{quoted_text(lang)}\n\n{new_text(lang)}\n"
        markup = page(
            f'<div><br><blockquote type="cite"><div>{attr_html}</div><br '
            f'class="Apple-interchange-newline"><div>{quoted_html(lang)}</div></blockquote></div>'
            f"<br>{new_html(lang)}"
        )
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    if layout == "inline":
        q1, q2 = lang.questions
        a1, a2 = lang.inline_answers
        text = f"{lang.greeting}\n\n> {attr}\n> \n> {q1}\n\n{a1}\n\n> {q2}\n\n{a2}\n"
        markup = page(
            f'<div>{esc(lang.greeting)}</div><div><br></div><blockquote type="cite"><div>'
            f'{attr_html}</div><br class="Apple-interchange-newline"><div>{esc(q1)}</div>'
            f'</blockquote><div>{esc(a1)}</div><br><blockquote type="cite"><div>{esc(q2)}</div>'
            f"</blockquote><div>{esc(a2)}</div>"
        )
        keep = [lang.greeting, a1, a2]
        return Reply(text, markup, keep, [q1, q2, DESK], "\n".join(keep))
    fwd = forward_lines(lang, "gmail")
    reply = forward_reply(
        lang,
        "Begin forwarded message:\n",
        fwd,
        '<div><br><blockquote type="cite"><div>Begin forwarded message:</div><br '
        'class="Apple-interchange-newline">',
        "".join(
            f"<div><b>{esc(line.partition(':')[0])}: </b>{esc(line.partition(':')[2].strip())}</div>"
            for line in fwd
        ),
        "</blockquote></div>",
    )
    reply.html = page(reply.html)
    return reply


def thunderbird(lang: Language, layout: str) -> Reply:
    attr = attribution(lang.thunderbird)
    attr_html = attribution_html(lang.thunderbird)
    prefix = f'<div class="moz-cite-prefix">{attr_html}<br></div>'
    cite = (
        '<blockquote type="cite" cite="mid:AM0PR01MB1234@eurprd01.prod.outlook.com">'
        f"{quoted_html(lang)}</blockquote>"
    )
    if layout == "top":
        text = f"{new_text(lang)}\n\n{attr}\n{quoted_text(lang)}\n"
        markup = page(
            f"<p>{esc(lang.greeting)}</p><p>"
            + "<br>".join(esc(a) for a in lang.answers)
            + f"</p><p>{esc(lang.signoff)}</p>{prefix}{cite}"
        )
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    if layout == "bottom":
        text = f"{attr}\n{quoted_text(lang)}\n\n{new_text(lang)}\n"
        markup = page(
            f"<p><br></p>{prefix}{cite}<p>{esc(lang.greeting)}</p><p>"
            + "<br>".join(esc(a) for a in lang.answers)
            + f"</p><p>{esc(lang.signoff)}</p>"
        )
        return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))
    if layout == "inline":
        q1, q2 = lang.questions
        a1, a2 = lang.inline_answers
        text = f"{attr}\n> {q1}\n\n{a1}\n\n> {q2}\n\n{a2}\n"
        markup = page(
            f'{prefix}<blockquote type="cite">{esc(q1)}<br></blockquote><p>{esc(a1)}</p>'
            f'<blockquote type="cite">{esc(q2)}<br></blockquote><p>{esc(a2)}</p>'
        )
        keep = [a1, a2]
        return Reply(text, markup, keep, [q1, q2, DESK], "\n".join(keep))
    fwd = forward_lines(lang, "gmail")
    rule = f"-------- {lang.forwarded} --------"
    rows = "".join(
        f'<tr><th valign="BASELINE" nowrap="nowrap" align="RIGHT">{esc(line.partition(":")[0])}: </th><td>{esc(line.partition(":")[2].strip())}</td></tr>'
        for line in fwd
    )
    reply = forward_reply(
        lang,
        rule,
        fwd,
        f'<div class="moz-forward-container"><br><br>{esc(rule)}',
        f'<table class="moz-email-headers-table" border="0" cellspacing="0" cellpadding="0"><tbody>{rows}</tbody></table>',
        "</div>",
    )
    reply.html = page(reply.html)
    return reply


def yahoo(lang: Language, layout: str) -> Reply:
    """Yahoo Mail: the yahoo_quoted container; its text part does not mark the quote."""
    attr = attribution(lang.yahoo)
    if layout == "forward":
        fwd = forward_lines(lang, "gmail")
        rule = "----- Forwarded Message -----"
        reply = forward_reply(
            lang,
            rule,
            fwd,
            f'<div id="yahoo_quoted_1234" class="yahoo_quoted"><div>{rule}</div>',
            "".join(f"<div>{esc(line)}</div>" for line in fwd),
            "</div>",
        )
        reply.html = page(f'<div class="yahoo-style-wrap">{reply.html}</div>')
        return reply
    markup = page(
        f'<div class="yahoo-style-wrap" style="font-family:Helvetica Neue, Helvetica, Arial, '
        f'sans-serif;font-size:13px;">{new_html(lang)}</div><div><br></div><div><br></div>'
        '<div id="yahoo_quoted_8214573091" class="yahoo_quoted"><div style="font-family:\'Helvetica '
        f"Neue', Helvetica, Arial, sans-serif;font-size:13px;color:#26282a;\"><div>"
        f"{attribution_html(lang.yahoo)}</div><div><br></div><div><br></div>"
        f'<div><div dir="ltr">{quoted_html(lang)}</div></div></div></div>'
    )
    text = f"{new_text(lang)}\n\n\n{attr}\n\n\n" + "\n\n".join(lang.quoted) + "\n"
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def yahoo_classic(lang: Language, layout: str) -> Reply:
    """Yahoo Mail Classic: "----- Original Message -----" and a From/To/Sent/Subject block."""
    lines = [
        "----- Original Message -----",
        f"From: {DESK} <{DESK_ADDRESS}>",
        "To: Bob <bob@example.com>",
        f"Sent: {lang.long_date}",
        f"Subject: {lang.reply_prefix} {SUBJECT}",
    ]
    text = f"{new_text(lang)}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(lang.quoted) + "\n"
    markup = page(
        f'<div style="color:#000; background-color:#fff;">{new_html(lang)}'
        '<div><br></div><div style="font-family: arial, helvetica, sans-serif; font-size: 10pt;">'
        '<div style="font-family: times new roman, new york, times, serif; font-size: 12pt;">'
        f'<div dir="ltr"><font size="2" face="Arial"><hr size="1"><b><span style="font-weight:bold;">'
        f'From:</span></b> {esc(DESK)} &lt;{DESK_ADDRESS}&gt;<br><b><span style="font-weight: bold;">'
        f'To:</span></b> Bob &lt;bob@example.com&gt;<br><b><span style="font-weight: bold;">Sent:'
        f'</span></b> {esc(lang.long_date)}<br><b><span style="font-weight: bold;">Subject:</span>'
        f"</b> {esc(lang.reply_prefix)} {esc(SUBJECT)}<br></font></div><br>{quoted_html(lang)}"
        "</div></div></div>"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def zoho(lang: Language, layout: str) -> Reply:
    """Zoho Mail: "---- On <date> <name> wrote ----" and the zmail_extra container."""
    if lang.code == "en":
        attr = f"---- On Mon, 03 Nov 2025 10:00:00 +0100 {DESK} <{DESK_ADDRESS}> wrote ----"
    elif lang.code == "de":
        attr = f"---- Am Mo, 03 Nov 2025 10:00:00 +0100 schrieb {DESK} <{DESK_ADDRESS}> ----"
    else:
        attr = f"---- Mon, 03 Nov 2025 10:00:00 +0100 {DESK} <{DESK_ADDRESS}> {lang.wrote} ----"
    text = f"{new_text(lang)}\n\n\n\n{attr}\n\n" + "\n\n".join(lang.quoted) + "\n"
    markup = page(
        f'<div style="font-family: Verdana, Arial, Helvetica, sans-serif; font-size: 10pt;">'
        f"{new_html(lang)}<div><br></div>"
        '<div class="zmail_extra_hr" style="border-top: 1px solid rgb(204, 204, 204); height: 0px;'
        ' margin-top: 10px; margin-bottom: 10px; line-height: 0px;"><br></div>'
        '<div class="zmail_extra" data-zmail_extra=""><div><br></div><div id="Zm-_Id_-Sgn1">'
        f"{esc(attr)}<br></div><div><br></div>"
        '<blockquote style="margin: 0px;"><div>'
        f"{quoted_html(lang)}</div></blockquote></div><div><br></div></div>"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def yandex(lang: Language, layout: str) -> Reply:
    """Yandex Mail: "03.11.2025, 10:00, "Name" <addr>:" above a plain blockquote."""
    attr = f'03.11.2025, 10:00, "{DESK}" <{DESK_ADDRESS}>:'
    attr_html = f'03.11.2025, 10:00, "{esc(DESK)}" &lt;{DESK_ADDRESS}&gt;:'
    quote = f"<blockquote>{quoted_html(lang)}</blockquote>"
    if layout == "bottom":
        text = f"{attr}\n{quoted_text(lang)}\n\n{new_text(lang)}\n"
        markup = f"<div>{attr_html}</div>{quote}<div> </div>{new_html(lang)}"
    elif layout == "inline":
        q1, q2 = lang.questions
        a1, a2 = lang.inline_answers
        text = f"{attr}\n> {q1}\n{a1}\n\n> {q2}\n{a2}\n"
        markup = (
            f"<div>{attr_html}</div><blockquote><div>{esc(q1)}</div></blockquote><div>{esc(a1)}"
            f"</div><div> </div><blockquote><div>{esc(q2)}</div></blockquote><div>{esc(a2)}</div>"
        )
        keep = [a1, a2]
        return Reply(text, markup, keep, [q1, q2, DESK], "\n".join(keep))
    else:
        text = f"{new_text(lang)}\n\n{attr}\n{quoted_text(lang)}\n"
        markup = f"{new_html(lang)}<div> </div><div>{attr_html}</div>{quote}"
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def mailru(lang: Language, layout: str) -> Reply:
    """Mail.ru: "<weekday>, <date>, 10:00 +03:00 от <name> <addr>:" inside a bordered quote."""
    if lang.code == "ru":
        attr = f"Понедельник, 3 ноября 2025, 10:00 +03:00 от {DESK} <{DESK_ADDRESS}>:"
    elif lang.code == "uk":
        attr = f"Понеділок, 3 листопада 2025, 10:00 +02:00 від {DESK} <{DESK_ADDRESS}>:"
    else:
        attr = f"Monday, November 3, 2025 10:00 AM +03:00 from {DESK} <{DESK_ADDRESS}>:"
    quote = (
        '<blockquote style="border-left:1px solid #0857A6; margin:10px; padding:0 0 0 10px;">'
        f'{esc(attr)}<br><br><div id=""><div class="js-helper js-readmsg-msg"><div>'
        f'<div id="style_17621540000000000000_BODY">{quoted_html(lang)}</div></div></div></div>'
        "</blockquote>"
    )
    qtext = f">{attr}\n>\n" + "\n".join(f">{line}" for line in _between(lang.quoted, ""))
    if layout == "bottom":
        text = f"\n{qtext}\n\n{new_text(lang)}\n"
        markup = f"<div>&nbsp;</div>{quote}<div>&nbsp;</div><div>{new_html(lang)}</div>"
    else:
        text = f"{new_text(lang)}\n\n\n{qtext}\n"
        markup = (
            f'<div>{new_html(lang)}</div><div>&nbsp;</div><div data-signature-widget="container">'
            f'<div data-signature-widget="content"><div>--<br>{esc(lang.signoff)}</div></div></div>'
            f"<div>&nbsp;</div>{quote}"
        )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def lotus_notes(lang: Language, layout: str) -> Reply:
    """Lotus (HCL) Notes: a tab-aligned From/To/Date/Subject block, or "-----… wrote: -----"."""
    from_, _sent, date, to, cc, subject = (label.strip() for label in lang.labels)
    if layout == "notes9":
        lines = [
            f'-----"{DESK}" <{DESK_ADDRESS}> {lang.wrote}: -----',
            "",
            f"{to}: Bob <bob@example.com>",
            f'{from_}: "{DESK}" <{DESK_ADDRESS}>',
            f"{date}: 03.11.2025 10:00",
            f"{subject}: {lang.reply_prefix} {SUBJECT}",
        ]
    else:
        lines = [
            f'{from_}:\t"{DESK}" <{DESK_ADDRESS}>',
            f"{to}:\tBob <bob@example.com>",
            f"{cc}:\thelpdesk@example.com",
            f"{date}:\t03.11.2025 10:00",
            f"{subject}:\t{lang.reply_prefix} {SUBJECT}",
        ]
    text = (
        f"{new_text(lang)}\n\n\n\n"
        + "\n".join(lines)
        + "\n\n\n\n"
        + "\n\n".join(lang.quoted)
        + "\n"
    )
    rows = "".join(
        f'<tr valign=top><td width="1%"><font size=1 color=#5f5f5f>{esc(line.partition(":")[0])}:'
        f'</font><td width="100%"><font size=1>{esc(line.partition(":")[2].strip())}</font>'
        for line in lines
        if line and not line.startswith("-----")
    )
    first = esc(lines[0]) + "<br>" if lines[0].startswith("-----") else ""
    markup = page(
        f'<font size=2 face="sans-serif">{esc(lang.greeting)}<br><br>'
        + "<br>".join(esc(a) for a in lang.answers)
        + f"<br><br>{esc(lang.signoff)}</font><br><br><br><br>{first}"
        f'<table width="100%" style="border-collapse:collapse;">{rows}</table><br><br><br>'
        + "".join(f"<font size=2>{esc(q)}</font><br>" for q in lang.quoted)
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def lotus_notes_wrote_on(lang: Language, layout: str) -> Reply:
    """Notes 8: "Name <addr> wrote on 03.11.2025 10:00:00:" above a ">" quote."""
    attr = f"{DESK} <{DESK_ADDRESS}> {lang.wrote} 03.11.2025 10:00:00:"
    if lang.code == "en":
        attr = f"{DESK} <{DESK_ADDRESS}> wrote on 11/03/2025 10:00:00 AM:"
    elif lang.code == "de":
        attr = f"{DESK} <{DESK_ADDRESS}> schrieb am 03.11.2025 10:00:00:"
    text = f"{new_text(lang)}\n\n{attr}\n\n{quoted_text(lang)}\n"
    markup = page(
        f'<font size=2 face="sans-serif">{esc(lang.greeting)}<br><br>'
        + "<br>".join(esc(a) for a in lang.answers)
        + f"<br><br>{esc(lang.signoff)}</font><br><br><tt><font size=2>{esc(attr)}<br><br>"
        + "<br>".join("&gt; " + esc(q) for q in lang.quoted)
        + "<br></font></tt>"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def zimbra(lang: Language, layout: str) -> Reply:
    """Zimbra: the zwchr rule and the __HEADERS__ / __QUOTED_TEXT__ markers."""
    from_, sent, _date, to, _cc, subject = (label.strip() for label in lang.labels)
    if layout == "forward":
        fwd = forward_lines(lang, "outlook")
        rule = f"----- {lang.forwarded} -----"
        reply = forward_reply(
            lang,
            rule,
            fwd,
            '<hr id="zwchr" data-marker="__DIVIDER__"><div data-marker="__HEADERS__">',
            "<br>".join(
                f"<b>{esc(line.partition(':')[0])}: </b>{esc(line.partition(':')[2].strip())}"
                for line in fwd
            ),
            "</div>",
        )
        reply.html = page(
            f'<div style="font-family: arial, helvetica, sans-serif; font-size: 12pt; color: #000000">{reply.html}</div>'
        )
        return reply
    lines = [
        f'{from_}: "{DESK}" <{DESK_ADDRESS}>',
        f'{to}: "Bob" <bob@example.com>',
        f"{sent}: {lang.long_date}",
        f"{subject}: {lang.reply_prefix} {SUBJECT}",
    ]
    rows = "<br>".join(
        f"<b>{esc(line.partition(':')[0])}: </b>{esc(line.partition(':')[2].strip())}"
        for line in lines
    )
    markup = page(
        f'<div style="font-family: arial, helvetica, sans-serif; font-size: 12pt; color: #000000">'
        f'{new_html(lang)}<div><br></div><hr id="zwchr" data-marker="__DIVIDER__">'
        f'<div data-marker="__HEADERS__">{rows}</div><br><div data-marker="__QUOTED_TEXT__">'
        f"{quoted_html(lang)}</div></div>"
    )
    text = (
        f"{new_text(lang)}\n\n----- {lang.original} -----\n"
        + "\n".join(lines)
        + "\n\n"
        + "\n".join(lang.quoted)
        + "\n"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def gmx(lang: Language, layout: str) -> Reply:
    """GMX and WEB.DE: a block that starts with "Gesendet:" inside <div name="quote">."""
    from_, sent, _date, to, _cc, subject = (label.strip() for label in lang.labels)
    lines = [
        f"{sent}: {lang.long_date}",
        f'{from_}: "{DESK}" <{DESK_ADDRESS}>',
        f"{to}: bob@example.com",
        f"{subject}: {lang.reply_prefix} {SUBJECT}",
    ]
    markup = page(
        f'<div style="font-family: Verdana;font-size: 12.0px;"><div>{new_html(lang)}</div>'
        '<div>&nbsp;\n<div>&nbsp;\n<div style="margin: 10.0px 5.0px 5.0px 10.0px;padding: 10.0px '
        '0 10.0px 10.0px;border-left: 2.0px solid rgb(195,217,229);" name="quote">'
        '<div style="margin: 0 0 10.0px 0;">'
        + "<br>".join(
            f"<b>{esc(line.partition(':')[0])}:</b>&nbsp;{esc(line.partition(':')[2].strip())}"
            for line in lines
        )
        + f'</div><div name="quoted-content">{quoted_html(lang)}</div></div></div></div></div>'
    )
    text = (
        f"{new_text(lang)}\n\n\n"
        + "\n".join(lines)
        + "\n\n"
        + "\n".join(f"> {q}" for q in lang.quoted)
        + "\n"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def protonmail(lang: Language, layout: str) -> Reply:
    """Proton Mail: "------- Original Message -------" and an "On … wrote:" line."""
    attr = f"On Monday, November 3rd, 2025 at 10:00, {DESK} <{DESK_ADDRESS}> wrote:"
    text = f"{new_text(lang)}\n\n------- Original Message -------\n{attr}\n\n{quoted_text(lang)}\n"
    markup = (
        f'<div style="font-family: Arial, sans-serif; font-size: 14px;">{new_html(lang)}</div>'
        '<div class="protonmail_quote">------- Original Message -------<br>'
        f"{attribution_html('On Monday, November 3rd, 2025 at 10:00, {name} <{addr}> wrote:')}<br><br>"
        f'<blockquote class="protonmail_quote" type="cite">{quoted_html(lang)}</blockquote><br></div>'
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def android(lang: Language, layout: str) -> Reply:
    """Samsung Email / Android: "-------- Original message --------" with From/Date/To."""
    from_, _sent, date, to, _cc, subject = (label.strip() for label in lang.labels)
    lines = [
        f"-------- {lang.original} --------",
        f"{from_}: {DESK} <{DESK_ADDRESS}>",
        f"{date}: 03.11.25 10:00 (GMT+01:00)",
        f"{to}: bob@example.com",
        f"{subject}: {lang.reply_prefix} {SUBJECT}",
    ]
    text = (
        f"{new_text(lang)}\n\nSent from my Galaxy\n\n"
        + "\n".join(lines)
        + "\n"
        + "\n".join(lang.quoted)
        + "\n"
    )
    markup = (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body>'
        f'<div dir="auto">{new_html(lang)}</div><div dir="auto"><br></div><div dir="auto"><br></div>'
        '<div id="composer_signature" dir="auto"><div style="font-size:12px;color:#575757" '
        'dir="auto">Sent from my Galaxy</div></div><div dir="auto"><br></div><div><br></div>'
        '<div align="left" dir="auto" style="font-size:100%;color:#000000"><div>'
        + "</div><div>".join(esc(line) for line in lines)
        + f"</div></div>{quoted_html(lang)}</body></html>"
    )
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


def cite_reply(attr: str, lang: Language, layout: str, container: str = "") -> Reply:
    """A client that writes its attribution line above a ">" / blockquote type=cite quote."""
    attr_html = esc(attr).replace(
        esc(DESK_ADDRESS), f'<a href="mailto:{DESK_ADDRESS}">{DESK_ADDRESS}</a>'
    )
    quote = f'<blockquote type="cite" style="border-left-color: #cccccc;">{quoted_html(lang)}</blockquote>'
    section = f"<div{container}>{attr_html}<br>{quote}</div>"
    if layout == "bottom":
        text = f"{attr}\n{quoted_text(lang)}\n\n{new_text(lang)}\n"
        markup = page(f"{section}<div><br></div>{new_html(lang)}")
    else:
        text = f"{new_text(lang)}\n\n{attr}\n{quoted_text(lang)}\n"
        markup = page(f"{new_html(lang)}<div><br></div>{section}")
    return Reply(text, markup, new_lines(lang), leak(lang), new_text(lang))


GMAIL_APP = {
    "en": "On Mon, Nov 3, 2025, 10:00 AM {name} <{addr}> wrote:",
    "de": "{name} <{addr}> schrieb am Mo., 3. Nov. 2025, 10:00:",
    "fr": "Le lun. 3 nov. 2025, 10:00, {name} <{addr}> a écrit :",
    "es": "El lun., 3 de nov. de 2025 10:00, {name} <{addr}> escribió:",
    "it": "Il lun 3 nov 2025, 10:00 {name} <{addr}> ha scritto:",
    "nl": "Op ma 3 nov. 2025 10:00 schreef {name} <{addr}>:",
    "pl": "pon., 3 lis 2025, 10:00 użytkownik {name} <{addr}> napisał:",
    "ru": "пн, 3 нояб. 2025 г., 10:00 {name} <{addr}>:",
}


def gmail_app(lang: Language, layout: str) -> Reply:
    """The Gmail app for Android: the name and address first in some languages."""
    return cite_reply(attribution(GMAIL_APP[lang.code]), lang, layout, ' class="gmail_quote"')


def spark(lang: Language, layout: str) -> Reply:
    """Spark (Readdle): "On 3 Nov 2025 at 10:00 +0100, Name <addr>, wrote:"."""
    attr = f"On 3 Nov 2025 at 10:00 +0100, {DESK} <{DESK_ADDRESS}>, wrote:"
    return cite_reply(attr, lang, layout, ' name="messageReplySection"')


def airmail(lang: Language, layout: str) -> Reply:
    """Airmail: the address in brackets, then "wrote:"."""
    attr = f"On November 3, 2025 at 10:00:00, {DESK} ({DESK_ADDRESS}) wrote:"
    return cite_reply(attr, lang, layout, ' id="airmail_on"')


def notification_reply(lang: Language, layout: str) -> Reply:
    """A client that glues the verb to the address and writes no colon."""
    attr = f"On Mon, Nov 3, 2025 at 10:00 AM {DESK} <{DESK_ADDRESS}>wrote"
    return cite_reply(attr, lang, layout)


# ---------------------------------------------------------------- which emails to write

CLIENTS: dict[str, tuple[str, str, Callable[[Language, str], Reply]]] = {
    # name: (client group, X-Mailer/User-Agent, builder)
    "gmail": ("gmail", "", gmail),
    "gmail-signature": ("gmail", "", gmail_signature),
    "gmail-2017": ("gmail", "", gmail_old),
    "outlook-desktop": ("outlook-desktop", "Microsoft Outlook 16.0", outlook_desktop),
    "outlook-desktop-text": ("outlook-desktop", "Microsoft Outlook 14.0", outlook_classic_text),
    "outlook-web": ("outlook-web", "", outlook_web),
    "outlook-mac": ("outlook-mac", "Microsoft-MacOutlook/16.89.24091630", outlook_mac),
    "outlook-com": ("outlook-com", "", outlook_com),
    "apple-mail": ("apple-mail", "iPhone Mail (22A3354)", apple_mail),
    "thunderbird": (
        "thunderbird",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.4.2",
        thunderbird,
    ),
    "yahoo": ("yahoo", "WebService/1.1.22806 YMailNorrin", yahoo),
    "yahoo-classic": ("yahoo", "YahooMailClassic/15.1.2", yahoo_classic),
    "zoho": ("zoho", "Zoho Mail", zoho),
    "yandex": ("yandex", "Yandex Mail", yandex),
    "mailru": ("mailru", "Mail.Ru Mailer 1.0", mailru),
    "lotus-notes": ("lotus-notes", "Lotus Notes Release 9.0.1FP10", lotus_notes),
    "lotus-notes-8": ("lotus-notes", "Lotus Notes Release 8.5.3", lotus_notes_wrote_on),
    "zimbra": (
        "zimbra",
        "Zimbra 9.0.0_GA_4546 (ZimbraWebClient - GC119 (Win)/9.0.0_GA_4546)",
        zimbra,
    ),
    "gmx": ("gmx", "GMX Freemail", gmx),
    "protonmail": ("protonmail", "", protonmail),
    "android": ("samsung-android", "", android),
    "gmail-app": ("gmail", "", gmail_app),
    "spark": ("spark-airmail", "Spark 3.16", spark),
    "airmail": ("spark-airmail", "Airmail (641)", airmail),
    "no-colon": ("spark-airmail", "", notification_reply),
}

# Languages each client is written in (webmail services where their users are).
EVERY = tuple(LANGUAGES)
PLAN: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # client, languages, layouts
    ("gmail", EVERY, ("top",)),
    ("gmail", ("en", "de", "fr", "es", "ru", "ja", "pl", "he"), ("bottom",)),
    ("gmail", ("en", "de", "fr", "nl", "pt", "zh", "ko", "ar"), ("inline",)),
    ("gmail", ("en", "de", "fr", "es", "it", "sv", "ru", "ja", "vi", "tr"), ("forward",)),
    ("gmail-signature", ("en", "de", "fi", "cs"), ("top",)),
    ("gmail-2017", ("en", "de", "fr"), ("top",)),
    ("outlook-desktop", EVERY, ("top",)),
    ("outlook-desktop", ("en", "de", "fr", "da", "ru", "zh"), ("forward",)),
    ("outlook-desktop", ("en", "de", "fr"), ("bottom",)),
    ("outlook-desktop-text", ("en", "de", "fr", "da", "it", "no", "ru", "ja", "el"), ("top",)),
    ("outlook-web", EVERY, ("top",)),
    ("outlook-web", ("en", "es", "pl", "uk", "ko"), ("forward",)),
    ("outlook-mac", ("en", "de", "fr", "es", "it", "nl", "sv", "ja", "zh", "pt"), ("top",)),
    ("outlook-com", ("en", "fr", "de", "es", "pt", "it", "tr", "ru", "hu", "ro"), ("top",)),
    ("apple-mail", EVERY, ("top",)),
    ("apple-mail", ("en", "de", "fr", "it", "sv", "ko", "cs", "el"), ("bottom",)),
    ("apple-mail", ("en", "de", "es", "nl", "hu", "fi", "ja"), ("inline",)),
    ("apple-mail", ("en", "fr", "de", "ro"), ("forward",)),
    (
        "thunderbird",
        (
            "en",
            "de",
            "fr",
            "es",
            "it",
            "pt",
            "nl",
            "pl",
            "sv",
            "no",
            "da",
            "fi",
            "ru",
            "uk",
            "cs",
            "hu",
            "tr",
            "el",
            "he",
            "ar",
            "ja",
            "zh",
            "ko",
            "vi",
            "ro",
        ),
        ("top",),
    ),
    ("thunderbird", ("en", "de", "fr", "pl", "ru", "cs", "da", "zh"), ("bottom",)),
    ("thunderbird", ("en", "de", "it", "no", "uk", "tr", "he", "vi"), ("inline",)),
    ("thunderbird", ("en", "de", "pl", "hu"), ("forward",)),
    ("yahoo", ("en", "de", "fr", "es", "it", "pt", "vi", "el", "ar", "zh", "sv", "ro"), ("top",)),
    ("yahoo", ("en", "fr"), ("forward",)),
    ("yahoo-classic", ("en", "es", "it", "tr"), ("top",)),
    ("zoho", ("en", "de", "fr", "es", "ja", "zh", "ar", "pt", "nl", "tr"), ("top",)),
    ("yandex", ("ru", "uk", "en", "tr"), ("top",)),
    ("yandex", ("ru", "uk", "en"), ("bottom",)),
    ("yandex", ("ru", "en"), ("inline",)),
    ("mailru", ("ru", "uk", "en"), ("top",)),
    ("mailru", ("ru", "en"), ("bottom",)),
    ("lotus-notes", ("en", "de", "fr", "it", "ja", "nl", "sv", "pl"), ("top",)),
    ("lotus-notes", ("en", "de", "es", "fi"), ("notes9",)),
    ("lotus-notes-8", ("en", "de", "da", "cs"), ("top",)),
    ("zimbra", ("en", "de", "fr", "es", "it", "pt", "pl", "ru", "hu", "ja"), ("top",)),
    ("zimbra", ("en", "fr"), ("forward",)),
    ("gmx", ("de", "en", "fr", "es"), ("top",)),
    ("protonmail", ("en", "de", "fr"), ("top",)),
    ("android", ("en", "de", "ko", "vi", "ar"), ("top",)),
    ("gmail-app", tuple(GMAIL_APP), ("top",)),
    ("spark", ("en", "de", "fr", "it"), ("top",)),
    ("spark", ("en", "es"), ("bottom",)),
    ("airmail", ("en", "pt", "sv"), ("top",)),
    ("no-colon", ("en", "nl", "ja"), ("top",)),
]


def layout_group(layout: str) -> str:
    return "top" if layout == "notes9" else layout


def write_email(
    path: Path, variant: str, lang: Language, layout: str, reply: Reply, number: int
) -> None:
    mailer = CLIENTS[variant][1]
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Bob Example <bob@example.com>"
    message["To"] = f"{DESK} <{DESK_ADDRESS}>"
    # Outlook and Notes translate "RE:"/"FW:"; the other clients write "Re:"/"Fwd:" everywhere.
    localised = variant.startswith(("outlook", "lotus")) or variant == "zimbra"
    prefix = lang.reply_prefix if localised else "Re:"
    if layout == "forward":
        prefix = lang.outlook_forward_prefix if localised else "Fwd:"
    message["Subject"] = f"{prefix} {SUBJECT}"
    message["Date"] = "Mon, 03 Nov 2025 11:30:00 +0100"
    message["Message-ID"] = f"<reply-{number:03d}@example.com>"
    message["In-Reply-To"] = "<HELP-12.1@contoso.com>"
    message["References"] = "<HELP-12.1@contoso.com>"
    message["Content-Language"] = lang.code
    if mailer.startswith("Mozilla"):
        message["User-Agent"] = mailer
    elif mailer:
        message["X-Mailer"] = mailer
    message.set_content(reply.text)
    message.add_alternative(reply.html, subtype="html")
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_reply_{number:03d}_{index}")
    path.write_bytes(message.as_bytes())


def main() -> None:
    for old in HERE.glob("*.eml"):
        old.unlink()
    manifest = []
    number = 0
    for variant, languages, layouts in PLAN:
        group, _mailer, build = CLIENTS[variant]
        for layout in layouts:
            for code in languages:
                number += 1
                lang = LANGUAGES[code]
                reply = build(lang, layout)
                name = f"{number:03d}-{variant}-{layout}-{code}.eml"
                write_email(HERE / name, variant, lang, layout, reply, number)
                manifest.append(
                    {
                        "file": name,
                        "language": code,
                        "client": group,
                        "variant": variant,
                        "layout": layout_group(layout),
                        "keep": reply.keep,
                        "leak": reply.leak,
                        "expected": reply.expected,
                    }
                )
    (HERE / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(manifest)} emails")


if __name__ == "__main__":
    main()
