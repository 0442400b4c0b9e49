"""The ``ticket-manager`` console script: the same commands as ``flask --app ticket_manager``."""

from __future__ import annotations

from flask.cli import FlaskGroup

from ticket_manager.app import create_app


def main() -> None:
    """Run the command line with the Ticket Manager app, wherever it is started from."""
    FlaskGroup(
        name="ticket-manager",
        create_app=lambda: create_app(),
        help="Ticket Manager: Microsoft 365 mail to Jira tickets, and back.",
    ).main(prog_name="ticket-manager")
