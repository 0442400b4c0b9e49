"""What API views share within a process: the settings and one Jira client, made on first use.

The client is built lazily so that the API starts (and answers health checks) while Jira is
down; a failed connection is retried on the next request rather than remembered.
"""

from __future__ import annotations

import threading

from flask import current_app

from ticket_manager.config import Settings
from ticket_manager.graph.client import GraphClient
from ticket_manager.http import build_session
from ticket_manager.jira.client import JiraClient

JIRA_EXTENSION = "ticket_manager.api.jira"
GRAPH_EXTENSION = "ticket_manager.api.graph"
_lock = threading.Lock()


def settings() -> Settings:
    from ticket_manager.extensions import get_settings

    return get_settings(current_app)


def jira_client() -> JiraClient:
    """The process's Jira client (connected on first use; JiraError if Jira cannot be reached)."""
    return _once(JIRA_EXTENSION, lambda: JiraClient(settings()))


def graph_client() -> GraphClient:
    """The process's Graph client, with the stored sign-in (ConfigError if not configured)."""

    def build() -> GraphClient:
        from ticket_manager.graph.sign_in import token_provider
        from ticket_manager.pipeline.pacing import api_pacer

        config = settings()
        tokens = token_provider(config)
        return GraphClient(
            config.graph_url,
            tokens.access_token,
            build_session(config.ca_bundle),
            pacer=api_pacer(config.graph_request_budget),
        )

    return _once(GRAPH_EXTENSION, build)


def _once(name: str, build):
    """The app's ``name`` extension, built by the first request that needs it."""
    client = current_app.extensions.get(name)
    if client is not None:
        return client
    with _lock:
        client = current_app.extensions.get(name)
        if client is None:
            client = build()  # a failure is not remembered: the next request tries again
            current_app.extensions[name] = client
        return client
