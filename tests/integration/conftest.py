"""Fixtures of the Graph emulator's own tests: its base URL and an authorised session.

Each test module defines its ``graph`` fixture (the emulator with the mailboxes and tokens it
needs); these serve it over HTTPS and call it with the ``app-token`` those modules accept.
"""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def base(graph, serve) -> str:
    return serve(graph.app) + "/v1.0"


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer app-token"
    return session
