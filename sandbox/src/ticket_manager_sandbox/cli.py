"""`flask sandbox send`: put a test email into the emulated mailbox of a running demo.

It talks to the Graph emulator over HTTPS (its ``/_sandbox/`` control route), so it works
from any terminal that loaded the demo's env file while `make demo` runs. It is registered
through the ``flask.commands`` entry point, so it travels with the emulators.
"""

from __future__ import annotations

import mimetypes
import os
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import click
import requests
from dotenv import dotenv_values


@click.group("sandbox")
def sandbox() -> None:
    """The built-in emulators of `make demo`: send a test email into the mailbox."""


@sandbox.command("send")
@click.option("--from", "sender", required=True, help='Who sends it: "Name <address>".')
@click.option("--subject", required=True, help="The subject line.")
@click.option("--body", default="Hello, this is a test email.", show_default=True)
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to attach; repeat for several.",
)
@click.option("--to", "mailbox", help="The emulated mailbox (default: the first of MAILBOX).")
def send(
    sender: str, subject: str, body: str, attachments: tuple[Path, ...], mailbox: str | None
) -> None:
    """Deliver a test email to the emulated mailbox; the running worker picks it up."""
    config = {**dotenv_values(".env"), **os.environ}
    graph_url = config.get("O365_GRAPH_URL") or ""
    mailbox = mailbox or (config.get("MAILBOX") or "").split(",")[0].strip()
    if not graph_url or not mailbox:
        raise click.ClickException(
            "O365_GRAPH_URL and MAILBOX are not set: load the demo's configuration first "
            "(set -a; . .sandbox/demo.env; set +a)"
        )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mailbox
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="sandbox.invalid")
    message.set_content(body)
    for path in attachments:
        kind, _ = mimetypes.guess_type(path.name)
        maintype, subtype = (kind or "application/octet-stream").split("/", 1)
        message.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    base = graph_url.rstrip("/").rsplit("/v1.0", 1)[0]
    try:
        answer = requests.post(
            f"{base}/_sandbox/mailboxes/{mailbox}/deliver",
            data=message.as_bytes(),
            headers={"Content-Type": "message/rfc822"},
            verify=config.get("REQUESTS_CA_BUNDLE") or True,
            timeout=30,
        )
    except requests.ConnectionError:
        raise click.ClickException(
            f"no Graph emulator answers at {base}: is `make demo` running?"
        ) from None
    if answer.status_code != 201:
        raise click.ClickException(f"the emulator refused the email: {answer.text.strip()}")
    files = f" with {len(attachments)} attachment(s)" if attachments else ""
    click.echo(f"Delivered {subject!r} from {sender} to {mailbox}{files}.")
