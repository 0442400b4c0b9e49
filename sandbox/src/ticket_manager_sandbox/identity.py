"""An emulator of the Microsoft identity platform (v2.0 endpoints) for tests and the demo.

Ticket Manager signs in to Microsoft Graph with MSAL: app-only (client credentials) in
production, and delegated (authorization code or device code, then refresh tokens) for a
mailbox owner. This emulator serves the endpoints MSAL calls, in the wire format of
``login.microsoftonline.com``: OpenID discovery, instance discovery, JWKS, authorize, device
code and token, with AADSTS-shaped error bodies. It signs real RS256 JWTs, so the Graph
emulator (through :meth:`IdentityEmulator.validate_access_token`) and any JWT library (through
the JWKS) can check them.

Ticket Manager's own REST API can accept Entra ID access tokens too: a test registers the API
(:meth:`IdentityEmulator.register_api`) and client apps then get v2.0 access tokens for it,
with app roles (client credentials) or delegated scopes (authorization code, device code).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask, Response, redirect, request

from ticket_manager_sandbox.controls import SandboxControls
from ticket_manager_sandbox.resettable import Resettable

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE_IDS = (GRAPH_RESOURCE, GRAPH_APP_ID)
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MULTI_TENANT_SEGMENTS = ("common", "organizations")
DEFAULT_APP_ROLES = ("Mail.ReadWrite", "Mail.Send", "User.Read.All")
DEFAULT_DELEGATED_SCOPES = ("Mail.ReadWrite", "Mail.Send", "User.Read")
AUTH_CODE_LIFETIME = 600
DEVICE_CODE_LIFETIME = 900
DEVICE_CODE_INTERVAL = 5
REFRESH_TOKEN_MAX_INACTIVE = 90 * 24 * 3600

# The public-cloud entries the real instance discovery answers with; the emulator's own
# host is put first so a client that caches aliases treats it as its own cloud.
PUBLIC_CLOUD_METADATA = [
    {
        "preferred_network": "login.microsoftonline.com",
        "preferred_cache": "login.windows.net",
        "aliases": [
            "login.microsoftonline.com",
            "login.windows.net",
            "login.microsoft.com",
            "sts.windows.net",
        ],
    },
    {
        "preferred_network": "login.partner.microsoftonline.cn",
        "preferred_cache": "login.partner.microsoftonline.cn",
        "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    },
    {
        "preferred_network": "login.microsoftonline.de",
        "preferred_cache": "login.microsoftonline.de",
        "aliases": ["login.microsoftonline.de"],
    },
    {
        "preferred_network": "login.microsoftonline.us",
        "preferred_cache": "login.microsoftonline.us",
        "aliases": ["login.microsoftonline.us", "login.usgovcloudapi.net"],
    },
    {
        "preferred_network": "login-us.microsoftonline.com",
        "preferred_cache": "login-us.microsoftonline.com",
        "aliases": ["login-us.microsoftonline.com"],
    },
]
MICROSOFT_HOSTS = frozenset(alias for entry in PUBLIC_CLOUD_METADATA for alias in entry["aliases"])

OAUTH_STATUS = {"invalid_client": 401, "server_error": 500, "temporarily_unavailable": 503}


class IdentityError(Exception):
    """An OAuth error the real service reports as ``error`` plus an ``AADSTSnnnn:`` text."""

    def __init__(self, error: str, code: int, message: str, status: int | None = None) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status or OAUTH_STATUS.get(error, 400)


def invalid_grant() -> IdentityError:
    """The answer to a code, refresh token or device code the service does not recognise."""
    return IdentityError("invalid_grant", 70000, "Provided grant is invalid or malformed.")


def error_response(
    error: str,
    code: int,
    message: str,
    status: int,
    retry_after: int | None = None,
) -> Response:
    """The JSON error body of the token and discovery endpoints, as the real service sends it."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    body = {
        "error": error,
        # The documented error bodies put the trace details on their own CRLF-separated lines.
        "error_description": (
            f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {now}"
        ),
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{request.host_url}error?code={code}",
    }
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    response.headers["x-ms-request-id"] = trace_id
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def render_identity_error(status: int, retry_after: int | None) -> Response:
    """The body the real service answers with when it throttles or fails (fault knobs)."""
    if status == 429:
        return error_response(
            "temporarily_unavailable",
            90055,
            "TenantThrottlingError - There are too many incoming requests. Please try again later.",
            status,
            retry_after,
        )
    if status >= 500:
        return error_response(
            "temporarily_unavailable" if status == 503 else "server_error",
            90033 if status == 503 else 50000,
            "A transient error has occurred. Please try again."
            if status == 503
            else "There was an error issuing a token or an issue with our sign-in service.",
            status,
            retry_after,
        )
    return error_response(
        "invalid_request", 90014, "The request was rejected by the server.", status, retry_after
    )


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of JWT parts, PKCE challenges and client_info."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_uint(value: int) -> str:
    """A JWK big-endian unsigned integer (RFC 7518 section 6.3.1)."""
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def isoformat(epoch: float) -> str:
    """A UTC timestamp in the form AADSTS messages print dates."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")


def graph_consent(consented: Iterable[str]) -> set[str]:
    """The Graph permissions among consent records (an API's are full scope values)."""
    return {name for name in consented if "/" not in name}


@dataclass
class User:
    """A work account of the emulated tenant."""

    upn: str
    oid: str
    name: str

    @classmethod
    def from_dict(cls, raw: dict) -> User:
        """Fill in a stable oid and a display name when the test gave only a UPN."""
        upn = raw["upn"]
        oid = raw.get("oid") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{upn.lower()}"))
        name = raw.get("name") or upn.split("@")[0].replace(".", " ").title()
        return cls(upn=upn, oid=oid, name=name)


@dataclass
class ApiResource:
    """An app registration that exposes an API: Application ID URI, app id, roles and scopes."""

    app_id_uri: str
    client_id: str
    app_roles: dict[str, list[str]] = field(default_factory=dict)
    scopes: set[str] = field(default_factory=set)

    def names(self, resource: str) -> bool:
        """Whether a scope's resource part (URI or app id) names this API."""
        resource = resource.rstrip("/")
        return resource == self.app_id_uri or resource.lower() == self.client_id


@dataclass
class ScopeRequest:
    """A parsed ``scope`` parameter: one resource's permissions and the OpenID scopes asked for.

    The resource is Microsoft Graph unless ``api`` names a registered API.
    """

    permissions: set[str] = field(default_factory=set)
    oidc: set[str] = field(default_factory=set)
    qualified: bool = False
    default: bool = False
    resource: str = GRAPH_RESOURCE
    api: ApiResource | None = None

    def consent(self, granted: Iterable[str]) -> set[str]:
        """Consent records: Graph permissions by name, an API's by their full scope value."""
        if self.api is None:
            return set(granted)
        return {f"{self.api.app_id_uri}/{name}" for name in granted}


@dataclass
class AuthorizationCode:
    """What the authorize endpoint remembers about a code until it is redeemed."""

    client_id: str
    redirect_uri: str
    upn: str
    scopes: ScopeRequest
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    expires_at: float
    redeemed: bool = False


@dataclass
class RefreshGrant:
    """A refresh token and the consent it carries."""

    client_id: str
    upn: str
    consented: set[str]
    issued_at: float
    last_used: float
    expired: bool = False


@dataclass
class DeviceAuthorization:
    """A pending device-code sign-in, approved by a person at the verification page."""

    client_id: str
    user_code: str
    scopes: ScopeRequest
    expires_at: float
    upn: str | None = None
    declined: bool = False
    redeemed: bool = False


class SigningKey:
    """The RSA key and self-signed certificate that sign every token, published as a JWK."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self.private_key.public_key()
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.sandbox")]
        )
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self.private_key, hashes.SHA256())
        )
        der = certificate.public_bytes(serialization.Encoding.DER)
        self.certificate_b64 = base64.b64encode(der).decode("ascii")
        # The real service uses the certificate's SHA-1 thumbprint as both kid and x5t.
        self.kid = b64url(hashlib.sha1(der).digest())  # noqa: S324 - a thumbprint, not security

    def jwk(self, issuer: str) -> dict:
        """The key as the real JWKS lists it."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url_uint(numbers.n),
            "e": b64url_uint(numbers.e),
            "x5c": [self.certificate_b64],
            "issuer": issuer,
        }

    def sign(self, claims: dict, *, x5t: bool = True) -> str:
        """A compact RS256 JWT with the header the real service writes.

        v1.0 tokens carry the legacy ``x5t`` beside ``kid``; v2.0 access tokens only ``kid``.
        """
        headers = {"typ": "JWT", "x5t": self.kid, "kid": self.kid} if x5t else {"kid": self.kid}
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)


