"""check-for-missing-tickets: Ctrl-C stops it as told, progress is shown, --help warns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ticket_manager", "o365", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Lines:
    """Collects a pipe's lines in a thread, so the test can wait for one."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never came: {''.join(self.lines)[-2000:]}")

    def text(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


def test_help_says_it_creates_tickets_and_sends_acknowledgements(pipeline):
    # --help warns that without --dry-run tickets are created and emails are sent.
    result = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "o365", "check-for-missing-tickets", "--help"],
        env={"PATH": os.environ.get("PATH", ""), **pipeline.env},
        capture_output=True,
        text=True,
    )
    text = " ".join(result.stdout.split())
    assert "Without --dry-run it processes what it finds" in text
    assert "creates Jira tickets" in text and "sends the acknowledgement emails" in text


@pytest.mark.timeout(900)
def test_ctrl_c_twice_during_500_emails_loses_nothing_and_stops_at_once(pipeline):
    # First Ctrl-C finishes what is in flight, the second exits; a rerun completes the 500.
    for n in range(500):
        pipeline.deliver(subject=f"Missed {n}", sender=f"User {n} <user{n}@example.com>")
    jira = pipeline.sandbox.jira
    jira.controls.set_latency(0.4)  # each email's Jira calls take a while: work stays in flight
    # 500 emails of one domain within the hour: the intake caps would hold most of them.
    env = {
        **pipeline.env,
        "EMAIL_MAX_PER_DOMAIN_PER_HOUR": "0",
        "EMAIL_MAX_PER_MAILBOX_PER_HOUR": "0",
    }
    process = start(["check-for-missing-tickets", "-d", "2"], env)
    out, err = Lines(process.stdout), Lines(process.stderr)
    deadline = time.monotonic() + 300
    while len(pipeline.issues()) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    err.wait_for("finishing those in flight")
    process.send_signal(signal.SIGINT)
    at_second = len(jira.controls.requests)
    process.wait(timeout=60)
    assert process.returncode == 130
    assert "stopping now" in err.text()
    time.sleep(1.5)  # anything still on its way to Jira arrives
    creates_after = [
        r
        for r in jira.controls.requests[at_second:]
        if r.method == "POST" and r.path.endswith("/issue")
    ]
    # Only the calls already in flight (at most PROCESSING_CONCURRENCY) reach Jira afterwards.
    assert len(creates_after) <= pipeline.settings.processing_concurrency
    interrupted = len(pipeline.issues())
    assert 20 <= interrupted < 500

    jira.controls.set_latency(0)
    claims_lapse(pipeline)  # the emails that were in flight stay claimed for 5 minutes
    rerun = start(["check-for-missing-tickets", "-d", "2"], env)
    _rerun_out, rerun_err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, rerun_err[-2000:]
    summaries = Counter(i["summary"] for i in pipeline.issues())
    assert len(summaries) == 500 and max(summaries.values()) == 1
    assert out.text().count("missing  ") == 500


def claims_lapse(pipeline) -> None:
    """Let the claims of the stopped process run out, as five minutes later."""
    from datetime import timedelta

    from sqlalchemy import update

    from ticket_manager.clock import now
    from ticket_manager.extensions import db
    from ticket_manager.models import LedgerMessage

    with pipeline.app.app_context():
        db.session.execute(
            update(LedgerMessage)
            .where(LedgerMessage.claimed_until.is_not(None))
            .values(claimed_until=now() - timedelta(seconds=1))
        )
        db.session.commit()


def test_progress_is_plain_lines_when_not_a_terminal(pipeline):
    # Without a terminal, progress is a line every tenth: counts, rate and time left.
    for n in range(20):
        pipeline.deliver(subject=f"Missed {n}")
    process = start(["check-for-missing-tickets", "-d", "2"], pipeline.env)
    _out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    lines = [line for line in err.splitlines() if line.startswith("processing: ")]
    assert len(lines) == 10, err
    assert lines[0].startswith("processing: 2/20 (10%), ") and "emails/s" in lines[0]
    assert "left" in lines[0]
    assert lines[-1].startswith("processing: 20/20 (100%)")


def test_progress_is_a_bar_on_a_terminal(pipeline):
    # On a terminal, progress is a redrawn bar with the count, the rate and the time left.
    import pty

    for n in range(5):
        pipeline.deliver(subject=f"Missed {n}")
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ticket_manager", "o365", "check-for-missing-tickets", "-d", "2"],
        env={"PATH": os.environ.get("PATH", ""), **pipeline.env},
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=300)
    os.close(main)
    shown = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, shown
    assert "processing" in shown and "5/5" in shown and "/s" in shown
    assert "100%" in shown
