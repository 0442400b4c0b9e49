"""`flask tickets api-key create|list|revoke`: the keys that open the REST API."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ticket_manager.api.keys import SCOPES, create_key, list_keys, revoke_key
from ticket_manager.clock import as_utc, now


@click.group("tickets")
def tickets() -> None:
    """Manage access to the ticket REST API."""


@tickets.group("api-key")
def api_key() -> None:
    """Create, list and revoke API keys."""


@api_key.command("create")
@click.option("--name", required=True, help="Who or what the key is for (shown in lists).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=("tickets:read", "tickets:write"),
    show_default=True,
    help="A scope the key grants; repeatable.",
)
@click.option("--user", "user_email", help="Bind the key to this person's email (reporter).")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), help="Make the key expire.")
@with_appcontext
def create(name: str, scopes: tuple[str, ...], user_email: str | None, expires_in_days):
    """Create a key and print it. It is shown once: store it now."""
    row, token = create_key(name, list(scopes), user_email, expires_in_days)
    click.echo(token)
    details = f"id {row.id}, scopes {row.scopes}"
    if row.user_email:
        details += f", acts as {row.user_email}"
    if row.expires_at:
        details += f", expires {as_utc(row.expires_at):%Y-%m-%d}"
    click.echo(f"API key {row.name!r} created ({details}). It is not shown again.", err=True)


@api_key.command("list")
@with_appcontext
def list_command() -> None:
    """List keys (never their secrets)."""
    rows = list_keys()
    if not rows:
        click.echo("No API keys. Create one with `flask tickets api-key create --name NAME`.")
        return
    click.echo(f"{'ID':<10} {'NAME':<24} {'STATE':<8} {'USER':<28} {'LAST USED':<17} SCOPES")
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        if state == "active" and row.expires_at and as_utc(row.expires_at) < now():
            state = "expired"
        used = f"{as_utc(row.last_used_at):%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        click.echo(
            f"{row.id:<10} {row.name[:24]:<24} {state:<8} {(row.user_email or '-')[:28]:<28} "
            f"{used:<17} {row.scopes}"
        )


@api_key.command("revoke")
@click.argument("key_id")
@with_appcontext
def revoke(key_id: str) -> None:
    """Revoke a key by its id (from `list`). It stops working at once."""
    row = revoke_key(key_id)
    if row is None:
        raise click.ClickException(f"no API key with id {key_id!r}")
    click.echo(f"API key {row.id} ({row.name}) revoked.")
