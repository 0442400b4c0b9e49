"""The product's Jira client, over real HTTPS against the Jira emulator (Cloud and Server)."""

from __future__ import annotations

import pytest

from ticket_manager.config import load_settings
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraAuthError, JiraNotFoundError, JiraUnavailableError
from ticket_manager.sandbox.jira import JiraEmulator

ACCOUNT = {"email": "ticket-bot@example.com", "api_token": "bot-token"}


def settings_for(base_url: str, sandbox_ca, **changes: str):
    env = {
        "ATLASSIAN_URL": base_url,
        "ATLASSIAN_USER": ACCOUNT["email"],
        "ATLASSIAN_API_TOKEN": ACCOUNT["api_token"],
        "JIRA_SUPPORT_BOARD": "support",
        "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
        "REQUESTS_CA_BUNDLE": str(sandbox_ca.bundle_path),
        **changes,
    }
    return load_settings(env)


@pytest.fixture
def cloud(serve):
    emulator = JiraEmulator(deployment="Cloud", service_account=ACCOUNT)
    return emulator, serve(emulator.app)


@pytest.fixture
def server(serve):
    emulator = JiraEmulator(deployment="Server", service_account=ACCOUNT)
    return emulator, serve(emulator.app)


def test_cloud_is_detected_and_spoken_to_in_rest_v3(cloud, sandbox_ca):
    # serverInfo's deploymentType "Cloud" selects REST v3 (ADF bodies).
    _, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca))
    assert client.is_cloud
    assert client.api_version == "3"
    assert client.myself()["emailAddress"] == ACCOUNT["email"]


def test_server_is_detected_and_spoken_to_in_rest_v2(server, sandbox_ca):
    # Jira Server/Data Center answers deploymentType "Server": REST v2 and wiki markup.
    emulator, url = server
    client = JiraClient(settings_for(url, sandbox_ca))
    assert not client.is_cloud
    assert client.api_version == "2"
    assert client.myself()["name"]
    assert all("/rest/api/3/" not in r.path for r in emulator.controls.requests)


def test_a_board_name_resolves_to_its_project_once(cloud, sandbox_ca):
    # The board's Agile location gives the project key; the answer is cached.
    emulator, url = cloud
    emulator.add_project("SALES", "Sales", "support-sales")
    client = JiraClient(settings_for(url, sandbox_ca))
    assert client.project_key_for_board("support") == "SUP"
    assert client.project_key_for_board("support") == "SUP"
    assert client.project_key_for_board("support-sales") == "SALES"
    board_calls = [r for r in emulator.controls.requests if r.path.endswith("/board")]
    assert len(board_calls) == 2


def test_an_unknown_board_is_a_clear_not_found(cloud, sandbox_ca):
    # A board name Jira does not know is reported by name.
    _, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca))
    with pytest.raises(JiraNotFoundError, match="'helpdesk'"):
        client.project_key_for_board("helpdesk")


def test_wrong_credentials_name_the_keys_to_check(cloud, sandbox_ca):
    # A 401 tells the user which configuration keys hold the credentials, not their values.
    _, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca, ATLASSIAN_API_TOKEN="wrong-token"))
    with pytest.raises(JiraAuthError) as caught:
        client.myself()
    assert caught.value.status == 401
    assert "ATLASSIAN_API_TOKEN" in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_a_429_is_waited_out_as_jira_asks(cloud, sandbox_ca):
    # One 429 with Retry-After is retried by the client and the call succeeds.
    emulator, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca), max_retries=2)
    emulator.controls.fail_next(1, status=429, retry_after=1, path_contains="/myself")
    assert client.myself()["emailAddress"] == ACCOUNT["email"]
    statuses = [r.status for r in emulator.controls.requests if r.path.endswith("/myself")]
    assert statuses == [429, 200]


def test_an_outage_past_the_retries_is_unavailable(cloud, sandbox_ca):
    # Jira answering 503 beyond the retry budget is JiraUnavailableError: try again later.
    emulator, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca), max_retries=1)
    emulator.controls.fail_next(5, status=503, retry_after=1, path_contains="/myself")
    with pytest.raises(JiraUnavailableError) as caught:
        client.myself()
    assert caught.value.status == 503
