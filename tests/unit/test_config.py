"""Configuration: every key of the original README is read, checked, and reported clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ticket_manager.config import ConfigError, Secret, load_settings

SEED_EXAMPLE = {
    "SQLALCHEMY_DATABASE_URI": "sqlite:///example.db",
    "APPLICATION_CONTEXT": "/api/tickets/v3",
    "OPENAPI": "3.0.3",
    "TICKET_CLIENT_APP": "https://example.com/",
    "MAILBOX": "mailbox@example.com",
    "O365_TENANT_ID": "8f3b1c2d-5e6f-4a7b-9c8d-0e1f2a3b4c5d",
    "O365_CLIENT_ID": "0b5c7e2a-1d3f-4e5a-8b6c-7d8e9f0a1b2c",
    "O365_CLIENT_SECRET": "very-secret-value",
    "O365_SCOPES": "offline_access,message_all,message_all_shared",
    "ATLASSIAN_URL": "https://example.atlassian.net",
    "ATLASSIAN_USER": "me@example.com",
    "ATLASSIAN_API_TOKEN": "jira-token-value",
    "JIRA_TICKET_TYPE": "Task",
    "JIRA_TICKET_LABELS": "ticket",
    "JIRA_TICKET_LABEL_CATEGORIES": "general,bug",
    "JIRA_TICKET_LABEL_DEFAULT_CATEGORY": "general",
    "JIRA_SUPPORT_BOARD": "support",
    "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
    "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
    "EMAIL_WHITELISTED_DOMAINS": "example.com",
    "EMAIL_BLACKLIST": "malicious@example.com",
}


def settings_with(**changes: str | None):
    env = dict(SEED_EXAMPLE)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return load_settings(env)


def test_seed_example_is_read_into_typed_settings():
    # The original README's example .env loads as it is, with every key understood.
    settings = settings_with()
    assert settings.mailboxes == ("mailbox@example.com",)
    assert settings.application_context == "/api/tickets/v3"
    assert settings.ticket_labels == ("ticket",)
    assert settings.label_categories == ("general", "bug")
    assert settings.default_category == "general"
    assert [b.name for b in settings.boards] == ["support"]
    assert settings.default_board.setting == "JIRA_SUPPORT_BOARD"
    assert settings.default_board.name == "support"
    assert settings.whitelisted_domains == ("example.com",)
    assert settings.blacklist == frozenset({"malicious@example.com"})
    assert settings.auth_flow == "authorization"
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.graph_url == "https://graph.microsoft.com/v1.0"


def test_scope_aliases_become_graph_permissions_without_reserved_scopes():
    # The O365 library's aliases map to Graph permissions; offline_access is left to MSAL.
    settings = settings_with()
    assert settings.scopes == (
        "Mail.ReadWrite",
        "Mail.Send",
        "Mail.ReadWrite.Shared",
        "Mail.Send.Shared",
    )
    assert settings.graph_scopes[0] == "https://graph.microsoft.com/Mail.ReadWrite"
    app_only = settings_with(O365_AUTH_FLOW="credentials")
    assert app_only.graph_scopes == ["https://graph.microsoft.com/.default"]


def test_defaults_apply_when_keys_are_absent():
    # An empty configuration still starts, with the documented defaults.
    settings = load_settings({})
    assert settings.application_context == "/api/tickets/v3"
    assert settings.openapi_version == "3.0.3"
    assert settings.ticket_type == "Task"
    assert settings.database_uri.endswith("/ticket_manager.db")
    assert settings.boards == ()
    assert settings.whitelisted_domains == ()


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"JIRA_DEFAULT_BOARD": "JIRA_SALES_BOARD"}, "JIRA_DEFAULT_BOARD", "JIRA_BOARDS"),
        ({"JIRA_SUPPORT_BOARD": None}, "JIRA_SUPPORT_BOARD", "board name"),
        ({"JIRA_BOARDS": "support"}, "JIRA_BOARDS", "names of other keys"),
        ({"O365_AUTH_FLOW": "password"}, "O365_AUTH_FLOW", "authorization, credentials, device"),
        ({"MAILBOX": "support"}, "MAILBOX", "email address"),
        ({"EMAIL_BLACKLIST": "bad user@x.org"}, "EMAIL_BLACKLIST", "email address"),
        ({"EMAIL_WHITELISTED_DOMAINS": "exa mple.com"}, "EMAIL_WHITELISTED_DOMAINS", "domain"),
        ({"ATLASSIAN_URL": "example.atlassian.net"}, "ATLASSIAN_URL", "http"),
        ({"O365_AUTHORITY_HOST": "http://login.example"}, "O365_AUTHORITY_HOST", "https://"),
        ({"APPLICATION_CONTEXT": "api/tickets"}, "APPLICATION_CONTEXT", "URL path"),
        ({"OPENAPI": "2.0"}, "OPENAPI", "OpenAPI 3"),
        ({"SQLALCHEMY_DATABASE_URI": "not a url"}, "SQLALCHEMY_DATABASE_URI", "database URL"),
        ({"SQLALCHEMY_DATABASE_URI": "mysql://x@y/z"}, "SQLALCHEMY_DATABASE_URI", "SQLite"),
        ({"JIRA_TICKET_LABELS": "needs triage"}, "JIRA_TICKET_LABELS", "spaces"),
        ({"JIRA_TICKET_LABEL_DEFAULT_CATEGORY": "sales"}, "JIRA_TICKET_LABEL_DEFAULT_CATEGORY", ""),
        (
            {"O365_AUTH_FLOW": "credentials", "O365_CLIENT_SECRET": None},
            "O365_CLIENT_SECRET",
            "credentials",
        ),
        ({"JIRA_TICKET_LABLES": "x"}, "JIRA_TICKET_LABLES", "did you mean JIRA_TICKET_LABELS"),
        ({"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"}, "REQUESTS_CA_BUNDLE", "does not exist"),
    ],
)
def test_a_wrong_key_is_named_with_what_is_expected(changes, key, words):
    # A malformed or missing key fails with a message naming the key and the expectation.
    with pytest.raises(ConfigError) as caught:
        settings_with(**changes)
    assert caught.value.key == key
    message = caught.value.format_message()
    assert message.startswith(f"configuration key {key}:")
    assert words in message
    assert "\n" not in message


def test_postgres_urls_use_psycopg3():
    # A plain postgresql:// URL is pointed at psycopg 3, the driver that is installed.
    settings = settings_with(SQLALCHEMY_DATABASE_URI="postgresql://u:p@db.example/tickets")
    assert settings.database_uri == "postgresql+psycopg://u:p@db.example/tickets"


def test_secrets_never_show_in_repr():
    # Printing the settings (in a log or a traceback) shows no secret.
    settings = settings_with()
    text = repr(settings)
    assert "very-secret-value" not in text
    assert "jira-token-value" not in text
    assert settings.client_secret.reveal() == "very-secret-value"
    assert str(Secret("x")) == "Secret('********')"


def test_require_names_the_missing_key():
    # A command that needs a key the configuration lacks says which one.
    settings = settings_with(ATLASSIAN_API_TOKEN=None)
    with pytest.raises(ConfigError, match="ATLASSIAN_API_TOKEN: is required"):
        settings.require_jira()


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    # Values come from .env in the working directory; the process environment overrides them.
    (tmp_path / ".env").write_text("MAILBOX=fromfile@example.com\nJIRA_TICKET_TYPE=Bug\n")
    code = (
        "from ticket_manager.config import load_settings; s = load_settings(); "
        "print(s.mailboxes[0], s.ticket_type)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"JIRA_TICKET_TYPE": "Story", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["fromfile@example.com", "Story"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("JIRA_DEFAULT_BOARD", "JIRA_NOPE_BOARD"), ("O365_AUTH_FLOW", "magic"), ("MAILBOX", "nope")],
)
def test_cli_prints_one_clear_line_and_no_traceback(tmp_path, key, value):
    # `ticket-manager` with a bad key exits non-zero with a one-line error, no traceback.
    env = {
        "PATH": "/usr/bin:/bin",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
        "JIRA_SUPPORT_BOARD": "support",
        "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
        key: value,
    }
    result = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "db", "current"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]], result.stderr
    assert f"configuration key {key}:" in lines[0]
    assert "Traceback" not in result.stderr


def test_pipeline_settings_have_defaults_and_are_checked():
    # The worker's knobs default sensibly and reject nonsense with the key named.
    settings = settings_with()
    assert settings.poll_interval == 2
    assert settings.graph_request_budget == 9500
    assert settings_with(O365_REQUEST_BUDGET="0").graph_request_budget == 0  # pacing off
    assert settings.max_attachment_size == 10 * 1024 * 1024
    assert settings.mark_as_read is True
    assert settings_with(JIRA_MAX_ATTACHMENT_SIZE="512KB").max_attachment_size == 512 * 1024
    for key, value in [
        ("O365_POLL_INTERVAL", "soon"),
        ("O365_REQUEST_BUDGET", "-1"),
        ("PROCESSING_CONCURRENCY", "65"),
        ("O365_MARK_AS_READ", "maybe"),
        ("JIRA_MAX_ATTACHMENT_SIZE", "big"),
        ("O365_NOTIFICATION_URL", "http://hooks.example.com/graph"),
    ]:
        with pytest.raises(ConfigError) as caught:
            settings_with(**{key: value})
        assert caught.value.key == key


def test_mailbox_boards_route_each_mailbox_to_its_board():
    # MAILBOX_BOARDS maps a mailbox to one of the JIRA_BOARDS keys; others use the default.
    settings = settings_with(
        MAILBOX="support@example.com,sales@example.com",
        JIRA_SALES_BOARD="sales",
        JIRA_BOARDS="JIRA_SUPPORT_BOARD,JIRA_SALES_BOARD",
        MAILBOX_BOARDS="Sales@example.com:JIRA_SALES_BOARD",
    )
    assert settings.board_for("sales@example.com").name == "sales"
    assert settings.board_for("support@example.com").name == "support"
    with pytest.raises(ConfigError, match="MAILBOX_BOARDS"):
        settings_with(MAILBOX_BOARDS="other@example.com:JIRA_SUPPORT_BOARD")
    with pytest.raises(ConfigError, match="JIRA_NOPE_BOARD"):
        settings_with(MAILBOX_BOARDS="mailbox@example.com:JIRA_NOPE_BOARD")


def test_a_board_key_may_name_a_project_directly():
    # JIRA_<NAME>_BOARD=project:KEY is accepted; a malformed key is refused naming the key.
    settings = settings_with(JIRA_SUPPORT_BOARD="project:HD")
    assert settings.board("JIRA_SUPPORT_BOARD").name == "project:HD"
    assert settings.request_type == "Emailed request"
    with pytest.raises(ConfigError, match="JIRA_SUPPORT_BOARD: expected project:KEY"):
        settings_with(JIRA_SUPPORT_BOARD="project:")


def test_custom_field_values_must_be_a_json_object():
    # JIRA_CUSTOM_FIELDS takes a JSON object; anything else is refused with an example.
    settings = settings_with(JIRA_CUSTOM_FIELDS='{"Customer tier": {"value": "Gold"}}')
    assert settings.custom_fields == {"Customer tier": {"value": "Gold"}}
    with pytest.raises(ConfigError, match="JIRA_CUSTOM_FIELDS"):
        settings_with(JIRA_CUSTOM_FIELDS='["x"]')
    with pytest.raises(ConfigError, match="JIRA_CUSTOM_FIELDS: expected a JSON object"):
        settings_with(JIRA_CUSTOM_FIELDS="{nope")
