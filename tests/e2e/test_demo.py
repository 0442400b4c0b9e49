"""The demo beside itself, its env file, the worker's own words and `flask sandbox send`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ticket_manager", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def demo(state_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ticket_manager_sandbox.demo", "--state-dir", str(state_dir), *args],
        cwd=state_dir,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def running_demo(tmp_path):
    """`make demo` running in the background until the test ends."""
    process = demo(tmp_path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any("press Ctrl-C to stop" in line for line in lines):
        assert process.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)
    yield tmp_path
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


@pytest.mark.timeout(400)
def test_a_second_demo_refuses_and_leaves_the_first_alone(running_demo):
    # A second demo in the same directory says which one runs, and touches nothing of it.
    env_before = (running_demo / "demo.env").read_text()
    database_before = (running_demo / "demo.db").stat().st_ino
    second = demo(running_demo, "--once")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 1
    assert out.strip().splitlines() == [
        next(line for line in out.splitlines() if "a demo is already running" in line)
    ]
    assert "pid" in out and "--state-dir" in out
    assert (running_demo / "demo.env").read_text() == env_before
    assert (running_demo / "demo.db").stat().st_ino == database_before


@pytest.mark.timeout(400)
def test_a_test_email_sent_into_the_demo_becomes_a_ticket_with_its_file(running_demo, tmp_path):
    # `flask sandbox send` while the demo runs; the worker started from the env file says
    # that it starts, turns the email into a ticket with the attachment, and says it stopped.
    env = {k: v for k, v in dotenv_values(running_demo / "demo.env").items() if v is not None}
    assert "LOG_LEVEL" not in env
    attachment = tmp_path / "screen.txt"
    attachment.write_text("flicker log\n")
    sent = cli(
        [
            "sandbox",
            "send",
            "--from",
            "Dan Tester <dan@example.com>",
            "--subject",
            "Screen flickers",
            "--attach",
            str(attachment),
        ],
        env,
        running_demo,
    )
    assert sent.returncode == 0, sent.stderr
    assert "Delivered 'Screen flickers'" in sent.stdout

    worker = cli(["o365", "handle-incoming-email", "--once"], env, running_demo)
    assert worker.returncode == 0, worker.stderr
    assert "Worker started: watching support@example.com (credentials flow" in worker.stderr
    assert "sync round done" in worker.stderr
    assert "Worker stopped: 1 round(s) synced, 0 failed." in worker.stderr

    with sqlite3.connect(running_demo / "demo.db") as connection:
        [(key, state)] = connection.execute(
            "select ticket_key, state from messages where subject = 'Screen flickers'"
        ).fetchall()
    assert state == "ticket_created"
    issue = requests.get(
        f"{env['ATLASSIAN_URL']}/rest/api/3/issue/{key}",
        auth=(env["ATLASSIAN_USER"], env["ATLASSIAN_API_TOKEN"]),
        verify=env["REQUESTS_CA_BUNDLE"],
        timeout=30,
    ).json()
    assert [a["filename"] for a in issue["fields"]["attachment"]] == ["screen.txt"]


def test_sandbox_send_without_a_running_demo_says_so(tmp_path):
    # Without the demo's configuration, one line says what to load.
    result = cli(["sandbox", "send", "--from", "a@example.com", "--subject", "x"], {}, tmp_path)
    assert result.returncode == 1
    assert "load the demo's configuration" in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_idle_rounds_are_summarised_at_a_sensible_rate(pipeline, caplog):
    # A round unlike the one before is always summarised; repeats at most every ten minutes.
    import logging

    from ticket_manager.pipeline.worker import Worker

    worker = Worker(pipeline.app, pipeline.settings, list(pipeline.settings.mailboxes))
    mailbox = pipeline.mailbox

    def summaries() -> int:
        return sum(
            r.getMessage() == "sync round done" and r.levelno == logging.INFO
            for r in caplog.records
        )

    with caplog.at_level(logging.DEBUG, logger="ticket_manager.worker"):
        for _ in range(3):
            worker.sync_one(mailbox)
        assert summaries() == 1
        pipeline.deliver(subject="Printer jammed")
        worker.sync_one(mailbox)
        assert summaries() == 2
        for _ in range(4):  # the rounds after it see its changes, then nothing again
            worker.sync_one(mailbox)
        settled = summaries()
        assert settled <= 3
        for _ in range(3):
            worker.sync_one(mailbox)
        assert summaries() == settled
