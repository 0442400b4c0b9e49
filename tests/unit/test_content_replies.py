# ruff: noqa: RUF001  (quote headers in Cyrillic and CJK scripts)
"""The new part of a follow-up email: quoted conversation and signature removed."""

from __future__ import annotations

import random

import pytest
from work import count_calls, linear_budget

from ticket_manager.content import EmailContent, new_part_of_reply, text_preview


def visible(html: str) -> str:
    """What a reader sees of an HTML body, on one line."""
    return text_preview(EmailContent.from_email(html, "html"), limit=10_000)


# Outlook on the web / new Outlook replying above the quote.
OUTLOOK_WEB = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
    '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>'
    '</head><body dir="ltr"><div class="elementToProof" style="font-family: Aptos, sans-serif;'
    ' font-size: 12pt; color: rgb(0, 0, 0);">Hi, the printer works again &#8211; thanks!</div>'
    '<div class="elementToProof"><br></div><div class="elementToProof">Bob</div>'
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
    '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt"'
    ' color="#000000"><b>From:</b> Contoso Support &lt;support@contoso.com&gt;<br>'
    "<b>Sent:</b> Monday, November 3, 2025 10:00 AM<br><b>To:</b> Bob Example "
    "&lt;bob@example.com&gt;<br><b>Subject:</b> Re: [HELP-12] Printer offline</font>"
    "<div>&nbsp;</div></div><div><div>Did you restart the printer?</div></div></body></html>"
)

# Classic Outlook for Windows (Word HTML): no ids, a border-top div, then the header block.
OUTLOOK_DESKTOP = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><style><!-- p.MsoNormal '
    '{margin:0cm;} --></style></head><body lang=DE link="#0563C1"><div class=WordSection1>'
    "<p class=MsoNormal>Hallo,<o:p></o:p></p><p class=MsoNormal>der Drucker geht wieder."
    "<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
    "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
    "<p class=MsoNormal><b>Von:</b> Contoso Support &lt;support@contoso.com&gt; <br>"
    "<b>Gesendet:</b> Montag, 3. November 2025 10:00<br><b>An:</b> Hans &lt;hans@example.de&gt;"
    "<br><b>Betreff:</b> AW: [HELP-12] Drucker<o:p></o:p></p></div>"
    "<p class=MsoNormal>Bitte starten Sie den Drucker neu.<o:p></o:p></p></div></body></html>"
)

# Gmail with a signature (its "-- " prefix) and the quote container.
GMAIL = (
    '<div dir="ltr">Thanks, that fixed it!<div><br></div><div>One more question: can I keep '
    'the old <b>tray</b>?</div><div><br clear="all"></div><div><br></div>'
    '<span class="gmail_signature_prefix">-- </span><br><div dir="ltr" class="gmail_signature">'
    '<div dir="ltr">Carol Example<div>ACME Corp</div></div></div></div><br>'
    '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Mon, '
    '3 Nov 2025 at 10:00, Contoso Support &lt;<a href="mailto:support@contoso.com">'
    'support@contoso.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" '
    'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">'
    '<div dir="ltr">Please restart the printer.</div></blockquote></div>'
)

# Apple Mail on iOS: the attribution sits in its own cite blockquote.
APPLE_MAIL = (
    '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
    '<body dir="auto"><div dir="ltr">Still broken, sorry.</div><div dir="ltr"><br></div>'
    '<div dir="ltr">Sent from my iPhone</div><div dir="ltr"><br><blockquote type="cite">On 3. '
    "Nov 2025, at 10:00, Contoso Support &lt;support@contoso.com&gt; wrote:<br><br>"
    '</blockquote></div><blockquote type="cite"><div dir="ltr"><div>Please restart the '
    "printer.</div></div></blockquote></body></html>"
)


def test_outlook_web_reply_keeps_only_the_new_text() -> None:
    # Outlook's appendonsend/divRplyFwdMsg markers end the new part; the header and quote go.
    result = new_part_of_reply(OUTLOOK_WEB, "html")
    assert visible(result) == "Hi, the printer works again \u2013 thanks! Bob"
    assert "From:" not in result and "<hr" not in result
    assert result.startswith("<html><head>") and result.endswith("</div></body></html>")


