"""The ``ticket-manager`` console script: the same commands as ``flask --app ticket_manager``."""

from __future__ import annotations

import platform
from importlib.metadata import version

import click
from flask.cli import FlaskGroup

from ticket_manager import __version__
from ticket_manager.app import create_app


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the product's version first, then what it runs on."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Ticket Manager {__version__} (Python {platform.python_version()}, "
        f"Flask {version('flask')}, MSAL {version('msal')})"
    )
    ctx.exit()


def main() -> None:
    """Run the command line with the Ticket Manager app, wherever it is started from."""
    FlaskGroup(
        name="ticket-manager",
        create_app=lambda: create_app(),
        help="Ticket Manager: Microsoft 365 mail to Jira tickets, and back.",
        add_version_option=False,
        params=[
            click.Option(
                ["--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_show_version,
                help="Show the Ticket Manager version and exit.",
            )
        ],
    ).main(prog_name="ticket-manager")
