"""What a released tool shows: its version, licence, changelog, expiry warnings, ticket links."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from flask.cli import ScriptInfo
from prometheus_client.parser import text_string_to_metric_families

from ticket_manager.commands.o365 import o365

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_version_is_the_products(tmp_path, database_url):
    # `ticket-manager --version` names the product and the version pyproject.toml gives.
    result = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "--version"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Ticket Manager {PROJECT['version']} (")


def test_licence_and_changelog_match_the_project(database_url):
    # The LICENSE file is the MIT licence pyproject.toml names; the changelog has this release.
    assert PROJECT["license"]["text"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(PROJECT['version'])}\]?", changelog, re.M)


def test_a_client_secret_about_to_expire_is_shown_everywhere(make_api):
    # O365_CLIENT_SECRET_EXPIRES 10 days ahead: /status, `flask o365 status` and a metric say so.
    expires = date.today() + timedelta(days=10)
    api = make_api(O365_CLIENT_SECRET_EXPIRES=expires.isoformat())
    status = api.client("messages:read").get("/status").json()
    [credential] = status["credentials"]
    assert credential["days_left"] in (9, 10)
    assert any(
        "client secret (O365_CLIENT_SECRET_EXPIRES) expires on" in p for p in status["problems"]
    )
    printed = CliRunner().invoke(o365, ["status"], obj=ScriptInfo(create_app=lambda: api.app))
    assert printed.exit_code == 1
    assert f"expires on {expires:%Y-%m-%d}" in printed.output
    metrics = requests.get(
        f"{api.server_url}/metrics",
        headers={"Authorization": f"Bearer {api.key('metrics:read')}"},
        timeout=30,
    ).text
    moment = datetime.combine(expires, datetime.min.time(), tzinfo=UTC).timestamp()
    values = {
        sample.labels.get("credential"): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "ticket_manager_credential_expiry_timestamp_seconds"
    }
    assert values == {"client_secret": moment}


def test_a_delegated_sign_in_unused_for_80_days_is_warned_about(make_api):
    # The stored sign-in's refresh token lapses after 90 days unused: 10 days left is a problem.
    from ticket_manager.extensions import db
    from ticket_manager.models import TokenCache

    api = make_api(O365_AUTH_FLOW="device", SECRET_KEY="Vx3qL9pZt2Rk8mWc4nYh7sBd1fGj6eQa5uTz0oXi")
    settings = api.pipeline.settings
    with api.app.app_context():
        db.session.add(
            TokenCache(
                name=f"{settings.tenant_id}/{settings.client_id}",
                data="x",
                updated_at=datetime.now(UTC) - timedelta(days=80),
            )
        )
        db.session.commit()
    status = api.client("messages:read").get("/status").json()
    assert any("delegated sign-in (refresh token" in p for p in status["problems"]), status
    assert any("flask o365 authenticate" in p for p in status["problems"])


def test_status_says_where_tickets_open_in_jira(api):
    # /status gives the Jira URL a ticket key is appended to, for the dashboard's links.
    status = api.client("messages:read").get("/status").json()
    assert status["ticket_browse_url"] == f"{api.pipeline.settings.atlassian_url}/browse/"


def test_dashboard_links_ticket_keys_to_jira(api, browser):
    # In the dashboard's ledger a ticket key is a link to the ticket in Jira.
    from chromium import HOSTNAME, TIMEOUT_MS
    from playwright.sync_api import expect

    api.pipeline.deliver(subject="Printer jammed")
    api.pipeline.run_once()
    [issue] = api.pipeline.issues()
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(api.base_url.replace("127.0.0.1", HOSTNAME) + "/dashboard/")
    page.get_by_label("API key").fill(api.key("messages:read"))
    page.get_by_role("button", name="Sign in").click()
    link = page.locator("#ledger tbody a", has_text=issue["key"])
    expect(link).to_have_attribute(
        "href", f"{api.pipeline.settings.atlassian_url}/browse/{issue['key']}"
    )
