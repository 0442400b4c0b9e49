"""Access tokens for Microsoft Graph, from the Microsoft identity platform through MSAL.

MSAL does the protocol (discovery, token requests, caching, refresh); this module only picks
the application type for the configured flow, points MSAL at the configured authority and
CA bundle, and turns MSAL's error dictionaries into :class:`SignInError` with advice.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import msal
import msal.exceptions
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from ticket_manager.config import Settings
from ticket_manager.graph.errors import SignInError

log = logging.getLogger("ticket_manager.graph.auth")

REAUTHENTICATE = "run `flask o365 authenticate` to sign in again"
CA_BUNDLE_HINT = (
    "if a proxy inspects HTTPS, point REQUESTS_CA_BUNDLE at a file with its CA certificate"
)


@contextmanager
def reaching_identity_platform(settings: Settings) -> Iterator[None]:
    """Turn what MSAL lets through from the network into one :class:`SignInError` line.

    MSAL asks the identity platform for the tenant's configuration while its client object is
    being created, and raises whatever ``requests`` raised, or a ``ValueError`` for a tenant
    the platform does not know; these are not in MSAL's error dictionaries.
    """
    host = urlsplit(settings.authority_host).netloc or settings.authority_host
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise SignInError(
            f"the identity platform at {host} presented a certificate this machine does not "
            f"trust ({_root_cause(exc)}); {CA_BUNDLE_HINT}",
            error="untrusted_certificate",
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise SignInError(
            f"cannot reach the identity platform at {host} ({_root_cause(exc)}); check the "
            "network, the proxy (HTTPS_PROXY) and O365_AUTHORITY_HOST",
            error="unreachable",
        ) from None
    except (requests.exceptions.HTTPError, msal.exceptions.MsalServiceError) as exc:
        # MSAL raises its own error for a 5xx answer to the tenant discovery.
        response = getattr(exc, "response", None)
        status = response.status_code if response is not None else str(exc).split(":")[-1]
        raise SignInError(
            f"the identity platform at {host} answered HTTP {str(status).strip()}: it is "
            "failing or overloaded; try again in a few minutes",
            error="unavailable",
        ) from None
    except ValueError as exc:
        if "authority" not in str(exc).lower():
            raise
        raise SignInError(
            f"the identity platform at {host} does not know the tenant "
            f"{settings.tenant_id!r}; check O365_TENANT_ID (the directory (tenant) id of the "
            "app registration)",
            error="invalid_tenant",
        ) from None


def _client_credential(settings: Settings) -> str | dict | None:
    """The secret, or a certificate's key (MSAL signs a client assertion with it, PS256)."""
    if settings.client_certificate:
        pem = Path(settings.client_certificate).read_text()
        certificate = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
        return {"private_key": pem, "public_certificate": certificate}
    return settings.client_secret.reveal() or None


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a network error, in words (not the whole urllib3 chain)."""
    text = str(exc)
    for marker, words in (
        ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("No route to host", "no route to host"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed by the server"),
    ):
        if marker in text:
            if marker == "CERTIFICATE_VERIFY_FAILED" and ":" in text.split(marker, 1)[1]:
                detail = text.split(marker, 1)[1].split("certificate verify failed:", 1)[-1]
                return f"certificate verify failed: {detail.split('(')[0].strip()}"
            return words
    return exc.__class__.__name__


class TokenStore(Protocol):
    """Where a delegated sign-in's MSAL cache lives between processes."""

    def load_into(self, cache: msal.SerializableTokenCache) -> bool: ...

    def save(self, cache: msal.SerializableTokenCache) -> None: ...


