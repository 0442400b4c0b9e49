"""Each rule on its own, on emails written the way they arrive (RFC 822 text)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ticket_manager.config import load_settings
from ticket_manager.graph.messages import MailMessage
from ticket_manager.pipeline.rules import (
    RULES,
    AllowedDomainRule,
    AutoReplyRule,
    BlockedSenderRule,
    OwnMailboxRule,
    RuleContext,
    SenderCapRule,
    first_rejection,
)
from ticket_manager_sandbox.graph_mime import parse_rfc822
from ticket_manager_sandbox.graph_store import message_props

SETTINGS = load_settings(
    {
        "MAILBOX": "support@example.com",
        "EMAIL_WHITELISTED_DOMAINS": "example.com,partner.example.org",
        "EMAIL_BLACKLIST": "malicious@example.com",
        "EMAIL_MAX_PER_SENDER_PER_DAY": "3",
    }
)


def email(headers: str, body: str = "Hello") -> MailMessage:
    raw = (headers.strip() + "\r\nMessage-ID: <m1@example.com>\r\n\r\n" + body).encode()
    props = message_props(parse_rfc822(raw), received=datetime.now(UTC), sender_fallback=[])
    return MailMessage.from_graph({"id": "AAMk1", **props}, mailbox="support@example.com")


def context(recent_from_sender: int = 0, **changes: str) -> RuleContext:
    settings = SETTINGS
    if changes:
        settings = load_settings({**settings.raw, **changes})
    return RuleContext(settings=settings, recent_from_sender=lambda _sender: recent_from_sender)


def test_the_rules_run_in_the_documented_order():
    # The policy reads top to bottom: loop, auto-reply, blocked, domain, caps.
    assert [rule.name for rule in RULES] == [
        "own-mailbox",
        "auto-reply",
        "sender-authentication",
        "blocked-sender",
        "domain-not-allowed",
        "sender-cap",
        "domain-cap",
        "mailbox-cap",
    ]
    assert all(rule.description for rule in RULES)


def test_a_plain_request_passes_every_rule():
    # An ordinary email from an allowed domain is let through.
    assert (
        first_rejection(email("From: Alice <alice@example.com>\r\nSubject: Help"), context())
        is None
    )


@pytest.mark.parametrize(
    "headers",
    [
        "From: support@example.com",
        "From: Support <SUPPORT@Example.com>",
        "From: alice@example.com\r\nX-Ticket-Manager: ack; ticket=SUP-1",
    ],
)
def test_our_own_mail_is_recognised(headers):
    # Mail from the monitored mailbox, or with our loop marker, never becomes a ticket.
    assert OwnMailboxRule().check(email(headers), context()) is not None


@pytest.mark.parametrize(
    "headers",
    [
        "From: a@example.com\r\nAuto-Submitted: auto-replied",
        "From: a@example.com\r\nAuto-Submitted: auto-generated",
        "From: a@example.com\r\nPrecedence: bulk",
        "From: a@example.com\r\nPrecedence: junk",
        "From: a@example.com\r\nPrecedence: list",
        "From: a@example.com\r\nX-Autoreply: yes",
        "From: a@example.com\r\nX-Autorespond: on",
        "From: MAILER-DAEMON@example.com",
        "From: postmaster@example.com",
        "From: a@example.com\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"',
        "From: a@example.com\r\nX-Auto-Response-Suppress: All",
        "From: a@example.com\r\nX-Auto-Response-Suppress: DR, OOF, All",
        "From: a@example.com\r\nList-Id: Printer users <printers.lists.example.com>",
        "From: a@example.com\r\nSubject: Automatic reply: Printer jammed",
        "From: a@example.com\r\nSubject: AUTOMATIC REPLY:Printer jammed",
        "From: a@example.com\r\nSubject: Automatische Antwort: Drucker",
        "From: a@example.com\r\nSubject: =?utf-8?Q?R=C3=A9ponse_automatique_:_Imprimante?=",
        "From: a@example.com\r\nSubject: Auto-Reply: Printer",
        "From: Mail Delivery Subsystem <bounces@example.com>\r\nReturn-Path: <>",
        "From: mailer@example.com\r\nX-Failed-Recipients: gone@example.org",
    ],
)
def test_auto_replies_bulk_and_bounces_are_refused(headers):
    # "Auto-Submitted" other than "no", bulk precedence and delivery reports are not requests.
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nbounce\r\n--b--\r\n" if "report" in headers else "x"
    )
    assert AutoReplyRule().check(email(headers, body), context()) is not None


@pytest.mark.parametrize(
    "headers",
    [
        "From: a@example.com\r\nX-Auto-Response-Suppress: OOF, AutoReply",
        "From: a@example.com\r\nSubject: Automatic replies are not working",
        "From: a@example.com\r\nSubject: Re: Automatic reply: help",
        "From: a@example.com\r\nReturn-Path: <a@example.com>",
        "From: a@example.com\r\nX-MS-Exchange-Inbox-Rules-Loop: a@example.com",
    ],
)
def test_people_are_not_mistaken_for_machines(headers):
    # A person asking about auto-replies, a rule-forward by the customer, a real Return-Path.
    assert AutoReplyRule().check(email(headers), context()) is None
    assert OwnMailboxRule().check(email(headers), context()) is None


def test_a_message_that_passed_our_own_inbox_rules_is_a_loop():
    # Exchange names the mailboxes whose rules relayed a message; ours means a loop.
    headers = "From: a@example.com\r\nX-MS-Exchange-Inbox-Rules-Loop: Support@Example.com"
    rejection = OwnMailboxRule().check(email(headers), context())
    assert rejection is not None and "support@example.com" in rejection.reason.lower()


def test_auto_submitted_no_passes():
    # "Auto-Submitted: no" explicitly marks a person's message.
    assert (
        AutoReplyRule().check(email("From: a@example.com\r\nAuto-Submitted: no"), context()) is None
    )


def test_the_blacklist_is_exact_and_case_insensitive():
    # EMAIL_BLACKLIST matches the whole address, in any case, and nothing else.
    rule = BlockedSenderRule()
    assert rule.check(email("From: MALICIOUS@example.COM"), context()) is not None
    assert rule.check(email("From: not-malicious@example.com"), context()) is None


@pytest.mark.parametrize(
    ("sender", "allowed"),
    [
        ("alice@example.com", True),
        ("Alice <ALICE@EXAMPLE.COM>", True),
        ("bob@partner.example.org", True),
        ("x@evil.org", False),
        ('"ceo@example.com" <x@evil.org>', False),
        ("boss@example.com.evil.org", False),
        ("boss@sub.example.com", False),
        ("boss@ex\u0430mple.com", False),  # a Cyrillic "a": a homoglyph domain
    ],
)
def test_allowed_domains_match_the_real_address_exactly(sender, allowed):
    # The domain of the real address must equal an allowed domain; display names do not count.
    rejection = AllowedDomainRule().check(email(f"From: {sender}"), context())
    assert (rejection is None) == allowed


def test_an_empty_whitelist_allows_every_domain():
    # With EMAIL_WHITELISTED_DOMAINS empty, any domain may open tickets.
    open_context = RuleContext(
        settings=load_settings({"MAILBOX": "support@example.com"}), recent_from_sender=lambda _: 0
    )
    assert AllowedDomainRule().check(email("From: x@anywhere.net"), open_context) is None


def test_the_sender_cap_stops_a_storm():
    # At the daily cap, the next email of that sender is refused; below it, accepted.
    message = email("From: alice@example.com")
    assert SenderCapRule().check(message, context(recent_from_sender=2)) is None
    rejection = SenderCapRule().check(message, context(recent_from_sender=3))
    assert rejection is not None and "cap 3" in rejection.reason
