"""Headless Debian Chromium for the browser tests, driven by Playwright (nothing downloaded).

Without Chromium a browser test is skipped on a developer machine and fails in CI (``CI``
set), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Swagger UI behaves differently on localhost (it hides its validator badge, an image from
# validator.swagger.io), so the page is opened under a name of its own, as in production.
HOSTNAME = "ticket-manager.test"
# No sandbox (CI runs as root), none of Chromium's own calls home, and every other name resolves
# to nothing: a page that reached for a CDN is seen in the test, and never reaches it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {HOSTNAME} 127.0.0.1, MAP * ~NOTFOUND",
]
TIMEOUT_MS = 20_000


@contextmanager
def launch() -> Iterator[Browser]:
    """Start Chromium with a fresh profile, or skip (fail under CI) when it is missing."""
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it, see .ci/run")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
