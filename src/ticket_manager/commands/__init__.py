"""Command-line commands added to ``flask`` / ``ticket-manager``."""

from __future__ import annotations

from flask import Flask

from ticket_manager.commands.check import check_command
from ticket_manager.commands.o365 import o365


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app``."""
    app.cli.add_command(check_command)
    app.cli.add_command(o365)
