"""One health module: every view of the service agrees, and keeps answering during outages."""

from __future__ import annotations

import socket

import pytest
from chromium import HOSTNAME, TIMEOUT_MS
from click.testing import CliRunner
from flask.cli import ScriptInfo
from playwright.sync_api import expect

from ticket_manager import health
from ticket_manager.commands.check import check_command
from ticket_manager.commands.o365 import o365

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def identity_down(make_api):
    """The API of a service whose identity platform cannot be reached."""
    return make_api(O365_AUTHORITY_HOST=f"https://127.0.0.1:{closed_port()}")


def test_ready_and_status_name_the_unreachable_sign_in_and_keep_answering(identity_down):
    # With Microsoft unreachable, /health/ready and /status answer 200 and say what fails.
    ready = identity_down.client("metrics:read").get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "degraded"
    assert "cannot reach the identity platform" in ready.json()["checks"]["microsoft_sign_in"]

    status = identity_down.client("messages:read").get("/status")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["database"]["state"] == "ok"
    assert body["microsoft"]["state"] == "failing"
    assert "connection refused" in body["microsoft"]["detail"]
    assert body["jira"]["state"] == "ok"
    assert any(p.startswith("Microsoft 365 sign-in: cannot reach") for p in body["problems"])


def test_status_command_and_check_agree_with_the_api(identity_down):
    # `flask o365 status` and `flask check` report the same failing part as /status.
    info = ScriptInfo(create_app=lambda: identity_down.app)
    status = CliRunner().invoke(o365, ["status"], obj=info)
    check = CliRunner().invoke(check_command, [], obj=info)
    api = identity_down.client("messages:read").get("/status").json()
    assert status.exit_code == 1 and check.exit_code == 1
    assert api["microsoft"]["detail"] in status.output
    assert api["microsoft"]["detail"] in check.output
    assert "Traceback" not in status.output + check.output


def test_each_app_has_its_own_health_cache(make_pipeline):
    # Two apps in one process (same Flask name): each keeps its own answer.
    healthy = make_pipeline()
    broken = make_pipeline(O365_AUTHORITY_HOST=f"https://127.0.0.1:{closed_port()}")
    assert healthy.app.name == broken.app.name
    with healthy.app.app_context():
        assert health.microsoft(healthy.app, healthy.settings).ok
    with broken.app.app_context():
        found = health.microsoft(broken.app, broken.settings)
    assert found.state == "failing" and "cannot reach" in found.detail
    with healthy.app.app_context():
        assert health.microsoft(healthy.app, healthy.settings).ok


def test_a_database_migrated_by_newer_code_is_ok_everywhere(api):
    # A revision this code does not know (a rolling upgrade) is "ok" for every view alike.
    from sqlalchemy import text

    from ticket_manager.extensions import db

    with api.app.app_context():
        db.session.execute(text("update alembic_version set version_num = '9999_future'"))
        db.session.commit()
    ready = api.client("metrics:read").get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    assert api.client("messages:read").get("/status").json()["database"]["state"] == "ok"
    info = ScriptInfo(create_app=lambda: api.app)
    check = CliRunner().invoke(check_command, [], obj=info)
    assert "ok    database" in check.output.replace("\x1b[32m", "").replace("\x1b[0m", "")


def test_dashboard_signs_in_and_shows_the_failing_sign_in(identity_down, browser):
    # During a Microsoft outage the dashboard still signs in and names the failing part.
    token = identity_down.key("messages:read")
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(identity_down.base_url.replace("127.0.0.1", HOSTNAME) + "/dashboard/")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#problem-list")).to_contain_text("cannot reach the identity platform")
