"""The operations view: /status, /stats/flow, message detail, `flask o365 status`, and the
dashboard page in headless Chromium (sign in, charts with data, retry a failed message)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from chromium import HOSTNAME, TIMEOUT_MS
from playwright.sync_api import expect

from ticket_manager.models import MessageState

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture
def flowing(make_api):
    """A pipeline run with every outcome: two tickets, a rejection, a failure for good."""
    api = make_api(PROCESSING_MAX_ATTEMPTS="1")
    pipeline = api.pipeline
    pipeline.deliver(subject="Invoice 4411 is wrong", sender="Dave <dave@example.com>")
    pipeline.sandbox.jira.controls.fail_next(
        10, status=400, retry_after=None, path_contains="/rest/api/3/issue"
    )
    pipeline.run_once()
    pipeline.sandbox.jira.controls.clear_faults()
    pipeline.deliver(subject="Printer jammed")
    pipeline.deliver(subject="VPN is down", sender="Bob <bob@example.com>")
    pipeline.deliver(subject="Automatic reply: away", headers={"Auto-Submitted": "auto-replied"})
    pipeline.run_once()
    states = sorted(r.state.value for r in pipeline.rows())
    assert states == ["failed", "rejected", "ticket_created", "ticket_created"], states
    return api


def test_status_says_what_needs_a_person(flowing):
    client = flowing.client("messages:read")
    status = client.get("/status").json()
    assert status["database"]["state"] == "ok"
    assert status["microsoft"]["state"] == "ok" and status["microsoft"]["expires_at"]
    assert status["jira"]["state"] == "ok"
    [mailbox] = status["mailboxes"]
    assert mailbox["address"] == "support@example.com"
    assert mailbox["failed"] == 1 and mailbox["failed_for_good"] == 1
    assert mailbox["last_sync_age_seconds"] < 60 and mailbox["subscription"] == "off"
    assert status["ok"] is False
    assert any("failed all 1 attempts" in p and "retry" in p for p in status["problems"])


def test_flow_counts_outcomes_by_period_and_rule(flowing):
    client = flowing.client("messages:read")
    for period, buckets in [("24h", 24), ("7d", 28), ("30d", 30)]:
        flow = client.get("/stats/flow", params={"period": period}).json()
        assert len(flow["buckets"]) == buckets
        assert flow["totals"] == {
            "created": 2,
            "commented": 0,
            "rejected": 1,
            "failed": 1,
            "pending": 0,
            "held": 0,
        }
        assert flow["rejected_by_rule"] == {"auto-reply": 1}
        assert sum(b["created"] for b in flow["buckets"]) == 2
    assert client.get("/stats/flow", params={"period": "1y"}).status_code == 422


def test_message_detail_shows_headers_and_what_jira_holds(flowing):
    client = flowing.client("messages:read", "messages:content")
    created = client.get("/messages", params={"state": "ticket_created", "q": "printer"}).json()
    [row] = created["items"]
    detail = client.get(f"/messages/{row['id']}/detail").json()
    names = {h["name"].lower() for h in detail["headers"]}
    assert "message-id" in names and detail["headers_error"] is None
    assert detail["jira"]["kind"] == "issue" and detail["jira"]["key"] == row["ticket_key"]
    assert "printer is jammed" in detail["jira"]["text"]
    assert client.get("/messages", params={"q": "100%_"}).json()["total"] == 0


def test_flask_o365_status_prints_the_same_summary(flowing):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from ticket_manager.commands.o365 import o365

    runner = CliRunner()
    info = ScriptInfo(create_app=lambda: flowing.app)
    result = runner.invoke(o365, ["status"], obj=info)
    assert result.exit_code == 1, result.output
    assert "support@example.com" in result.output
    assert "Needs attention" in result.output and "list-failed" in result.output
    as_json = runner.invoke(o365, ["status", "--json"], obj=info)
    assert json.loads(as_json.output)["mailboxes"][0]["failed"] == 1


def test_dashboard_signs_in_shows_charts_and_retries_a_failed_message(flowing, browser):
    api = flowing
    token = api.key("messages:read", "messages:write")
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    origin = api.server_url.replace("127.0.0.1", HOSTNAME)
    page.goto(api.base_url.replace("127.0.0.1", HOSTNAME) + "/dashboard/")

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("tm_00000000_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("Refused")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#overall")).to_have_text("Needs attention (1)")
    expect(page.locator("#problem-list")).to_contain_text("failed all 1 attempts")
    expect(page.locator("#mailboxes tbody tr")).to_have_count(1)
    expect(page.locator("#ledger tbody tr")).to_have_count(4)
    expect(page.locator("#flow-totals")).to_contain_text("2 tickets")
    drawn = page.evaluate(
        "() => window.ticketManagerCharts.flow.data.datasets"
        ".map(d => d.data.reduce((a, b) => a + b, 0))"
    )
    assert drawn == [2, 0, 1, 1, 0]
    assert page.locator("#flow-chart").bounding_box()["height"] > 100
    if os.environ.get("TICKET_MANAGER_SCREENSHOTS"):
        page.screenshot(path=str(IMAGES / "dashboard.png"), full_page=True)

    page.locator("#ledger tbody tr", has_text="Invoice 4411").click()
    dialog = page.locator("#detail")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#detail-fields")).to_contain_text("failed")
    if os.environ.get("TICKET_MANAGER_SCREENSHOTS"):
        page.screenshot(path=str(IMAGES / "dashboard-message.png"))
    dialog.get_by_role("button", name="Retry").click()
    expect(dialog.locator("#detail-note")).to_contain_text("Queued: now pending")
    expect(page.locator("#ledger tbody tr", has_text="Invoice 4411")).to_contain_text("pending")
    expect(page.locator("#overall")).to_have_text("Mail is flowing")

    api.pipeline.run_once()
    rows = {r.subject: r for r in api.pipeline.rows()}
    assert rows["Invoice 4411 is wrong"].state == MessageState.TICKET_CREATED
    dialog.get_by_role("button", name="Close").click()
    page.locator("#ledger-state").select_option("ticket_created")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#ledger tbody tr")).to_have_count(3)
    assert all(url.startswith(origin) for url in requested), requested