def test_outlook_desktop_reply_cuts_at_the_header_block() -> None:
    # A German Outlook header block (Von/Gesendet/An/Betreff) after a rule ends the new part.
    result = new_part_of_reply(OUTLOOK_DESKTOP, "html")
    assert visible(result) == "Hallo, der Drucker geht wieder."
    assert "Von:" not in result and "border-top" not in result
    assert result.endswith("</div></body></html>")


def test_gmail_reply_drops_signature_and_quote() -> None:
    # Gmail's "-- " signature and gmail_quote are removed; formatting of the new text stays.
    result = new_part_of_reply(GMAIL, "html")
    assert visible(result) == "Thanks, that fixed it! One more question: can I keep the old tray?"
    assert "<b>tray</b>" in result
    assert "Carol Example" not in result and "wrote:" not in result


def test_apple_mail_reply_drops_mobile_signature_and_cite_quotes() -> None:
    # Apple Mail's "Sent from my iPhone" and <blockquote type="cite"> are removed.
    result = new_part_of_reply(APPLE_MAIL, "html")
    assert visible(result) == "Still broken, sorry."
    assert "blockquote" not in result and "iPhone" not in result


def test_interleaved_html_answers_are_kept() -> None:
    # Answers written between quoted blocks survive; only the quoted blocks go.
    body = (
        '<div>See my answers below.</div><blockquote type="cite"><div>Which model?</div>'
        '</blockquote><div>LaserJet 400</div><blockquote type="cite"><div>Which floor?</div>'
        "</blockquote><div>Third floor</div>"
    )
    result = new_part_of_reply(body, "html")
    assert visible(result) == "See my answers below. LaserJet 400 Third floor"
    assert result == (
        "<div>See my answers below.</div><div>LaserJet 400</div><div>Third floor</div>"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Thanks, it works now.\n\nOn Mon, 3 Nov 2025 at 10:00, Contoso Support "
            "<support@contoso.com> wrote:\n> Please restart the printer.\n>\n> Contoso Support\n",
            "Thanks, it works now.",
        ),
        (
            "Danke, jetzt geht es.\n\nAm Mo., 3. Nov. 2025 um 10:00 Uhr schrieb Contoso Support <"
            "\nsupport@contoso.com>:\n> Bitte starten Sie den Drucker neu.\n",
            "Danke, jetzt geht es.",
        ),
        (
            "Merci, ça marche.\n\nLe lun. 3 nov. 2025 à 10:00, Contoso Support "
            "<support@contoso.com> a écrit :\n> Veuillez redémarrer l'imprimante.\n",
            "Merci, ça marche.",
        ),
        (
            "Gracias, ya funciona.\n\nEl lun, 3 nov 2025 a las 10:00, Contoso Support "
            "(<support@contoso.com>) escribió:\n> Reinicie la impresora.\n",
            "Gracias, ya funciona.",
        ),
        (
            "Bedankt, het werkt weer.\n\nOp ma 3 nov 2025 om 10:00 schreef Contoso Support "
            "<support@contoso.com>:\n> Start de printer opnieuw op.\n",
            "Bedankt, het werkt weer.",
        ),
    ],
)
def test_plain_text_attribution_lines_in_several_languages(body: str, expected: str) -> None:
    # "On … wrote:" in en/de/fr/es/nl (also wrapped over two lines) ends the new part.
    assert new_part_of_reply(body, "text") == expected


def test_plain_text_outlook_original_message() -> None:
    # Outlook's "-----Original Message-----" separator and what follows are removed.
    body = (
        "Works now.\r\n\r\nRegards\r\nBob\r\n\r\n-----Original Message-----\r\n"
        "From: Contoso Support <support@contoso.com>\r\nSent: Monday, November 3, 2025 10:00\r\n"
        "To: Bob\r\nSubject: RE: [HELP-12] Printer\r\n\r\nPlease restart it.\r\n"
    )
    assert new_part_of_reply(body, "text") == "Works now.\n\nRegards\nBob"


