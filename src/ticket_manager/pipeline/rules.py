"""The rules that decide whether an email may become a ticket, in the order they run.

Each rule is a small class with a ``name`` (recorded in the ledger), a one-line
``description`` and one ``check`` method that returns a :class:`Rejection` or None. The
first rule that rejects decides; the order is the ``RULES`` table below, so the policy reads
top to bottom and a test can assert on it. A rejection's ``action`` is ``reject`` (the email
is refused) or ``hold`` (kept aside, unanswered, until a person releases it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ticket_manager.config import Settings
from ticket_manager.graph.messages import MailMessage
from ticket_manager.pipeline.sender_authentication import read_authentication

LOOP_HEADER = "x-ticket-manager"
# Exchange stamps the mailboxes whose inbox rules forwarded, redirected or answered a message.
EXCHANGE_RULES_LOOP = "x-ms-exchange-inbox-rules-loop"
# The subject Outlook and Exchange give an out-of-office reply, in the languages we serve.
AUTO_REPLY_SUBJECT = re.compile(
    r"\s*(automatic reply|auto-?reply|automatische antwort|réponse automatique"
    r"|respuesta automática|risposta automatica|automatisch antwoord|resposta automática)\s*:",
    re.IGNORECASE,
)


REJECT = "reject"
HOLD = "hold"


@dataclass(frozen=True)
class Rejection:
    """A rule's refusal: which rule, a reason a person can act on, and reject or hold."""

    rule: str
    reason: str
    action: str = REJECT


def _nothing_earlier(*_args) -> int:
    return 0


@dataclass(frozen=True)
class RuleContext:
    """What the rules may consult beyond the message itself."""

    settings: Settings
    # Mail from a sender recorded earlier in 24 hours and not rejected (the storm cap).
    recent_from_sender: Callable[[str], int]
    # Is this Message-ID one of the emails the service sent? (headers may be stripped)
    sent_by_us: Callable[[str | None], bool] = lambda _message_id: False
    # Every address of the monitored mailboxes (proxy addresses, UPN), beyond MAILBOX itself.
    own_addresses: frozenset[str] = frozenset()
    # Mail recorded earlier in the hour from a domain (any mailbox), and in this mailbox.
    recent_from_domain: Callable[[str], int] = _nothing_earlier
    recent_in_mailbox: Callable[[], int] = _nothing_earlier


def sender_address(message: MailMessage) -> str | None:
    """The real sender address (never the display name), lower-cased."""
    who = message.from_ or message.sender
    return who.address.strip().lower() if who and who.address else None


class OwnMailboxRule:
    name = "own-mailbox"
    description = "Mail from a monitored mailbox, carrying our loop marker or our Message-ID."

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        if message.header(LOOP_HEADER) is not None:
            return Rejection(self.name, "carries the X-Ticket-Manager loop marker: sent by us")
        if context.sent_by_us(message.internet_message_id):
            return Rejection(self.name, "its Message-ID is one of the emails we sent")
        ours = {m.lower() for m in context.settings.mailboxes} | context.own_addresses
        address = sender_address(message)
        if address and address in ours:
            return Rejection(self.name, f"sent by the monitored mailbox {address}")
        for value in message.header_values(EXCHANGE_RULES_LOOP):
            if value.strip().lower() in ours:
                return Rejection(
                    self.name, f"already passed through the inbox rules of {value.strip()}"
                )
        return None


class AutoReplyRule:
    name = "auto-reply"
    description = "Auto-replies, bulk and list mail and delivery reports are not requests."

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        auto_submitted = (message.header("auto-submitted") or "").strip().lower()
        if auto_submitted and not auto_submitted.startswith("no"):
            return Rejection(self.name, f"Auto-Submitted: {auto_submitted}")
        precedence = (message.header("precedence") or "").strip().lower()
        if precedence in ("bulk", "junk", "list", "auto_reply"):
            return Rejection(self.name, f"Precedence: {precedence}")
        for header in ("x-autoreply", "x-autorespond", "x-autorespond-id"):
            if message.header(header) is not None:
                return Rejection(self.name, f"{header} header present")
        # Exchange's own out-of-office replies and automated notices ask for no answer at all.
        suppress = (message.header("x-auto-response-suppress") or "").lower()
        if "all" in re.split(r"[\s,]+", suppress):
            return Rejection(self.name, "X-Auto-Response-Suppress: All")
        if message.header("list-id") is not None:
            return Rejection(self.name, "mailing-list mail (List-Id)")
        if AUTO_REPLY_SUBJECT.match(message.subject or ""):
            return Rejection(self.name, "an out-of-office reply (subject)")
        return _delivery_report(message, self.name)


