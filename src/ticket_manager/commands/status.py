"""`flask o365 status`: the dashboard's health summary as a terminal table."""

from __future__ import annotations

import json
from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from ticket_manager.extensions import get_settings
from ticket_manager.status import ServiceStatus, collect_status

STATE_COLOURS = {"ok": "green", "failing": "red", "not configured": "yellow", "unknown": "yellow"}


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """Show whether mail is flowing; exit 1 when something needs a person."""
    status = collect_status(get_settings(current_app))
    if as_json:
        click.echo(json.dumps(status.as_dict(), default=_json_value, indent=2))
    else:
        print_status(status)
    if not status.ok:
        raise SystemExit(1)


def print_status(status: ServiceStatus) -> None:
    click.echo(
        click.style(f"Ticket Manager status, {status.generated_at:%Y-%m-%d %H:%M} UTC", bold=True)
    )
    for name, dependency in (
        ("database", status.database),
        ("microsoft", status.microsoft),
        ("jira", status.jira),
    ):
        detail = dependency.detail
        if dependency.account:
            detail += f"; as {dependency.account}"
        if dependency.expires_at:
            detail += f"; token valid until {dependency.expires_at:%H:%M} UTC"
        state = click.style(f"{dependency.state:<14}", fg=STATE_COLOURS.get(dependency.state))
        click.echo(f"  {name:<10} {state} {detail}")
    for credential in status.credentials:
        colour = "red" if credential.days_left <= 30 else None
        click.echo(
            click.style(
                f"  {'expires':<10} {credential.expires_at:%Y-%m-%d} ({credential.days_left} "
                f"days)  {credential.credential}",
                fg=colour,
            )
        )
    if status.mailboxes:
        click.echo()
        click.echo(
            f"  {'MAILBOX':<32} {'LAST SYNC':<14} {'SUBSCRIPTION':<13} {'BACKLOG':>7} {'FAILED':>7}"
        )
        for mailbox in status.mailboxes:
            colour = "red" if mailbox.problems else None
            click.echo(
                click.style(
                    f"  {mailbox.address[:32]:<32} {_age(mailbox.last_sync_age_seconds):<14} "
                    f"{mailbox.subscription:<13} {mailbox.backlog:>7} {mailbox.failed:>7}",
                    fg=colour,
                )
            )
    click.echo()
    if status.ok:
        click.echo(click.style("All is well.", fg="green"))
        return
    click.echo(click.style("Needs attention:", fg="red", bold=True))
    for problem in status.problems:
        click.echo(f"  - {problem}")


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
