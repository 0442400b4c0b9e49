"""The identity platform emulator, driven by real MSAL and plain requests over HTTPS."""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests

from ticket_manager_sandbox.identity import IdentityEmulator

TENANT_ID = "8f3b1c2d-5e6f-4a7b-9c8d-0e1f2a3b4c5d"
CLIENT_ID = "0b5c7e2a-1d3f-4e5a-8b6c-7d8e9f0a1b2c"
SECRET = "sandbox-client-secret"
PUBLIC_CLIENT_ID = "5d0f6a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
MAIL_SCOPES = ["https://graph.microsoft.com/Mail.ReadWrite"]
REDIRECT_URI = "http://localhost:8400/callback"


@pytest.fixture
def identity() -> IdentityEmulator:
    """An emulator with one confidential app, one public app and two users."""
    return IdentityEmulator(
        tenant_id=TENANT_ID,
        clients={CLIENT_ID: SECRET, PUBLIC_CLIENT_ID: None},
        users=[
            {"upn": "support@example.com", "name": "Support Desk"},
            {"upn": "alice@example.com"},
        ],
    )


@pytest.fixture
def base_url(identity, serve) -> str:
    """The emulator served over HTTPS with the session CA."""
    return serve(identity.app)


def confidential_app(base_url: str, secret: str = SECRET) -> msal.ConfidentialClientApplication:
    """A web app as the product builds it: non-Microsoft host, so no instance discovery."""
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=secret,
        authority=f"{base_url}/{TENANT_ID}",
        instance_discovery=False,
    )


def public_app(base_url: str) -> msal.PublicClientApplication:
    """A public client, as used for the device-code sign-in."""
    return msal.PublicClientApplication(
        PUBLIC_CLIENT_ID, authority=f"{base_url}/{TENANT_ID}", instance_discovery=False
    )


def token_calls(identity: IdentityEmulator) -> int:
    """How many token requests reached the emulator."""
    return identity.controls.counts["POST /<tenant>/oauth2/v2.0/token"]


class HiddenFields(HTMLParser):
    """Collects the hidden inputs of a form_post answer, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action", "")
        if tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"]] = attributes.get("value", "")


def sign_in_with_auth_code(app, scopes=MAIL_SCOPES, response_mode: str = "query") -> dict:
    """Run the authorization-code flow as a browser would, returning MSAL's result."""
    with warnings.catch_warnings():
        # MSAL nudges towards form_post; both modes are exercised here on purpose.
        warnings.simplefilter("ignore", UserWarning)
        flow = app.initiate_auth_code_flow(
            scopes, redirect_uri=REDIRECT_URI, response_mode=response_mode
        )
    answer = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    if response_mode == "form_post":
        assert answer.status_code == 200, answer.text
        form = HiddenFields()
        form.feed(answer.text)
        assert form.action == REDIRECT_URI
        return app.acquire_token_by_auth_code_flow(flow, form.fields)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"http://{location.netloc}{location.path}" == REDIRECT_URI
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert "client_info" in query
    return app.acquire_token_by_auth_code_flow(flow, query)


def assert_aadsts_error(body: dict, error: str, code: int) -> None:
    """The error body has the real service's shape and AADSTS code."""
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert body["error_codes"] == [code]
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]


