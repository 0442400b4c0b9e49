"""Microsoft Entra ID access tokens as an alternative to API keys (off unless configured).

A client app gets a v2.0 access token for the API's app registration (client credentials for
a service, authorization code or device code for a person) and sends it as the bearer token.
Each token is checked here, without a call to Entra ID per request: the tenant's OpenID
configuration and signing keys are fetched once and cached. The keys are fetched again when
a token names a key not seen yet (at most every five minutes: that is how key rotation shows)
and once a day, so a key Microsoft withdrew stops being trusted.

App roles (``roles``, app-only tokens) and delegated scopes (``scp``, tokens of a person)
become the API's scopes; a person's token is bound to that person, as a key made with
``--user`` is.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable

import jwt
import requests
from flask import Flask

from ticket_manager.api.keys import SCOPES, KeyRefused, Principal
from ticket_manager.api.problems import Problem
from ticket_manager.extensions import get_settings
from ticket_manager.http import build_session

log = logging.getLogger("ticket_manager.api")

ENTRA_EXTENSION = "ticket_manager.api.entra"
# Entra ID permission values (app roles and delegated scopes) and the API scope each grants;
# the API's own scope names are accepted as they are.
PERMISSIONS = {
    "Tickets.Read": "tickets:read",
    "Tickets.Write": "tickets:write",
    "Tickets.All": "tickets:all",
    "Tickets.Internal": "tickets:internal",
    "Tickets.Notify": "tickets:notify",
    "Messages.Read": "messages:read",
    "Messages.Content": "messages:content",
    "Messages.Write": "messages:write",
    "Metrics.Read": "metrics:read",
    "Admin": "admin",
} | {scope: scope for scope in SCOPES}
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "aud", "iss", "tid", "sub"]
USER_CLAIMS = ("preferred_username", "upn", "email")
# An unknown key id refetches the keys at most this often: a stranger's tokens cannot make
# the service hammer Entra ID.
KEYS_REFETCH_INTERVAL = 300
# Cached keys are refreshed after this long even when every token names a known key.
KEYS_MAX_AGE = 24 * 3600
# After Entra ID failed to answer, tokens needing it are refused for this long (503).
UNAVAILABLE_BACKOFF = 10
CLOCK_SKEW = 60
FETCH_TIMEOUT = (5, 10)
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

_validator_lock = threading.Lock()


def entra_validator(app: Flask) -> EntraTokenValidator | None:
    """The app's Entra ID token validator, or None when Entra ID sign-in is not configured."""
    settings = get_settings(app)
    if not settings.api_entra_audience or not settings.api_entra_tenant_id:
        return None
    with _validator_lock:
        validator = app.extensions.get(ENTRA_EXTENSION)
        if validator is None:
            validator = EntraTokenValidator(
                build_session(settings.ca_bundle),
                authority_host=settings.authority_host,
                tenant=settings.api_entra_tenant_id,
                audience=settings.api_entra_audience,
            )
            app.extensions[ENTRA_EXTENSION] = validator
    return validator


class IdentityUnavailable(Exception):
    """Entra ID's OpenID configuration or keys could not be fetched."""


