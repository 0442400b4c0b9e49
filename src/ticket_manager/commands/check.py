"""`flask check`: one line per dependency, so a newcomer sees what works and what does not."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ticket_manager.checks import run_checks


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Check the configuration, database, Microsoft 365 sign-in, mailboxes and Jira boards."""
    results = run_checks(current_app._get_current_object())
    width = max(len(r.name) for r in results)
    for result in results:
        mark = click.style("ok  ", fg="green") if result.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {result.name.ljust(width)}  {result.detail}")
    if not all(r.ok for r in results):
        raise SystemExit(1)
