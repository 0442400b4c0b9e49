"""Swagger UI in a real headless Chromium: it renders, authorizes and calls the API, with no CDN.

Uses Debian's Chromium (``apt-get install chromium``) through Playwright; nothing is downloaded.
Without Chromium the test is skipped on a developer machine and fails in CI (``CI`` set).
``TICKET_MANAGER_SCREENSHOTS=1`` also saves the screenshot shown in docs/api.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chromium import HOSTNAME, TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "swagger-ui.png"

OPERATIONS = [
    ("get", "/tickets"),
    ("post", "/tickets"),
    ("get", "/tickets/{key}"),
    ("patch", "/tickets/{key}"),
    ("get", "/boards"),
    ("get", "/categories"),
    ("get", "/messages"),
    ("get", "/health/ready"),
]


def test_swagger_ui_authorizes_and_calls_the_api_from_the_service_alone(browser, api):
    # Swagger UI lists the API, takes a key through Authorize and shows a live 200 from /boards,
    # and every file and call the page makes goes to the service itself.
    token = api.key("tickets:read")
    origin = api.server_url.replace("127.0.0.1", HOSTNAME)
    context_path = api.base_url.removeprefix(api.server_url)
    base_url = origin + context_path
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(base_url + "/")
    expect(page).to_have_url(base_url + "/docs")
    expect(page.locator(".info .title")).to_contain_text("Ticket Manager", timeout=TIMEOUT_MS)
    for method, path in OPERATIONS:
        summary = page.locator(f'.opblock-{method} [data-path="{context_path}{path}"]')
        expect(summary).to_be_visible(timeout=TIMEOUT_MS)

    page.locator(".auth-wrapper .btn.authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").fill(token)
    dialog.get_by_role("button", name="Apply credentials").click()
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden(timeout=TIMEOUT_MS)

    boards = page.locator(".opblock-get").filter(
        has=page.locator(f'[data-path="{context_path}/boards"]')
    )
    boards.locator(".opblock-summary-path").click()
    boards.get_by_role("button", name="Try it out").click()
    with page.expect_response(base_url + "/boards") as answer:
        boards.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"] == f"Bearer {token}"
    live = boards.locator(".live-responses-table")
    expect(live.locator("tr.response .response-col_status")).to_have_text("200", timeout=TIMEOUT_MS)
    expect(live.locator("tr.response .response-col_description")).to_contain_text(
        '"name": "support"', timeout=TIMEOUT_MS
    )

    if os.environ.get("TICKET_MANAGER_SCREENSHOTS") == "1":
        save_screenshot(page, down_to=live)

    assert requested, "the page made no requests"
    elsewhere = [url for url in requested if not url.startswith(origin + "/")]
    assert elsewhere == [], f"the page called other hosts: {elsewhere}"


def save_screenshot(page, *, down_to) -> None:
    """Save the page from its top to the end of ``down_to`` for docs/api.md."""
    bottom = down_to.evaluate("element => element.getBoundingClientRect().bottom + scrollY")
    height = bottom + 24
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=SCREENSHOT, full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height}
    )