class EntraTokenValidator:
    """Checks v2.0 access tokens of one tenant for one audience against the tenant's keys."""

    def __init__(
        self,
        session: requests.Session,
        *,
        authority_host: str,
        tenant: str,
        audience: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.audience = audience
        self.tenant = tenant
        self.discovery_url = (
            f"{authority_host.rstrip('/')}/{tenant}/v2.0/.well-known/openid-configuration"
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._issuer: str | None = None
        self._keys: dict[str, object] = {}
        self._keys_fetched_at: float | None = None
        self._unavailable_until = 0.0

    def authenticate(self, token: str) -> Principal:
        """The principal a valid token stands for; :class:`KeyRefused` or a 503 ``Problem``."""
        return principal_from_claims(self.verified_claims(token))

    def verified_claims(self, token: str) -> dict:
        """The token's claims once signature, lifetime, audience, issuer and tenant check out."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise KeyRefused(
                "the token is neither an API key nor a Microsoft Entra ID access token"
            ) from None
        if header.get("alg") != "RS256":
            raise KeyRefused("the access token is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise KeyRefused("the access token does not name its signing key (kid)")
        key, issuer = self._signing_key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                leeway=CLOCK_SKEW,
                # The audience is checked before the issuer: a token for another API (Graph's,
                # say) is refused as such, whatever its issuer.
                options={"require": REQUIRED_CLAIMS, "verify_iss": False},
            )
        except jwt.PyJWTError as error:
            raise KeyRefused(self._reason(error)) from None
        if claims["iss"] != issuer:
            if claims.get("ver") == "1.0":
                raise KeyRefused(
                    "the access token is a v1.0 token: set requestedAccessTokenVersion to 2 in "
                    "the API's app registration"
                )
            raise KeyRefused("the access token was issued by another tenant or authority")
        if GUID.match(self.tenant) and str(claims["tid"]).lower() != self.tenant.lower():
            raise KeyRefused("the access token is from another tenant")
        return claims

    def _reason(self, error: jwt.PyJWTError) -> str:
        """Why PyJWT refused a token, in the API's words (never with the token itself)."""
        if isinstance(error, jwt.ExpiredSignatureError):
            return "the access token has expired"
        if isinstance(error, jwt.ImmatureSignatureError):
            return "the access token is not valid yet"
        if isinstance(error, jwt.InvalidAudienceError):
            return f"the access token is for another audience, not this API ({self.audience})"
        if isinstance(error, jwt.InvalidSignatureError):
            return "the access token's signature does not verify"
        if isinstance(error, jwt.MissingRequiredClaimError):
            return f"the access token lacks the {error.claim} claim"
        if isinstance(error, jwt.InvalidIssuedAtError):
            return "the access token's issue time is not valid"
        return "the access token is malformed"

    # -- the tenant's keys -----------------------------------------------------------------

    def _signing_key(self, kid: str) -> tuple[object, str]:
        """The public key ``kid`` names and the tenant's issuer, fetching them when due."""
        with self._lock:
            now = self._clock()
            fetched = self._keys_fetched_at
            known = kid in self._keys
            due = (
                fetched is None
                or now - fetched >= KEYS_MAX_AGE
                or (not known and now - fetched >= KEYS_REFETCH_INTERVAL)
            )
            if due:
                try:
                    self._fetch_keys(now)
                except IdentityUnavailable:
                    if not known:
                        raise self._unavailable(now) from None
                    # A known key stays trusted while Entra ID is briefly unreachable.
            key = self._keys.get(kid)
            issuer = self._issuer
        if key is None or issuer is None:
            raise KeyRefused("the access token is signed with a key the tenant does not publish")
        return key, issuer

    def _fetch_keys(self, now: float) -> None:
        """Fetch the OpenID configuration, then the keys it points at; caller holds the lock."""
        if now < self._unavailable_until:
            raise IdentityUnavailable("backing off")
        try:
            configuration = self._get_json(self.discovery_url)
            issuer, jwks_uri = configuration["issuer"], configuration["jwks_uri"]
            if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
                raise ValueError("issuer or jwks_uri missing")
            keys = _signing_keys(self._get_json(jwks_uri))
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            self._unavailable_until = now + UNAVAILABLE_BACKOFF
            log.warning(
                "Microsoft Entra ID keys of tenant %s unavailable",
                self.tenant,
                extra={"error": str(error) or error.__class__.__name__},
            )
            raise IdentityUnavailable(str(error)) from error
        self._issuer, self._keys, self._keys_fetched_at = issuer, keys, now
        log.info("Microsoft Entra ID keys of tenant %s fetched (%d)", self.tenant, len(keys))

    def _get_json(self, url: str) -> dict:
        response = self.session.get(url, timeout=FETCH_TIMEOUT)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code} from {url}")
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"not a JSON object from {url}")
        return body

    def _unavailable(self, now: float) -> Problem:
        wait = max(1, math.ceil(self._unavailable_until - now))
        return Problem(
            503,
            "identity-unavailable",
            "Microsoft Entra ID could not be reached to check the access token; try again later.",
            headers={"Retry-After": str(wait)},
        )


def _signing_keys(jwks: dict) -> dict[str, object]:
    """The RSA signature keys of a JWKS by key id; keys of other kinds are left out."""
    keys: dict[str, object] = {}
    for jwk in jwks["keys"]:
        kid = jwk.get("kid")
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or not kid:
            continue
        try:
            keys[kid] = jwt.PyJWK(jwk, algorithm="RS256").key
        except jwt.PyJWKError:
            log.warning("unusable key %s in the Microsoft Entra ID key set", kid)
    return keys


def principal_from_claims(claims: dict) -> Principal:
    """Who a verified token stands for: an app (``roles``) or a person through an app (``scp``).

    A person's token is bound to that person; a token for a person who has no username in it
    is refused, since an unbound principal may report tickets for anyone.
    """
    client = str(claims.get("azp") or claims.get("appid") or "")
    principal_id = str(claims.get("oid") or claims["sub"])
    if "scp" in claims:
        granted = str(claims["scp"]).split()
        user = _username(claims)
        if user is None:
            raise KeyRefused("the access token names no user (preferred_username, upn or email)")
        name = user
    else:
        roles = claims.get("roles") or []
        granted = [str(role) for role in roles] if isinstance(roles, list) else []
        user = None
        name = client or principal_id
    return Principal(
        key_id=f"entra:{principal_id}",
        name=name,
        scopes=frozenset(PERMISSIONS[value] for value in granted if value in PERMISSIONS),
        user_email=user,
    )


def _username(claims: dict) -> str | None:
    for claim in USER_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and "@" in value:
            return value.lower()
    return None
