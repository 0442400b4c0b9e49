"""The command line as a user runs it: `ticket-manager`, `flask check`, and the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ticket_manager", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_commands(tmp_path):
    # `ticket-manager --help` works anywhere and lists the database and check commands.
    result = run_cli(["--help"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "check" in result.stdout
    assert "db" in result.stdout


def test_check_reports_every_dependency_ok_against_the_emulators(sandbox_env, tmp_path):
    # `flask check` signs in, reads the mailbox and finds the board's project, one line each.
    assert run_cli(["db", "upgrade"], sandbox_env, tmp_path).returncode == 0
    result = run_cli(["check"], sandbox_env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 5
    assert "files into project SUP" in result.stdout
    assert "Cloud, REST v3" in result.stdout


def test_check_fails_and_says_why_when_jira_refuses(sandbox_env, tmp_path):
    # A wrong Jira token fails the check with advice, exit code 1, and no secret shown.
    env = {**sandbox_env, "ATLASSIAN_API_TOKEN": "not-the-token"}
    run_cli(["db", "upgrade"], env, tmp_path)
    result = run_cli(["check"], env, tmp_path)
    assert result.returncode == 1
    jira_line = next(line for line in result.stdout.splitlines() if " jira " in f" {line} ")
    assert jira_line.startswith("FAIL")
    assert "ATLASSIAN_API_TOKEN" in jira_line
    assert "not-the-token" not in result.stdout + result.stderr


def test_check_says_the_database_needs_upgrading(sandbox_env, tmp_path):
    # Before `db upgrade`, the database line fails and tells the user what to run.
    result = run_cli(["check"], sandbox_env, tmp_path)
    assert result.returncode == 1
    assert "flask db upgrade" in result.stdout


def test_demo_runs_end_to_end_and_exits_with_once(tmp_path):
    # `make demo` (here with --once): every check passes, mail becomes tickets or is refused.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ticket_manager_sandbox.demo",
            "--once",
            "--state-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    # The two tickets are created concurrently: either may get SUP-1.
    alice = re.search(
        r"(SUP-[12])  'Printer on the 3rd floor is jammed' from alice@", result.stdout
    )
    assert alice, result.stdout
    assert re.search(r"SUP-[12]  'Login page answers 500' from bob@example.com", result.stdout)
    assert "auto-reply: Auto-Submitted: auto-replied" in result.stdout
    assert "domain-not-allowed" in result.stdout
    assert f"{alice[1]} got a comment from Alice's email" in result.stdout
    assert f"alice@example.com received 'RE: [{alice[1]}]" in result.stdout
    assert "POST /tickets -> 201 SUP-3" in result.stdout
    # The JSM part: a customer request with a participant, the portal link, a public reply
    # as a comment, and only the agent's public comment emailed.
    assert "HD-1  customer request raised for dana@example.com" in result.stdout
    assert "participant(s): erik@example.com" in result.stdout
    assert "/servicedesk/customer/portal/1/HD-1" in result.stdout
    assert "Dana's reply became a public request comment on HD-1" in result.stdout
    assert "public reply emailed to Dana: yes; internal note emailed: no" in result.stdout
    assert "GET /tickets -> 4 tickets: SUP-3 (api), HD-1 (email), SUP-" in result.stdout
    assert (tmp_path / "demo.env").stat().st_mode & 0o077 == 0
