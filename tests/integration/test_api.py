"""The REST API over real HTTP against the emulated Jira: auth, problems, create, update..."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ticket_manager.models import OutboundMessage, Ticket

# Everything here is about HTTP and Jira; the database-specific search runs in test_api_search.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PROBLEM = "application/problem+json"
TYPE = "tag:ticket-manager,2026:problems/"


def problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == TYPE + type_
    assert body["status"] == status
    assert body["title"]
    assert "Traceback" not in response.text
    return body


def create(client, **fields):
    payload = {"title": "Printer jammed", "body": "It shows **error 42**.", **fields}
    response = client.post("/tickets", json=payload)
    assert response.status_code == 201, response.text
    return response


# -- authentication and scopes ------------------------------------------------------------


def test_every_api_endpoint_needs_a_bearer_token(api):
    anonymous = api.anonymous()
    for method, path in [
        ("GET", "/tickets"),
        ("POST", "/tickets"),
        ("GET", "/tickets/SUP-1"),
        ("PATCH", "/tickets/SUP-1"),
        ("GET", "/tickets/SUP-1/comments"),
        ("POST", "/tickets/SUP-1/transitions"),
        ("GET", "/boards"),
        ("GET", "/categories"),
        ("GET", "/messages"),
        ("POST", "/messages/1/retry"),
    ]:
        response = anonymous.request(method, path, json={})
        body = problem(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Bearer" in body["detail"]


def test_unknown_malformed_revoked_and_expired_keys_are_refused(api):
    from click.testing import CliRunner

    from ticket_manager.commands.tickets import tickets

    for token in ["nonsense", "tm_deadbeef_" + "x" * 43]:
        response = api.anonymous().get("/boards", headers={"Authorization": f"Bearer {token}"})
        problem(response, 401, "invalid-token")

    token = api.key("tickets:read")
    client = api.anonymous()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/boards", headers=headers).status_code == 200
    key_id = token.split("_")[1]
    result = CliRunner().invoke(tickets, ["api-key", "revoke", key_id], obj=_script_info(api))
    assert result.exit_code == 0, result.output
    body = problem(client.get("/boards", headers=headers), 401, "invalid-token")
    assert "revoked" in body["detail"]

    expired = api.key("tickets:read", expires_in_days=1)
    from ticket_manager.api.keys import KeyRefused, authenticate
    from ticket_manager.clock import now

    with api.app.app_context(), pytest.raises(KeyRefused, match="expired"):
        authenticate(expired, at=now() + timedelta(days=2))


def _script_info(api):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: api.app)


def test_a_key_without_the_scope_gets_403_naming_it(api):
    reader = api.client("tickets:read")
    body = problem(reader.post("/tickets", json={"title": "x"}), 403, "insufficient-scope")
    assert "tickets:write" in body["detail"]
    problem(reader.get("/messages"), 403, "insufficient-scope")
    admin = api.client("admin")
    assert admin.get("/messages").status_code == 200


def test_api_key_commands_show_the_key_once_and_list_without_secrets(api):
    from click.testing import CliRunner

    from ticket_manager.commands.tickets import tickets

    runner = CliRunner()
    info = _script_info(api)
    made = runner.invoke(
        tickets,
        ["api-key", "create", "--name", "crm", "--scope", "tickets:read", "--user", "a@b.example"],
        obj=info,
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("tm_")
    listed = runner.invoke(tickets, ["api-key", "list"], obj=info)
    assert "crm" in listed.output and "tickets:read" in listed.output
    assert token.split("_", 2)[2] not in listed.output
    bad = runner.invoke(tickets, ["api-key", "create", "--name", "x", "--scope", "root"], obj=info)
    assert bad.exit_code != 0 and "root" in bad.output
    assert (
        api.anonymous().get("/boards", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )


# -- documentation and health ---------------------------------------------------------------


def test_health_and_documentation_need_no_token_and_use_no_cdn(api):
    anonymous = api.anonymous()
    live = anonymous.get("/health/live")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    assert anonymous.get("/health/ready").json() == {"status": "ok", "checks": {}, "mailboxes": []}
    ready = api.client("metrics:read").get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["microsoft_sign_in"] == "ok"
    assert [m["address"] for m in ready.json()["mailboxes"]] == ["support@example.com"]

    spec = anonymous.get("/openapi.json").json()
    assert spec["openapi"] == "3.0.3"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    page = anonymous.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assert anonymous.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    root = anonymous.get("/", allow_redirects=False)
    assert root.status_code == 302 and root.headers["Location"].endswith("/docs")
    top = api.anonymous().session.get(api.server_url + "/", allow_redirects=False, timeout=10)
    assert top.status_code == 302


def test_ready_fails_with_503_when_the_schema_is_behind(api):
    from sqlalchemy import text

    from ticket_manager.extensions import db

    with api.app.app_context():
        db.session.execute(text("update alembic_version set version_num = '0004'"))
        db.session.commit()
    assert api.anonymous().get("/health/ready").status_code == 503
    body = api.client("metrics:read").get("/health/ready")
    assert body.status_code == 503
    assert "0004" in body.json()["checks"]["database"]


# -- boards and categories ------------------------------------------------------------------


def test_boards_and_categories_come_from_the_configuration(api):
    client = api.client("tickets:read")
    boards = client.get("/boards").json()["items"]
    assert boards == [
        {
            "name": "support",
            "setting": "JIRA_SUPPORT_BOARD",
            "default": True,
            "mailboxes": ["support@example.com"],
        }
    ]
    categories = client.get("/categories").json()["items"]
    assert categories == [
        {"name": "general", "default": True},
        {"name": "bug", "default": False},
    ]


# -- create ---------------------------------------------------------------------------------


def test_create_writes_adf_from_markdown_and_answers_201_with_location(api):
    client = api.client()
    response = create(
        client,
        title="Printer jammed",
        body="It shows **error 42**.\n\n- tray 1\n- tray 2",
        category="bug",
        priority="High",
        labels=["floor3"],
        watchers=["bob.agent@example.com"],
    )
    ticket = response.json()
    assert response.headers["Location"].endswith(f"/tickets/{ticket['key']}")
    assert ticket["title"] == "Printer jammed"
    assert ticket["reporter"] == "carol.customer@example.com"
    assert ticket["category"] == "bug"
    assert ticket["labels"] == ["ticket", "bug", "floor3"]
    assert ticket["priority"] == "High"
    assert ticket["status"] == "To Do" and ticket["status_category"] == "new"
    assert ticket["source"] == "api" and ticket["board"] == "support"
    assert ticket["watchers"] == ["bob.agent@example.com"]

    [issue] = api.sandbox.jira.issues()
    assert issue["key"] == ticket["key"]
    description = json.dumps(issue["description_raw"])
    assert '"type": "bulletList"' in description
    assert '"type": "strong"' in description
    assert issue["reporter"] == "carol.customer@example.com"

    again = client.get(f"/tickets/{ticket['key']}")
    assert again.status_code == 200
    assert again.json() == ticket
    assert again.headers["ETag"]


def test_create_as_multipart_attaches_the_files(api):
    client = api.client()
    response = client.post(
        "/tickets",
        data={"title": "Scan attached", "body": "See files", "labels": ["scan"]},
        files=[
            ("attachments", ("scan.pdf", b"%PDF-1.4 fake", "application/pdf")),
            ("attachments", ("../../etc/passwd", b"root:x", "text/plain")),
        ],
    )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    names = sorted(a["filename"] for a in api.sandbox.jira.issue(key)["attachments"])
    assert names == ["passwd", "scan.pdf"]
    detailed = client.get(f"/tickets/{key}", params={"fields": "attachments"}).json()
    assert sorted(a["filename"] for a in detailed["attachments"]) == names


def test_an_idempotency_key_makes_a_retry_return_the_same_ticket(api):
    client = api.client()
    headers = {"Idempotency-Key": "order-7781"}
    first = client.post("/tickets", json={"title": "Once"}, headers=headers)
    second = client.post("/tickets", json={"title": "Once"}, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["key"] == second.json()["key"]
    assert len(api.sandbox.jira.issues()) == 1
    other = api.client().post("/tickets", json={"title": "Once"}, headers=headers)
    assert other.status_code == 201  # the key is per API key
    assert len(api.sandbox.jira.issues()) == 2


def test_a_create_interrupted_after_jira_answered_is_adopted_on_retry(api):
    # The first attempt created the issue in Jira, then died before recording its key.
    from ticket_manager.api.ticket_service import API_PROPERTY, ATTEMPT_PREFIX
    from ticket_manager.clock import now
    from ticket_manager.extensions import db

    token = api.key()
    key_id = token.split("_")[1]
    orphan = api.sandbox.jira.add_issue(
        "SUP",
        "Interrupted",
        properties={API_PROPERTY: {"keyId": key_id, "request": "retry-me"}},
    )
    with api.app.app_context():
        db.session.add(
            Ticket(
                key=f"{ATTEMPT_PREFIX}1",
                source="api",
                created_by_key=key_id,
                idempotency_key="retry-me",
                created_at=now() - timedelta(minutes=5),
            )
        )
        db.session.commit()
    client = api.anonymous()
    client.session.headers["Authorization"] = f"Bearer {token}"
    response = client.post(
        "/tickets", json={"title": "Interrupted"}, headers={"Idempotency-Key": "retry-me"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["key"] == orphan
    assert len(api.sandbox.jira.issues()) == 1


def test_a_recent_placeholder_means_the_same_request_is_in_progress(api):
    from ticket_manager.api.ticket_service import NEW_PREFIX
    from ticket_manager.extensions import db

    token = api.key()
    with api.app.app_context():
        db.session.add(
            Ticket(
                key=f"{NEW_PREFIX}x",
                source="api",
                created_by_key=token.split("_")[1],
                idempotency_key="busy",
            )
        )
        db.session.commit()
    client = api.anonymous()
    client.session.headers["Authorization"] = f"Bearer {token}"
    response = client.post("/tickets", json={"title": "x"}, headers={"Idempotency-Key": "busy"})
    problem(response, 409, "conflict")
    assert response.headers["Retry-After"] == "60"
    assert api.sandbox.jira.issues() == []


def test_invalid_creates_name_the_field_and_create_nothing(api):
    client = api.client()
    body = problem(client.post("/tickets", json={}), 422, "validation-error")
    assert "title" in body["errors"]["json"]
    body = problem(
        client.post("/tickets", json={"title": "x", "colour": "red"}), 422, "validation-error"
    )
    assert "colour" in body["errors"]["json"]
    body = problem(
        client.post("/tickets", json={"title": "x", "board": "nope"}), 422, "validation-error"
    )
    assert "support" in body["errors"]["json"]["board"][0]
    body = problem(
        client.post("/tickets", json={"title": "x", "category": "x"}), 422, "validation-error"
    )
    assert "general" in body["errors"]["json"]["category"][0]
    body = problem(
        client.post("/tickets", json={"title": "x", "reporter": "not-an-email"}),
        422,
        "validation-error",
    )
    assert "reporter" in body["errors"]["json"]
    problem(
        client.post("/tickets", data="title=x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    problem(
        client.post("/tickets", data="{", headers={"Content-Type": "application/json"}),
        400,
        "bad-request",
    )
    assert api.sandbox.jira.issues() == []


def test_a_request_over_the_size_limit_gets_413(make_api):
    api = make_api(API_MAX_REQUEST_SIZE="1KB")
    client = api.client()
    response = client.post(
        "/tickets", data={"title": "big"}, files=[("attachments", ("a.bin", b"x" * 4096))]
    )
    problem(response, 413, "payload-too-large")
    assert api.sandbox.jira.issues() == []


def test_a_key_bound_to_a_user_reports_as_that_user_only(api):
    bound = api.client(user="carol.customer@example.com")
    body = problem(
        bound.post("/tickets", json={"title": "x", "reporter": "dave.customer@example.com"}),
        403,
        "forbidden-reporter",
    )
    assert "carol.customer@example.com" in body["detail"]
    admin = api.client("admin", user="alice.agent@example.com")
    made = create(admin, reporter="dave.customer@example.com")
    assert made.json()["reporter"] == "dave.customer@example.com"
    unbound = api.client(user=None)
    body = problem(unbound.post("/tickets", json={"title": "x"}), 422, "validation-error")
    assert "reporter" in body["errors"]["json"]
    # A reporter unknown to Jira is named in the description instead.
    made = create(unbound, reporter="someone@else.example")
    assert "someone@else.example" in api.sandbox.jira.issue(made.json()["key"])["description"]


def test_jira_outage_is_a_503_problem_with_retry_after_and_no_raw_body(api):
    client = api.client()
    api.sandbox.jira.controls.fail_next(50, status=503, retry_after=0, path_contains="/issue")
    body = problem(client.post("/tickets", json={"title": "x"}), 503, "jira-unavailable")
    assert client.post("/tickets", json={"title": "x"}).headers["Retry-After"] == "30"
    assert "rest/api" not in json.dumps(body)


def test_unknown_ticket_and_method_are_problems(api):
    client = api.client()
    problem(client.get("/tickets/SUP-999"), 404, "not-found")
    response = client.request("DELETE", "/tickets/SUP-1")
    problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]


# -- read, update, ETag ---------------------------------------------------------------------


def test_patch_needs_the_current_etag_and_changes_only_what_is_sent(api):
    client = api.client()
    key = create(client).json()["key"]
    read = client.get(f"/tickets/{key}")
    etag = read.headers["ETag"]
    assert client.get(f"/tickets/{key}", headers={"If-None-Match": etag}).status_code == 304

    problem(client.patch(f"/tickets/{key}", json={"title": "New"}), 428, "precondition-required")
    problem(
        client.patch(f"/tickets/{key}", json={"title": "New"}, headers={"If-Match": '"stale"'}),
        412,
        "precondition-failed",
    )
    changed = client.patch(
        f"/tickets/{key}",
        json={
            "title": "New title",
            "priority": "Highest",
            "category": "bug",
            "assignee": "alice.agent@example.com",
        },
        headers={"If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    ticket = changed.json()
    assert ticket["title"] == "New title" and ticket["priority"] == "Highest"
    assert ticket["category"] == "bug" and "general" not in ticket["labels"]
    assert ticket["assignee"] == {"email": "alice.agent@example.com", "name": "Alice Agent"}
    assert changed.headers["ETag"] != etag
    issue = api.sandbox.jira.issue(key)
    assert issue["summary"] == "New title"
    assert issue["assignee"] == "alice.agent@example.com"

    unassigned = client.patch(
        f"/tickets/{key}", json={"assignee": None}, headers={"If-Match": changed.headers["ETag"]}
    )
    assert unassigned.status_code == 200, unassigned.text
    assert unassigned.json()["assignee"] is None


def test_a_change_made_in_jira_since_the_read_gives_412(api):
    client = api.client()
    key = create(client).json()["key"]
    etag = client.get(f"/tickets/{key}").headers["ETag"]
    api.sandbox.jira.store.find_issue(key)["summary"] = "Changed in Jira"
    response = client.patch(f"/tickets/{key}", json={"title": "Mine"}, headers={"If-Match": etag})
    problem(response, 412, "precondition-failed")
    assert api.sandbox.jira.issue(key)["summary"] == "Changed in Jira"
    fresh = client.get(f"/tickets/{key}")
    assert fresh.json()["title"] == "Changed in Jira"  # the PATCH refreshed the copy


def test_jira_refusing_a_value_is_a_422_with_jira_field_errors(api):
    client = api.client()
    key = create(client).json()["key"]
    etag = client.get(f"/tickets/{key}").headers["ETag"]
    response = client.patch(
        f"/tickets/{key}", json={"priority": "Apocalyptic"}, headers={"If-Match": etag}
    )
    body = problem(response, 422, "jira-rejected")
    assert "priority" in body["errors"]["jira"]


# -- comments and transitions ---------------------------------------------------------------


def test_comments_are_added_listed_and_optionally_emailed_once(api):
    client = api.client(
        "tickets:read",
        "tickets:write",
        "tickets:all",
        "tickets:internal",
        "tickets:notify",
        user="alice.agent@example.com",
    )
    key = create(api.client()).json()["key"]
    added = client.post(
        f"/tickets/{key}/comments",
        json={"body": "We replaced the *toner*.", "notify_requester": True},
    )
    assert added.status_code == 201, added.text
    comment = added.json()
    assert "toner" in comment["body_text"] and comment["public"] is True
    internal = client.post(f"/tickets/{key}/comments", json={"body": "Note", "internal": True})
    assert internal.status_code == 201 and internal.json()["public"] is False

    listed = client.get(f"/tickets/{key}/comments").json()
    assert listed["total"] == 2
    assert [c["id"] for c in listed["items"]] == [comment["id"], internal.json()["id"]]
    page = client.get(f"/tickets/{key}/comments", params={"start_at": 1, "limit": 1}).json()
    assert [c["id"] for c in page["items"]] == [internal.json()["id"]]

    outbound = [o for o in api.rows(OutboundMessage) if o.kind == "comment"]
    assert [o.dedupe_key for o in outbound] == [f"comment:{key}:{comment['id']}"]

    refused = client.post(
        f"/tickets/{key}/comments",
        json={"body": "x", "internal": True, "notify_requester": True},
    )
    problem(refused, 422, "validation-error")


def test_a_comment_with_files_as_multipart(api):
    client = api.client()
    key = create(client).json()["key"]
    response = client.post(
        f"/tickets/{key}/comments",
        data={"body": "Log attached"},
        files=[("attachments", ("log.txt", b"line 1\n", "text/plain"))],
    )
    assert response.status_code == 201, response.text
    assert [a["filename"] for a in api.sandbox.jira.issue(key)["attachments"]] == ["log.txt"]


def test_transitions_are_listed_and_applied_by_name_or_id(api):
    client = api.client()
    key = create(client).json()["key"]
    transitions = client.get(f"/tickets/{key}/transitions").json()["items"]
    names = {t["name"]: t for t in transitions}
    assert names, transitions
    done = next(t for t in transitions if t["to"]["category"] == "done")
    moved = client.post(
        f"/tickets/{key}/transitions",
        json={"name": done["name"].upper(), "comment": "Fixed by a new **toner**."},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status_category"] == "done"
    assert api.sandbox.jira.issue(key)["status"] == done["to"]["name"]
    body = problem(
        client.post(f"/tickets/{key}/transitions", json={"id": "99999"}), 422, "validation-error"
    )
    assert "available" in body["errors"]["json"]["id"][0]
    problem(client.post(f"/tickets/{key}/transitions", json={}), 422, "validation-error")


# -- rate limits ------------------------------------------------------------------------------


def test_rate_limit_per_key_answers_429_with_retry_after(make_api):
    api = make_api(API_RATE_LIMIT="3 per minute")
    client = api.client()
    for _ in range(3):
        assert client.get("/boards").status_code == 200
    response = client.get("/boards")
    problem(response, 429, "rate-limited")
    assert int(response.headers["Retry-After"]) > 0
    assert api.client().get("/boards").status_code == 200  # another key has its own budget
    assert api.anonymous().get("/health/live").status_code == 200


# -- the service's copy follows Jira --------------------------------------------------------


def test_the_copy_follows_changes_made_in_jira_through_poller_and_webhook(make_api):
    import hashlib
    import hmac

    from ticket_manager.clock import now
    from ticket_manager.jira.client import JiraClient
    from ticket_manager.pipeline.relay import CommentPoller

    api = make_api(JIRA_WEBHOOK_SECRET="hook-secret")
    client = api.client()
    key = create(client).json()["key"]
    store = api.sandbox.jira.store
    issue = store.find_issue(key)
    issue["summary"] = "Renamed by an agent"
    issue["status"] = "3"  # In Progress
    issue["assignee"] = store.find_user("bob.agent@example.com")["id"]
    issue["labels"] = ["ticket", "bug"]
    issue["updated"] = now() + timedelta(seconds=5)
    with api.app.app_context():
        CommentPoller(api.pipeline.settings, JiraClient(api.pipeline.settings)).poll()
    ticket = client.get(f"/tickets/{key}").json()
    assert ticket["title"] == "Renamed by an agent"
    assert ticket["status"] == "In Progress" and ticket["status_category"] == "indeterminate"
    assert ticket["assignee"]["email"] == "bob.agent@example.com"
    assert ticket["category"] == "bug"
    assert client.get("/tickets", params={"assignee": "bob.agent@example.com"}).json()["total"] == 1

    event = {
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "key": key,
            "fields": {
                "summary": "Renamed again",
                "status": {"name": "Done", "statusCategory": {"key": "done"}},
                "updated": "2030-01-01T10:00:00.000+0000",
            },
        },
    }
    body = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    hook = api.anonymous().session.post(
        api.base_url + "/jira/webhook",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature": signature},
        timeout=10,
    )
    assert hook.status_code == 202
    ticket = client.get(f"/tickets/{key}").json()
    assert ticket["title"] == "Renamed again" and ticket["status"] == "Done"
    assert ticket["updated"].startswith("2030-01-01T10:00:00")