def test_plain_text_outlook_header_block_after_underscores() -> None:
    # The text part of an Outlook reply: underscores, then From/Sent/To/Subject.
    body = (
        "Done, closing on my side.\n\n________________________________\n"
        "From: Contoso Support <support@contoso.com>\nSent: Monday, November 3, 2025 10:00 AM\n"
        "To: Bob <bob@example.com>\nSubject: Re: [HELP-12] Printer\n\nPlease restart it.\n"
    )
    assert new_part_of_reply(body, "text") == "Done, closing on my side."


def test_plain_text_signature_and_mobile_footer() -> None:
    # Text after the "-- " sig dashes and "Sent from my iPhone" / "Get Outlook for iOS" goes.
    assert new_part_of_reply("Fixed.\n\n-- \nBob Example\nACME Corp\n", "text") == "Fixed."
    assert new_part_of_reply("Fixed.\n\nSent from my iPhone\n", "text") == "Fixed."
    assert new_part_of_reply("Fixed.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "text") == (
        "Fixed."
    )
    assert new_part_of_reply("Ok.\n\nVon meinem iPhone gesendet", "text") == "Ok."


def test_plain_text_interleaved_quotes_keep_the_answers() -> None:
    # ">" lines are removed, the answers written between them kept.
    body = "> Which model?\nLaserJet 400\n\n> Which floor?\nThird floor\n"
    assert new_part_of_reply(body, "text") == "LaserJet 400\n\nThird floor"


def test_content_that_only_looks_like_a_header_is_kept() -> None:
    # A lone "From:" in the customer's own text is not a quoted header block.
    body = "From: the accounting team we got no invoice.\nPlease check.\n"
    assert new_part_of_reply(body, "text") == body
    assert new_part_of_reply("On Monday it worked.\nToday not.", "text") == (
        "On Monday it worked.\nToday not."
    )


def test_nothing_to_strip_returns_the_body_unchanged() -> None:
    # A body without quotes or signature comes back exactly as it was.
    html = "<html><body><p>Just a <b>new</b> message.</p></body></html>"
    assert new_part_of_reply(html, "html") == html
    assert new_part_of_reply("Line one\r\nLine two\r\n", "text") == "Line one\r\nLine two\r\n"


def test_never_returns_empty_when_the_email_had_text() -> None:
    # If stripping would leave nothing, the original comes back.
    quoted_only = "> Please restart the printer.\n> Thanks\n"
    assert new_part_of_reply(quoted_only, "text") == quoted_only
    signature_only = "-- \nBob Example\n"
    assert new_part_of_reply(signature_only, "text") == signature_only
    html = '<div><br></div><blockquote type="cite"><div>Please restart.</div></blockquote>'
    assert new_part_of_reply(html, "html") == html
    outlook_only = '<div id="divRplyFwdMsg"><b>From:</b> x</div><div>old</div>'
    assert new_part_of_reply(outlook_only, "html") == outlook_only
    assert new_part_of_reply("", "text") == ""
    assert new_part_of_reply("  \n", "html") == "  \n"


def test_html_result_closes_what_it_opened() -> None:
    # Cutting inside nested elements closes them in order, so the kept HTML is well formed.
    body = (
        '<html><body><table><tr><td><div><p>New text</p><div id="appendonsend"></div>'
        "<p>quoted</p></div></td></tr></table></body></html>"
    )
    assert new_part_of_reply(body, "html") == (
        "<html><body><table><tr><td><div><p>New text</p></div></td></tr></table></body></html>"
    )


def test_hostile_html_is_bounded() -> None:
    # 10,000 nested elements, unclosed tags and stray end tags are read in linear work.
    body = "<div>" * 10_000 + "New" + '<blockquote type="cite">old' + "</span>" * 10_000
    result, calls = count_calls(new_part_of_reply, body, "html")
    assert calls < linear_budget(len(body))
    assert visible(result) == "New"
    assert result.endswith("</div>" * 10_000)


