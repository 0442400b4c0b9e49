"""`flask check`: one line per dependency, so a newcomer sees what works and what does not."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ticket_manager.checks import run_checks


@click.command("check")
@with_appcontext
@click.option(
    "--send-test",
    metavar="ADDRESS",
    help="Also send a short test email from each mailbox to ADDRESS: proves Send As.",
)
def check_command(send_test: str | None) -> None:
    """Check the configuration, database, Microsoft 365 sign-in, mailboxes and Jira boards."""
    results = run_checks(current_app._get_current_object(), send_test=send_test)
    width = max(len(r.name) for r in results)
    for result in results:
        mark = click.style("ok  ", fg="green") if result.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {result.name.ljust(width)}  {result.detail}")
    if not all(r.ok for r in results):
        raise SystemExit(1)
