"""The emulators shared by a session are fresh for every test after reset()."""

from __future__ import annotations

import requests


def test_reset_forgets_mail_issues_faults_and_settings_but_keeps_the_servers(sandbox):
    # After a reset the same servers answer, with no mail, no issues, no faults, defaults back.
    mailbox = sandbox.accounts.mailboxes[0]
    urls = {name: server.base_url for name, server in sandbox.servers.items()}
    sandbox.graph.deliver(mailbox, subject="Before", body="b", sender="a@example.com")
    sandbox.jira.controls.fail_next(5, status=503)
    sandbox.identity.access_token_lifetime = 3
    sandbox.jira.app.wsgi_app = lambda environ, start_response: None  # a test's wrapper

    sandbox.reset()

    assert {name: server.base_url for name, server in sandbox.servers.items()} == urls
    assert sandbox.identity.access_token_lifetime == 3600
    answer = requests.get(
        f"{sandbox.jira_url}/rest/api/3/serverInfo", timeout=30, verify=str(sandbox.ca_bundle)
    )
    assert answer.status_code == 200  # neither the fault nor the wrapper survived
    assert sandbox.jira.issues() == []
    token = requests.post(
        f"{sandbox.authority_host}/{sandbox.accounts.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.accounts.client_id,
            "client_secret": sandbox.accounts.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=30,
        verify=str(sandbox.ca_bundle),
    ).json()["access_token"]
    inbox = requests.get(
        f"{sandbox.graph_url}/users/{mailbox}/messages",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=str(sandbox.ca_bundle),
    )
    assert inbox.status_code == 200
    assert inbox.json()["value"] == []
