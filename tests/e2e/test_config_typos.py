"""Configuration mistakes a newcomer makes: misspelt keys, relative SQLite paths, no database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "ticket_manager", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("MAILBXO", "MAILBOX"),
        ("SQLALCHEMY_DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
        ("JIRA_TICKET_LABLES", "JIRA_TICKET_LABELS"),
        ("O365_CLEINT_SECRET", "O365_CLIENT_SECRET"),
    ],
)
def test_a_misspelt_key_in_dotenv_is_named_with_its_file(tmp_path, typo, meant):
    # A near miss in .env stops every command with one line: the key, the file, the fix.
    (tmp_path / ".env").write_text(f"{typo}=x\n")
    result = cli(["check"], tmp_path)
    assert result.returncode != 0
    assert f"{typo}" in result.stderr and f"did you mean {meant}?" in result.stderr
    assert str(tmp_path / ".env") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("MAILBXO", "MAILBOX"), ("SQLALCHEMY_DATABASE_URL", "SQLALCHEMY_DATABASE_URI")],
)
def test_a_misspelt_key_in_the_environment_is_named(tmp_path, typo, meant):
    # The same near miss exported in the shell: "set in the environment", did you mean.
    result = cli(["o365", "status"], tmp_path, {typo: "x"})
    assert result.returncode != 0
    assert f"set in the environment); did you mean {meant}?" in result.stderr


def test_other_environment_variables_are_left_alone(tmp_path):
    # PATH, HOME and the like are not Ticket Manager keys and are not flagged.
    result = cli(["--help"], tmp_path, {"HOME": str(tmp_path), "LANG": "C.UTF-8", "EDITOR": "vi"})
    assert result.returncode == 0, result.stderr


def test_read_only_commands_never_create_a_database_file(tmp_path):
    # check, status and list-failed on a fresh directory say to run `flask db upgrade`
    # and leave no database file behind.
    (tmp_path / ".env").write_text("SQLALCHEMY_DATABASE_URI=sqlite:///ticket_manager.db\n")
    for args in (["check"], ["o365", "status"], ["o365", "list-failed"]):
        result = cli(args, tmp_path, {"MAILBOX": "support@example.com"})
        assert result.returncode != 0, args
        assert "no database file at" in result.stdout + result.stderr, args
        assert "flask db upgrade" in result.stdout + result.stderr, args
    assert list(tmp_path.glob("*.db*")) == []


def test_a_relative_sqlite_path_is_beside_the_dotenv_that_names_it(tmp_path):
    # From a subdirectory, the .env found upwards names the same database, not a new one.
    (tmp_path / ".env").write_text(
        "SQLALCHEMY_DATABASE_URI=sqlite:///ticket_manager.db\nMAILBOX=support@example.com\n"
    )
    upgraded = cli(["db", "upgrade"], tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    below = tmp_path / "notes" / "today"
    below.mkdir(parents=True)
    listed = cli(["o365", "list-failed"], below)
    assert listed.returncode == 0, listed.stderr
    assert "No failed messages." in listed.stdout
    assert list(below.glob("*.db*")) == []
    assert (tmp_path / "ticket_manager.db").exists()