class TokenProvider:
    """Hands out a valid Graph access token for the configured app registration and flow."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        store: TokenStore | None = None,
    ) -> None:
        settings.require_microsoft()
        self.settings = settings
        self.store = store
        self.cache = msal.SerializableTokenCache()
        self._lock = threading.Lock()
        authority = f"{settings.authority_host}/{settings.tenant_id}"
        host = urlsplit(settings.authority_host).hostname or ""
        common = {
            "authority": authority,
            "token_cache": self.cache,
            "http_client": session,
            # MSAL asks login.microsoftonline.com to vouch for unknown hosts; a national cloud
            # is known to MSAL, and any other host (an ADFS proxy, the emulator) is trusted as
            # configured, since that request cannot succeed for it.
            "instance_discovery": host in WELL_KNOWN_AUTHORITY_HOSTS,
        }
        with reaching_identity_platform(settings):
            if settings.auth_flow == "device" or (
                settings.auth_flow == "authorization"
                and not (settings.client_secret or settings.client_certificate)
            ):
                # No secret: the registration is a public client (device code, or a desktop
                # redirect URI), so MSAL must not try to authenticate the app itself.
                self.app: msal.ClientApplication = msal.PublicClientApplication(
                    settings.client_id, **common
                )
            else:
                self.app = msal.ConfidentialClientApplication(
                    settings.client_id, client_credential=_client_credential(settings), **common
                )

    @property
    def scopes(self) -> list[str]:
        return self.settings.graph_scopes

    def access_token(self) -> str:
        """A token valid for at least a few minutes; MSAL refreshes it from its cache."""
        with reaching_identity_platform(self.settings):
            return self._access_token()

    def _access_token(self) -> str:
        if self.settings.auth_flow == "credentials":
            return self._token_from(self.app.acquire_token_for_client(scopes=self.scopes))
        with self._lock:
            if self.store is not None:
                self.store.load_into(self.cache)
            accounts = self.app.get_accounts()
            if not accounts:
                raise SignInError(f"no Microsoft 365 account is signed in: {REAUTHENTICATE}")
            result = self.app.acquire_token_silent_with_error(self.scopes, account=accounts[0])
            if result is None:
                raise SignInError(f"the stored sign-in has no usable token: {REAUTHENTICATE}")
            token = self._token_from(result)
            self._save()
            return token

    def access_token_expiry(self) -> datetime | None:
        """When the cached Graph access token expires (after :meth:`access_token`), if known."""
        moments = [
            int(entry["expires_on"])
            for entry in self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
            if str(entry.get("expires_on", "")).isdigit()
        ]
        return datetime.fromtimestamp(max(moments), UTC) if moments else None

    def signed_in_username(self) -> str | None:
        """Who the stored delegated sign-in belongs to, if anyone."""
        accounts = self.app.get_accounts()
        return accounts[0].get("username") if accounts else None

    def _save(self) -> None:
        if self.store is not None:
            self.store.save(self.cache)

    def initiate_auth_code_flow(self, redirect_uri: str) -> dict:
        """Start the delegated sign-in: the returned flow's ``auth_uri`` is for the browser."""
        with reaching_identity_platform(self.settings), warnings.catch_warnings():
            # MSAL recommends response_mode=form_post, which needs a web server to receive the
            # answer; the person pastes the address the browser lands on, so it is the query.
            warnings.filterwarnings("ignore", message="response_mode=", category=UserWarning)
            return self.app.initiate_auth_code_flow(self.scopes, redirect_uri=redirect_uri)

    def complete_auth_code_flow(self, flow: dict, auth_response: dict) -> str:
        """Finish the delegated sign-in with the query of the URL the browser was sent to."""
        try:
            with reaching_identity_platform(self.settings):
                result = self.app.acquire_token_by_auth_code_flow(flow, auth_response)
        except ValueError as exc:  # MSAL: state mismatch or a reply to another sign-in
            raise SignInError(f"the pasted URL does not answer this sign-in: {exc}") from None
        token = self._token_from(result)
        self._save()
        return token

    def initiate_device_flow(self) -> dict:
        """Start the device-code sign-in: ``message`` tells the person where to type the code."""
        with reaching_identity_platform(self.settings):
            flow = self.app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            self._token_from(flow)
        return flow

    def complete_device_flow(self, flow: dict) -> str:
        """Wait for the person to enter the device code, then return the token."""
        with reaching_identity_platform(self.settings):
            result = self.app.acquire_token_by_device_flow(flow)
        token = self._token_from(result)
        self._save()
        return token

    @staticmethod
    def _token_from(result: dict | None) -> str:
        if result and "access_token" in result:
            return result["access_token"]
        result = result or {}
        error = result.get("error", "unknown_error")
        codes = [int(c) for c in result.get("error_codes", []) if str(c).isdigit()]
        description = (result.get("error_description") or "").splitlines()[0:1]
        detail = description[0] if description else error
        if error == "invalid_client":
            advice = "check O365_CLIENT_ID and O365_CLIENT_SECRET (the secret may have expired)"
        elif error == "invalid_grant":
            advice = f"the sign-in has expired or was revoked: {REAUTHENTICATE}"
        elif error in ("unauthorized_client", "invalid_scope", "consent_required"):
            advice = "check the app registration's permissions and admin consent"
        else:
            advice = "see the identity platform's answer above"
        # The caller says it in one line; this record is for the log's structured fields.
        log.debug("sign-in failed", extra={"error": error, "error_codes": codes})
        raise SignInError(f"sign-in failed ({detail}); {advice}", error=error, codes=codes)
