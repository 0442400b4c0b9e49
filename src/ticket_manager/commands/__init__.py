"""Command-line commands added to ``flask`` / ``ticket-manager``."""

from __future__ import annotations

from flask import Flask

from ticket_manager.commands.check import check_command
from ticket_manager.commands.o365 import o365
from ticket_manager.commands.routing import explain_routing
from ticket_manager.commands.status import status_command
from ticket_manager.commands.tickets import tickets


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app``."""
    app.cli.add_command(check_command)
    o365.add_command(status_command)
    o365.add_command(explain_routing)
    app.cli.add_command(o365)
    app.cli.add_command(tickets)