def test_random_bodies_never_raise_or_come_back_empty() -> None:
    # Seeded random mixes of reply markers and tag soup never raise, never return "" for text.
    rng = random.Random(11)
    atoms = [
        "<div>", "</div>", "<br>", '<blockquote type="cite">', "</blockquote>", "<hr>",
        '<div class="gmail_quote">', '<div id="appendonsend">', "<pre>", "</pre>", "text",
        "\n", "-- ", "On Mon, x wrote:", "From: a", "Sent: b", "To: c", "> q", "<p>", "&nbsp;",
        "&#", "<!--", "-->", "<script>", "</script>", "<img src=x>", "Sent from my iPhone",
        "-----Original Message-----", "<", ">", "</span>", "<b>", "&amp;",
    ]  # fmt: skip
    for _ in range(1000):
        body = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 40)))
        for body_type in ("html", "text"):
            result = new_part_of_reply(body, body_type)
            assert result.strip() or not body.strip()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Polish Gmail, no "On": "<date> <name> napisał(a):".
        (
            "Działa.\n\npon., 3 lis 2025 o 10:00 Contoso <support@contoso.com> napisał(a):\n"
            "> Proszę zrestartować.\n",
            "Działa.",
        ),
        # Russian Gmail has no verb at all: the address, the time and the ">" quote say it.
        (
            "Работает.\n\nпн, 3 нояб. 2025 г. в 10:00, Contoso <support@contoso.com>:\n> Старое.\n",
            "Работает.",
        ),
        # Russian Outlook's header block.
        (
            "Работает.\n\nОт: Contoso <support@contoso.com>\nОтправлено: 3 ноября 2025 г. 10:00\n"
            "Кому: Bob\nТема: RE: [HELP-12]\n\nСтарое письмо.\n",
            "Работает.",
        ),
        # Japanese Gmail: "2025年11月3日(月) 10:00 Name <addr>:".
        (
            "直りました。\n\n2025年11月3日(月) 10:00 Contoso <support@contoso.com>:\n> 古い\n",
            "直りました。",
        ),
        # Gmail before 2018 starts with the date and has no "wrote".
        ("Works.\n\n2017-11-24 16:32 GMT+01:00 Contoso <support@contoso.com>:\n> old\n", "Works."),
        # Zoho's "---- On … wrote ----" with an unmarked quote below.
        (
            "Works.\n\n---- On Mon, 03 Nov 2025 10:00:00 +0100 Contoso <support@contoso.com> wrote "
            "----\n\nold text\n",
            "Works.",
        ),
        # "wrote" glued to the address and without a colon.
        (
            "Works.\n\nOn Mon, Nov 3, 2025 at 10:00 AM Contoso <notifications@github.com>wrote\n"
            "> old\n",
            "Works.",
        ),
        # Hotmail's header block starts with "Date:".
        (
            "Works.\n\nDate: Mon, 3 Nov 2025 10:00:00 +0100\nFrom: support@contoso.com\n"
            "To: bob@example.com\nSubject: RE: [HELP-12]\n\nold text\n",
            "Works.",
        ),
        # French Outlook.com writes "Envoyé le :" with a non-breaking space.
        (
            "Ça marche.\n\nDe\u00a0: Contoso <support@contoso.com>\nEnvoyé le\u00a0: lundi 3 "
            "novembre 2025 10:00\nÀ\u00a0: Bob\nObjet\u00a0: RE: [HELP-12]\n\nancien\n",
            "Ça marche.",
        ),
        # Lotus Notes: a tab-aligned header block.
        (
            'Works.\n\n\n\nFrom:\t"Contoso" <support@contoso.com>\nTo:\tBob <bob@example.com>\n'
            "Date:\t03.11.2025 10:00\nSubject:\tRe: [HELP-12]\n\n\n\nold text\n",
            "Works.",
        ),
        # Yahoo's text part: an attribution and an unmarked quote.
        (
            "Works.\n\n\nOn Monday, November 3, 2025 at 10:00:00 AM GMT+1, Contoso "
            "<support@contoso.com> wrote:\n\n\nold text\n",
            "Works.",
        ),
        # Danish "Oprindelig besked" rule.
        (
            "Virker.\n\n-----Oprindelig besked-----\nFra: Contoso\nSendt: 3. november 2025 10:00\n"
            "Til: Bob\nEmne: SV: [HELP-12]\n\ngammel\n",
            "Virker.",
        ),
    ],
)
def test_quote_headers_of_other_clients_and_languages(body: str, expected: str) -> None:
    # Quote headers of many clients and languages end the new part of a text body.
    assert new_part_of_reply(body, "text") == expected


