"""What API views share within a process: the settings and one Jira client, made on first use.

The client is built lazily so that the API starts (and answers health checks) while Jira is
down; a failed connection is retried on the next request rather than remembered.
"""

from __future__ import annotations

import threading

from flask import current_app

from ticket_manager.config import Settings
from ticket_manager.jira.client import JiraClient

JIRA_EXTENSION = "ticket_manager.api.jira"
_lock = threading.Lock()


def settings() -> Settings:
    from ticket_manager.app import get_settings

    return get_settings(current_app)


def jira_client() -> JiraClient:
    """The process's Jira client (connected on first use; JiraError if Jira cannot be reached)."""
    client = current_app.extensions.get(JIRA_EXTENSION)
    if client is not None:
        return client
    with _lock:
        client = current_app.extensions.get(JIRA_EXTENSION)
        if client is None:
            client = JiraClient(settings())
            current_app.extensions[JIRA_EXTENSION] = client
        return client
