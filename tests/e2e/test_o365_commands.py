"""The `flask o365 ...` commands as a user runs them, against the emulators."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import requests

from ticket_manager.models import MessageState

# A SECRET_KEY the configuration accepts (long and random-looking).
STRONG_SECRET_KEY = "Qw8-rT3zLp0_vX6yNb2mKc9hJf4dGs1aEo7uIi5WqZx"


def command(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ticket_manager", "o365", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    process = command(args, env)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_every_command_has_help(pipeline):
    # Each o365 command documents itself, with -m/--mailbox where it applies.
    for name in (
        "authenticate",
        "handle-incoming-email",
        "check-for-missing-tickets",
        "list-failed",
        "retry-failed",
    ):
        result = run([name, "--help"], pipeline.env)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
        if name != "authenticate":
            assert "--mailbox" in result.stdout
    assert "-d, --days" in run(["check-for-missing-tickets", "--help"], pipeline.env).stdout


def test_handle_incoming_email_once_creates_the_tickets(pipeline):
    # The worker command, run once, turns the waiting mail into tickets.
    pipeline.deliver(subject="One")
    pipeline.deliver(subject="Two")
    result = run(["handle-incoming-email", "--once"], pipeline.env)
    assert result.returncode == 0, result.stderr
    assert sorted(i["summary"] for i in pipeline.issues()) == ["One", "Two"]
    assert "sync round done" in result.stderr


def test_sigterm_stops_the_worker_while_it_waits_for_the_next_round(pipeline):
    # SIGTERM ends the long-running worker cleanly during its wait, not after the poll interval.
    process = command(["handle-incoming-email"], {**pipeline.env, "O365_POLL_INTERVAL": "3600"})
    while not _first_round_done(pipeline):  # then the worker waits an hour for the next one
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.wait()  # returns at all only if the hour's wait was cut short
    assert process.returncode == 0, process.stderr.read()


def _first_round_done(pipeline) -> bool:
    from ticket_manager.extensions import db
    from ticket_manager.models import Mailbox

    with pipeline.app.app_context():
        try:
            synced = [row.last_sync_at for row in db.session.query(Mailbox)]
        finally:
            db.session.remove()
    return bool(synced) and None not in synced


def test_a_kill_between_jira_create_and_the_ledger_commit_makes_no_second_ticket(pipeline):
    # The worker is killed right after Jira created the issue; the restart adopts that issue.
    pipeline.deliver(subject="Crash window")
    victim: dict[str, subprocess.Popen] = {}
    inner = pipeline.sandbox.jira.app.wsgi_app

    def kill_after_create(environ, start_response):
        response = inner(environ, start_response)
        is_create = environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].rstrip(
            "/"
        ).endswith("/rest/api/3/issue")
        if is_create and "process" in victim:
            killed = victim.pop("process")
            killed.kill()  # SIGKILL: no clean-up, no commit
            killed.wait()  # dead before Jira's answer could reach it
        return response

    pipeline.sandbox.jira.app.wsgi_app = kill_after_create
    process = command(["handle-incoming-email", "--once"], pipeline.env)
    victim["process"] = process
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    [row] = pipeline.rows()
    assert row.ticket_key is None and row.jira_attempt_at is not None
    assert len(pipeline.issues()) == 1

    result = run(["handle-incoming-email", "--once"], pipeline.env)
    assert result.returncode == 0, result.stderr
    [issue] = pipeline.issues()
    [row] = pipeline.rows()
    assert row.ticket_key == issue["key"]
    assert row.state == MessageState.TICKET_CREATED


def test_check_for_missing_tickets_finds_and_fixes_what_the_worker_never_saw(pipeline):
    # Mail that never reached the ledger is listed by --dry-run and turned into tickets after.
    for n in range(3):
        pipeline.deliver(subject=f"Missed {n}")
    dry = run(["check-for-missing-tickets", "-d", "2", "--dry-run"], pipeline.env)
    assert dry.returncode == 0, dry.stderr
    assert "3 missing" in dry.stdout
    assert pipeline.issues() == []

    fixed = run(["check-for-missing-tickets", "--days", "2"], pipeline.env)
    assert fixed.returncode == 0, fixed.stderr
    assert "ticket_created: 3" in fixed.stdout
    assert len(pipeline.issues()) == 3

    again = run(["check-for-missing-tickets", "-d", "2", "--dry-run"], pipeline.env)
    assert "0 missing" in again.stdout
    run(["handle-incoming-email", "--once"], pipeline.env)
    assert len(pipeline.issues()) == 3  # the worker's later round adds nothing


def test_status_before_the_schema_exists_says_to_create_it(pipeline, tmp_path):
    # A newcomer asking for the status before `flask db upgrade` is told to run it.
    env = {**pipeline.env, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = run(["status"], env)
    assert result.returncode == 1
    assert "flask db upgrade" in result.stdout
    assert "SQLALCHEMY_DATABASE_URI" in result.stdout


def test_failed_messages_are_listed_and_retried(pipeline):
    # A message that cannot be filed is listed with the reason (here the project has no such
    # issue type, read from its create screens); fixed, retry-failed creates it.
    pipeline.deliver(subject="Needs a valid type")
    broken = {**pipeline.env, "JIRA_TICKET_TYPE": "Epic"}
    run(["handle-incoming-email", "--once"], broken)
    listing = run(["list-failed"], pipeline.env)
    assert "Needs a valid type" in listing.stdout
    assert "no issue type 'Epic'" in listing.stdout

    retried = run(["retry-failed"], pipeline.env)
    assert retried.returncode == 0, retried.stderr
    assert re.search(r"ticket_created\s+SUP-\d+", retried.stdout)
    assert len(pipeline.issues()) == 1
    assert "No failed messages" in run(["list-failed"], pipeline.env).stdout


def test_an_unknown_mailbox_option_is_refused(pipeline):
    # -m must name a configured mailbox.
    result = run(["handle-incoming-email", "--once", "-m", "other@example.com"], pipeline.env)
    assert result.returncode == 2
    assert "not one of MAILBOX" in result.stderr


def test_authenticate_with_app_credentials_says_it_works(pipeline):
    # The credentials flow needs no person: authenticate only proves a token can be had.
    result = run(["authenticate"], pipeline.env)
    assert result.returncode == 0, result.stderr
    assert "App-only sign-in works" in result.stdout


def delegated_env(pipeline, flow: str) -> dict[str, str]:
    return {**pipeline.env, "O365_AUTH_FLOW": flow, "SECRET_KEY": STRONG_SECRET_KEY}


def test_authenticate_by_pasting_the_redirected_url_then_the_worker_uses_it(pipeline):
    # The seed's flow: open the printed URL, paste where the browser landed; the sign-in is
    # stored encrypted and the worker then reads mail with it.
    env = delegated_env(pipeline, "authorization")
    process = command(["authenticate"], env)
    lines = []
    while not any("oauth2/v2.0/authorize" in line for line in lines):
        lines.append(process.stdout.readline())
    consent_url = lines[-1].strip()
    ca = pipeline.sandbox.ca_bundle
    landed = requests.get(consent_url, allow_redirects=False, verify=str(ca), timeout=10)
    redirected = landed.headers["Location"]
    assert urlsplit(redirected).query.startswith("code=") or "code=" in redirected
    out, err = process.communicate(redirected + "\n", timeout=60)
    assert process.returncode == 0, err
    assert "Authenticated as support@example.com" in out

    again = run(["authenticate"], env)
    assert "already authenticated" in again.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "check"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "ok    microsoft sign-in" in checked.stdout, checked.stdout  # the stored sign-in

    pipeline.deliver(subject="Read with a delegated token")
    result = run(["handle-incoming-email", "--once"], env)
    assert result.returncode == 0, result.stderr
    assert [i["summary"] for i in pipeline.issues()] == ["Read with a delegated token"]


def test_a_revoked_sign_in_tells_the_user_to_authenticate_again(pipeline):
    # When the refresh token is revoked, the worker says to run authenticate again.
    env = delegated_env(pipeline, "device")
    pipeline.sandbox.identity.device_code_interval = 1
    pipeline.sandbox.identity.access_token_lifetime = 1  # MSAL must use the refresh token
    process = command(["authenticate"], env)
    message = process.stdout.readline()
    code = re.search(r"enter the code (\S+)", message).group(1)
    pipeline.sandbox.identity.approve_device_code(code)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err

    pipeline.sandbox.identity.revoke_refresh_tokens()
    result = run(["handle-incoming-email", "--once"], env)
    assert "flask o365 authenticate" in result.stderr
