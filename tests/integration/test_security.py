"""Hardening, probed over real HTTP as an attacker would: bad input, limits, access, headers."""

from __future__ import annotations

import base64
import json
import logging

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
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

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


# -- 2. limits before authentication --------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_keys_are_limited_per_address_before_the_key_is_looked_up(make_api):
    # Requests with a bad key count against the caller's address; over the limit, a 429.
    api = make_api(API_UNAUTHENTICATED_RATE_LIMIT="5 per minute")
    client = api.anonymous()
    bad = {"Authorization": "Bearer tm_deadbeef_" + "x" * 43}
    statuses = [client.get("/boards", headers=bad).status_code for _ in range(5)]
    assert statuses == [401] * 5
    refused = client.get("/boards", headers=bad)
    problem(refused, 429, "rate-limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # A good key is limited per key, not by its address's bad neighbours.
    assert api.client("tickets:read").get("/boards").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", ["/health/live", NOTIFICATIONS, WEBHOOK])
def test_open_endpoints_are_limited_per_address(make_api, path):
    # Health, Graph notifications and the Jira webhook count per client address.
    api = make_api(
        API_UNAUTHENTICATED_RATE_LIMIT="3 per minute", JIRA_WEBHOOK_SECRET=WEBHOOK_SECRET
    )
    client = ApiClient(api.base_url)
    method = "GET" if path.startswith("/health") else "POST"
    statuses = [client.request(method, path, json={"value": []}).status_code for _ in range(4)]
    assert statuses[:3] != [429] * 3 and 429 not in statuses[:3]
    assert statuses[3] == 429


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_forwarded_for_counts_only_through_trusted_proxies(make_api):
    # X-Forwarded-For names the client only when the peer is a trusted proxy.
    untrusted = make_api(API_UNAUTHENTICATED_RATE_LIMIT="2 per minute")
    client = ApiClient(untrusted.base_url)
    spoofed = [
        client.get("/health/live", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(3)
    ]
    assert spoofed == [200, 200, 429]  # the header was ignored: one address, the peer's

    trusted = make_api(API_UNAUTHENTICATED_RATE_LIMIT="2 per minute", TRUSTED_PROXIES="127.0.0.0/8")
    client = ApiClient(trusted.base_url)
    forwarded = [
        client.get("/health/live", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(3)
    ]
    assert forwarded == [200, 200, 200]
    same = [
        client.get(
            "/health/live", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        ).status_code
        for _ in range(3)
    ]
    assert same == [200, 200, 429]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_notification_flood_is_capped_and_logged_once(make_api):
    # A POST with more entries than O365_NOTIFICATION_MAX_ENTRIES is a 413; forged entries
    # under the cap are logged in one line, not one per entry.
    api = make_api(O365_NOTIFICATION_MAX_ENTRIES="50", O365_NOTIFICATION_MAX_SIZE="64KB")
    client = ApiClient(api.base_url)
    forged = {"subscriptionId": "x", "clientState": "y", "changeType": "created"}
    problem(client.post(NOTIFICATIONS, json={"value": [forged] * 51}), 413, "payload-too-large")
    big = {"value": [{**forged, "resource": "r" * 70_000}]}
    problem(client.post(NOTIFICATIONS, json=big), 413, "payload-too-large")
    logger = logging.getLogger("ticket_manager.notifications")
    lines: list[logging.LogRecord] = []
    collector = logging.Handler(logging.WARNING)
    collector.emit = lines.append  # the app's loggers may not propagate to the root
    logger.addHandler(collector)
    try:
        assert client.post(NOTIFICATIONS, json={"value": [forged] * 50}).status_code == 202
    finally:
        logger.removeHandler(collector)
    assert len(lines) == 1
    assert lines[0].rejected == 50


# -- 3. who may see what ------------------------------------------------------------------------


def email_ticket(api, sender: str = "Alice Martin <alice@example.com>") -> str:
    """A ticket opened by email from ``sender``; returns its key."""
    api.pipeline.deliver(sender=sender, subject="Printer jammed", cc=["boss@example.com"])
    api.pipeline.run_once()
    [row] = [r for r in api.pipeline.rows() if r.ticket_key]
    return row.ticket_key


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_key_bound_to_a_user_sees_only_that_users_tickets(api):
    # Carol's key does not see Alice's ticket: not in a search, not by key (404), not to act on.
    key = email_ticket(api)
    carol = api.client("tickets:read", "tickets:write", user="carol.customer@example.com")
    own = carol.post("/tickets", json={"title": "My laptop"}).json()["key"]
    assert [t["key"] for t in carol.get("/tickets").json()["items"]] == [own]
    assert carol.get("/tickets").json()["total"] == 1
    for method, path in [
        ("GET", f"/tickets/{key}"),
        ("GET", f"/tickets/{key}/comments"),
        ("GET", f"/tickets/{key}/transitions"),
        ("POST", f"/tickets/{key}/comments"),
        ("PATCH", f"/tickets/{key}"),
    ]:
        response = carol.request(method, path, json={"body": "hi"}, headers={"If-Match": "*"})
        problem(response, 404, "not-found")
    # The requester and a participant (Cc) see it; tickets:all sees everything.
    alice = api.client("tickets:read", user="alice@example.com")
    assert alice.get(f"/tickets/{key}").status_code == 200
    assert [t["key"] for t in alice.get("/tickets").json()["items"]] == [key]
    boss = api.client("tickets:read", user="boss@example.com")
    assert boss.get(f"/tickets/{key}").status_code == 200
    agent = api.client("tickets:read", "tickets:all", user="agent@example.com")
    assert {t["key"] for t in agent.get("/tickets").json()["items"]} == {key, own}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_internal_notes_need_their_own_scope(api):
    # Without tickets:internal, internal notes are neither listed nor written.
    key = api.client().post("/tickets", json={"title": "Printer"}).json()["key"]
    agent = api.client(
        "tickets:read", "tickets:write", "tickets:all", "tickets:internal", user="a@example.com"
    )
    assert agent.post(f"/tickets/{key}/comments", json={"body": "Public"}).status_code == 201
    note = agent.post(f"/tickets/{key}/comments", json={"body": "Secret", "internal": True})
    assert note.status_code == 201
    carol = api.client()
    listed = carol.get(f"/tickets/{key}/comments").json()["items"]
    assert [c["public"] for c in listed] == [True]
    assert "Public" in listed[0]["body_text"]
    with_comments = carol.get(f"/tickets/{key}", params={"fields": "comments"}).json()
    assert [c["public"] for c in with_comments["comments"]] == [True]
    refused = carol.post(f"/tickets/{key}/comments", json={"body": "x", "internal": True})
    problem(refused, 403, "insufficient-scope")
    assert "tickets:internal" in refused.json()["detail"]
    assert len(agent.get(f"/tickets/{key}/comments").json()["items"]) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_emailing_the_requester_needs_its_own_scope(api):
    # tickets:write alone cannot make the support mailbox email the requester.
    from ticket_manager.models import OutboundMessage

    key = email_ticket(api)
    writer = api.client("tickets:read", "tickets:write", "tickets:all", user="w@example.com")
    sent_before = len(api.rows(OutboundMessage))
    refused = writer.post(
        f"/tickets/{key}/comments", json={"body": "[click](https://evil)", "notify_requester": True}
    )
    problem(refused, 403, "insufficient-scope")
    assert len(api.rows(OutboundMessage)) == sent_before
    notifier = api.client(
        "tickets:read", "tickets:write", "tickets:all", "tickets:notify", user="n@example.com"
    )
    sent = notifier.post(
        f"/tickets/{key}/comments", json={"body": "Fixed", "notify_requester": True}
    )
    assert sent.status_code == 201
    assert len(api.rows(OutboundMessage)) == sent_before + 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_message_bodies_and_headers_need_messages_content(api):
    # messages:read lists the ledger; the headers and text need messages:content too.
    email_ticket(api)
    reader = api.client("messages:read")
    [row] = [m for m in reader.get("/messages").json()["items"] if m["ticket_key"]]
    detail = reader.get(f"/messages/{row['id']}/detail").json()
    assert detail["headers"] is None and detail["jira"] is None
    assert "messages:content" in detail["headers_error"]
    full = api.client("messages:read", "messages:content").get(f"/messages/{row['id']}/detail")
    assert full.json()["headers"] and "jammed" in full.json()["jira"]["text"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ready_without_a_key_says_only_ready_or_not(api):
    # Anonymous readiness names no mailbox and no sign-in error; metrics:read sees them.
    anonymous = api.anonymous().get("/health/ready")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ok", "checks": {}, "mailboxes": []}
    assert "support@example.com" not in anonymous.text
    bad = api.anonymous().get("/health/ready", headers={"Authorization": "Bearer nonsense"})
    assert bad.json() == anonymous.json()
    detailed = api.client("metrics:read").get("/health/ready").json()
    assert [m["address"] for m in detailed["mailboxes"]] == ["support@example.com"]


# -- 7. HTTP hardening -------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_answer_is_nosniff_unframeable_and_api_answers_are_not_stored(make_api):
    # nosniff, a CSP and no framing on every answer; no-store where answers hold data.
    api = make_api(JIRA_WEBHOOK_SECRET=WEBHOOK_SECRET)
    anonymous, client = ApiClient(api.base_url), api.client("tickets:read")
    answers = {
        "echo": anonymous.post(NOTIFICATIONS, params={"validationToken": "<b>x</b>"}),
        "list": client.get("/tickets"),
        "problem": client.get("/tickets/NOPE-1"),
        "unauthenticated": anonymous.get("/tickets"),
        "webhook": anonymous.post(WEBHOOK, json={}),
        "openapi": anonymous.get("/openapi.json"),
        "health": anonymous.get("/health/live"),
        "missing route": anonymous.get("/no/such/page"),
    }
    for name, response in answers.items():
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["Cache-Control"] == "no-store", name
    assert answers["echo"].text == "<b>x</b>"
    assert "default-src 'none'" in answers["echo"].headers["Content-Security-Policy"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_swagger_ui_has_a_csp_without_inline_script_and_cannot_be_framed(api):
    # Swagger UI's page allows only its own scripts: no inline script to allow.
    page = api.anonymous().get("/docs")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.text
    assert api.anonymous().get("/static/swagger-ui/ticket-manager-init.js").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_if_match_star_does_not_skip_the_lost_update_check(api):
    # PATCH with If-Match: * is refused: it must name the version the client read.
    client = api.client()
    key = client.post("/tickets", json={"title": "Printer"}).json()["key"]
    response = client.patch(f"/tickets/{key}", json={"title": "Mine"}, headers={"If-Match": "*"})
    problem(response, 428, "precondition-required")
    assert client.get(f"/tickets/{key}").json()["title"] == "Printer"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_url_too_long_is_a_414_problem(api):
    # A URL longer than the app accepts is a 414 problem, not the server's own page.
    response = api.client("tickets:read").get("/tickets", params={"status": "x" * 5000})
    problem(response, 414, "uri-too-long")


# -- 4. secrets and storage -------------------------------------------------------------------

STRONG_KEY = "Qw8-rT3zLp0_vX6yNb2mKc9hJf4dGs1aEo7uIi5WqZx"


@pytest.mark.parametrize("weak", ["a", "x" * 64, "passwordpasswordpasswordpassword", "short-1"])
def test_a_weak_secret_key_is_refused_with_a_way_to_make_one(weak):
    # SECRET_KEY=a (or any short or repetitive value) stops start-up with one line saying how.
    from ticket_manager.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings({"SECRET_KEY": weak})
    message = refused.value.format_message()
    assert "\n" not in message and "SECRET_KEY" in message
    assert "secrets.token_urlsafe" in message and (len(weak) < 4 or weak not in message)
    assert load_settings({"SECRET_KEY": STRONG_KEY}).secret_key.reveal() == STRONG_KEY


def test_a_rotated_secret_key_still_reads_the_sign_in_and_rewrites_it(make_pipeline):
    # The old key in SECRET_KEY_FALLBACKS decrypts the stored sign-in, which is then
    # re-encrypted under the new key, so the old one can be dropped.
    import msal

    from ticket_manager.config import Secret
    from ticket_manager.extensions import db
    from ticket_manager.graph.token_store import DatabaseTokenStore
    from ticket_manager.models import TokenCache

    harness = make_pipeline()
    new_key = Secret(STRONG_KEY[::-1])
    with harness.app.app_context():
        cache = msal.SerializableTokenCache()
        cache.add({"response": {"access_token": "at", "token_type": "Bearer"}, "scope": ["x"]})
        DatabaseTokenStore(Secret(STRONG_KEY), "t/c").save(cache)
        before = db.session.get(TokenCache, "t/c").data
        db.session.rollback()
        rotated = DatabaseTokenStore(new_key, "t/c", (Secret(STRONG_KEY),))
        assert rotated.load_into(msal.SerializableTokenCache())
        after = db.session.get(TokenCache, "t/c").data
        assert after != before
        assert DatabaseTokenStore(new_key, "t/c").load_into(msal.SerializableTokenCache())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_database_files_are_created_readable_by_their_owner_only(pipeline):
    # The SQLite file (and its WAL and shared-memory files) are 0600.
    from pathlib import Path

    from sqlalchemy.engine import make_url

    path = Path(make_url(pipeline.settings.database_uri).database)
    pipeline.deliver()
    pipeline.run_once()
    for file in [path, *path.parent.glob(path.name + "-*")]:
        assert file.stat().st_mode & 0o777 == 0o600, file


def test_short_configured_secrets_are_masked_too():
    # A configured secret shorter than 8 characters is masked where it stands alone.
    from ticket_manager.config import load_settings
    from ticket_manager.logs import Redactor, secrets_of

    settings = load_settings(
        {"JIRA_WEBHOOK_SECRET": "hunter2", "API_RATE_LIMIT_STORAGE_URI": "redis://:pw1@r:6379"}
    )
    redact = Redactor(secrets_of(settings))
    assert redact("secret=hunter2 from hunter2s") == "secret=[redacted] from hunter2s"
    assert "pw1" not in redact("connecting with pw1")


def test_a_malformed_rate_limit_storage_uri_is_not_echoed_with_its_password():
    # The error names the key and the address, with the password masked.
    from ticket_manager.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings({"API_RATE_LIMIT_STORAGE_URI": "mongodb://admin:S3cr3tPass@db:27017"})
    message = refused.value.format_message()
    assert "S3cr3tPass" not in message and "db:27017" in message


# -- 5. intake caps ---------------------------------------------------------------------------


def held_rows(harness):
    from ticket_manager.models import MessageState

    return [r for r in harness.rows() if r.state == MessageState.HELD]


def test_mail_over_the_domain_cap_is_held_unanswered_and_releasable(make_pipeline):
    # 5 senders of one domain, cap 3 an hour: 3 tickets, 2 held, no acknowledgement for them;
    # released from the CLI, they become tickets.
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from ticket_manager.commands.o365 import o365

    harness = make_pipeline(EMAIL_MAX_PER_DOMAIN_PER_HOUR="3", EMAIL_MAX_PER_SENDER_PER_DAY="0")
    for n in range(5):
        harness.deliver(sender=f"user{n}@example.com", subject=f"Request {n}")
    harness.run_once()
    assert len(harness.issues()) == 3
    held = held_rows(harness)
    assert [r.rule for r in held] == ["domain-cap", "domain-cap"]
    assert "EMAIL_MAX_PER_DOMAIN_PER_HOUR" in held[0].reason
    acknowledged = {
        m["toRecipients"][0]["emailAddress"]["address"]
        for m in harness.sandbox.graph.sent_messages(harness.mailbox)
    }
    assert acknowledged == {"user0@example.com", "user1@example.com", "user2@example.com"}

    info = ScriptInfo(create_app=lambda: harness.app)
    listed = CliRunner().invoke(o365, ["list-held"], obj=info)
    assert listed.exit_code == 0 and f"#{held[0].id}" in listed.output
    released = CliRunner().invoke(
        o365, ["release-held", "--id", str(held[0].id), "--id", str(held[1].id)], obj=info
    )
    assert released.exit_code == 0, released.output
    harness.run_once()
    assert len(harness.issues()) == 5 and held_rows(harness) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mail_over_the_mailbox_cap_is_held_and_released_through_the_api(make_api):
    # Over EMAIL_MAX_PER_MAILBOX_PER_HOUR, mail is held; the dashboard's retry releases it.
    api = make_api(EMAIL_MAX_PER_MAILBOX_PER_HOUR="2", EMAIL_WHITELISTED_DOMAINS="")
    for domain in ("a.example", "b.example", "c.example"):
        api.pipeline.deliver(sender=f"someone@{domain}", subject=f"From {domain}")
    api.pipeline.run_once()
    [held] = held_rows(api.pipeline)
    assert held.rule == "mailbox-cap"
    client = api.client("messages:read", "messages:write")
    listed = client.get("/messages", params={"state": "held"}).json()["items"]
    assert [m["id"] for m in listed] == [held.id]
    assert client.post(f"/messages/{held.id}/retry", json={}).json()["state"] == "pending"
    api.pipeline.run_once()
    assert len(api.pipeline.issues()) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_watchers_per_email_are_capped_and_each_looked_up_once(make_pipeline):
    # 200 Cc addresses (with repeats) cost at most EMAIL_MAX_WATCHERS Jira user searches.
    harness = make_pipeline(EMAIL_MAX_WATCHERS="5")
    cc = [f"person{n % 100}@example.com" for n in range(200)]
    harness.deliver(cc=cc)
    harness.run_once()
    assert len(harness.issues()) == 1
    searches = [r for r in harness.sandbox.jira.controls.requests if "user/search" in r.path]
    assert len(searches) <= 5 + 1  # the Cc cap, and the sender


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_api_request_causes_a_bounded_number_of_jira_calls(api):
    # GET /tickets with every Jira-backed field reads at most API_FIELDS_PAGE_SIZE_MAX tickets.
    client = api.client("tickets:read", "tickets:write", "tickets:all")
    for n in range(12):
        assert client.post("/tickets", json={"title": f"T{n}"}).status_code == 201
    jira = api.sandbox.jira.controls
    before = len(jira.requests)
    page = client.get(
        "/tickets", params={"fields": "comments,attachments,watchers", "limit": 100}
    ).json()
    calls = len(jira.requests) - before
    assert len(page["items"]) == 10 and page["next_cursor"]
    assert calls <= 10 * 3


# -- 6. senders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_graph_emulator_stamps_exchanges_authentication_results_on_top(pipeline):
    # Exchange prepends its Authentication-Results above any the sender wrote.
    forged = "spf=pass smtp.mailfrom=example.com; dmarc=pass action=none header.from=example.com"
    pipeline.sandbox.graph.spoofed_domains["example.com"] = "quarantine"
    pipeline.deliver(headers={"Authentication-Results": forged})
    [message] = pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")
    values = [
        h["value"]
        for h in message["internetMessageHeaders"]
        if h["name"].lower() == "authentication-results"
    ]
    assert len(values) == 2 and values[1] == forged
    assert "dmarc=fail action=quarantine header.from=example.com" in values[0]
    assert "compauth=fail" in values[0]


def test_mail_failing_dmarc_under_a_reject_or_quarantine_policy_is_rejected(pipeline):
    # A forged From of a domain publishing p=quarantine: no ticket, no acknowledgement,
    # the reason recorded; a forged "pass" line written by the sender changes nothing.
    pipeline.sandbox.graph.spoofed_domains["example.com"] = "quarantine"
    pipeline.deliver(
        headers={"Authentication-Results": "dmarc=pass action=none header.from=example.com"}
    )
    pipeline.run_once()
    [row] = pipeline.rows()
    assert (row.state.value, row.rule) == ("rejected", "sender-authentication")
    assert "dmarc=fail action=quarantine" in row.reason
    assert pipeline.issues() == []
    assert pipeline.sandbox.graph.sent_messages(pipeline.mailbox) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_other_authentication_doubts_are_held(make_pipeline):
    # DMARC failing under p=none, and a Sender of another domain than From, are held.
    harness = make_pipeline()
    harness.sandbox.graph.spoofed_domains["example.com"] = "none"
    harness.deliver(subject="Weak policy")
    harness.run_once()
    harness.sandbox.graph.spoofed_domains.clear()
    harness.deliver(subject="On behalf", headers={"Sender": "bulk@mailer.example.net"})
    harness.run_once()
    rows = harness.rows()
    assert [(r.state.value, r.rule) for r in rows] == [("held", "sender-authentication")] * 2
    assert "dmarc=fail action=none" in rows[0].reason
    assert "bulk@mailer.example.net" in rows[1].reason
    assert harness.issues() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sender_authentication_can_hold_everything_or_be_off(make_pipeline):
    # EMAIL_SENDER_AUTHENTICATION=hold holds even a DMARC reject; off trusts From.
    holding = make_pipeline(EMAIL_SENDER_AUTHENTICATION="hold")
    holding.sandbox.graph.spoofed_domains["example.com"] = "reject"
    holding.deliver()
    holding.run_once()
    assert [r.state.value for r in holding.rows()] == ["held"]
    trusting = make_pipeline(EMAIL_SENDER_AUTHENTICATION="off")
    trusting.deliver(subject="Second")
    trusting.run_once()
    assert len(trusting.issues()) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_forged_mail_that_is_held_does_not_lock_the_real_sender_out(make_pipeline):
    # Held forgeries in a customer's name do not count against that customer's sender cap.
    harness = make_pipeline(EMAIL_MAX_PER_SENDER_PER_DAY="2")
    harness.sandbox.graph.spoofed_domains["example.com"] = "none"
    for n in range(3):
        harness.deliver(subject=f"Forged {n}")
    harness.run_once()
    harness.sandbox.graph.spoofed_domains.clear()
    harness.deliver(subject="The real one")
    harness.run_once()
    states = [(r.subject, r.state.value) for r in harness.rows()]
    assert states[-1] == ("The real one", "ticket_created")
    assert [s for _, s in states[:3]] == ["held"] * 3
