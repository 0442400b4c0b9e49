# ruff: noqa: RUF001, RUF003  (the vocabulary is in many scripts on purpose)
"""The words and marks with which mail clients start a quoted or forwarded message.

Vocabulary only (``replies.py`` decides what to do with it): the header labels of Outlook,
Lotus Notes, Zimbra, GMX and Hotmail header blocks, the verbs of "On … wrote:" lines, the
"Original Message" and "Forwarded message" rules, mobile signatures and the HTML elements
that hold a quote, each in the languages their clients write. Labels and verbs are compared
lower-cased, after invisible formatting (bidi marks) is removed.
"""

from __future__ import annotations

import re

# Header labels of a quoted message's header block, by the field they name.
FROM_LABELS = frozenset(
    [
        "from",
        "von",
        "de",
        "van",
        "da",
        "från",
        "fra",
        "od",
        "от",
        "від",
        "lähettäjä",
        "feladó",
        "kimden",
        "από",
        "מאת",
        "من",
        "差出人",
        "发件人",
        "寄件者",
        "寄件人",
        "보낸사람",
        "từ",
        "dari",
        "pengirim",
        "afzender",
        "expéditeur",
        "remitente",
        "mittente",
        "remetente",
        "absender",
        "nadawca",
        "avsändare",
        "отправитель",
    ]
) | {"보낸 사람", "de la"}
DATE_LABELS = frozenset(
    [
        "sent",
        "date",
        "gesendet",
        "datum",
        "envoyé",
        "enviado",
        "enviada",
        "fecha",
        "verzonden",
        "inviato",
        "data",
        "skickat",
        "sendt",
        "wysłano",
        "wysłane",
        "отправлено",
        "дата",
        "надіслано",
        "odesláno",
        "elküldve",
        "dátum",
        "gönderildi",
        "tarih",
        "στάλθηκε",
        "ημερομηνία",
        "נשלח",
        "תאריך",
        "التاريخ",
        "送信日時",
        "日付",
        "发送时间",
        "日期",
        "時間",
        "傳送時間",
        "寄件日期",
        "날짜",
        "ngày",
        "lähetetty",
        "päivämäärä",
        "päiväys",
        "trimis",
        "dată",
        "tanggal",
        "terkirim",
        "dato",
        "kelt",
    ]
) | {"envoyé le", "enviado el", "verzonden op", "تم الإرسال", "보낸 날짜", "보낸날짜", "đã gửi"}
TO_LABELS = frozenset(
    [
        "to",
        "an",
        "à",
        "a",
        "para",
        "aan",
        "till",
        "til",
        "do",
        "кому",
        "címzett",
        "kime",
        "προς",
        "אל",
        "إلى",
        "宛先",
        "收件人",
        "收件者",
        "받는사람",
        "vastaanottaja",
        "komu",
        "către",
        "kepada",
        "pour",
    ]
) | {"받는 사람", "đến"}
CC_LABELS = frozenset(
    [
        "cc",
        "bcc",
        "kopie",
        "kopia",
        "kopi",
        "копия",
        "копія",
        "dw",
        "bilgi",
        "κοιν.",
        "κοιν",
        "עותק",
        "نسخة",
        "抄送",
        "副本",
        "참조",
        "kopio",
    ]
) | {"másolatot kap"}
SUBJECT_LABELS = frozenset(
    [
        "subject",
        "betreff",
        "objet",
        "asunto",
        "oggetto",
        "assunto",
        "onderwerp",
        "ämne",
        "emne",
        "temat",
        "тема",
        "předmět",
        "tárgy",
        "konu",
        "θέμα",
        "נושא",
        "الموضوع",
        "件名",
        "主题",
        "主旨",
        "제목",
        "aihe",
        "subiect",
        "perihal",
        "subjek",
    ]
) | {"chủ đề"}
HEADER_LABELS = FROM_LABELS | DATE_LABELS | TO_LABELS | CC_LABELS | SUBJECT_LABELS

# "Label: value" (also "**Label:**", "Label :" with a French space, "Label:\tvalue", "：").
HEADER_LINE = re.compile(
    r"[\s*]*(?P<label>[^\W\d_][^:：]{0,24}?)[\s\u00a0*]*[:：]\*?(?:[\s\u00a0*]+(?P<value>.*))?",
    re.DOTALL,
)

# The verbs of "On <date>, <name> wrote:" in each language, and Lotus Notes' "wrote on".
WROTE = re.compile(
    r"wrote|schrieb|geschrieben|a\s+écrit|escribió|ha\s+scritto|escreveu|schreef|geschreven"
    r"|napisał|napisała|napisana|pisze|skrev|skriver|kirjoitti|написал|написала|написав|пишет"
    r"|пише|napsal|írta|yazdı|έγραψε|כתב|كتب|写道|寫道|작성|쓴\s*글|đã\s+viết|a\s+scris"
    r"|のメッセージ|のメール|menulis|sent\s+by",
    re.IGNORECASE,
)
EMAIL = re.compile(r"[^\s<>()\"'@]+@[^\s<>()\"'@]+\.[^\s<>()\"'@]+")
TIME = re.compile(r"\d{1,2}[:.]\d{2}")
YEAR = re.compile(r"(?:19|20)\d{2}")
# An attribution ends with a colon, or with dashes (Zoho "---- On … wrote ----", Notes), or
# with the verb itself when the client writes no colon.
ATTRIBUTION_END = re.compile(r"(?:[:：]|[:：]?\s*-{2,}|wrote|schrieb|a\s+écrit)\s*$", re.IGNORECASE)
MAX_ATTRIBUTION = 400

