"""A bad day outside the product: each command says what is wrong in one line and exits 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

COMMANDS = [
    ["check"],
    ["o365", "status"],
    ["o365", "authenticate"],
    ["o365", "handle-incoming-email", "--once"],
]


def run(args: list[str], env: dict[str, str], cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ticket_manager", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ready_env(sandbox_env) -> dict[str, str]:
    """The sandbox configuration with its database migrated, so only Microsoft can fail."""
    result = run(["db", "upgrade"], sandbox_env)
    assert result.returncode == 0, result.stderr
    return sandbox_env


def assert_one_line_naming(result: subprocess.CompletedProcess, *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if all(w in line for w in words)]
    assert lines, output


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unknown_tenant_is_named(ready_env, args):
    # A tenant id the identity platform does not know: one line saying to check O365_TENANT_ID.
    env = {**ready_env, "O365_TENANT_ID": "00000000-0000-0000-0000-00000000dead"}
    assert_one_line_naming(run(args, env), "does not know the tenant", "O365_TENANT_ID")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unreachable_identity_platform_is_named(ready_env, unused_port, args):
    # Nothing listens at the authority host: one line saying it cannot be reached, and why.
    env = {**ready_env, "O365_AUTHORITY_HOST": f"https://127.0.0.1:{unused_port}"}
    assert_one_line_naming(
        run(args, env), "cannot reach the identity platform", "connection refused"
    )


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_untrusted_certificate_names_requests_ca_bundle(ready_env, args):
    # A certificate this machine does not trust (an inspecting proxy): the REQUESTS_CA_BUNDLE hint.
    system_bundle = next(
        (
            path
            for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
            if os.path.exists(path)
        ),
        None,
    )
    if system_bundle is None:
        import certifi

        system_bundle = certifi.where()
    env = {**ready_env, "REQUESTS_CA_BUNDLE": system_bundle, "SSL_CERT_FILE": system_bundle}
    assert_one_line_naming(run(args, env), "does not trust", "REQUESTS_CA_BUNDLE")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_wrong_client_secret_is_named(ready_env, args):
    # A wrong secret: the identity platform's reason, and which keys to check.
    env = {**ready_env, "O365_CLIENT_SECRET": "not-the-secret"}
    assert_one_line_naming(run(args, env), "AADSTS7000215", "O365_CLIENT_SECRET")


def test_identity_platform_failing_is_named(sandbox, ready_env):
    # The identity platform answers 503 to the tenant discovery: one line, try again later.
    sandbox.identity.controls.fail_next(count=50, status=503, path_contains="openid-configuration")
    assert_one_line_naming(
        run(["o365", "authenticate"], ready_env), "answered HTTP 503", "try again"
    )


# -- the database ------------------------------------------------------------------------------


def test_db_upgrade_on_an_unreachable_database_says_so_in_one_line(sandbox_env, unused_port):
    # `flask db upgrade` against a closed port: connection refused, not a traceback.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{unused_port}/test"
    result = run(["db", "upgrade"], {**sandbox_env, "SQLALCHEMY_DATABASE_URI": url})
    assert_one_line_naming(result, "cannot connect to the database", "Connection refused")
    assert "SQLALCHEMY_DATABASE_URI" in result.stderr


def test_worker_refuses_an_unreachable_database_without_blaming_the_schema(
    sandbox_env, unused_port
):
    # The worker on an unreachable database stops at once, advising the server and URI.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{unused_port}/test"
    env = {**sandbox_env, "SQLALCHEMY_DATABASE_URI": url}
    result = run(["o365", "handle-incoming-email", "--once"], env)
    assert_one_line_naming(result, "the worker cannot start", "Connection refused")
    assert "flask db upgrade" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_worker_refuses_a_database_without_the_schema(sandbox_env, tmp_path):
    # The worker on an empty database stops at once and says to run `flask db upgrade`.
    env = {**sandbox_env, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = run(["o365", "handle-incoming-email"], env)
    assert_one_line_naming(result, "the worker cannot start", "run `flask db upgrade`")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_once_exits_1_when_no_mailbox_could_be_synced(ready_env, sandbox):
    # Graph refuses every round: `--once` says nothing could be synced and exits 1.
    sandbox.graph.controls.fail_next(count=200, status=403, retry_after=None)
    result = run(["o365", "handle-incoming-email", "--once"], ready_env)
    assert_one_line_naming(result, "no mailbox could be synced")


def test_sign_in_shows_the_consent_url_first_and_no_library_warning(ready_env):
    # `flask o365 authenticate` (authorization flow): the URL to open, no MSAL UserWarning.
    env = {**ready_env, "O365_AUTH_FLOW": "authorization", "O365_CLIENT_SECRET": ""}
    env["SECRET_KEY"] = "Vx3qL9pZt2Rk8mWc4nYh7sBd1fGj6eQa5uTz0oXi"
    process = subprocess.Popen(
        [sys.executable, "-m", "ticket_manager", "o365", "authenticate"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate("\n", timeout=120)
    assert out.startswith("Visit the following url to give consent:\nhttps://"), out + err
    assert "Warning" not in err and "INFO" not in err, err


def test_an_unreachable_database_is_a_503_with_its_reason_never_a_500(
    sandbox_env, serve, unused_port
):
    # With the database down, /health/ready names the cause and /status answers 503, not 500.
    import requests

    from ticket_manager import create_app

    url = f"postgresql+psycopg://postgres@127.0.0.1:{unused_port}/test"
    app = create_app({**sandbox_env, "SQLALCHEMY_DATABASE_URI": url, "API_RATE_LIMIT": "off"})
    base = serve(app, tls=False) + "/api/tickets/v3"
    client = requests.Session()
    client.trust_env = False
    ready = client.get(f"{base}/health/ready", timeout=30)
    assert ready.status_code == 503
    # Anonymous readiness says only that it fails (the reason is for keys with metrics:read).
    assert ready.json()["status"] == "failing"
    assert "postgres@" not in ready.text
    status = client.get(
        f"{base}/status", headers={"Authorization": "Bearer tm_00000000_" + "x" * 43}, timeout=30
    )
    assert status.status_code == 503, status.text
    assert status.json()["type"].endswith("database-unavailable")
