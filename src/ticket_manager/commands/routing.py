"""`flask o365 explain-routing FILE.eml`: which routing rule an email meets, and what it sets.

Reads the message from a file and the rules from ``ROUTING_RULES``; touches neither Jira
nor the mailbox, so a rules file can be tried on real mail before it goes live.
"""

from __future__ import annotations

import email
import email.policy
from email.utils import getaddresses
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ticket_manager.extensions import get_settings
from ticket_manager.graph.messages import Address, MailMessage


@click.command("explain-routing")
@click.argument("eml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mailbox", help="The mailbox it arrived in (default: the first of MAILBOX).")
@with_appcontext
def explain_routing(eml: Path, mailbox: str | None) -> None:
    """Say which routing rule FILE.eml matches and where it would be filed."""
    settings = get_settings(current_app)
    box = mailbox or (settings.mailboxes[0] if settings.mailboxes else "")
    message = message_from_eml(eml.read_bytes(), box)
    rules = settings.routing_rules
    route = rules.route(message) if rules is not None else None
    if rules is None:
        click.echo("ROUTING_RULES is not set: the mailbox's board is used.")
    elif route is None:
        click.echo(f"no rule of {rules.source} matches: the mailbox's board is used.")
    else:
        position = next(n for n, r in enumerate(rules.rules, start=1) if r.name == route.rule)
        click.echo(f"rule {position} ({route.rule!r}) matches.")
        for key, value in route.__dict__.items():
            if key != "rule" and value:
                shown = ", ".join(value) if isinstance(value, tuple) else value
                click.echo(f"  {key}: {shown}")
    if route is None or not route.board:
        board = settings.board_for(box)
        click.echo(f"  board: {board.setting} ({board.name})" if board else "  board: none")


def message_from_eml(raw: bytes, mailbox: str) -> MailMessage:
    """The parts of an RFC 822 message that routing reads, as the pipeline's MailMessage."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)

    def addresses(name: str) -> tuple[Address, ...]:
        pairs = getaddresses([str(v) for v in parsed.get_all(name, [])])
        return tuple(Address(name=n, address=a) for n, a in pairs if a)

    body_part = parsed.get_body(preferencelist=("plain", "html"))
    body = body_part.get_content() if body_part is not None else ""
    headers: dict[str, list[str]] = {}
    for name, value in parsed.items():
        headers.setdefault(name.lower(), []).append(str(value))
    sender = next(iter(addresses("From")), None)
    return MailMessage(
        mailbox=mailbox,
        id="",
        internet_message_id=str(parsed.get("Message-ID", "")),
        conversation_id=None,
        subject=str(parsed.get("Subject", "")),
        sender=sender,
        from_=sender,
        to=addresses("To"),
        cc=addresses("Cc"),
        reply_to=addresses("Reply-To"),
        received_at=None,
        importance="normal",
        has_attachments=False,
        categories=(),
        is_read=False,
        body_type="html"
        if body_part is not None and body_part.get_content_subtype() == "html"
        else "text",
        body=body,
        unique_body=None,
        headers=headers,
    )