def test_openid_configuration_has_the_real_fields_and_points_at_the_emulator(base_url):
    # The tenant's OpenID configuration lists the v2.0 endpoints on the emulator's own host
    config = requests.get(
        f"{base_url}/{TENANT_ID}/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    assert config["issuer"] == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
    for key, path in {
        "authorization_endpoint": "oauth2/v2.0/authorize",
        "token_endpoint": "oauth2/v2.0/token",
        "device_authorization_endpoint": "oauth2/v2.0/devicecode",
        "end_session_endpoint": "oauth2/v2.0/logout",
        "jwks_uri": "discovery/v2.0/keys",
    }.items():
        assert config[key] == f"{base_url}/{TENANT_ID}/{path}"
    assert "code" in config["response_types_supported"]
    assert {"openid", "profile", "email", "offline_access"} <= set(config["scopes_supported"])
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "client_secret_basic" in config["token_endpoint_auth_methods_supported"]

    by_domain = requests.get(
        f"{base_url}/example.com/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    assert by_domain["token_endpoint"] == f"{base_url}/{TENANT_ID}/oauth2/v2.0/token"
    common = requests.get(
        f"{base_url}/common/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    assert common["issuer"] == "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert common["token_endpoint"] == f"{base_url}/common/oauth2/v2.0/token"


def test_an_unknown_tenant_is_rejected_with_aadsts90002(base_url):
    # Discovery for a tenant the emulator does not host fails as the real one does
    answer = requests.get(
        f"{base_url}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration", timeout=10
    )
    assert answer.status_code == 400
    assert_aadsts_error(answer.json(), "invalid_tenant", 90002)


def test_instance_discovery_answers_in_the_real_shape(base_url):
    # Instance discovery names the tenant discovery endpoint and the cloud aliases
    host = urlsplit(base_url).netloc
    answer = requests.get(
        f"{base_url}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{base_url}/{TENANT_ID}/oauth2/v2.0/authorize",
        },
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["api-version"] == "1.1"
    assert body["tenant_discovery_endpoint"] == (
        f"{base_url}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
    )
    assert body["metadata"][0] == {
        "preferred_network": host,
        "preferred_cache": host,
        "aliases": [host],
    }
    for entry in body["metadata"]:
        assert set(entry) == {"preferred_network", "preferred_cache", "aliases"}
    public = next(
        e for e in body["metadata"] if e["preferred_network"] == "login.microsoftonline.com"
    )
    assert "login.windows.net" in public["aliases"]

    unknown = requests.get(
        f"{base_url}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": "https://login.example.org/common/oauth2/v2.0/authorize",
        },
        timeout=10,
    )
    assert unknown.status_code == 400
    assert_aadsts_error(unknown.json(), "invalid_instance", 50049)


def test_client_credentials_token_is_a_signed_app_only_graph_token(identity, base_url):
    # MSAL gets an app-only token whose signature checks out against the published JWKS
    result = confidential_app(base_url).acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    assert result["token_source"] == "identity_provider"
    assert 3500 < result["expires_in"] <= 3600

    jwks = requests.get(f"{base_url}/{TENANT_ID}/discovery/v2.0/keys", timeout=10).json()
    key = jwks["keys"][0]
    assert {key["kty"], key["use"], key["e"]} == {"RSA", "sig", "AQAB"}
    assert key["kid"] == jwt.get_unverified_header(result["access_token"])["kid"]
    claims = jwt.decode(
        result["access_token"],
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        issuer=f"https://sts.windows.net/{TENANT_ID}/",
    )
    assert claims["tid"] == TENANT_ID
    assert claims["appid"] == CLIENT_ID
    assert claims["idtyp"] == "app"
    assert "Mail.ReadWrite" in claims["roles"]
    assert "scp" not in claims
    assert claims["exp"] - claims["iat"] == 3600

    assert identity.validate_access_token(result["access_token"]) == claims
    header, payload, signature = result["access_token"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["roles"] = ["Directory.ReadWrite.All"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert identity.validate_access_token(f"{header}.{forged_payload}.{signature}") is None
    assert identity.validate_access_token("not-a-token") is None


def test_a_second_client_credentials_call_is_served_from_msal_cache(identity, base_url):
    # MSAL answers the second request from its cache without calling the token endpoint
    app = confidential_app(base_url)
    first = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert token_calls(identity) == 1
    second = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert second["access_token"] == first["access_token"]
    assert second["token_source"] == "cache"
    assert token_calls(identity) == 1


def test_a_wrong_client_secret_gives_invalid_client(base_url):
    # A wrong secret is refused with invalid_client and AADSTS7000215
    result = confidential_app(base_url, secret="not-the-secret").acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert "access_token" not in result
    assert_aadsts_error(result, "invalid_client", 7000215)

    answer = requests.post(
        f"{base_url}/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": "wrong",
            "scope": GRAPH_DEFAULT[0],
        },
        headers={"client-request-id": "4b1c0c2e-aaaa-bbbb-cccc-0123456789ab"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["correlation_id"] == "4b1c0c2e-aaaa-bbbb-cccc-0123456789ab"


def test_client_credentials_need_a_default_scope_and_a_known_app(base_url):
    # Client credentials reject a non-.default scope, an unknown app and a missing secret
    url = f"{base_url}/{TENANT_ID}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    scoped = requests.post(url, data={**form, "scope": MAIL_SCOPES[0]}, timeout=10)
    assert scoped.status_code == 400
    assert_aadsts_error(scoped.json(), "invalid_scope", 1002012)

    stranger = requests.post(
        url,
        data={**form, "client_id": "11111111-2222-3333-4444-555555555555", "scope": "x"},
        timeout=10,
    )
    assert_aadsts_error(stranger.json(), "unauthorized_client", 700016)

    no_secret = requests.post(
        url,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "scope": GRAPH_DEFAULT},
        timeout=10,
    )
    assert no_secret.status_code == 401
    assert_aadsts_error(no_secret.json(), "invalid_client", 7000218)


def test_auth_code_flow_then_silent_refresh_with_a_short_lived_access_token(identity, base_url):
    # A delegated sign-in gives tokens for the user; a short-lived token is refreshed silently
    identity.access_token_lifetime = 60
    app = confidential_app(base_url)
    result = sign_in_with_auth_code(app)
    assert "access_token" in result, result
    assert result["refresh_token"]
    assert result["id_token_claims"]["preferred_username"] == "support@example.com"
    assert result["id_token_claims"]["aud"] == CLIENT_ID
    assert result["id_token_claims"]["iss"] == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
    assert result["id_token_claims"]["name"] == "Support Desk"
    claims = identity.validate_access_token(result["access_token"])
    assert claims["upn"] == "support@example.com"
    assert claims["scp"].split() == ["Mail.ReadWrite", "openid", "profile"]
    assert claims["idtyp"] == "user"
    assert "roles" not in claims

    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == ["support@example.com"]
    assert accounts[0]["home_account_id"] == f"{claims['oid']}.{TENANT_ID}"
    calls_before = token_calls(identity)
    silent = app.acquire_token_silent(MAIL_SCOPES, account=accounts[0])
    assert silent is not None and "access_token" in silent, silent
    assert silent["token_source"] == "identity_provider"
    assert token_calls(identity) == calls_before + 1
    assert silent["access_token"] != result["access_token"]
    assert identity.validate_access_token(silent["access_token"])["upn"] == "support@example.com"
    assert [t["grant"] for t in identity.tokens_issued] == ["code", "refresh"]


def test_login_hint_and_sign_in_as_choose_the_user(identity, base_url):
    # The authorize page signs in the hinted user, or the one chosen with sign_in_as
    identity.sign_in_as("alice@example.com")
    result = sign_in_with_auth_code(confidential_app(base_url), response_mode="form_post")
    assert result["id_token_claims"]["preferred_username"] == "alice@example.com"


def test_an_authorization_code_is_single_use_and_checks_pkce_and_redirect(identity, base_url):
    # The token endpoint enforces PKCE, the redirect URI and single use of the code
    authorize = f"{base_url}/{TENANT_ID}/oauth2/v2.0/authorize"
    token_url = f"{base_url}/{TENANT_ID}/oauth2/v2.0/token"
    verifier = "v" * 43
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )

    def new_code() -> str:
        answer = requests.get(
            authorize,
            params={
                "client_id": CLIENT_ID,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": "Mail.ReadWrite offline_access openid",
                "state": "xyz",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            allow_redirects=False,
            timeout=10,
        )
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["state"] == ["xyz"]
        return query["code"][0]

    def redeem(code: str, **overrides) -> requests.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "scope": "Mail.ReadWrite offline_access openid",
        }
        return requests.post(
            token_url, data={**form, **overrides}, auth=(CLIENT_ID, SECRET), timeout=10
        )

    assert_aadsts_error(redeem(new_code(), code_verifier="w" * 43).json(), "invalid_grant", 501481)
    assert_aadsts_error(
        redeem(new_code(), redirect_uri="http://localhost:9999/x").json(), "invalid_grant", 500112
    )
    code = new_code()
    first = redeem(code)
    assert first.status_code == 200, first.text
    assert first.json()["scope"] == "Mail.ReadWrite openid"
    again = redeem(code)
    assert again.status_code == 400
    assert_aadsts_error(again.json(), "invalid_grant", 54005)


def test_authorize_shows_an_error_page_for_an_unknown_app_or_reply_url(identity, base_url):
    # Without a trusted reply URL the service shows an error instead of redirecting
    authorize = f"{base_url}/{TENANT_ID}/oauth2/v2.0/authorize"
    params = {
        "client_id": "99999999-9999-9999-9999-999999999999",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
    }
    unknown = requests.get(authorize, params=params, allow_redirects=False, timeout=10)
    assert unknown.status_code == 400
    assert "AADSTS700016" in unknown.text
    identity.register_redirect_uri(CLIENT_ID, "https://app.example.com/auth")
    bad_reply = requests.get(
        authorize, params={**params, "client_id": CLIENT_ID}, allow_redirects=False, timeout=10
    )
    assert bad_reply.status_code == 400
    assert "AADSTS50011" in bad_reply.text
    bad_scope = requests.get(
        authorize,
        params={
            **params,
            "client_id": CLIENT_ID,
            "redirect_uri": "https://app.example.com/auth",
            "scope": "https://outlook.example.org/Mail.Read",
            "state": "s1",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert bad_scope.status_code == 302
    query = parse_qs(urlsplit(bad_scope.headers["Location"]).query)
    assert query["error"] == ["invalid_resource"]
    assert query["error_description"][0].startswith("AADSTS500011:")
    assert query["state"] == ["s1"]


def test_a_revoked_refresh_token_gives_invalid_grant(identity, base_url):
    # After the user's sessions are revoked, silent refresh fails with AADSTS50173
    identity.access_token_lifetime = 60
    app = confidential_app(base_url)
    assert "access_token" in sign_in_with_auth_code(app)
    identity.revoke_refresh_tokens("support@example.com")
    result = app.acquire_token_silent_with_error(MAIL_SCOPES, account=app.get_accounts()[0])
    assert result is not None
    assert_aadsts_error(result, "invalid_grant", 50173)


def test_an_expired_refresh_token_gives_aadsts700082(identity, base_url):
    # A refresh token that expired from inactivity is refused with AADSTS700082
    identity.access_token_lifetime = 60
    app = confidential_app(base_url)
    assert "access_token" in sign_in_with_auth_code(app)
    identity.expire_refresh_tokens()
    result = app.acquire_token_silent_with_error(MAIL_SCOPES, account=app.get_accounts()[0])
    assert_aadsts_error(result, "invalid_grant", 700082)


def test_device_code_flow_is_pending_until_a_person_approves_the_code(identity, base_url):
    # The device flow polls authorization_pending until the code is entered at the page
    identity.device_code_interval = 1
    app = public_app(base_url)
    flow = app.initiate_device_flow(scopes=MAIL_SCOPES)
    assert flow["user_code"] in flow["message"]
    assert flow["verification_uri"] in flow["message"]
    assert flow["expires_in"] == 900

    pending = app.acquire_token_by_device_flow(flow, exit_condition=lambda _: True)
    assert_aadsts_error(pending, "authorization_pending", 70016)

    page = requests.get(flow["verification_uri"], params={"otc": flow["user_code"]}, timeout=10)
    assert page.status_code == 200
    flow["latest_attempt_at"] = 0
    result = app.acquire_token_by_device_flow(flow, exit_condition=lambda _: True)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "support@example.com"
    claims = identity.validate_access_token(result["access_token"])
    assert claims["scp"].split()[0] == "Mail.ReadWrite"
    assert claims["appidacr"] == "0"


def test_device_code_approved_in_process_and_expired_codes(identity, base_url):
    # approve_device_code signs in the chosen user; an expired device code gives expired_token
    url = f"{base_url}/{TENANT_ID}/oauth2/v2.0/"
    started = requests.post(
        f"{url}devicecode",
        data={"client_id": PUBLIC_CLIENT_ID, "scope": "User.Read openid"},
        timeout=10,
    ).json()
    identity.approve_device_code(started["user_code"], upn="alice@example.com")
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    granted = requests.post(
        f"{url}token",
        data={**form, "client_id": PUBLIC_CLIENT_ID, "device_code": started["device_code"]},
        timeout=10,
    ).json()
    assert (
        jwt.decode(granted["id_token"], options={"verify_signature": False})["preferred_username"]
        == "alice@example.com"
    )

    identity.device_code_lifetime = 0
    stale = requests.post(
        f"{url}devicecode",
        data={"client_id": PUBLIC_CLIENT_ID, "scope": "User.Read"},
        timeout=10,
    ).json()
    expired = requests.post(
        f"{url}token",
        data={**form, "client_id": PUBLIC_CLIENT_ID, "device_code": stale["device_code"]},
        timeout=10,
    )
    assert expired.status_code == 400
    assert_aadsts_error(expired.json(), "expired_token", 70020)
    visit = requests.get(stale["verification_uri"], params={"otc": stale["user_code"]}, timeout=10)
    assert visit.status_code == 400
    assert "AADSTS70019" in visit.text


def test_a_throttling_fault_reaches_the_client_with_retry_after(identity, base_url):
    # A 429 fault is answered with Retry-After and an AADSTS body that MSAL reports
    identity.controls.fail_next(1, status=429, retry_after=7, path_contains="/token")
    result = confidential_app(base_url).acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" not in result
    assert_aadsts_error(result, "temporarily_unavailable", 90055)

    identity.controls.fail_next(1, status=429, retry_after=3)
    answer = requests.get(
        f"{base_url}/{TENANT_ID}/v2.0/.well-known/openid-configuration", timeout=10
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert_aadsts_error(answer.json(), "temporarily_unavailable", 90055)

    identity.controls.fail_next(1, status=503, retry_after=5)
    unavailable = requests.post(f"{base_url}/{TENANT_ID}/oauth2/v2.0/token", data={}, timeout=10)
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "5"
    assert unavailable.json()["error"] == "temporarily_unavailable"


def test_expired_or_forgotten_access_tokens_do_not_validate(identity, base_url):
    # validate_access_token refuses tokens past exp and those the sandbox expired on purpose
    # (on the emulator's clock, which the test moves instead of waiting).
    moment = [1_900_000_000.0]
    identity.clock = lambda: moment[0]
    identity.access_token_lifetime = 3
    app = confidential_app(base_url)
    short = app.acquire_token_for_client(GRAPH_DEFAULT)["access_token"]
    moment[0] += 2.9
    assert identity.validate_access_token(short) is not None
    moment[0] += 0.1  # exp reached
    assert identity.validate_access_token(short) is None

    identity.access_token_lifetime = 3600
    fresh = app.acquire_token_for_client(GRAPH_DEFAULT)["access_token"]
    assert identity.validate_access_token(fresh) is not None
    identity.expire_access_tokens()
    assert identity.validate_access_token(fresh) is None


def test_state_dump_lists_sign_ins_without_secrets(identity, base_url):
    # The /_sandbox/state view shows what happened and never a secret
    confidential_app(base_url).acquire_token_for_client(GRAPH_DEFAULT)
    state = requests.get(f"{base_url}/_sandbox/state", timeout=10).json()
    assert state["tenant_id"] == TENANT_ID
    assert [t["grant"] for t in state["tokens_issued"]] == ["client_credentials"]
    assert SECRET not in json.dumps(state)


def test_error_description_puts_trace_details_on_crlf_lines_and_token_get_is_refused(base_url):
    # error_description reads "AADSTSnnnn: ...\r\nTrace ID: ...\r\nCorrelation ID: ...\r\n
    # Timestamp: ..." and a GET on the token endpoint is AADSTS900561.
    response = requests.post(
        f"{base_url}/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": "wrong",
            "scope": GRAPH_DEFAULT[0],
        },
        headers={"client-request-id": "7d3c0f3e-0000-4000-8000-000000000001"},
        timeout=10,
    )
    body = response.json()
    assert response.status_code == 401
    lines = body["error_description"].split("\r\n")
    assert lines[0].startswith("AADSTS7000215: ")
    assert lines[1] == f"Trace ID: {body['trace_id']}"
    assert lines[2] == "Correlation ID: 7d3c0f3e-0000-4000-8000-000000000001"
    assert lines[3] == f"Timestamp: {body['timestamp']}"
    got = requests.get(f"{base_url}/{TENANT_ID}/oauth2/v2.0/token", timeout=10)
    assert got.status_code == 400
    assert_aadsts_error(got.json(), "invalid_request", 900561)
    assert "Received a GET request." in got.json()["error_description"]
