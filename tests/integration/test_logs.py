"""Logs: one event per line, as text or JSON lines, and never a secret or an email body."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests

from ticket_manager.config import ConfigError, load_settings
from ticket_manager.logs import (
    REDACTED,
    StderrHandler,
    build_formatter,
    configure_logging,
)

# Shaped like the real thing: an Entra ID access token, an API key, a client secret.
JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGk6Ly90aWNrZXRzIiwic3ViIjoiMTIzIn0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
API_KEY = "tm_3f9a1c2e_Vt3kQ9xZbq7Lw2mN8pR4sT6uY1aC5dE0fGhJ"
CLIENT_SECRET = "Zq8~s3cr3t.Va1ue_that-only-the-app-knows"


def record(message: str = "ticket created", level: int = logging.INFO, **extra):
    logger = logging.getLogger("ticket_manager.pipeline")
    made = logger.makeRecord(logger.name, level, __file__, 1, message, (), None, extra=extra)
    return made


def test_json_lines_carry_time_level_logger_event_and_fields():
    # Each event is one JSON object with its fields, the time in ISO 8601 UTC.
    line = build_formatter("json").format(
        record(mailbox="support@example.com", message_id="<a@b>", ticket="SUP-1", attempt=2)
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "ticket_manager.pipeline"
    assert entry["event"] == "ticket created"
    assert entry["mailbox"] == "support@example.com"
    assert entry["message_id"] == "<a@b>"
    assert entry["ticket"] == "SUP-1"
    assert entry["attempt"] == 2
    moment = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert entry["time"].endswith("Z")
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


def test_an_exception_is_one_string_field_of_the_same_line():
    # A traceback stays inside its event's JSON object instead of spilling over lines.
    try:
        raise ValueError("conversion broke")
    except ValueError:
        import sys

        made = record("sync round crashed", logging.ERROR, mailbox="support@example.com")
        made.exc_info = sys.exc_info()
    entry = json.loads(build_formatter("json").format(made))
    assert entry["level"] == "ERROR"
    assert "Traceback" in entry["exception"]
    assert "ValueError: conversion broke" in entry["exception"]


def test_text_lines_keep_fields_as_key_value_pairs():
    # The text format: time, level, logger, event, then key=value (quoted when needed).
    line = build_formatter("text").format(
        record("message failed", logging.WARNING, ticket="SUP-2", error="Jira answered 503")
    )
    assert " WARNING ticket_manager.pipeline: message failed " in line
    assert 'ticket=SUP-2 error="Jira answered 503"' in line


def test_fields_not_meant_for_logs_are_not_printed():
    # Only the known event fields are printed: an unexpected extra (a body) is not.
    for log_format in ("text", "json"):
        line = build_formatter(log_format).format(record(body="Dear support, my password is"))
        assert "Dear support" not in line


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize(
    "leak",
    [
        f"Authorization: Bearer {JWT}",
        f"{{'Authorization': 'Bearer {API_KEY}'}}",
        f"sent bearer {API_KEY}",
        f"key {API_KEY} refused",
        f"token {JWT} expired",
        "Authorization: Basic YWxpY2U6c2VjcmV0LXBhc3N3b3Jk",
        "postgresql+psycopg://tickets:hunter2-db-pass@db.internal/tickets",
        f"POST /token client_secret={CLIENT_SECRET}&grant_type=client_credentials",
        f"the secret is {CLIENT_SECRET}",
    ],
)
def test_credentials_are_masked_in_either_format(leak, log_format):
    # Whatever a log call or a library puts in a line, credentials come out masked.
    formatter = build_formatter(log_format, secrets=[CLIENT_SECRET])
    for line in (
        formatter.format(record("call failed", error=leak)),
        formatter.format(record(f"call failed: {leak}")),
    ):
        for secret in (
            JWT,
            API_KEY,
            CLIENT_SECRET,
            "hunter2-db-pass",
            "YWxpY2U6c2VjcmV0LXBhc3N3b3Jk",
        ):
            assert secret not in line
        assert REDACTED in line
        if log_format == "json":
            assert json.loads(line)["event"].startswith("call failed")


def test_the_public_part_of_an_api_key_is_kept():
    # The key's id says which key was used without being the key.
    line = build_formatter("text").format(record(f"refused {API_KEY}"))
    assert f"tm_3f9a1c2e_{REDACTED}" in line


@pytest.fixture
def log_setup():
    """Put the log handlers, their formats and our logger's level back after the test."""
    loggers = (logging.getLogger(), logging.getLogger("ticket_manager"))
    saved = [(logger, list(logger.handlers), logger.level, logger.propagate) for logger in loggers]
    formats = [(h, h.formatter) for logger in loggers for h in logger.handlers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    for handler, formatter in formats:
        handler.setFormatter(formatter)


def test_configuring_twice_keeps_one_handler_and_applies_the_last(log_setup, capsys):
    # create_app runs for every app: the handler is reused, its format and level replaced.
    configure_logging(load_settings({}))
    configure_logging(load_settings({"LOG_FORMAT": "json", "LOG_LEVEL": "warning"}))
    ours = logging.getLogger("ticket_manager")
    root = logging.getLogger()
    handlers = {h for h in [*ours.handlers, *root.handlers] if isinstance(h, StderrHandler)}
    assert len(handlers) == 1
    log = logging.getLogger("ticket_manager.worker")
    log.info("sync round done", extra={"mailbox": "support@example.com"})
    log.warning("mailbox not synced", extra={"mailbox": "support@example.com"})
    logging.getLogger("jira.resilientsession").warning("Got recoverable error")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == [
        "mailbox not synced",
        "Got recoverable error",
    ]
    configure_logging()  # without settings: the configuration stands
    assert ours.handlers.count(handlers.pop()) == 1


@pytest.mark.parametrize(
    ("changes", "key"),
    [({"LOG_FORMAT": "xml"}, "LOG_FORMAT"), ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL")],
)
def test_log_keys_are_checked(changes, key):
    # A wrong log key stops start-up with an error naming it.
    with pytest.raises(ConfigError) as raised:
        load_settings(changes)
    assert raised.value.key == key


def test_a_json_run_of_the_pipeline_and_the_api_logs_no_body_and_no_secret(
    make_api, log_setup, capsys
):
    # The service's own stderr, in JSON: every line parses, and no email body, client secret,
    # Jira API token or API key is in it, whatever happened (tickets, rejections, failures).
    api = make_api(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    capsys.readouterr()  # the test database's migration, logged by Alembic its own way
    pipeline = api.pipeline
    accounts = pipeline.sandbox.accounts
    body = "Our door code is 4711-PURPLE-ELEPHANT, please fix the badge reader."
    pipeline.deliver(subject="Badge reader", body=body)
    pipeline.deliver(subject="Spam", body=body, sender="x@evil.org")
    pipeline.run_once()
    pipeline.deliver(subject="Jira fails", body=body, sender="bob@example.com")
    pipeline.sandbox.jira.controls.fail_next(
        1, status=500, path_contains="/rest/api/3/issue", method="POST"
    )
    pipeline.run_once()
    key = api.key("tickets:read", "tickets:write")
    created = api.client("tickets:write").post("/tickets", json={"title": "Via API", "body": body})
    assert created.status_code == 201
    assert api.anonymous().get("/tickets").status_code == 401
    refused = requests.get(
        f"{api.base_url}/tickets", headers={"Authorization": f"Bearer {key}x"}, timeout=30
    )
    assert refused.status_code == 401

    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if '"logger": "ticket_manager' in line]
    entries = [json.loads(line) for line in ours]
    events = {entry["event"] for entry in entries}
    assert {"ticket created", "message rejected", "message failed", "email sent"} <= events
    created_event = next(e for e in entries if e["event"] == "ticket created")
    assert created_event["mailbox"] == "support@example.com"
    assert created_event["ticket"].startswith("SUP-")
    assert created_event["message_id"]
    for forbidden in (
        "4711-PURPLE-ELEPHANT",
        accounts.client_secret,
        accounts.jira_api_token,
        key,
        key.rsplit("_", 1)[1],
    ):
        assert forbidden not in err


def test_the_worker_command_writes_only_json_lines(pipeline):
    # `handle-incoming-email` with LOG_FORMAT=json: every line on stderr is one JSON event,
    # the Jira client's retry of a 503 included.
    import os
    import subprocess
    import sys

    pipeline.deliver(subject="Printer jammed", body="The code is 4711-PURPLE-ELEPHANT.")
    pipeline.sandbox.jira.controls.fail_next(
        1, status=503, retry_after=0, path_contains="/rest/api/3/issue", method="POST"
    )
    result = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email", "--once"],
        env={"PATH": os.environ.get("PATH", ""), **pipeline.env, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    events = [entry["event"] for entry in entries]
    assert "worker started" in events
    assert "ticket created" in events
    assert any("jira" in entry["logger"] for entry in entries)  # the 503 and its retry
    assert "4711-PURPLE-ELEPHANT" not in result.stderr
    assert pipeline.sandbox.accounts.client_secret not in result.stderr
