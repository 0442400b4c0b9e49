"""Command-line groups added to ``flask`` / ``ticket-manager``."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    """Attach the command groups to ``app``."""