def _delivery_report(message: MailMessage, rule: str) -> Rejection | None:
    """Bounces and read receipts: a report type, a mailer address or the null sender ``<>``."""
    content_type = (message.header("content-type") or "").lower()
    if content_type.startswith("multipart/report"):
        return Rejection(rule, "a delivery or read report (multipart/report)")
    address = sender_address(message) or ""
    if address.split("@")[0] in ("mailer-daemon", "postmaster"):
        return Rejection(rule, f"a delivery report from {address}")
    # RFC 5321: only delivery reports and auto-replies are sent from the null reverse-path.
    if (message.header("return-path") or "").strip() == "<>":
        return Rejection(rule, "sent from the null sender (Return-Path: <>)")
    if message.header("x-failed-recipients") is not None:
        return Rejection(rule, "a delivery report (X-Failed-Recipients)")
    return None


class SenderAuthenticationRule:
    name = "sender-authentication"
    description = (
        "Mail Exchange could not authenticate (DMARC, compauth) or whose Sender is another "
        "domain: rejected or held as EMAIL_SENDER_AUTHENTICATION says."
    )

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        policy = context.settings.sender_authentication
        if policy == "off":
            return None
        results = read_authentication(message)
        if results is not None and results.dmarc_failed_under_policy and policy == "reject":
            return Rejection(
                self.name,
                f"dmarc=fail action={results.dmarc_action}: the From domain asks receivers to "
                "refuse mail that fails its DMARC check",
            )
        doubts = list(results.failures) if results is not None else []
        sender, author = message.sender, message.from_
        if sender and author and sender.address and author.address:
            sender_domain = sender.address.rsplit("@", 1)[-1].lower()
            author_domain = author.address.rsplit("@", 1)[-1].lower()
            if sender_domain != author_domain:
                doubts.append(f"Sender {sender.address} is not of From's domain {author_domain}")
        if doubts:
            return Rejection(self.name, "; ".join(doubts) + ": held", HOLD)
        return None


class BlockedSenderRule:
    name = "blocked-sender"
    description = "Senders listed in EMAIL_BLACKLIST never open tickets."

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        address = sender_address(message)
        if address and address in context.settings.blacklist:
            return Rejection(self.name, f"{address} is listed in EMAIL_BLACKLIST")
        return None


class AllowedDomainRule:
    name = "domain-not-allowed"
    description = "Only senders of EMAIL_WHITELISTED_DOMAINS (exact domain) open tickets."

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        address = sender_address(message)
        if not address or "@" not in address:
            return Rejection(self.name, "the email has no sender address")
        allowed = context.settings.whitelisted_domains
        if not allowed:
            return None
        domain = address.rsplit("@", 1)[1].rstrip(".")
        if domain not in allowed:
            return Rejection(
                self.name, f"{domain} is not in EMAIL_WHITELISTED_DOMAINS ({', '.join(allowed)})"
            )
        return None


class SenderCapRule:
    name = "sender-cap"
    description = "At most EMAIL_MAX_PER_SENDER_PER_DAY tickets per sender in 24 hours."

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        cap = context.settings.max_per_sender_per_day
        address = sender_address(message)
        if not cap or not address:
            return None
        count = context.recent_from_sender(address)
        if count >= cap:
            return Rejection(
                self.name, f"{address} already opened {count} tickets in 24 hours (cap {cap})"
            )
        return None


class DomainCapRule:
    name = "domain-cap"
    description = (
        "At most EMAIL_MAX_PER_DOMAIN_PER_HOUR emails per sender domain an hour; more are held."
    )

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        cap = context.settings.max_per_domain_per_hour
        address = sender_address(message)
        if not cap or not address or "@" not in address:
            return None
        domain = address.rsplit("@", 1)[1]
        count = context.recent_from_domain(domain)
        if count >= cap:
            return Rejection(
                self.name,
                f"{count} emails from {domain} in the last hour (EMAIL_MAX_PER_DOMAIN_PER_HOUR "
                f"{cap}): held",
                HOLD,
            )
        return None


class MailboxCapRule:
    name = "mailbox-cap"
    description = "At most EMAIL_MAX_PER_MAILBOX_PER_HOUR emails per mailbox an hour; held."

    def check(self, message: MailMessage, context: RuleContext) -> Rejection | None:
        cap = context.settings.max_per_mailbox_per_hour
        if not cap:
            return None
        count = context.recent_in_mailbox()
        if count >= cap:
            return Rejection(
                self.name,
                f"{count} emails in this mailbox in the last hour "
                f"(EMAIL_MAX_PER_MAILBOX_PER_HOUR {cap}): held",
                HOLD,
            )
        return None


RULES = (
    OwnMailboxRule(),
    AutoReplyRule(),
    SenderAuthenticationRule(),
    BlockedSenderRule(),
    AllowedDomainRule(),
    SenderCapRule(),
    DomainCapRule(),
    MailboxCapRule(),
)


# The rule no override lifts: mail the service sent itself would loop.
UNWAIVABLE = frozenset({"own-mailbox"})


def first_rejection(
    message: MailMessage, context: RuleContext, *, waived: bool = False
) -> Rejection | None:
    """Run the rules in order; the first rejection decides, None lets the email through.

    ``waived`` (an administrator asked to process a rejected email) runs only the loop rule.
    """
    for rule in RULES:
        if waived and rule.name not in UNWAIVABLE:
            continue
        rejection = rule.check(message, context)
        if rejection is not None:
            return rejection
    return None