def test_text_reply_below_the_quote_is_kept() -> None:
    # Bottom-posting: "On … wrote:" and the ">" quote go, the answer below them stays.
    body = (
        "On Mon, 3 Nov 2025 at 10:00, Contoso <support@contoso.com> wrote:\n"
        "> Please restart the printer.\n>\n> Contoso Support\n\nDone, it works now.\n\nBob\n"
    )
    assert new_part_of_reply(body, "text") == "Done, it works now.\n\nBob"


def test_html_reply_below_the_quote_is_kept() -> None:
    # Bottom-posting in HTML (Thunderbird): the cite prefix and blockquote go, the answer stays.
    body = (
        '<p><br></p><div class="moz-cite-prefix">On 11/3/25 10:00 AM, Contoso wrote:<br></div>'
        '<blockquote type="cite"><p>Please restart the printer.</p></blockquote>'
        "<p>Done, it works now.</p><p>Bob</p>"
    )
    result = new_part_of_reply(body, "html")
    assert visible(result) == "Done, it works now. Bob"
    assert "Contoso" not in result and "restart" not in result


def test_text_answers_between_quoted_lines_under_an_attribution() -> None:
    # Inline answers: the attribution and the ">" lines go, each answer stays.
    body = (
        "On 11/3/25 10:00 AM, Contoso wrote:\n> Which model?\n\nLaserJet 400\n\n"
        "> Which floor?\n\nThird floor\n"
    )
    assert new_part_of_reply(body, "text") == "LaserJet 400\n\nThird floor"


def test_gmail_html_answers_inside_the_quote_container_are_kept() -> None:
    # Gmail puts inline answers inside div.gmail_quote, between its blockquotes.
    body = (
        '<div dir="ltr">Hi,</div><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "On Mon, 3 Nov 2025 at 10:00, Contoso &lt;support@contoso.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Which model?</blockquote><div>LaserJet 400</div>'
        '<blockquote class="gmail_quote">Which floor?</blockquote><div>Third floor</div></div>'
    )
    assert visible(new_part_of_reply(body, "html")) == "Hi, LaserJet 400 Third floor"


def test_text_forwarded_message_is_content() -> None:
    # "FYI" above Gmail's forwarded message: the forwarded message is kept whole.
    body = (
        "FYI, see below.\n\n---------- Forwarded message ---------\n"
        "From: Fabrikam <orders@fabrikam.example>\nDate: Mon, 3 Nov 2025 at 10:00\n"
        "Subject: Order 4711\nTo: <bob@example.com>\n\nThe toner ships on 10 November.\n"
    )
    assert new_part_of_reply(body, "text", "Fwd: [HELP-12] Printer") == body


def test_outlook_forward_is_told_by_the_subject() -> None:
    # Outlook's forward looks like its reply; the "FW:" subject makes its header block content.
    body = (
        "FYI\n\n________________________________\nFrom: Fabrikam <orders@fabrikam.example>\n"
        "Sent: Monday, November 3, 2025 10:00 AM\nTo: Bob\nSubject: Order 4711\n\nShips soon.\n"
    )
    assert new_part_of_reply(body, "text", "FW: [HELP-12] Printer") == body
    assert new_part_of_reply(body, "text", "RE: [HELP-12] Printer") == "FYI"
    # "VS:" forwards in Danish and Norwegian but answers in Finnish.
    finnish = body.replace("From:", "Lähettäjä:").replace("Sent:", "Lähetetty:")
    finnish = finnish.replace("To:", "Vastaanottaja:").replace("Subject:", "Aihe:")
    assert new_part_of_reply(finnish, "text", "VS: [HELP-12] Printer") == "FYI"
    assert new_part_of_reply(body, "text", "VS: [HELP-12] Printer") == body


