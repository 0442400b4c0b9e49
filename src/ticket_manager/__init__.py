"""Ticket Manager: email in a Microsoft 365 mailbox becomes Jira tickets, and back."""

from __future__ import annotations

from ticket_manager.app import create_app

__all__ = ["create_app"]