# "-----Original Message-----" and its translations (Outlook, Yahoo, Zimbra, Android, QQ).
ORIGINAL_MESSAGE = re.compile(
    r"[\s\-_=*]*(?:original\s+message|ursprüngliche\s+nachricht|originalnachricht"
    r"|message\s+d'origine|message\s+original|mensaje\s+original|messaggio\s+originale"
    r"|mensagem\s+original|oorspronkelijk\s+bericht|ursprungligt\s+meddelande"
    r"|originalmeddelande|opprinnelig\s+melding|oprindelig\s+meddelelse|oprindelig\s+besked"
    r"|alkuperäinen\s+viesti|wiadomość\s+oryginalna|oryginalna\s+wiadomość"
    r"|исходное\s+сообщение|вихідне\s+повідомлення|původní\s+zpráva|eredeti\s+üzenet"
    r"|özgün\s+ileti|orijinal\s+mesaj|αρχικό\s+μήνυμα|הודעה\s+מקורית|الرسالة\s+الأصلية"
    r"|元のメッセージ|原始邮件|原始郵件|원본\s+메시지|thư\s+gốc|mesaj\s+original|pesan\s+asli)"
    r"[\s\-_=*:]*",
    re.IGNORECASE,
)

# A forwarded message's rule: what follows it is content the customer passes on, not history.
FORWARDED_MESSAGE = re.compile(
    r"[\s\-_=*]*(?:forwarded\s+message|begin\s+forwarded\s+message|weitergeleitete\s+nachricht"
    r"|anfang\s+der\s+weitergeleiteten\s+nachricht|message\s+transféré"
    r"|début\s+du\s+message\s+(?:réexpédié|transféré)|mensaje\s+reenviado"
    r"|inicio\s+del\s+mensaje\s+reenviado|messaggio\s+inoltrato|inizio\s+messaggio\s+inoltrato"
    r"|mensagem\s+(?:encaminhada|reencaminhada)|início\s+da\s+mensagem\s+(?:encaminhada"
    r"|reencaminhada)|doorgestuurd\s+bericht|begin\s+doorgestuurd\s+bericht"
    r"|vidarebefordrat\s+(?:meddelande|mejl)|videresendt\s+(?:melding|besked|meddelelse)"
    r"|välitetty\s+viesti(?:\s+alkaa)?|wiadomość\s+przekazana(?:\s+dalej)?"
    r"|początek\s+przekazywanej\s+wiadomości|пересылаемое\s+сообщение"
    r"|начало\s+переадресованного\s+сообщения|переслане\s+повідомлення"
    r"|přeposlaná\s+zpráva|továbbított\s+üzenet|i̇letilen\s+ileti|iletilen\s+ileti"
    r"|προωθημένο\s+μήνυμα|הודעה\s+שהועברה|رسالة\s+معاد\s+توجيهها|رسالة\s+محولة"
    r"|転送されたメッセージ|转发的邮件|轉寄的郵件|전달된\s+(?:메시지|메일)"
    r"|thư\s+đã\s+chuyển\s+tiếp|mesaj\s+redirecționat)"
    r"[\s\-_=*:：]*",
    re.IGNORECASE,
)

# Subject prefixes of a forward (Outlook's forward has no rule: its subject says it).
FORWARD_PREFIX = re.compile(
    r"\s*(?:fwd?|wg|tr|rv|enc|vb|vl|vs|pd|i|i̇lt|ilt|doorst|fs|trs|πρθ|転送|转发|轉寄|전달)"
    r"\s*(?:\[\d+\])?\s*[:：]",
    re.IGNORECASE,
)
# "VS:" forwards in Danish and Norwegian but answers in Finnish (a Finnish header block says).
FINNISH_LABELS = frozenset({"lähettäjä", "vastaanottaja", "aihe", "lähetetty"})

MOBILE_SIGNATURE = re.compile(
    r"(?:Sent from my [\w .'-]{1,40}|Sent from (?:Outlook|Mail|Yahoo Mail)(?: for [\w .-]{1,30})?"
    r"|Get Outlook for [\w .-]{1,30}|Von meinem [\w .-]{1,40} gesendet"
    r"|Gesendet von meinem [\w .-]{1,40}|Envoyé de mon [\w .-]{1,40}"
    r"|Enviado desde mi [\w .-]{1,40}|Enviado do meu [\w .-]{1,40}|Inviato da [\w .-]{1,40}"
    r"|Verzonden (?:vanaf|met) (?:mijn )?[\w .-]{1,40}|Skickat från min [\w .-]{1,40}"
    r"|Sendt fra min [\w .-]{1,40}|Wysłane z [\w .'-]{1,40}|Отправлено с [\w .-]{1,40}"
    r"|Odesláno z [\w .-]{1,40}|[\w .-]{1,20}から送信|发自我的[\w .-]{1,20}|[\w .-]{1,20}에서 보냄)"
    r"\.?\s*(?:<[^<>\s]{1,300}>)?",
    re.IGNORECASE,
)

# HTML: elements that hold a quoted message (their lines are quoted)...
# (Gmail's div.gmail_quote is not one: answers written between its blockquotes sit in it.)
QUOTE_CLASSES = frozenset(
    {"gmail_attr", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote", "zmail_extra"}
)
QUOTE_MARKERS = frozenset({"__quoted_text__", "__headers__"})  # Zimbra's data-marker
QUOTE_IDS = frozenset({"mail-editor-reference-message-container"})  # Outlook for Mac
# ...and elements after which everything is the quoted conversation (Outlook, Hotmail).
CUT_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "stopspelling"})
SIGNATURE_CLASSES = frozenset({"moz-signature", "gmail_signature"})