def test_html_forwarded_message_is_content() -> None:
    # An Outlook on the web forward (FW:) keeps its header block and the forwarded text.
    body = (
        '<div>FYI</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> '
        "Fabrikam &lt;orders@fabrikam.example&gt;<br><b>Sent:</b> Monday, November 3, 2025<br>"
        "<b>To:</b> Bob<br><b>Subject:</b> Order 4711</div><div>Ships soon.</div>"
    )
    assert new_part_of_reply(body, "html", "FW: [HELP-12]") == body
    assert visible(new_part_of_reply(body, "html", "RE: [HELP-12]")) == "FYI"
    # Apple Mail forwards inside a cite blockquote: still content.
    apple = (
        '<div>FYI</div><div><br><blockquote type="cite"><div>Begin forwarded message:</div>'
        "<div><b>From: </b>Fabrikam</div><div>Ships soon.</div></blockquote></div>"
    )
    assert visible(new_part_of_reply(apple, "html", "Fwd: x")) == (
        "FYI Begin forwarded message: From: Fabrikam Ships soon."
    )


def test_html_quote_containers_of_other_clients() -> None:
    # Yahoo, Zimbra, Yandex/Mail.ru blockquotes, Hotmail's stopSpelling rule each end the part.
    bodies = [
        '<div>Works.</div><div id="yahoo_quoted_1" class="yahoo_quoted"><div>On Monday, '
        "Contoso wrote:</div><div>old</div></div>",
        '<div>Works.</div><hr id="zwchr" data-marker="__DIVIDER__"><div data-marker="__HEADERS__">'
        '<b>From: </b>Contoso</div><div data-marker="__QUOTED_TEXT__">old</div>',
        '<div>Works.</div><div>03.11.2025, 10:00, "Contoso" &lt;support@contoso.com&gt;:</div>'
        "<blockquote><div>old</div></blockquote>",
        '<div>Works.</div><hr id="stopSpelling">Date: Mon<br>From: x@contoso.com<br>old',
        '<div>Works.</div><div class="protonmail_quote">------- Original Message -------<br>'
        "old</div>",
    ]
    for body in bodies:
        assert visible(new_part_of_reply(body, "html")) == "Works.", body


def test_a_greeting_above_an_unmarked_quote_keeps_the_whole_body() -> None:
    # Only "Hi," above Outlook's header block: the answer may be under the quote, so all stays.
    body = (
        "Hi,\n\nFrom: Contoso <support@contoso.com>\nSent: Monday, November 3, 2025\n"
        "To: Bob\nSubject: RE: [HELP-12]\n\nPlease restart it.\n\nDone, it works now.\n"
    )
    assert new_part_of_reply(body, "text") == body
    html = (
        "<p>Hi,</p><div style='border-top:solid #E1E1E1 1.0pt'><p><b>From:</b> Contoso<br>"
        "<b>Sent:</b> Monday<br><b>To:</b> Bob<br><b>Subject:</b> RE: x</p></div>"
        "<p>Please restart it.</p><p>Done, it works now.</p>"
    )
    assert new_part_of_reply(html, "html") == html
    # With an answer above the header block, the quote goes as usual.
    assert new_part_of_reply(body.replace("Hi,", "Hi,\nDone."), "text") == "Hi,\nDone."


def test_an_indented_paragraph_is_not_a_quote() -> None:
    # Gmail's "indent" is a borderless blockquote: the sender's own words, kept.
    body = (
        '<div>See the log:</div><blockquote style="margin:0 0 0 40px;border:none;padding:0px">'
        '<div>E42 paper jam</div></blockquote><div><br></div><div class="gmail_quote">'
        '<div class="gmail_attr">On Mon, Contoso &lt;support@contoso.com&gt; wrote:<br></div>'
        '<blockquote class="gmail_quote" style="border-left:1px solid #ccc">old</blockquote></div>'
    )
    assert visible(new_part_of_reply(body, "html")) == "See the log: E42 paper jam"


def test_wrapped_attribution_lines_are_told_from_the_senders_own() -> None:
    # An attribution wrapped over three lines goes whole; the sender's wrapped sentence stays.
    wrapped = (
        "Thanks.\n\nOn Dec 16, 2011, at 12:47 PM, John Doe\n<reply@reply.github.com>\nwrote:\n"
        "\n> old\n"
    )
    assert new_part_of_reply(wrapped, "text") == "Thanks."
    sentence = (
        "I will try to fix the problem as soon as I\nget back to a computer.\n"
        'On Dec 8, 2013 2:10 PM, "John" <notifications@github.com> wrote:\n\n> old\n'
    )
    assert new_part_of_reply(sentence, "text") == (
        "I will try to fix the problem as soon as I\nget back to a computer."
    )