class IdentityEmulator(Resettable):
    """The Microsoft identity platform for one tenant, its app registrations and its users."""

    def __init__(
        self,
        tenant_id: str,
        clients: dict[str, str | None],
        users: list[dict],
        *,
        domains: list[str] | None = None,
        redirect_uris: dict[str, list[str]] | None = None,
        app_roles: dict[str, list[str]] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.clients = dict(clients)
        self.users = [User.from_dict(raw) for raw in users]
        upn_domains = {user.upn.split("@")[-1].lower() for user in self.users if "@" in user.upn}
        self.domains = {d.lower() for d in (domains or [])} | upn_domains
        self.redirect_uris = {k: list(v) for k, v in (redirect_uris or {}).items()}
        self.app_roles = {k: list(v) for k, v in (app_roles or {}).items()}
        self.default_app_roles = list(DEFAULT_APP_ROLES)
        self.default_delegated_scopes = list(DEFAULT_DELEGATED_SCOPES)
        self.access_token_lifetime = 3600
        # When access tokens are issued and expire (Unix seconds): tests may move it.
        self.clock: Callable[[], float] = time.time
        # Other names under which Graph's resource is asked for: the Graph emulator's own
        # origin, since a client derives the resource from the Graph URL it is given.
        self.graph_resources: set[str] = set(GRAPH_RESOURCE_IDS)
        self.refresh_token_max_inactive = REFRESH_TOKEN_MAX_INACTIVE
        self.device_code_lifetime = DEVICE_CODE_LIFETIME
        self.device_code_interval = DEVICE_CODE_INTERVAL
        self.allow_public_client_flows = True
        # Certificates uploaded to a client's registration, for client-assertion sign-in.
        self.client_certificates: dict[str, list[x509.Certificate]] = {}
        self.signed_in_user: str | None = self.users[0].upn if self.users else None
        self.issuer_host = "login.microsoftonline.com"
        self.key = SigningKey()
        self.previous_keys: list[SigningKey] = []
        self.apis: list[ApiResource] = []
        self._lock = threading.Lock()
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh_tokens: dict[str, RefreshGrant] = {}
        self._devices: dict[str, DeviceAuthorization] = {}
        self._device_by_user_code: dict[str, str] = {}
        self._tokens_valid_from: dict[str, float] = {}
        self._issued_access_tokens: dict[str, int] = {}
        self.tokens_issued: deque[dict] = deque(maxlen=1000)
        self.app = self._build_app()
        self.controls = SandboxControls("identity", render_identity_error)
        self.controls.state_dumper = self.dump_state
        self.controls.install(self.app)

    # -- knobs and helpers for tests -------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The v2.0 issuer of ID tokens and of the tenant's OpenID configuration."""
        return f"https://{self.issuer_host}/{self.tenant_id}/v2.0"

    @property
    def access_token_issuer(self) -> str:
        """The issuer of Graph access tokens (v1.0 token format, as Graph receives)."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    def sign_in_as(self, upn: str) -> None:
        """Choose which user signs in at the authorize and device-login pages."""
        self._user(upn)
        self.signed_in_user = upn

    def revoke_refresh_tokens(self, upn: str | None = None) -> None:
        """Revoke the sessions of one user (or all), as "revoke sessions" in Entra ID does."""
        now = time.time()
        with self._lock:
            for user in self.users:
                if upn is None or user.upn.lower() == upn.lower():
                    self._tokens_valid_from[user.upn.lower()] = now

    def expire_refresh_tokens(self) -> None:
        """Make every refresh token issued so far expire, as after long inactivity."""
        with self._lock:
            for grant in self._refresh_tokens.values():
                grant.expired = True

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far fail validate_access_token (sandbox only)."""
        with self._lock:
            self._issued_access_tokens.clear()

    def approve_device_code(self, user_code: str, upn: str | None = None) -> None:
        """Approve a device-code sign-in as the given user (default: the signed-in user)."""
        user = self._user(upn or self.signed_in_user)
        with self._lock:
            device = self._device_for_user_code(user_code)
            device.upn = user.upn

    def decline_device_code(self, user_code: str) -> None:
        """Decline a device-code sign-in, as a person pressing "Cancel" would."""
        with self._lock:
            self._device_for_user_code(user_code).declined = True

    def register_redirect_uri(self, client_id: str, redirect_uri: str) -> None:
        """Register a reply URL; a client with none registered accepts any (sandbox only)."""
        with self._lock:
            self.redirect_uris.setdefault(client_id, []).append(redirect_uri)

    def register_user(self, upn: str, name: str | None = None) -> User:
        """Add a work account to the tenant."""
        user = User.from_dict({"upn": upn, "name": name})
        with self._lock:
            self.users.append(user)
            self.domains.add(upn.split("@")[-1].lower())
        return user

    def register_client(self, client_id: str, secret: str | None = None) -> None:
        """Add a client app registration (``secret=None``: a public client)."""
        with self._lock:
            self.clients[client_id] = secret

    def register_client_certificate(self, client_id: str, certificate_pem: bytes) -> None:
        """Upload a certificate to a registration (Certificates & secrets > Certificates)."""
        with self._lock:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
            self.client_certificates.setdefault(client_id, []).append(certificate)

    def register_api(
        self,
        app_id_uri: str,
        *,
        client_id: str | None = None,
        app_roles: dict[str, list[str]] | None = None,
        scopes: Iterable[str] = (),
    ) -> ApiResource:
        """Register an app that exposes an API ("Expose an API" plus "App roles").

        ``app_roles`` maps client ids to the application permissions granted to them (they
        become ``roles`` of client-credentials tokens); ``scopes`` are the delegated
        permissions the API exposes. The client id defaults to one derived from the URI.
        """
        api = ApiResource(
            app_id_uri=app_id_uri.rstrip("/"),
            client_id=(
                client_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"api:{app_id_uri}"))
            ).lower(),
            app_roles={k: list(v) for k, v in (app_roles or {}).items()},
            scopes=set(scopes),
        )
        with self._lock:
            self.apis.append(api)
        return api

    def rotate_signing_key(self) -> SigningKey:
        """Sign new tokens with a fresh key; the JWKS keeps listing the previous one."""
        with self._lock:
            self.previous_keys = [self.key]
            self.key = SigningKey()
            return self.key

    def validate_access_token(self, token: str) -> dict | None:
        """Claims of a valid, unexpired Graph access token issued here, else None."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in [self.key, *self.previous_keys] if k.kid == kid)
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["RS256"],
                audience=list(GRAPH_RESOURCE_IDS),
                issuer=self.access_token_issuer,
                options={
                    "require": ["exp", "nbf", "iat", "aud", "iss", "tid", "oid"],
                    "verify_exp": False,  # checked below, on the emulator's clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.PyJWTError, StopIteration):
            return None
        if not claims["nbf"] <= self.clock() < claims["exp"]:
            return None
        with self._lock:
            if claims.get("uti") not in self._issued_access_tokens:
                return None
        return claims

    def dump_state(self) -> dict:
        """The emulator's state for ``GET /_sandbox/state`` (no secrets, no tokens)."""
        now = time.time()
        with self._lock:
            return {
                "tenant_id": self.tenant_id,
                "clients": sorted(self.clients),
                "users": [user.__dict__ for user in self.users],
                "signed_in_user": self.signed_in_user,
                "access_token_lifetime": self.access_token_lifetime,
                "pending_codes": sum(
                    1 for c in self._codes.values() if not c.redeemed and c.expires_at > now
                ),
                "refresh_tokens": len(self._refresh_tokens),
                "device_codes": [
                    {
                        "user_code": d.user_code,
                        "client_id": d.client_id,
                        "approved_by": d.upn,
                        "declined": d.declined,
                        "redeemed": d.redeemed,
                        "expired": d.expires_at <= now,
                    }
                    for d in self._devices.values()
                ],
                "tokens_issued": list(self.tokens_issued),
                "apis": [
                    {
                        "app_id_uri": api.app_id_uri,
                        "client_id": api.client_id,
                        "scopes": sorted(api.scopes),
                        "app_roles": api.app_roles,
                    }
                    for api in self.apis
                ],
            }

    # -- the Flask app ---------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(f"identity-emulator-{self.tenant_id}", static_folder=None)
        app.add_url_rule(
            "/<tenant>/v2.0/.well-known/openid-configuration",
            "openid_configuration",
            self._openid_configuration,
        )
        app.add_url_rule("/common/discovery/instance", "instance_discovery", self._discovery)
        app.add_url_rule("/<tenant>/discovery/v2.0/keys", "keys", self._keys)
        app.add_url_rule("/<tenant>/oauth2/v2.0/authorize", "authorize", self._authorize)
        app.add_url_rule(
            "/<tenant>/oauth2/v2.0/devicecode",
            "devicecode",
            self._devicecode,
            methods=["POST"],
        )
        app.add_url_rule(
            "/<tenant>/oauth2/v2.0/token", "token", self._token, methods=["GET", "POST"]
        )
        app.add_url_rule("/<tenant>/oauth2/v2.0/logout", "logout", self._logout)
        app.add_url_rule("/devicelogin", "devicelogin", self._devicelogin, methods=["GET", "POST"])
        app.register_error_handler(IdentityError, self._render_identity_error)
        return app

    def _render_identity_error(self, error: IdentityError) -> Response:
        return error_response(error.error, error.code, error.message, error.status)

    def _tenant_segment(self, tenant: str) -> str:
        """Accept the tenant id, a verified domain, common or organizations; else AADSTS90002."""
        lowered = tenant.lower()
        if lowered == self.tenant_id.lower() or lowered in self.domains:
            return self.tenant_id
        if lowered in MULTI_TENANT_SEGMENTS:
            return lowered
        raise IdentityError(
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud. Check with your subscription "
            "administrator, this may happen if there are no active subscriptions for the tenant.",
        )

    def _openid_configuration(self, tenant: str) -> Response:
        segment = self._tenant_segment(tenant)
        base = f"{request.host_url}{segment}"
        issuer_tenant = "{tenantid}" if segment in MULTI_TENANT_SEGMENTS else self.tenant_id
        config = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"https://{self.issuer_host}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{GRAPH_RESOURCE}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        return self._json(config)

    def _discovery(self) -> Response:
        api_version = request.args.get("api-version")
        if not api_version:
            raise IdentityError(
                "invalid_request", 90014, "The required field 'api-version' is missing."
            )
        own_host = request.host.lower()
        endpoint = request.args.get("authorization_endpoint")
        if endpoint:
            parts = urlsplit(endpoint)
            host = parts.netloc.lower()
            if parts.scheme != "https" or host not in MICROSOFT_HOSTS | {own_host}:
                raise IdentityError("invalid_instance", 50049, "Unknown or invalid instance.")
            path_parts = [p for p in parts.path.split("/") if p]
            tenant = path_parts[0] if path_parts else "common"
        else:
            host, path_parts, tenant = own_host, [], "common"
        # The answer mirrors the protocol version of the authorize endpoint it was asked about.
        version = "/v2.0" if "v2.0" in path_parts else ""
        body = {
            "tenant_discovery_endpoint": (
                f"https://{host}/{tenant}{version}/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [
                {"preferred_network": own_host, "preferred_cache": own_host, "aliases": [own_host]},
                *PUBLIC_CLOUD_METADATA,
            ],
        }
        return self._json(body)

    def _keys(self, tenant: str) -> Response:
        self._tenant_segment(tenant)
        keys = [self.key, *self.previous_keys]
        return self._json({"keys": [key.jwk(self.issuer) for key in keys]})

    # -- authorize endpoint ----------------------------------------------------------------

    def _authorize(self, tenant: str) -> Response:
        """Act as a user who signs in and consents, then redirect back to the app."""
        self._tenant_segment(tenant)
        args = request.args
        client_id = args.get("client_id", "")
        redirect_uri = args.get("redirect_uri", "")
        if client_id not in self.clients:
            return self._error_page(
                400,
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.",
            )
        if not redirect_uri or not self._redirect_uri_allowed(client_id, redirect_uri):
            return self._error_page(
                400,
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal.",
            )
        state = args.get("state")
        response_mode = args.get("response_mode", "query")
        try:
            if args.get("response_type") != "code":
                raise IdentityError(
                    "unsupported_response_type",
                    700054,
                    f"response_type '{args.get('response_type')}' is not enabled for the "
                    "application.",
                )
            scopes = self._parse_scopes(args.get("scope", ""), delegated=True)
            method = args.get("code_challenge_method", "plain")
            if args.get("code_challenge") and method not in ("plain", "S256"):
                raise IdentityError(
                    "invalid_request",
                    501491,
                    f"Invalid code_challenge_method '{method}'.",
                )
            user = self._user(self._hinted_user(args.get("login_hint")))
        except IdentityError as error:
            params = {
                "error": error.error,
                "error_description": f"AADSTS{error.code}: {error.message}",
                "error_uri": f"{request.host_url}error?code={error.code}",
            }
            if state is not None:
                params["state"] = state
            return self._redirect_back(redirect_uri, params, response_mode)
        code = secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = AuthorizationCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                upn=user.upn,
                scopes=scopes,
                nonce=args.get("nonce"),
                code_challenge=args.get("code_challenge"),
                code_challenge_method=method,
                expires_at=time.time() + AUTH_CODE_LIFETIME,
            )
        params = {"code": code}
        if args.get("client_info") == "1":
            params["client_info"] = self._client_info(user)
        if state is not None:
            params["state"] = state
        params["session_state"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"session:{user.upn}"))
        return self._redirect_back(redirect_uri, params, response_mode)

    def _hinted_user(self, login_hint: str | None) -> str | None:
        if login_hint and any(u.upn.lower() == login_hint.lower() for u in self.users):
            return login_hint
        return self.signed_in_user

    def _redirect_uri_allowed(self, client_id: str, redirect_uri: str) -> bool:
        registered = self.redirect_uris.get(client_id)
        if not registered:
            return True
        candidate = urlsplit(redirect_uri)
        for uri in registered:
            if uri == redirect_uri:
                return True
            allowed = urlsplit(uri)
            # Like the real service, a loopback reply URL matches whatever port the app chose.
            if (
                allowed.hostname in ("localhost", "127.0.0.1")
                and candidate.hostname == allowed.hostname
                and (candidate.scheme, candidate.path) == (allowed.scheme, allowed.path)
            ):
                return True
        return False

    def _redirect_back(self, redirect_uri: str, params: dict, response_mode: str) -> Response:
        if response_mode == "form_post":
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
                for k, v in params.items()
            )
            page = (
                "<html><head><title>Working...</title></head>"
                '<body onload="document.forms[0].submit()">'
                f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
                f"{fields}<noscript><p>Script is disabled. Click Submit to continue.</p>"
                '<input type="submit" value="Submit"/></noscript></form></body></html>'
            )
            return Response(page, mimetype="text/html")
        parts = urlsplit(redirect_uri)
        separator = "#" if response_mode == "fragment" else "?"
        if separator == "?":
            query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
            location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        else:
            location = f"{redirect_uri}#{urlencode(params)}"
        return redirect(location, code=302)

    def _error_page(self, status: int, code: int, message: str) -> Response:
        """The page the real service shows when it cannot safely redirect back to the app."""
        page = (
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f'<p id="error">AADSTS{code}: {html.escape(message)}</p>'
            f"<p>Correlation ID: {uuid.uuid4()}</p></body></html>"
        )
        return Response(page, status=status, mimetype="text/html")

    # -- device code -----------------------------------------------------------------------

    def _devicecode(self, tenant: str) -> Response:
        self._tenant_segment(tenant)
        client_id = request.form.get("client_id", "")
        if not client_id:
            raise self._missing("client_id")
        self._known_client(client_id)
        if "scope" not in request.form:
            raise self._missing("scope")
        scopes = self._parse_scopes(request.form["scope"], delegated=True)
        user_code = self._new_user_code()
        device_code = secrets.token_urlsafe(96)
        with self._lock:
            self._devices[device_code] = DeviceAuthorization(
                client_id=client_id,
                user_code=user_code,
                scopes=scopes,
                expires_at=time.time() + self.device_code_lifetime,
            )
            self._device_by_user_code[user_code] = device_code
        verification_uri = f"{request.host_url}devicelogin"
        return self._json(
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": verification_uri,
                "expires_in": self.device_code_lifetime,
                "interval": self.device_code_interval,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} and "
                    f"enter the code {user_code} to authenticate."
                ),
            }
        )

    def _new_user_code(self) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        while True:
            code = "".join(secrets.choice(alphabet) for _ in range(9))
            if code not in self._device_by_user_code:
                return code

    def _device_for_user_code(self, user_code: str) -> DeviceAuthorization:
        """Find a device sign-in by the code the person typed; caller holds the lock."""
        device_code = self._device_by_user_code.get(user_code.strip().upper())
        device = self._devices.get(device_code) if device_code else None
        if device is None:
            raise IdentityError(
                "invalid_grant",
                70018,
                "Invalid verification code. The code you entered is not valid.",
            )
        if device.expires_at <= time.time():
            raise IdentityError("expired_token", 70019, "Verification code expired.")
        return device

    def _devicelogin(self) -> Response:
        """The page a person opens to enter the code; visiting it with ?otc=CODE approves it."""
        user_code = request.values.get("otc", "")
        if not user_code:
            page = (
                "<!DOCTYPE html><html><head><title>Enter code</title></head><body>"
                "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>"
                '<form method="POST"><input name="otc" autofocus/>'
                '<input type="submit" value="Next"/></form></body></html>'
            )
            return Response(page, mimetype="text/html")
        try:
            self.approve_device_code(user_code, self._hinted_user(request.values.get("login_hint")))
        except IdentityError as error:
            return self._error_page(400, error.code, error.message)
        page = (
            "<!DOCTYPE html><html><head><title>Signed in</title></head><body>"
            "<h1>You have signed in to the application on your device.</h1>"
            "<p>You may now close this window.</p></body></html>"
        )
        return Response(page, mimetype="text/html")

    # -- token endpoint --------------------------------------------------------------------

    def _token(self, tenant: str) -> Response:
        if request.method != "POST":
            raise IdentityError(
                "invalid_request",
                900561,
                f"The endpoint only accepts POST requests. Received a {request.method} request.",
            )
        segment = self._tenant_segment(tenant)
        form = request.form
        grant_type = form.get("grant_type")
        if not grant_type:
            raise self._missing("grant_type")
        client_id, secret = self._client_credentials()
        if not client_id:
            raise self._missing("client_id")
        self._known_client(client_id)
        if form.get("client_assertion"):
            self._check_client_assertion(client_id, form, segment)
            secret = ""  # the app proved itself: a confidential client, as with a secret
        elif secret is not None and secret != self.clients[client_id]:
            raise IdentityError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        public_allowed = self.allow_public_client_flows and grant_type != "client_credentials"
        if secret is None and not public_allowed:
            raise IdentityError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        if grant_type == "client_credentials":
            if segment in MULTI_TENANT_SEGMENTS:
                raise IdentityError(
                    "invalid_request",
                    50059,
                    "No tenant-identifying information found in either the request or implied "
                    "by any provided credentials.",
                )
            return self._json(self._client_credentials_grant(client_id))
        if grant_type == "authorization_code":
            return self._json(self._authorization_code_grant(client_id, secret is not None))
        if grant_type == "refresh_token":
            return self._json(self._refresh_token_grant(client_id, secret is not None))
        if grant_type == DEVICE_CODE_GRANT:
            return self._json(self._device_code_grant(client_id, secret is not None))
        raise IdentityError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    def _check_client_assertion(self, client_id: str, form, segment: str) -> None:
        """A JWT signed with the key of a certificate uploaded to the registration.

        As the real service: the header names the certificate by ``x5t#S256`` (or the SHA-1
        ``x5t``), ``aud`` is the token endpoint, ``iss`` and ``sub`` are the client id.
        """
        if form.get("client_assertion_type") != JWT_BEARER:
            raise IdentityError(
                "invalid_request",
                700023,
                f"Client assertion type is invalid; it must be '{JWT_BEARER}'.",
            )
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise IdentityError(
                "invalid_client", 700027, "The client assertion is not a JWT."
            ) from None
        certificate = None
        for candidate in self.client_certificates.get(client_id, []):
            sha256 = b64url(candidate.fingerprint(hashes.SHA256()))
            sha1 = b64url(candidate.fingerprint(hashes.SHA1()))  # noqa: S303 - Entra accepts it
            # MSAL pads the base64url thumbprint; the service accepts both.
            named = (str(header.get("x5t#S256", "")), str(header.get("x5t", "")))
            if named[0].rstrip("=") == sha256 or named[1].rstrip("=") == sha1:
                certificate = candidate
        if certificate is None:
            raise IdentityError(
                "invalid_client",
                700027,
                f"Client assertion failed signature validation. Key was not found for "
                f"application '{client_id}'.",
            )
        audience = f"{request.host_url}{segment}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                certificate.public_key(),
                algorithms=["PS256", "RS256"],
                audience=audience,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise IdentityError(
                "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from None
        except jwt.PyJWTError as exc:
            raise IdentityError(
                "invalid_client", 700027, f"Client assertion failed signature validation. {exc}"
            ) from None
        if claims["iss"] != client_id or claims["sub"] != client_id:
            raise IdentityError(
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        if certificate.not_valid_after_utc < dt.datetime.now(dt.UTC):
            raise IdentityError(
                "invalid_client", 700027, "The certificate of the client assertion has expired."
            )

    def _client_credentials(self) -> tuple[str, str | None]:
        """client_id and secret from HTTP Basic (as MSAL sends them) or from the body."""
        authorization = request.authorization
        if authorization is not None and authorization.type == "basic":
            return authorization.username or "", authorization.password
        return request.form.get("client_id", ""), request.form.get("client_secret")

    def _client_credentials_grant(self, client_id: str) -> dict:
        scope = request.form.get("scope", "")
        if not scope.strip():
            raise self._missing("scope")
        scopes = scope.split()
        resource = scopes[0].rsplit("/", 1)[0] if scopes[0].endswith("/.default") else None
        if len(scopes) != 1 or resource is None:
            raise IdentityError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        api = self._api(resource)
        if api is not None:
            # A client the API granted no application permission still gets a token: no roles.
            roles = api.app_roles.get(client_id, [])
            access_token = self._api_access_token(
                client_id, api, user=None, roles=roles, scp=None, public=False
            )
        elif resource.rstrip("/") in self.graph_resources:
            roles = self.app_roles.get(client_id, self.default_app_roles)
            access_token = self._access_token(
                client_id, user=None, roles=roles, scp=None, public=False
            )
        else:
            raise self._unknown_resource(resource)
        self._record("client_credentials", client_id, None)
        return {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
        }

    def _authorization_code_grant(self, client_id: str, confidential: bool) -> dict:
        form = request.form
        code_value = form.get("code")
        if not code_value:
            raise self._missing("code")
        with self._lock:
            code = self._codes.get(code_value)
            if code is None or code.client_id != client_id:
                raise IdentityError(
                    "invalid_grant", 70000, "Provided grant is invalid or malformed."
                )
            if code.redeemed:
                raise IdentityError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new "
                    "valid code or use an existing refresh token.",
                )
            if code.expires_at <= time.time():
                raise IdentityError(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user "
                    "and resource.",
                )
            if form.get("redirect_uri") != code.redirect_uri:
                raise IdentityError(
                    "invalid_grant",
                    500112,
                    f"The reply address '{form.get('redirect_uri')}' does not match the reply "
                    f"address '{code.redirect_uri}' provided when requesting Authorization code.",
                )
            if code.code_challenge and not self._pkce_matches(code, form.get("code_verifier")):
                raise IdentityError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
            code.redeemed = True
        user = self._user(code.upn)
        consented = code.scopes.consent(code.scopes.permissions)
        return self._delegated_response(
            client_id, user, code.scopes, consented, confidential, nonce=code.nonce, grant="code"
        )

    @staticmethod
    def _pkce_matches(code: AuthorizationCode, verifier: str | None) -> bool:
        if not verifier:
            return False
        if code.code_challenge_method == "S256":
            computed = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        else:
            computed = verifier
        return secrets.compare_digest(computed, code.code_challenge or "")

    def _refresh_token_grant(self, client_id: str, confidential: bool) -> dict:
        form = request.form
        token = form.get("refresh_token")
        if not token:
            raise self._missing("refresh_token")
        now = time.time()
        with self._lock:
            grant = self._refresh_tokens.get(token)
            if grant is None or grant.client_id != client_id:
                raise IdentityError(
                    "invalid_grant", 70000, "Provided grant is invalid or malformed."
                )
            valid_from = self._tokens_valid_from.get(grant.upn.lower())
            if valid_from is not None and grant.issued_at < valid_from:
                raise IdentityError(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token "
                    "is needed. The user might have changed or reset their password. The grant "
                    f"was issued on '{isoformat(grant.issued_at)}' and the TokensValidFrom date "
                    f"(before which tokens are not valid) for this user is "
                    f"'{isoformat(valid_from)}'.",
                )
            inactive = now - grant.last_used
            if grant.expired or inactive > self.refresh_token_max_inactive:
                raise IdentityError(
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. The token was issued on "
                    f"{isoformat(grant.issued_at)} and was inactive for "
                    f"{dt.timedelta(seconds=int(inactive))}.",
                )
            grant.last_used = now
        scopes = self._parse_scopes(form.get("scope", ""), delegated=True)
        if not scopes.permissions and not scopes.default:
            scopes.permissions = graph_consent(grant.consented)
        missing = scopes.consent(scopes.permissions) - grant.consented
        if missing:
            raise IdentityError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID "
                f"'{client_id}'. Send an interactive authorization request for this user and "
                f"resource. Missing: {' '.join(sorted(missing))}.",
            )
        user = self._user(grant.upn)
        return self._delegated_response(
            client_id, user, scopes, grant.consented, confidential, nonce=None, grant="refresh"
        )

    def _device_code_grant(self, client_id: str, confidential: bool) -> dict:
        device_code = request.form.get("device_code")
        if not device_code:
            raise self._missing("device_code")
        with self._lock:
            device = self._devices.get(device_code)
            if device is None or device.client_id != client_id or device.redeemed:
                raise IdentityError(
                    "invalid_grant", 70000, "Provided grant is invalid or malformed."
                )
            if device.expires_at <= time.time():
                raise IdentityError(
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.",
                )
            if device.declined:
                raise IdentityError(
                    "authorization_declined",
                    70000,
                    "The user denied the authorization request.",
                )
            if device.upn is None:
                raise IdentityError(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            device.redeemed = True
        user = self._user(device.upn)
        return self._delegated_response(
            client_id,
            user,
            device.scopes,
            device.scopes.consent(device.scopes.permissions),
            confidential,
            nonce=None,
            grant="device_code",
        )

    # -- token issuance --------------------------------------------------------------------

    def _delegated_response(
        self,
        client_id: str,
        user: User,
        scopes: ScopeRequest,
        consented: set[str],
        confidential: bool,
        *,
        nonce: str | None,
        grant: str,
    ) -> dict:
        if scopes.api is not None:
            granted = set(scopes.permissions)
            # An API's v2.0 token lists only that API's scopes; OpenID scopes are Graph's.
            access_token = self._api_access_token(
                client_id,
                scopes.api,
                user=user,
                roles=None,
                scp=" ".join(sorted(granted)),
                public=not confidential,
            )
        else:
            granted = set(scopes.permissions) if scopes.permissions else graph_consent(consented)
            if not granted:
                granted = set(self.default_delegated_scopes)
            scp_names = granted | (scopes.oidc - {"offline_access"})
            access_token = self._access_token(
                client_id,
                user=user,
                roles=None,
                scp=" ".join(sorted(scp_names)),
                public=not confidential,
            )
        consented = consented | scopes.consent(granted)
        prefix = f"{scopes.resource}/" if scopes.qualified or scopes.default else ""
        response_scopes = [f"{prefix}{name}" for name in sorted(granted)]
        response_scopes += sorted(scopes.oidc - {"offline_access"})
        body = {
            "token_type": "Bearer",
            "scope": " ".join(response_scopes),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
        }
        if "offline_access" in scopes.oidc:
            now = time.time()
            refresh_token = f"1.A{secrets.token_urlsafe(96)}"
            with self._lock:
                self._refresh_tokens[refresh_token] = RefreshGrant(
                    client_id=client_id,
                    upn=user.upn,
                    consented=consented,
                    issued_at=now,
                    last_used=now,
                )
            body["refresh_token"] = refresh_token
        if "openid" in scopes.oidc:
            body["id_token"] = self._id_token(client_id, user, nonce)
        if request.form.get("client_info") == "1":
            body["client_info"] = self._client_info(user)
        self._record(grant, client_id, user.upn)
        return body

    def _access_token(
        self,
        client_id: str,
        *,
        user: User | None,
        roles: list[str] | None,
        scp: str | None,
        public: bool,
    ) -> str:
        now = int(self.clock())
        uti = b64url(secrets.token_bytes(16))
        expires = now + self.access_token_lifetime
        claims: dict = {
            "aud": GRAPH_RESOURCE,
            "iss": self.access_token_issuer,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "aio": b64url(secrets.token_bytes(24)),
            "app_displayname": f"sandbox app {client_id[:8]}",
            "appid": client_id,
            "appidacr": "0" if public else "1",
            "idp": self.access_token_issuer,
            "idtyp": "user" if user else "app",
            "rh": "0.AAAA" + b64url(secrets.token_bytes(12)),
            "tenant_region_scope": "EU",
            "tid": self.tenant_id,
            "uti": uti,
            "ver": "1.0",
            "xms_tcdt": 1600000000,
        }
        if user is None:
            service_principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id}"))
            claims.update(oid=service_principal, sub=service_principal, roles=sorted(roles or []))
        else:
            claims.update(
                acr="1",
                amr=["pwd"],
                name=user.name,
                oid=user.oid,
                scp=scp or "",
                sub=self._pairwise_sub(user, client_id),
                unique_name=user.upn,
                upn=user.upn,
                ipaddr=request.remote_addr or "127.0.0.1",
            )
        with self._lock:
            self._issued_access_tokens = {
                key: exp for key, exp in self._issued_access_tokens.items() if exp > now
            }
            self._issued_access_tokens[uti] = expires
        return self.key.sign(claims)

    def _api_access_token(
        self,
        client_id: str,
        api: ApiResource,
        *,
        user: User | None,
        roles: list[str] | None,
        scp: str | None,
        public: bool,
    ) -> str:
        """A v2.0 access token for a registered API: ``aud`` is the API's client id."""
        now = int(time.time())
        claims: dict = {
            "aud": api.client_id,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.access_token_lifetime,
            "aio": b64url(secrets.token_bytes(24)),
            "azp": client_id,
            "azpacr": "0" if public else "1",
            "rh": "0.AAAA" + b64url(secrets.token_bytes(12)),
            "tid": self.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if user is None:
            service_principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id}"))
            claims.update(oid=service_principal, sub=service_principal)
            if roles:
                claims["roles"] = sorted(roles)
        else:
            claims.update(
                name=user.name,
                oid=user.oid,
                preferred_username=user.upn,
                scp=scp or "",
                sub=self._pairwise_sub(user, client_id),
            )
        return self.key.sign(claims, x5t=False)

    def _id_token(self, client_id: str, user: User, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "aio": b64url(secrets.token_bytes(24)),
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "rh": "0.AAAA" + b64url(secrets.token_bytes(12)),
            "sid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"session:{user.upn}")),
            "sub": self._pairwise_sub(user, client_id),
            "tid": self.tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self.key.sign(claims)

    def _client_info(self, user: User) -> str:
        return b64url(json.dumps({"uid": user.oid, "utid": self.tenant_id}).encode())

    @staticmethod
    def _pairwise_sub(user: User, client_id: str) -> str:
        # The real "sub" is unique per user and app; a hash gives the same property.
        return b64url(hashlib.sha256(f"{user.oid}:{client_id}".encode()).digest()[:32])

    def _record(self, grant: str, client_id: str, upn: str | None) -> None:
        with self._lock:
            self.tokens_issued.append(
                {"grant": grant, "client_id": client_id, "upn": upn, "at": time.time()}
            )

    # -- shared validation -----------------------------------------------------------------

    def _parse_scopes(self, raw: str, *, delegated: bool) -> ScopeRequest:
        """Split a v2.0 scope string; the permissions belong to Graph or to a registered API."""
        parsed = ScopeRequest()
        resources: set[str] = set()
        for item in raw.split():
            if item in OIDC_SCOPES:
                parsed.oidc.add(item)
                continue
            api = None
            if "/" in item:
                resource, name = item.rsplit("/", 1)
                resource = resource.rstrip("/")
                api = self._api(resource)
                if api is None and resource not in self.graph_resources:
                    raise self._unknown_resource(resource)
                resources.add(api.app_id_uri if api else GRAPH_RESOURCE)
                parsed.qualified = True
                parsed.resource = resource
                parsed.api = api
            else:
                name = item
                resources.add(GRAPH_RESOURCE)
            if name == ".default":
                parsed.default = True
                parsed.permissions.update(api.scopes if api else self.default_delegated_scopes)
            elif api is not None and name not in api.scopes:
                raise IdentityError(
                    "invalid_scope",
                    650053,
                    f"The application asked for scope '{name}' that doesn't exist on the "
                    f"resource '{api.client_id}'. Contact the app vendor.",
                )
            else:
                parsed.permissions.add(name)
        if len(resources) > 1:
            raise IdentityError(
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains "
                "more than one resource.",
            )
        if delegated and not parsed.permissions and not parsed.oidc:
            raise IdentityError(
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The provided "
                f"value for the input parameter 'scope' is not valid. The scope {raw} is not "
                "valid.",
            )
        return parsed

    def _api(self, resource: str) -> ApiResource | None:
        """The registered API a scope's resource part names (URI or app id), if any."""
        with self._lock:
            return next((api for api in self.apis if api.names(resource)), None)

    def _unknown_resource(self, resource: str) -> IdentityError:
        return IdentityError(
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named "
            f"{self.tenant_id}. This can happen if the application has not been installed by "
            "the administrator of the tenant or consented to by any user in the tenant. You "
            "might have sent your authentication request to the wrong tenant.",
        )

    def _known_client(self, client_id: str) -> None:
        if client_id not in self.clients:
            raise IdentityError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.",
            )

    @staticmethod
    def _missing(parameter: str) -> IdentityError:
        return IdentityError(
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{parameter}'.",
        )

    def _user(self, upn: str | None) -> User:
        for user in self.users:
            if upn and user.upn.lower() == upn.lower():
                return user
        raise IdentityError(
            "invalid_grant",
            50034,
            f"The user account {upn} does not exist in the {self.tenant_id} directory. To sign "
            "into this application, the account must be added to the directory.",
        )

    def _logout(self, tenant: str) -> Response:
        self._tenant_segment(tenant)
        target = request.args.get("post_logout_redirect_uri")
        if target:
            return redirect(target, code=302)
        page = "<!DOCTYPE html><html><body><h1>You signed out of your account</h1></body></html>"
        return Response(page, mimetype="text/html")

    @staticmethod
    def _json(body: dict) -> Response:
        response = Response(json.dumps(body), mimetype="application/json")
        response.headers["Cache-Control"] = "no-store, no-cache"
        response.headers["Pragma"] = "no-cache"
        return response
