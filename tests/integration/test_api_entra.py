"""Microsoft Entra ID access tokens for the REST API, from the identity emulator over HTTPS."""

from __future__ import annotations

import time

import jwt
import msal
import pytest
import requests

from ticket_manager.api.entra import EntraTokenValidator, principal_from_claims
from ticket_manager.api.keys import KeyRefused
from ticket_manager.api.problems import Problem
from ticket_manager.config import ConfigError, load_settings
from ticket_manager.http import build_session
from ticket_manager.models import Ticket
from ticket_manager_sandbox.identity import SigningKey

# Everything here is about authentication; the database does not change it.
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PROBLEM = "application/problem+json"
TYPE = "tag:ticket-manager,2026:problems/"
API_URI = "api://ticket-manager"
# Client apps of the tenant: a CRM that reads and writes tickets, a report that only reads,
# an app granted nothing, and a public app people sign in to.
CRM = ("3c9e1f0a-6b7d-4e2f-9a8b-1c2d3e4f5a6b", "crm-secret")
REPORT = ("7d2a4b6c-8e0f-4a1b-9c3d-5e7f9a1b3c5d", "report-secret")
STRANGER = ("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "stranger-secret")
DESK = "2b4d6f8a-0c1e-4f3a-8b5d-7c9e1f3a5b7d"
DISCOVERY = "GET /<tenant>/v2.0/.well-known/openid-configuration"
KEYS = "GET /<tenant>/discovery/v2.0/keys"


@pytest.fixture
def ticket_api(sandbox):
    """Ticket Manager's API registered in the emulated tenant, with its client apps."""
    identity = sandbox.identity
    for client_id, secret in (CRM, REPORT, STRANGER):
        identity.register_client(client_id, secret)
    identity.register_client(DESK)
    identity.register_user("carol.customer@example.com", "Carol Customer")
    return identity.register_api(
        API_URI,
        app_roles={CRM[0]: ["Tickets.Read", "Tickets.Write"], REPORT[0]: ["Tickets.Read"]},
        scopes=["Tickets.Read", "Tickets.Write", "Messages.Read"],
    )


@pytest.fixture
def entra_api(make_api, ticket_api):
    """The REST API accepting the tenant's tokens for the registered API."""
    return make_api(API_ENTRA_AUDIENCE=ticket_api.client_id)


def app_token(sandbox, client: tuple[str, str], scope: str = f"{API_URI}/.default") -> str:
    """An app-only token from the emulator, acquired with MSAL as a client app would."""
    app = msal.ConfidentialClientApplication(
        client[0],
        client_credential=client[1],
        authority=f"{sandbox.authority_host}/{sandbox.accounts.tenant_id}",
        instance_discovery=False,
        http_client=build_session(str(sandbox.ca_bundle)),
    )
    result = app.acquire_token_for_client([scope])
    assert "access_token" in result, result
    return result["access_token"]


def user_token(sandbox, upn: str, scopes: list[str]) -> str:
    """A delegated token from the device-code flow, approved in the emulator for ``upn``."""
    return device_sign_in(sandbox, upn, scopes)["access_token"]


def device_sign_in(sandbox, upn: str, scopes: list[str]) -> dict:
    """The token answer of a device-code sign-in, approved in the emulator for ``upn``."""
    session = build_session(str(sandbox.ca_bundle))
    url = f"{sandbox.authority_host}/{sandbox.accounts.tenant_id}/oauth2/v2.0"
    started = session.post(
        f"{url}/devicecode", data={"client_id": DESK, "scope": " ".join(scopes)}, timeout=10
    )
    assert started.status_code == 200, started.text
    sandbox.identity.approve_device_code(started.json()["user_code"], upn=upn)
    answer = session.post(
        f"{url}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": DESK,
            "device_code": started.json()["device_code"],
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def resign(token: str, key: SigningKey, *, kid: str | None = None, **changes) -> str:
    """The token's claims, changed and signed with ``key`` (under another key id if given)."""
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": kid or key.kid})


def call(api, method: str, path: str, token: str, **kwargs) -> requests.Response:
    client = api.anonymous()
    return client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def problem(response, status: int, type_: str, token: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == TYPE + type_
    assert token not in response.text
    return body


# -- tokens the API accepts ---------------------------------------------------------------


# On both databases: the principal's id (entra:<oid>) is stored with the ticket.
def test_an_app_token_with_roles_reads_and_creates_tickets(entra_api, sandbox):
    # A client app granted Tickets.Read and Tickets.Write lists boards and creates a ticket
    token = app_token(sandbox, CRM)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(jwt.get_unverified_header(token)) == {"typ", "alg", "kid"}  # v2.0: no x5t
    assert claims["ver"] == "2.0" and claims["roles"] == ["Tickets.Read", "Tickets.Write"]

    boards = call(entra_api, "GET", "/boards", token)
    assert boards.status_code == 200, boards.text
    made = call(
        entra_api,
        "POST",
        "/tickets",
        token,
        json={"title": "Invoice missing", "reporter": "dave.customer@example.com"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["reporter"] == "dave.customer@example.com"
    [ticket] = entra_api.rows(Ticket)
    assert ticket.created_by_key == f"entra:{claims['oid']}"
    [issue] = sandbox.jira.issues()
    assert issue["key"] == made.json()["key"]
    assert issue["reporter"] == "dave.customer@example.com"


@on_sqlite
def test_a_person_s_token_acts_as_that_person(entra_api, sandbox):
    # A delegated token (scp) is bound to its user: tickets it opens are reported by them
    token = user_token(
        sandbox,
        "Carol.Customer@example.com",
        [f"{API_URI}/Tickets.Read", f"{API_URI}/Tickets.Write"],
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scp"] == "Tickets.Read Tickets.Write" and claims["azp"] == DESK

    made = call(entra_api, "POST", "/tickets", token, json={"title": "Cannot log in"})
    assert made.status_code == 201, made.text
    assert made.json()["reporter"] == "carol.customer@example.com"
    other = call(
        entra_api, "POST", "/tickets", token, json={"title": "x", "reporter": "dave@example.com"}
    )
    problem(other, 403, "forbidden-reporter", token)
    problem(call(entra_api, "GET", "/messages/1", token), 403, "insufficient-scope", token)


@on_sqlite
def test_a_refreshed_delegated_token_keeps_the_consented_scopes(entra_api, sandbox):
    # A refresh token gives new API tokens for consented scopes only
    read, write = f"{API_URI}/Tickets.Read", f"{API_URI}/Tickets.Write"
    signed_in = device_sign_in(sandbox, "carol.customer@example.com", [read, "offline_access"])
    assert signed_in["scope"] == read
    url = f"{sandbox.authority_host}/{sandbox.accounts.tenant_id}/oauth2/v2.0/token"
    session = build_session(str(sandbox.ca_bundle))
    form = {"grant_type": "refresh_token", "client_id": DESK}
    refreshed = session.post(
        url, data={**form, "refresh_token": signed_in["refresh_token"], "scope": read}, timeout=10
    )
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    assert call(entra_api, "GET", "/boards", token).status_code == 200
    problem(
        call(entra_api, "POST", "/tickets", token, json={"title": "x"}),
        403,
        "insufficient-scope",
        token,
    )
    more = session.post(
        url, data={**form, "refresh_token": signed_in["refresh_token"], "scope": write}, timeout=10
    )
    assert more.status_code == 400 and more.json()["error_codes"] == [65001]


# -- tokens the API refuses -----------------------------------------------------------------


@on_sqlite
def test_a_token_without_the_needed_role_gets_403(entra_api, sandbox):
    # Tickets.Read alone cannot write, and an app granted no role can do nothing
    reader = app_token(sandbox, REPORT)
    assert call(entra_api, "GET", "/boards", reader).status_code == 200
    body = problem(
        call(entra_api, "POST", "/tickets", reader, json={"title": "x"}),
        403,
        "insufficient-scope",
        reader,
    )
    assert "tickets:write" in body["detail"]
    problem(call(entra_api, "GET", "/messages", reader), 403, "insufficient-scope", reader)

    stranger = app_token(sandbox, STRANGER)
    assert "roles" not in jwt.decode(stranger, options={"verify_signature": False})
    problem(call(entra_api, "GET", "/boards", stranger), 403, "insufficient-scope", stranger)


@on_sqlite
def test_expired_and_not_yet_valid_tokens_are_refused(entra_api, sandbox):
    # A token past its exp (beyond a minute of clock skew), or before its nbf, gets 401
    key = sandbox.identity.key
    valid = app_token(sandbox, CRM)
    now = int(time.time())
    expired = resign(valid, key, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    body = problem(call(entra_api, "GET", "/boards", expired), 401, "invalid-token", expired)
    assert "expired" in body["detail"]
    future = resign(valid, key, nbf=now + 3600, exp=now + 7200)
    body = problem(call(entra_api, "GET", "/boards", future), 401, "invalid-token", future)
    assert "not valid yet" in body["detail"]
    assert call(entra_api, "GET", "/boards", valid).status_code == 200


@on_sqlite
def test_a_graph_token_is_refused_as_meant_for_another_audience(entra_api, sandbox):
    # The service's own Graph token, from the same tenant and key, is not for this API
    graph = app_token(
        sandbox,
        (sandbox.accounts.client_id, sandbox.accounts.client_secret),
        "https://graph.microsoft.com/.default",
    )
    response = call(entra_api, "GET", "/boards", graph)
    body = problem(response, 401, "invalid-token", graph)
    assert "audience" in body["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@on_sqlite
def test_tokens_signed_by_another_key_or_tenant_are_refused(entra_api, sandbox):
    # A forged signature, a key the tenant does not publish, another issuer or tid: 401
    valid = app_token(sandbox, CRM)
    own_kid = sandbox.identity.key.kid
    forger = SigningKey()

    forged = resign(valid, forger, kid=own_kid, roles=["Admin"])
    body = problem(call(entra_api, "GET", "/boards", forged), 401, "invalid-token", forged)
    assert "signature" in body["detail"]
    unknown = resign(valid, forger)
    body = problem(call(entra_api, "GET", "/boards", unknown), 401, "invalid-token", unknown)
    assert "does not publish" in body["detail"]

    other_tenant = "11111111-2222-4333-8444-555555555555"
    key = sandbox.identity.key
    foreign = resign(valid, key, iss=f"https://login.microsoftonline.com/{other_tenant}/v2.0")
    body = problem(call(entra_api, "GET", "/boards", foreign), 401, "invalid-token", foreign)
    assert "another tenant or authority" in body["detail"]
    wrong_tid = resign(valid, key, tid=other_tenant)
    body = problem(call(entra_api, "GET", "/boards", wrong_tid), 401, "invalid-token", wrong_tid)
    assert "another tenant" in body["detail"]
    junk = "not-a-jwt-at-all"
    problem(call(entra_api, "GET", "/boards", junk), 401, "invalid-token", junk)


@on_sqlite
def test_without_entra_configured_a_jwt_is_an_unknown_api_key(make_api, ticket_api, sandbox):
    # With API_ENTRA_AUDIENCE unset, a valid Entra token is refused and Entra ID is never asked
    api = make_api()
    token = app_token(sandbox, CRM)
    sandbox.identity.controls.reset_log()
    body = problem(call(api, "GET", "/boards", token), 401, "invalid-token", token)
    assert "not a ticket manager api key" in body["detail"].lower()
    counts = sandbox.identity.controls.counts
    assert counts[DISCOVERY] == 0 and counts[KEYS] == 0


# -- talking to Entra ID ----------------------------------------------------------------------


@on_sqlite
def test_the_keys_are_fetched_once_for_many_requests(entra_api, sandbox):
    # Many requests with tokens of several apps cost one discovery and one key-set fetch
    tokens = [app_token(sandbox, CRM), app_token(sandbox, REPORT), app_token(sandbox, CRM)]
    sandbox.identity.controls.reset_log()
    for _ in range(4):
        for token in tokens:
            assert call(entra_api, "GET", "/boards", token).status_code == 200
    counts = sandbox.identity.controls.counts
    assert counts[DISCOVERY] == 1
    assert counts[KEYS] == 1


@on_sqlite
def test_an_unreachable_identity_platform_answers_503_and_backs_off(entra_api, sandbox):
    # When Entra ID fails, the API answers 503 with Retry-After and does not ask again at once
    identity = sandbox.identity
    token = app_token(sandbox, CRM)
    identity.controls.reset_log()
    identity.controls.fail_next(1, status=503, path_contains="openid-configuration")
    response = call(entra_api, "GET", "/boards", token)
    body = problem(response, 503, "identity-unavailable", token)
    assert body["title"] == "Microsoft Entra ID is unavailable"
    assert 1 <= int(response.headers["Retry-After"]) <= 10
    again = call(entra_api, "GET", "/boards", token)
    problem(again, 503, "identity-unavailable", token)
    assert identity.controls.counts[DISCOVERY] == 1


class Clock:
    """A monotonic clock the test moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def validator_for(sandbox, audience: str, clock: Clock) -> EntraTokenValidator:
    return EntraTokenValidator(
        build_session(str(sandbox.ca_bundle)),
        authority_host=sandbox.authority_host,
        tenant=sandbox.accounts.tenant_id,
        audience=audience,
        clock=clock,
    )


def test_a_rotated_signing_key_is_fetched_at_most_every_five_minutes(ticket_api, sandbox):
    # A token under a new key refetches the key set, but not more than once in five minutes
    identity = sandbox.identity
    clock = Clock()
    validator = validator_for(sandbox, ticket_api.client_id, clock)
    before = app_token(sandbox, CRM)
    identity.controls.reset_log()
    assert validator.authenticate(before).scopes == {"tickets:read", "tickets:write"}

    clock.now += 60
    identity.rotate_signing_key()
    after = app_token(sandbox, REPORT)
    clock.now += 1
    validator.authenticate(before)
    with pytest.raises(KeyRefused, match="does not publish"):
        validator.authenticate(after)
    assert identity.controls.counts[KEYS] == 1

    clock.now += 300
    assert validator.authenticate(after).scopes == {"tickets:read"}
    assert validator.authenticate(before).name == CRM[0]
    assert identity.controls.counts[KEYS] == 2


def test_the_back_off_ends_and_cached_keys_outlive_an_outage(ticket_api, sandbox):
    # After the back-off the keys are fetched; a later outage does not refuse known keys
    identity = sandbox.identity
    clock = Clock()
    validator = validator_for(sandbox, ticket_api.client_id, clock)
    token = app_token(sandbox, CRM)
    identity.controls.fail_next(1, status=500, path_contains="/keys")
    with pytest.raises(Problem) as unavailable:
        validator.authenticate(token)
    assert unavailable.value.status == 503
    clock.now += 11
    assert validator.authenticate(token).key_id.startswith("entra:")

    clock.now += 25 * 3600  # the daily refresh is due, and Entra ID is down
    identity.controls.fail_next(1, status=503, path_contains="openid-configuration")
    assert validator.authenticate(token).name == CRM[0]


# -- units: scopes from claims, and configuration ---------------------------------------------


def test_roles_and_scopes_map_to_api_scopes():
    # Entra permission values and the API's own names both grant scopes; others grant nothing
    app = principal_from_claims(
        {"sub": "s", "oid": "o-1", "azp": "app-1", "roles": ["Messages.Read", "tickets:write", "X"]}
    )
    assert app.scopes == {"messages:read", "tickets:write"}
    assert (app.key_id, app.name, app.user_email) == ("entra:o-1", "app-1", None)
    person = principal_from_claims(
        {"sub": "s", "oid": "o-2", "scp": "Admin", "upn": "Eve@Example.com", "roles": ["Admin"]}
    )
    assert person.is_admin and person.user_email == "eve@example.com"
    reader = principal_from_claims({"sub": "s", "scp": "Tickets.Read", "email": "f@example.com"})
    assert reader.scopes == {"tickets:read"} and reader.key_id == "entra:s"
    with pytest.raises(KeyRefused, match="names no user"):
        principal_from_claims({"sub": "s", "oid": "o-3", "scp": "Tickets.Read"})


BASE = {"SQLALCHEMY_DATABASE_URI": "sqlite:///x.db", "O365_TENANT_ID": "contoso.onmicrosoft.com"}
AUDIENCE = "6E1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_entra_configuration_defaults_and_errors():
    # Entra sign-in is off by default, takes the tenant from O365_TENANT_ID, and explains errors
    assert load_settings(BASE).api_entra_audience is None
    on = load_settings({**BASE, "API_ENTRA_AUDIENCE": AUDIENCE})
    assert on.api_entra_audience == AUDIENCE.lower()
    assert on.api_entra_tenant_id == "contoso.onmicrosoft.com"
    own = load_settings(
        {**BASE, "API_ENTRA_AUDIENCE": AUDIENCE, "API_ENTRA_TENANT_ID": "t.example"}
    )
    assert own.api_entra_tenant_id == "t.example"

    cases = [
        ({"API_ENTRA_AUDIENCE": "api://ticket-manager"}, "API_ENTRA_AUDIENCE", "client id"),
        ({"API_ENTRA_AUDIENCE": "ticket-manager"}, "API_ENTRA_AUDIENCE", "GUID"),
        (
            {"API_ENTRA_AUDIENCE": AUDIENCE, "O365_TENANT_ID": ""},
            "API_ENTRA_TENANT_ID",
            "is required",
        ),
        (
            {"API_ENTRA_AUDIENCE": AUDIENCE, "O365_TENANT_ID": "common"},
            "API_ENTRA_TENANT_ID",
            "from O365_TENANT_ID",
        ),
        (
            {"API_ENTRA_AUDIENCE": AUDIENCE, "API_ENTRA_TENANT_ID": "bad tenant!"},
            "API_ENTRA_TENANT_ID",
            "expected a tenant id",
        ),
        ({"API_ENTRA_AUDIENCES": AUDIENCE}, "API_ENTRA_AUDIENCES", "API_ENTRA_AUDIENCE"),
    ]
    for changes, key, words in cases:
        with pytest.raises(ConfigError) as raised:
            load_settings({**BASE, **changes})
        assert raised.value.key == key
        assert words in raised.value.message
