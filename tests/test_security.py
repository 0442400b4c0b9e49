"""Hardening, probed over real HTTP as an attacker would: bad input, limits, access, headers."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from conftest import ApiClient, ApiHarness

PROBLEM = "application/problem+json"
TYPE = "tag:ticket-manager,2026:problems/"
NOTIFICATIONS = "/graph/notifications"
WEBHOOK = "/jira/webhook"
WEBHOOK_SECRET = "webhook-shared-secret-0123456789"


def problem(response, status: int, type_: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM, response.headers
    body = response.json()
    if type_:
        assert body["type"] == TYPE + type_
    assert "Traceback" not in response.text
    return body


def raw_post(client: ApiClient, path: str, body: str, **headers) -> requests.Response:
    headers.setdefault("Content-Type", "application/json")
    return client.post(path, data=body.encode("utf-8", "surrogatepass"), headers=headers)


# -- 1. bad input is a 4xx before any Jira call ------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "field",
    [
        '"labels": ["ok", "bad\\u0000label"]',
        '"labels": ["bad\\ud800"]',
        '"priority": "High\\u0000"',
        '"priority": "\\udfff"',
    ],
)
def test_nul_or_lone_surrogate_in_a_field_is_refused_before_jira_is_called(api, field):
    # A NUL byte or an unpaired surrogate is a 422 naming the field, and no Jira issue is made.
    client = api.client()
    response = raw_post(client, "/tickets", '{"title": "Printer", ' + field + "}")
    body = problem(response, 422, "validation-error")
    assert set(body["errors"]["json"]) <= {"labels", "priority"}
    assert api.sandbox.jira.issues() == []
    assert not [r for r in api.sandbox.jira.controls.requests if r.method == "POST"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_deeply_nested_json_is_a_400_on_the_api(api):
    # JSON nested far deeper than any field is refused, not a recursion error.
    client = api.client()
    deep = '{"title": ' + "[" * 5000 + "]" * 5000 + "}"
    problem(raw_post(client, "/tickets", deep), 400, "bad-request")
    nested = '{"title": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}"
    problem(raw_post(client, "/tickets", nested), 400, "bad-request")
    assert api.sandbox.jira.issues() == []


def test_nul_bytes_in_filters_and_ticket_keys_are_4xx_on_every_database(api):
    # A NUL byte in a search filter or a ticket key is a 4xx, not PostgreSQL's refusal as a 500.
    client = api.client("tickets:read")
    for params in ({"status": "Done\x00"}, {"board": "\x00"}, {"category": "a\x00"}):
        body = problem(client.get("/tickets", params=params), 422, "validation-error")
        assert list(body["errors"]["query"]) == list(params)
    for path in ("/tickets/SUP-1%00", "/tickets/%00/comments"):
        problem(client.get(path), 400, "bad-request")


def test_a_forged_jira_cursor_on_server_is_a_422(make_pipeline, serve, tmp_path):
    # On Jira Server the cursor carries startAt: a forged, non-numeric one is a 422.
    from ticket_manager.sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(jira_deployment="Server"), state_dir=tmp_path / "s") as server:
        harness = make_pipeline(server, API_RATE_LIMIT="off")
        api = ApiHarness(harness, serve(harness.app, tls=False))
        client = api.client("tickets:read", "tickets:write")
        assert client.post("/tickets", json={"title": "Toner low"}).status_code == 201
        for token in ("abc", "-1", "1e9", "9" * 40):
            raw = json.dumps(["jira", "-created", token]).encode()
            cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            response = client.get("/tickets", params={"q": "toner", "cursor": cursor})
            body = problem(response, 422, "validation-error")
            assert "cursor" in body["errors"]["query"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("body", ["[]", '"value"', "42", '{"value": 7}', '{"value": "x"}'])
def test_a_notification_body_of_the_wrong_shape_is_a_400(api, body):
    # Graph posts an object with a "value" array; any other JSON is a 400 problem.
    client = ApiClient(api.base_url)
    problem(raw_post(client, NOTIFICATIONS, body), 400, "bad-request")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_deeply_nested_notification_is_a_400(api):
    # A notification nested thousands deep is refused before it is parsed into Python.
    client = ApiClient(api.base_url)
    deep = '{"value": [' + "[" * 20000 + "]" * 20000 + "]}"
    problem(raw_post(client, NOTIFICATIONS, deep), 400, "bad-request")
    junk = '{"value": [1, "x", [], {"subscriptionId": 5, "clientState": {}}]}'
    assert raw_post(client, NOTIFICATIONS, junk).status_code == 202


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_webhook_body_that_is_not_an_object_is_a_400(make_api):
    # A signed Jira webhook whose body is a list is a 400 problem, and a bad secret a 401 one.
    api = make_api(JIRA_WEBHOOK_SECRET=WEBHOOK_SECRET)
    client = ApiClient(api.base_url)
    problem(
        client.post(WEBHOOK, params={"secret": WEBHOOK_SECRET}, json=[{"webhookEvent": "x"}]),
        400,
        "bad-request",
    )
    problem(client.post(WEBHOOK, params={"secret": "wrong"}, json={}), 401, "unauthenticated")
