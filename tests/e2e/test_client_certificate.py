"""App-only sign-in with a client certificate instead of a secret (MSAL client assertion)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def certificate_file(path, days: int = 365):
    """A PEM file with a new private key and its self-signed certificate, as `openssl` makes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ticket-manager")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(key_pem + cert_pem)
    return path, cert_pem


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ticket_manager", *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def certificate_env(sandbox, sandbox_env, tmp_path):
    """The sandbox configuration with a certificate instead of a secret."""
    path, cert_pem = certificate_file(tmp_path / "app.pem", days=20)
    env = {**sandbox_env, "O365_CLIENT_SECRET": "", "O365_CLIENT_CERTIFICATE": str(path)}
    return env, cert_pem


def test_a_registered_certificate_signs_in_without_a_secret(sandbox, certificate_env):
    # The certificate uploaded to the registration gets an app-only token; no secret is set.
    env, cert_pem = certificate_env
    sandbox.identity.register_client_certificate(sandbox.accounts.client_id, cert_pem)
    result = run(["o365", "authenticate"], env)
    assert result.returncode == 0, result.stderr
    assert "App-only sign-in works" in result.stdout


def test_an_unregistered_certificate_is_refused_in_one_line(sandbox, certificate_env):
    # A certificate the registration does not have: the identity platform's reason, one line.
    env, _cert_pem = certificate_env
    result = run(["o365", "authenticate"], env)
    assert result.returncode == 1
    assert "AADSTS700027" in result.stderr and "Key was not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_certificate_about_to_expire_is_warned_about(sandbox, certificate_env):
    # A certificate valid 20 more days: `flask o365 status` says when and what to do.
    env, cert_pem = certificate_env
    sandbox.identity.register_client_certificate(sandbox.accounts.client_id, cert_pem)
    assert run(["db", "upgrade"], env).returncode == 0
    result = run(["o365", "status"], env)
    assert "the client certificate (O365_CLIENT_CERTIFICATE) expires on" in result.stdout
    assert "upload a new certificate" in result.stdout
