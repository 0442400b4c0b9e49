"""The sign-in for the configured flow, built in one place for the worker, the API and checks."""

from __future__ import annotations

from ticket_manager.config import Settings
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.token_store import DatabaseTokenStore
from ticket_manager.http import build_session


def token_provider(settings: Settings) -> TokenProvider:
    """The sign-in for the configured flow; delegated sign-ins are read from the database."""
    session = build_session(settings.ca_bundle)
    store = None
    if settings.auth_flow != "credentials":
        store = DatabaseTokenStore(
            settings.secret_key,
            f"{settings.tenant_id}/{settings.client_id}",
            settings.secret_key_fallbacks,
        )
    return TokenProvider(settings, session, store)
