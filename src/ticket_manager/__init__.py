"""Ticket Manager: email in a Microsoft 365 mailbox becomes Jira tickets, and back."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ticket-manager")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from ticket_manager.app import create_app

__all__ = ["__version__", "create_app"]
