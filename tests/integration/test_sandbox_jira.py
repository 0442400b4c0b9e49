"""The Jira emulator, driven by the real ``jira`` client library and plain requests over HTTPS."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import requests
from jira import JIRA, JIRAError

from ticket_manager_sandbox.jira import JiraEmulator


class TimedSession(requests.Session):
    """requests with a timeout on every call, so a hung emulator fails fast."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(*args, **kwargs)


http = TimedSession()
BOT = {"email": "bot@example.com", "api_token": "bot-token"}
AUTH = (BOT["email"], BOT["api_token"])
NOT_FOUND = {
    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
    "errors": {},
}


def adf(text: str) -> dict:
    """A one-paragraph ADF document."""
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@pytest.fixture
def cloud() -> JiraEmulator:
    """A Jira Cloud emulator with the test service account."""
    return JiraEmulator("Cloud", service_account=BOT)


@pytest.fixture
def server() -> JiraEmulator:
    """A Jira Server/Data Center emulator; the bot logs in with its username and password."""
    return JiraEmulator("Server", service_account={**BOT, "username": "ticketbot"})


@pytest.fixture
def cloud_url(cloud, serve) -> str:
    return serve(cloud.app)


@pytest.fixture
def server_url(server, serve) -> str:
    return serve(server.app)


@pytest.fixture
def cloud_client(cloud_url, sandbox_ca) -> JIRA:
    """The jira library as the product configures it for Cloud (REST v3, API token)."""
    return JIRA(
        cloud_url,
        options={"rest_api_version": "3", "verify": str(sandbox_ca.bundle_path)},
        basic_auth=AUTH,
    )


@pytest.fixture
def server_client(server_url, sandbox_ca) -> JIRA:
    """The jira library against Server (REST v2, username and password)."""
    return JIRA(
        server_url,
        options={"rest_api_version": "2", "verify": str(sandbox_ca.bundle_path)},
        basic_auth=("ticketbot", BOT["api_token"]),
    )


def post_issue(base_url: str, fields: dict, version: str = "3") -> requests.Response:
    return http.post(f"{base_url}/rest/api/{version}/issue", json={"fields": fields}, auth=AUTH)


def task(**fields) -> dict:
    return {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "Help", **fields}


# -- the jira library on Cloud ---------------------------------------------------------------


def test_cloud_client_creates_an_issue_with_an_adf_description(cloud, cloud_client):
    # The library creates an issue on v3 with an ADF description and reads back Jira's fields.
    issue = cloud_client.create_issue(
        fields=task(summary="Printer on fire", description=adf("It smokes."), labels=["email"])
    )
    assert issue.key == "SUP-1"
    assert issue.raw["fields"]["description"] == adf("It smokes.")
    assert issue.fields.status.name == "To Do"
    assert issue.fields.status.statusCategory.key == "new"
    assert issue.fields.priority.name == "Medium"
    assert issue.fields.issuetype.name == "Task"
    assert issue.fields.reporter.emailAddress == BOT["email"]
    assert issue.fields.reporter.accountId == cloud.user(BOT["email"])["accountId"]
    assert issue.fields.comment.total == 0 and issue.fields.attachment == []
    assert issue.fields.resolution is None
    assert cloud.issue("SUP-1")["description"] == "It smokes."


def test_cloud_comment_attachment_watcher_transition_and_property(cloud, cloud_client):
    # A full ticket life cycle through the library: comment, attach, watch, close, tag.
    issue = cloud_client.create_issue(fields=task())
    comment = cloud_client.add_comment(issue, adf("We are on it."))
    assert comment.raw["body"] == adf("We are on it.")
    assert comment.raw["jsdPublic"] is True

    attachment = cloud_client.add_attachment(issue, io.BytesIO(b"log line\n"), filename="log.txt")
    assert attachment.filename == "log.txt" and attachment.size == 9
    assert attachment.mimeType == "text/plain"
    assert attachment.get() == b"log line\n"

    cloud_client.add_watcher(issue, "alice.agent@example.com")
    watchers = cloud_client.watchers(issue)
    assert {w.displayName for w in watchers.watchers} == {"Ticket Manager Bot", "Alice Agent"}

    transitions = {t["name"]: t["id"] for t in cloud_client.transitions(issue)}
    assert set(transitions) == {"In Progress", "Done"}
    cloud_client.transition_issue(issue, transitions["Done"])
    closed = cloud_client.issue(issue.key)
    assert closed.fields.status.name == "Done"
    assert closed.fields.status.statusCategory.key == "done"
    assert closed.fields.resolution.name == "Done"
    assert closed.fields.resolutiondate

    cloud_client.add_issue_property(issue.key, "ticket-manager", {"messageId": "<m1@x>"})
    assert cloud_client.issue_property(issue.key, "ticket-manager").value.messageId == "<m1@x>"
    assert cloud.issue(issue.key)["properties"] == {"ticket-manager": {"messageId": "<m1@x>"}}


def test_cloud_search_pages_with_next_page_token(cloud, cloud_client):
    # search_issues on Cloud uses /search/jql and follows nextPageToken over 120 results.
    for number in range(120):
        cloud.add_issue("SUP", f"Ticket {number}", labels=["bulk"])
    cloud.add_issue("DEV", "Other project", labels=["bulk"])
    cloud.controls.reset_log()

    found = cloud_client.search_issues("project = SUP AND labels = bulk", maxResults=False)
    assert len(found) == 120 and len({i.key for i in found}) == 120
    calls = [r for r in cloud.controls.requests if r.path.endswith("/search/jql")]
    assert len(calls) == 2 and "nextPageToken" in calls[1].query

    first = cloud_client.enhanced_search_issues("labels = bulk", maxResults=50, json_result=True)
    assert len(first["issues"]) == 50 and first["isLast"] is False
    assert set(first["issues"][0]) >= {"id", "key", "self"}
    rest = cloud_client.enhanced_search_issues(
        "labels = bulk", nextPageToken=first["nextPageToken"], maxResults=100, json_result=True
    )
    assert len(rest["issues"]) == 71 and rest["isLast"] is True and "nextPageToken" not in rest
    assert cloud_client.approximate_issue_count("labels = bulk") == 121


def test_cloud_v2_speaks_wiki_strings_while_v3_speaks_adf(cloud_url, sandbox_ca):
    # On Cloud, v2 takes and returns strings; the same issue read on v3 is ADF.
    v2 = JIRA(
        cloud_url,
        options={"rest_api_version": "2", "verify": str(sandbox_ca.bundle_path)},
        basic_auth=AUTH,
    )
    issue = v2.create_issue(fields=task(description="Line one\nLine two"))
    assert v2.issue(issue.key).fields.description == "Line one\nLine two"
    comment = v2.add_comment(issue, "plain text comment")
    assert comment.body == "plain text comment"
    v3_body = http.get(f"{cloud_url}/rest/api/3/issue/{issue.key}", auth=AUTH).json()
    assert v3_body["fields"]["description"]["type"] == "doc"
    rejected = post_issue(cloud_url, task(description=adf("x")), version="2")
    assert rejected.status_code == 400
    assert rejected.json()["errors"] == {"description": "Operation value must be a string"}


# -- the jira library on Server / Data Center ------------------------------------------------


def test_server_client_works_with_wiki_strings_and_start_at_paging(server, server_client):
    # The library on Server: v2 strings, username-based watchers, startAt paging over 120.
    assert server_client.server_info()["deploymentType"] == "Server"
    issue = server_client.create_issue(fields=task(description="h1. Printer\nIt *smokes*."))
    assert issue.fields.description == "h1. Printer\nIt *smokes*."
    assert issue.fields.reporter.name == "ticketbot"
    assert server_client.add_comment(issue, "On it.").body == "On it."
    attachment = server_client.add_attachment(issue, io.BytesIO(b"%PDF"), filename="a.pdf")
    assert attachment.mimeType == "application/pdf"
    server_client.add_watcher(issue, "alice.agent")
    assert "alice.agent" in {w.name for w in server_client.watchers(issue).watchers}
    server_client.transition_issue(issue, "21")
    assert server_client.issue(issue.key).fields.status.name == "In Progress"
    server_client.add_issue_property(issue.key, "tm", {"thread": "abc"})
    found = server_client.search_issues('issue.property[tm].thread = "abc"')
    assert [i.key for i in found] == [issue.key]

    for number in range(120):
        server.add_issue("DEV", f"Bulk {number}")
    server.controls.reset_log()
    everything = server_client.search_issues("project = DEV", maxResults=False)
    assert len(everything) == 120
    calls = [r for r in server.controls.requests if r.path == "/rest/api/2/search"]
    assert len(calls) == 2 and "startAt=100" in calls[1].query
    page = server_client.search_issues("project = DEV", startAt=110, maxResults=50)
    assert len(page) == 10 and page.total == 120 and page.startAt == 110


def test_server_has_no_v3_and_accepts_a_personal_access_token(server_url, sandbox_ca):
    # Server answers 404 on /rest/api/3 and accepts Bearer personal access tokens on v2.
    assert http.get(f"{server_url}/rest/api/3/serverInfo").status_code == 404
    info = http.get(f"{server_url}/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == "Server" and info["versionNumbers"][0] == 9
    client = JIRA(
        server_url,
        options={"rest_api_version": "2", "verify": str(sandbox_ca.bundle_path)},
        token_auth=BOT["api_token"],
    )
    assert client.myself()["name"] == "ticketbot"
    bad = http.get(f"{server_url}/rest/api/2/myself", headers={"Authorization": "Bearer no"})
    assert bad.status_code == 401 and bad.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"
    anonymous = http.get(f"{server_url}/rest/api/2/myself")
    assert anonymous.status_code == 401 and anonymous.json()["errorMessages"]


def test_server_validation_wording_differs_from_cloud(server_url):
    # Server answers with its own messages (255 characters, project) on the same validations.
    auth = ("ticketbot", BOT["api_token"])
    url = f"{server_url}/rest/api/2/issue"
    long = http.post(url, json={"fields": task(summary="x" * 256)}, auth=auth)
    assert long.json()["errors"] == {"summary": "Summary must be less than 255 characters."}
    bad_project = http.post(url, json={"fields": task(project={"key": "NOPE"})}, auth=auth)
    assert bad_project.json()["errors"] == {"project": "valid project is required"}


# -- validations, as plain requests see them -------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (task(summary="x" * 256), {"summary": "Summary can't exceed 255 characters."}),
        (
            task(summary="two\nlines"),
            {"summary": "The summary is invalid because it contains newline characters."},
        ),
        (
            task(labels=["has space"]),
            {"labels": "The label 'has space' contains spaces which is invalid."},
        ),
        (
            task(description="plain string"),
            {
                "description": "Operation value must be an Atlassian Document "
                "(see the Atlassian Document Format)"
            },
        ),
        (task(project={"key": "NOPE"}), {"project": "Specify a valid project ID or key"}),
        (task(issuetype={"name": "Epic"}), {"issuetype": "The issue type selected is invalid."}),
        (task(priority={"name": "Urgent"}), {"priority": "The priority selected is invalid."}),
        (task(summary=""), {"summary": "You must specify a summary of the issue."}),
        (
            task(reporter={"accountId": "unknown"}),
            {"reporter": "Account ID unknown does not exist."},
        ),
        (
            task(duedate="2024-01-01"),
            {
                "duedate": "Field 'duedate' cannot be set. It is not on the appropriate screen, "
                "or unknown."
            },
        ),
    ],
)
def test_create_issue_validations_answer_400_with_jira_errors(cloud, cloud_url, fields, errors):
    # Each invalid create answers 400 with Jira's ErrorCollection and creates nothing.
    response = post_issue(cloud_url, fields)
    assert response.status_code == 400
    assert response.json() == {"errorMessages": [], "errors": errors}
    assert cloud.issues() == []


def test_a_255_character_summary_and_a_reporter_by_account_id_are_accepted(cloud, cloud_url):
    # The limits are inclusive and the reporter can be set by accountId.
    alice = cloud.user("alice.agent@example.com")["accountId"]
    response = post_issue(cloud_url, task(summary="x" * 255, reporter={"accountId": alice}))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "key", "self"} and body["self"].startswith(cloud_url)
    assert cloud.issue(body["key"])["reporter"] == "alice.agent@example.com"


def test_attachments_need_the_xsrf_header_and_respect_the_size_limit(cloud, cloud_url):
    # Without X-Atlassian-Token Jira refuses uploads; over the limit it answers 413.
    key = cloud.add_issue("SUP", "With files")
    url = f"{cloud_url}/rest/api/3/issue/{key}/attachments"
    files = [("file", ("a.txt", b"aaa")), ("file", ("b.png", b"\x89PNG"))]
    refused = http.post(url, files=files, auth=AUTH)
    assert refused.status_code == 403 and refused.text == "XSRF check failed"
    headers = {"X-Atlassian-Token": "no-check"}
    created = http.post(url, files=files, auth=AUTH, headers=headers)
    assert created.status_code == 200
    assert [(a["filename"], a["size"], a["mimeType"]) for a in created.json()] == [
        ("a.txt", 3, "text/plain"),
        ("b.png", 4, "image/png"),
    ]
    content = http.get(created.json()[1]["content"], auth=AUTH)
    assert content.content == b"\x89PNG" and content.headers["Content-Type"] == "image/png"
    cloud.max_attachment_size = 10
    too_big = http.post(url, files=[("file", ("big.bin", b"x" * 11))], auth=AUTH, headers=headers)
    assert too_big.status_code == 413 and too_big.json()["errorMessages"]


def test_board_lookup_by_name_gives_the_project_key(cloud_url):
    # The agile board search finds a board by name and tells which project it belongs to.
    response = http.get(f"{cloud_url}/rest/agile/1.0/board", params={"name": "support"}, auth=AUTH)
    body = response.json()
    assert body["total"] == 1 and body["isLast"] is True and body["startAt"] == 0
    board = body["values"][0]
    assert board["name"] == "support" and board["location"]["projectKey"] == "SUP"
    assert board["self"] == f"{cloud_url}/rest/agile/1.0/board/{board['id']}"
    by_project = http.get(
        f"{cloud_url}/rest/agile/1.0/board", params={"projectKeyOrId": "DEV"}, auth=AUTH
    ).json()
    assert [b["name"] for b in by_project["values"]] == ["development"]
    one = http.get(f"{cloud_url}/rest/agile/1.0/board/{board['id']}", auth=AUTH).json()
    assert one["location"]["projectName"] == "Support"


def test_missing_or_wrong_credentials_get_401(cloud_url):
    # Cloud answers 401 with a plain-text body without or with wrong credentials.
    anonymous = http.get(f"{cloud_url}/rest/api/3/myself")
    assert anonymous.status_code == 401
    assert anonymous.text == "Client must be authenticated to access this resource."
    wrong = http.get(f"{cloud_url}/rest/api/3/myself", auth=(BOT["email"], "nope"))
    assert wrong.status_code == 401 and "Basic authentication" in wrong.text
    assert http.get(f"{cloud_url}/rest/api/3/serverInfo").status_code == 200


def test_the_old_search_endpoints_are_gone_on_cloud(cloud_url):
    # /rest/api/{2,3}/search answer 410 with Atlassian's migration message.
    for version in ("2", "3"):
        for method in ("get", "post"):
            response = http.request(
                method,
                f"{cloud_url}/rest/api/{version}/search",
                params={"jql": "project=SUP"},
                json={"jql": "project = SUP"} if method == "post" else None,
                auth=AUTH,
            )
            assert response.status_code == 410
            assert response.json()["errorMessages"][0].startswith(
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql"
            )


def test_a_429_fault_reaches_the_client_with_retry_after(cloud, cloud_url, cloud_client):
    # A throttled call shows Retry-After and rate-limit headers; the library retries it.
    cloud.controls.fail_next(1, status=429, retry_after=1, path_contains="/myself")
    raw = http.get(f"{cloud_url}/rest/api/3/myself", auth=AUTH)
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "1"
    assert raw.headers["X-RateLimit-Remaining"] == "0" and raw.headers["RateLimit-Reason"]
    assert raw.json()["errorMessages"]
    cloud.controls.fail_next(1, status=429, retry_after=1, path_contains="/myself")
    cloud.controls.reset_log()
    assert cloud_client.myself()["emailAddress"] == BOT["email"]
    assert [r.status for r in cloud.controls.requests] == [429, 200]
    cloud.controls.fail_next(1, status=503, retry_after=None, path_contains="/issue")
    assert http.get(f"{cloud_url}/rest/api/3/issue/SUP-1", auth=AUTH).status_code == 503


# -- issues, comments, users, properties -----------------------------------------------------


def test_unknown_issue_is_404_with_jiras_message(cloud_url):
    # An unknown key answers 404 with Jira's exact ErrorCollection.
    response = http.get(f"{cloud_url}/rest/api/3/issue/SUP-999", auth=AUTH)
    assert response.status_code == 404 and response.json() == NOT_FOUND


def test_get_issue_fields_expand_and_properties(cloud, cloud_url):
    # fields limits the field set; expand and properties add renderedFields, names, changelog.
    key = cloud.add_issue("SUP", "Hello", description="Body text", properties={"p": {"a": 1}})
    url = f"{cloud_url}/rest/api/3/issue/{key}"
    limited = http.get(url, params={"fields": "summary,status"}, auth=AUTH).json()
    assert set(limited["fields"]) == {"summary", "status"}
    full = http.get(
        url,
        params={"expand": "renderedFields,names,changelog", "properties": "p"},
        auth=AUTH,
    ).json()
    assert full["renderedFields"]["description"] == "<p>Body text</p>"
    assert full["names"]["summary"] == "Summary"
    assert full["changelog"]["histories"] == []
    assert full["properties"] == {"p": {"a": 1}}
    assert full["fields"]["watches"]["watchCount"] == 1
    # The embedded comment page holds every comment, with its own self link.
    assert full["fields"]["comment"] == {
        "comments": [],
        "self": f"{cloud_url}/rest/api/3/issue/{full['id']}/comment",
        "maxResults": 0,
        "total": 0,
        "startAt": 0,
    }


def test_edit_issue_with_fields_and_update_operations(cloud, cloud_url):
    # PUT applies fields and labels add/remove operations and answers 204.
    key = cloud.add_issue("SUP", "Old", labels=["a", "b"])
    response = http.put(
        f"{cloud_url}/rest/api/3/issue/{key}",
        params={"notifyUsers": "false"},
        json={"fields": {"summary": "New"}, "update": {"labels": [{"add": "c"}, {"remove": "a"}]}},
        auth=AUTH,
    )
    assert response.status_code == 204
    issue = cloud.issue(key)
    assert issue["summary"] == "New" and issue["labels"] == ["b", "c"]
    bad = http.put(
        f"{cloud_url}/rest/api/3/issue/{key}",
        json={"update": {"labels": [{"add": "no good"}]}},
        auth=AUTH,
    )
    assert bad.status_code == 400 and "contains spaces" in bad.json()["errors"]["labels"]
    assert http.delete(f"{cloud_url}/rest/api/3/issue/{key}", auth=AUTH).status_code == 204
    assert cloud.issue(key) is None


def test_comments_crud_paging_and_adf_checks(cloud, cloud_url):
    # Comments page with startAt/maxResults; v3 refuses a plain-string body.
    key = cloud.add_issue("SUP", "Chatty")
    url = f"{cloud_url}/rest/api/3/issue/{key}/comment"
    ids = [http.post(url, json={"body": adf(f"c{n}")}, auth=AUTH).json()["id"] for n in range(3)]
    page = http.get(url, params={"startAt": 1, "maxResults": 1}, auth=AUTH).json()
    assert page["total"] == 3 and page["startAt"] == 1 and page["maxResults"] == 1
    assert page["comments"][0]["body"] == adf("c1")
    refused = http.post(url, json={"body": "plain"}, auth=AUTH)
    assert refused.status_code == 400
    assert refused.json() == {"errorMessages": ["Comment body is not valid!"], "errors": {}}
    updated = http.put(f"{url}/{ids[0]}", json={"body": adf("edited")}, auth=AUTH)
    assert updated.status_code == 200 and updated.json()["body"] == adf("edited")
    assert http.get(f"{url}/{ids[0]}", auth=AUTH).json()["body"] == adf("edited")
    assert http.delete(f"{url}/{ids[1]}", auth=AUTH).status_code == 204
    assert http.get(f"{url}/{ids[1]}", auth=AUTH).status_code == 404


def test_internal_notes_on_cloud_service_management_say_jsd_public_false(cloud, cloud_url):
    # Cloud JSM: an internal note is jsdPublic false (and the sd.public.comment property).
    cloud.set_project_type("SUP", "service_desk")
    key = cloud.add_issue("SUP", "Question")
    cloud.add_comment_as(key, "alice.agent@example.com", "Public answer")
    cloud.add_comment_as(key, "bob.agent@example.com", "Internal note", public=False)
    url = f"{cloud_url}/rest/api/3/issue/{key}/comment"
    comments = http.get(url, params={"expand": "properties"}, auth=AUTH).json()["comments"]
    assert [c["jsdPublic"] for c in comments] == [True, False]
    assert "visibility" not in comments[1]
    assert comments[1]["properties"] == [{"key": "sd.public.comment", "value": {"internal": True}}]
    assert comments[0]["author"]["displayName"] == "Alice Agent"
    assert [c["public"] for c in cloud.issue(key)["comments"]] == [True, False]


def test_internal_notes_on_data_center_are_only_a_comment_property(server, server_url):
    # Server/Data Center JSM: no jsdPublic, no visibility; only the property tells.
    server.set_project_type("SUP", "service_desk")
    key = server.add_issue("SUP", "Question")
    server.add_comment_as(key, "bob.agent@example.com", "Internal", public=False)
    url = f"{server_url}/rest/api/2/issue/{key}/comment"
    bot = ("ticketbot", BOT["api_token"])
    [plain] = http.get(url, auth=bot).json()["comments"]
    assert plain["body"] == "Internal"
    assert "jsdPublic" not in plain and "visibility" not in plain and "properties" not in plain
    [expanded] = http.get(url, params={"expand": "properties"}, auth=bot).json()["comments"]
    assert expanded["properties"] == [{"key": "sd.public.comment", "value": {"internal": True}}]
    event = server.comment_event(server_url, key, plain["id"])
    assert "properties" not in event["comment"] and "jsdPublic" not in event["comment"]


def test_software_projects_have_no_internal_notes(cloud, cloud_url):
    # Jira Software: jsdPublic is read-only and always true; a role restriction hides a comment.
    key = cloud.add_issue("DEV", "Question")
    url = f"{cloud_url}/rest/api/3/issue/{key}/comment"
    note = {
        "body": {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}],
        },
        "properties": [{"key": "sd.public.comment", "value": {"internal": True}}],
    }
    assert http.post(url, json=note, auth=AUTH).json()["jsdPublic"] is True
    cloud.add_comment_as(key, "bob.agent@example.com", "Restricted", public=False)
    restricted = http.get(url, auth=AUTH).json()["comments"][1]
    assert restricted["jsdPublic"] is True
    assert restricted["visibility"] == {"type": "role", "value": "Developers"}
    assert [c["public"] for c in cloud.issue(key)["comments"]] == [True, False]
    project = http.get(f"{cloud_url}/rest/api/3/project/DEV", auth=AUTH).json()
    assert project["projectTypeKey"] == "software"


def test_user_search_and_lookup(cloud, cloud_url, server_url):
    # Cloud finds users by email or display name prefix and refuses username (GDPR).
    by_email = http.get(
        f"{cloud_url}/rest/api/3/user/search", params={"query": "carol.customer@"}, auth=AUTH
    ).json()
    assert [u["displayName"] for u in by_email] == ["Carol Customer"]
    assert by_email[0]["accountType"] == "customer" and by_email[0]["active"] is True
    by_name = http.get(
        f"{cloud_url}/rest/api/3/user/search", params={"query": "agent"}, auth=AUTH
    ).json()
    assert {u["emailAddress"] for u in by_name} == {
        "alice.agent@example.com",
        "bob.agent@example.com",
    }
    account_id = by_email[0]["accountId"]
    one = http.get(
        f"{cloud_url}/rest/api/3/user", params={"accountId": account_id}, auth=AUTH
    ).json()
    assert one["emailAddress"] == "carol.customer@example.com"
    gdpr = http.get(f"{cloud_url}/rest/api/3/user/search", params={"username": "x"}, auth=AUTH)
    assert gdpr.status_code == 400 and "GDPR" in gdpr.json()["errorMessages"][0]
    server_users = http.get(
        f"{server_url}/rest/api/2/user/search",
        params={"username": "alice"},
        auth=("ticketbot", BOT["api_token"]),
    ).json()
    assert server_users[0]["name"] == "alice.agent" and "accountId" not in server_users[0]


def test_issue_properties_crud(cloud, cloud_url):
    # PUT creates (201) then updates (200); GET, list and DELETE behave like Jira.
    key = cloud.add_issue("SUP", "Props")
    url = f"{cloud_url}/rest/api/3/issue/{key}/properties"
    assert http.put(f"{url}/thread", json={"id": 1}, auth=AUTH).status_code == 201
    assert http.put(f"{url}/thread", json={"id": 2}, auth=AUTH).status_code == 200
    assert http.get(f"{url}/thread", auth=AUTH).json() == {"key": "thread", "value": {"id": 2}}
    keys = http.get(url, auth=AUTH).json()["keys"]
    assert [k["key"] for k in keys] == ["thread"] and keys[0]["self"].startswith(cloud_url)
    assert http.delete(f"{url}/thread", auth=AUTH).status_code == 204
    assert http.get(f"{url}/thread", auth=AUTH).status_code == 404


def test_permission_errors_are_403(cloud, cloud_url):
    # A user without a permission gets 403 with Jira's message on that operation.
    key = cloud.add_issue("SUP", "Locked")
    cloud.revoke_permission(BOT["email"], "ADD_COMMENTS", "CREATE_ISSUES")
    comment = http.post(
        f"{cloud_url}/rest/api/3/issue/{key}/comment", json={"body": adf("hi")}, auth=AUTH
    )
    assert comment.status_code == 403 and comment.json()["errorMessages"]
    assert post_issue(cloud_url, task()).status_code == 403
    cloud.grant_permission(BOT["email"], "ADD_COMMENTS")
    assert (
        http.post(
            f"{cloud_url}/rest/api/3/issue/{key}/comment", json={"body": adf("hi")}, auth=AUTH
        ).status_code
        == 201
    )


def test_deleted_issue_disappears_from_the_api(cloud, cloud_url):
    # delete_issue (someone deleting in Jira) makes the API answer 404.
    key = cloud.add_issue("SUP", "Short-lived")
    cloud.delete_issue(key)
    assert http.get(f"{cloud_url}/rest/api/3/issue/{key}", auth=AUTH).json() == NOT_FOUND


# -- JQL -------------------------------------------------------------------------------------


def search_keys(base_url: str, jql: str) -> list[str]:
    response = http.post(
        f"{base_url}/rest/api/3/search/jql",
        json={"jql": jql, "fields": ["key"], "maxResults": 100},
        auth=AUTH,
    )
    assert response.status_code == 200, response.text
    return [i["key"] for i in response.json()["issues"]]


def test_jql_subset(cloud, cloud_url):
    # The JQL parser handles fields, operators, boolean logic, dates, properties and ordering.
    old = datetime.now(UTC) - timedelta(days=3)
    a = cloud.add_issue(
        "SUP",
        "Printer on fire",
        labels=["email", "urgent"],
        created=old,
        properties={"tm": {"messageId": "<a@x>", "n": 5}},
    )
    b = cloud.add_issue(
        "SUP",
        "Password reset please",
        labels=["email"],
        reporter_email="carol.customer@example.com",
        priority="High",
    )
    c = cloud.add_issue(
        "DEV", "Fix printer driver", issue_type="Bug", description="The printer driver crashes"
    )
    cloud.add_comment_as(c, "alice.agent@example.com", "Reproduced with firmware 2.1")

    assert search_keys(cloud_url, "project = SUP ORDER BY key ASC") == [a, b]
    assert search_keys(cloud_url, "project in (SUP, DEV) ORDER BY created ASC")[0] == a
    assert search_keys(cloud_url, "labels = urgent") == [a]
    assert search_keys(cloud_url, "labels != urgent") == [b]
    assert search_keys(cloud_url, "labels is EMPTY") == [c]
    assert search_keys(cloud_url, "project = SUP AND NOT labels = urgent") == [b]
    assert search_keys(
        cloud_url, "(labels = urgent OR priority = High) AND project = SUP ORDER BY key DESC"
    ) == [b, a]
    assert search_keys(cloud_url, "summary ~ printer ORDER BY key") == [c, a]
    assert search_keys(cloud_url, 'summary ~ "\\"printer on\\""') == [a]
    assert search_keys(cloud_url, "text ~ firmware") == [c]
    assert search_keys(cloud_url, "description ~ crash*") == [c]
    assert search_keys(cloud_url, 'reporter = "carol.customer@example.com"') == [b]
    assert search_keys(cloud_url, "reporter = currentUser() ORDER BY key") == [c, a]
    assert search_keys(cloud_url, "assignee is EMPTY AND issuetype = Bug") == [c]
    assert search_keys(cloud_url, "created <= -1d") == [a]
    assert search_keys(cloud_url, f'created >= "{old:%Y-%m-%d %H:%M}" AND created < -2d') == [a]
    assert search_keys(cloud_url, "updated > -15m ORDER BY key") == [c, b]
    assert search_keys(cloud_url, 'issue.property[tm].messageId = "<a@x>"') == [a]
    assert search_keys(cloud_url, "issue.property[tm].n > 4") == [a]
    assert search_keys(cloud_url, f"key = {b}") == [b]
    assert search_keys(cloud_url, f"issuekey in ({a}, {c}) ORDER BY key") == [c, a]
    assert search_keys(
        cloud_url, "status = 'To Do' AND statusCategory != Done AND project = DEV"
    ) == [c]


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("project = ", "Error in the JQL Query: Expecting either a value, list or function"),
        ("nosuchfield = 1", "Field 'nosuchfield' does not exist"),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("summary = x", "The operator '=' is not supported by the 'summary' field."),
        ("created > yesterday-ish", "Date value 'yesterday-ish' for field 'created' is invalid"),
        ("project = SUP AND (labels = a", "Error in the JQL Query: Expecting ')'"),
        ('summary ~ "open', "Error in the JQL Query: The quoted string"),
        ("ORDER BY created", "Unbounded JQL queries are not allowed here."),
    ],
)
def test_invalid_jql_is_400_with_error_messages(cloud_url, jql, message):
    # Invalid or unsupported JQL answers 400 with Jira-style errorMessages.
    response = http.get(f"{cloud_url}/rest/api/3/search/jql", params={"jql": jql}, auth=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {} and body["errorMessages"][0].startswith(message)


def test_state_dump_hides_secrets(cloud, cloud_url):
    # /_sandbox/state lists users, projects and issues but never API tokens.
    cloud.add_issue("SUP", "Dumped")
    state = http.get(f"{cloud_url}/_sandbox/state").json()
    assert state["deployment"] == "Cloud"
    assert {p["board_name"] for p in state["projects"]} == {"support", "development"}
    assert state["issues"][0]["summary"] == "Dumped"
    assert "api_token" not in state["users"][0]


def test_created_issue_is_visible_to_the_client_as_a_jira_error_when_invalid(cloud_client):
    # The library surfaces Jira's 400 for an invalid create as JIRAError with the message.
    with pytest.raises(JIRAError) as error:
        cloud_client.create_issue(fields=task(summary="x" * 300))
    assert error.value.status_code == 400
    assert "Summary can't exceed 255 characters." in error.value.text


# -- behaviours checked against Atlassian's documentation --------------------------------------


def test_search_jql_returns_bare_ids_by_default(cloud, cloud_url):
    # search/jql without fields returns only {"id"} per issue; asking for fields gives the rest.
    key = cloud.add_issue("SUP", "Only ids")
    url = f"{cloud_url}/rest/api/3/search/jql"
    bare = http.get(url, params={"jql": "project = SUP"}, auth=AUTH).json()
    assert bare == {"issues": [{"id": cloud.issue(key)["id"]}], "isLast": True}
    posted = http.post(url, json={"jql": "project = SUP", "fields": "summary"}, auth=AUTH).json()
    assert posted["issues"][0]["key"] == key
    assert posted["issues"][0]["fields"] == {"summary": "Only ids"}


def test_comment_list_page_size_and_order_by(cloud, cloud_url, server, server_url):
    # Comment pages default to 100 on Cloud (50 on Server); orderBy accepts only created.
    key = cloud.add_issue("SUP", "Talkative")
    for n in range(3):
        cloud.add_comment_as(key, "alice.agent@example.com", f"c{n}")
    url = f"{cloud_url}/rest/api/3/issue/{key}/comment"
    page = http.get(url, auth=AUTH).json()
    assert page["maxResults"] == 100 and page["total"] == 3
    newest_first = http.get(url, params={"orderBy": "-created"}, auth=AUTH).json()
    assert [c["id"] for c in newest_first["comments"]] == [c["id"] for c in page["comments"]][::-1]
    assert http.get(url, params={"orderBy": "author"}, auth=AUTH).status_code == 400
    assert http.get(url, params={"maxResults": 500}, auth=AUTH).json()["maxResults"] == 100
    server_key = server.add_issue("SUP", "Server comments")
    server_page = http.get(
        f"{server_url}/rest/api/2/issue/{server_key}/comment",
        auth=("ticketbot", BOT["api_token"]),
    ).json()
    assert server_page["maxResults"] == 50


def test_v3_comment_body_must_not_be_an_empty_document(cloud, cloud_url):
    # An ADF document without text is refused like an empty v2 string.
    key = cloud.add_issue("SUP", "Quiet")
    empty = {"type": "doc", "version": 1, "content": []}
    response = http.post(
        f"{cloud_url}/rest/api/3/issue/{key}/comment", json={"body": empty}, auth=AUTH
    )
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": [],
        "errors": {"comment": "Comment body can not be empty!"},
    }


def test_user_search_lists_active_users_only(cloud, cloud_url, server, server_url):
    # Cloud user search returns active users only and refuses query with accountId together;
    # Server includes inactive users only with includeInactive=true.
    cloud.add_user("erin.gone@example.com", "Erin Gone", active=False)
    url = f"{cloud_url}/rest/api/3/user/search"
    assert http.get(url, params={"query": "erin"}, auth=AUTH).json() == []
    account_id = cloud.user("alice.agent@example.com")["accountId"]
    both = http.get(url, params={"query": "alice", "accountId": account_id}, auth=AUTH)
    assert both.status_code == 400 and both.json()["errorMessages"]
    server.add_user("erin.gone@example.com", "Erin Gone", active=False)
    server_auth = ("ticketbot", BOT["api_token"])
    server_url_search = f"{server_url}/rest/api/2/user/search"
    assert http.get(server_url_search, params={"username": "erin"}, auth=server_auth).json() == []
    inactive = http.get(
        server_url_search,
        params={"username": "erin", "includeInactive": "true"},
        auth=server_auth,
    ).json()
    assert [u["name"] for u in inactive] == ["erin.gone"] and inactive[0]["active"] is False


def test_cloud_attachment_content_redirects_and_serves_ranges(cloud, cloud_url):
    # Cloud answers attachment content with 303; redirect=false gives the bytes, Range a 206.
    key = cloud.add_issue("SUP", "Files")
    created = http.post(
        f"{cloud_url}/rest/api/3/issue/{key}/attachments",
        files=[("file", ("notes.txt", b"0123456789"))],
        headers={"X-Atlassian-Token": "no-check"},
        auth=AUTH,
    ).json()[0]
    url = f"{cloud_url}/rest/api/3/attachment/content/{created['id']}"
    redirect = http.get(url, auth=AUTH, allow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["Location"]
    assert http.get(url, auth=AUTH).content == b"0123456789"
    direct = http.get(url, params={"redirect": "false"}, auth=AUTH, allow_redirects=False)
    assert direct.status_code == 200 and direct.content == b"0123456789"
    ranged = http.get(url, params={"redirect": "false"}, headers={"Range": "bytes=2-4"}, auth=AUTH)
    assert ranged.status_code == 206 and ranged.content == b"234"
    assert ranged.headers["Content-Range"] == "bytes 2-4/10"
    beyond = http.get(
        url, params={"redirect": "false"}, headers={"Range": "bytes=50-60"}, auth=AUTH
    )
    assert beyond.status_code == 416


def test_server_attachment_content_lives_under_secure(server, server_url):
    # Server links attachment content to /secure/attachment/{id}/{filename}, behind login.
    key = server.add_issue("SUP", "Server files")
    server_auth = ("ticketbot", BOT["api_token"])
    created = http.post(
        f"{server_url}/rest/api/2/issue/{key}/attachments",
        files=[("file", ("log file.txt", b"abc"))],
        headers={"X-Atlassian-Token": "no-check"},
        auth=server_auth,
    ).json()[0]
    assert created["content"] == (f"{server_url}/secure/attachment/{created['id']}/log%20file.txt")
    assert http.get(created["content"], auth=server_auth).content == b"abc"
    assert http.get(created["content"]).status_code == 401


def test_server_unknown_issue_uses_servers_wording(server_url):
    # Server/Data Center answers an unknown issue with 404 "Issue Does Not Exist".
    response = http.get(
        f"{server_url}/rest/api/2/issue/SUP-999", auth=("ticketbot", BOT["api_token"])
    )
    assert response.status_code == 404
    assert response.json() == {"errorMessages": ["Issue Does Not Exist"], "errors": {}}


def test_cloud_429_says_it_is_near_the_limit(cloud, cloud_url):
    # A Cloud 429 carries X-RateLimit-NearLimit and an X-RateLimit-Reset like 2024-01-02T10:00Z.
    cloud.controls.fail_next(1, status=429, retry_after=5, path_contains="/myself")
    response = http.get(f"{cloud_url}/rest/api/3/myself", auth=AUTH)
    assert response.status_code == 429 and response.headers["Retry-After"] == "5"
    assert response.headers["X-RateLimit-NearLimit"] == "true"
    datetime.strptime(response.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ")


def test_issue_property_value_must_not_be_empty(cloud, cloud_url):
    # PUT of an issue property with an empty body answers 400.
    key = cloud.add_issue("SUP", "Props")
    response = http.put(
        f"{cloud_url}/rest/api/3/issue/{key}/properties/empty",
        data=b"",
        headers={"Content-Type": "application/json"},
        auth=AUTH,
    )
    assert response.status_code == 400 and response.json()["errors"]
    assert cloud.issue(key)["properties"] == {}


def test_transitions_set_the_chosen_resolution(cloud, cloud_url):
    # A transition into Done takes fields.resolution; elsewhere resolution cannot be set.
    key = cloud.add_issue("SUP", "Will not fix")
    api = f"{cloud_url}/rest/api/3"
    names = [r["name"] for r in http.get(f"{api}/resolution", auth=AUTH).json()]
    assert names == ["Done", "Won't Do", "Duplicate", "Cannot Reproduce"]
    listed = http.get(
        f"{api}/issue/{key}/transitions", params={"expand": "transitions.fields"}, auth=AUTH
    ).json()["transitions"]
    done = next(t for t in listed if t["id"] == "31")
    assert done["hasScreen"] is True and "resolution" in done["fields"]
    assert next(t for t in listed if t["id"] == "21")["fields"] == {}
    url = f"{api}/issue/{key}/transitions"
    elsewhere = http.post(
        url,
        json={"transition": {"id": "21"}, "fields": {"resolution": {"name": "Done"}}},
        auth=AUTH,
    )
    assert elsewhere.status_code == 400 and "resolution" in elsewhere.json()["errors"]
    unknown = http.post(
        url,
        json={"transition": {"id": "31"}, "fields": {"resolution": {"name": "Nope"}}},
        auth=AUTH,
    )
    assert unknown.status_code == 400 and "resolution" in unknown.json()["errors"]
    assert cloud.issue(key)["status"] == "To Do"
    chosen = http.post(
        url,
        json={"transition": {"id": "31"}, "fields": {"resolution": {"name": "Won't Do"}}},
        auth=AUTH,
    )
    assert chosen.status_code == 204
    fields = http.get(f"{api}/issue/{key}", params={"fields": "resolution"}, auth=AUTH).json()
    assert fields["fields"]["resolution"]["name"] == "Won't Do"


def test_jql_resolution_unresolved(cloud, cloud_url):
    # JQL "resolution = Unresolved" finds the issues without a resolution.
    open_key = cloud.add_issue("SUP", "Open")
    done_key = cloud.add_issue("SUP", "Closed")
    http.post(
        f"{cloud_url}/rest/api/3/issue/{done_key}/transitions",
        json={"transition": {"id": "31"}},
        auth=AUTH,
    )
    assert search_keys(cloud_url, "resolution = Unresolved") == [open_key]
    assert search_keys(cloud_url, "resolution = Done") == [done_key]
    assert search_keys(cloud_url, "resolution in (Unresolved, Done) ORDER BY key") == [
        open_key,
        done_key,
    ]


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        (
            "project SUP",
            "Error in the JQL Query: Expecting operator but got 'SUP'. The valid operators are "
            "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. "
            "(line 1, character 9)",
        ),
        (
            "project =",
            "Error in the JQL Query: Expecting either a value, list or function "
            "before the end of the query.",
        ),
        (
            "project = SUP and",
            "Error in the JQL Query: Expecting a field name at the end of the query.",
        ),
        (
            "project = SUP labels = x",
            "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'labels'. "
            "(line 1, character 15)",
        ),
        (
            "project = SUP\nAND labels = {x}",
            "Error in the JQL Query: The character '{' is a reserved JQL character. You must "
            "enclose it in a string or use the escape '\\u007b' instead. (line 2, character 14)",
        ),
        (
            "project = SUP ORDER BY key sideways",
            "Error in the JQL Query: Expecting either 'ASC' or 'DESC' but got 'sideways'. "
            "(line 1, character 28)",
        ),
        (
            "project in SUP",
            "Operator 'in' does not support the non-list value 'SUP' for field 'project'.",
        ),
    ],
)
def test_jql_errors_use_jiras_parser_wording(cloud_url, jql, message):
    # JQL syntax errors carry the JQL parser's exact messages and (line, character) positions.
    response = http.get(f"{cloud_url}/rest/api/3/search/jql", params={"jql": jql}, auth=AUTH)
    assert response.status_code == 400
    assert response.json() == {"errorMessages": [message], "errors": {}}


# -- transitions, edits and the assignee as each deployment answers them -------------------------


SERVER_AUTH = ("ticketbot", BOT["api_token"])


def test_transition_shapes_differ_between_cloud_and_server(cloud, cloud_url, server, server_url):
    # Cloud lists hasScreen and the is* flags and FieldMetadata.key; Server opsbarSequence and
    # fieldId; fields appear only with expand=transitions.fields.
    cloud_key = cloud.add_issue("SUP", "Cloud")
    server_key = server.add_issue("SUP", "Server")
    expand = {"expand": "transitions.fields"}
    url = f"{cloud_url}/rest/api/3/issue/{cloud_key}/transitions"
    on_cloud = http.get(url, params=expand, auth=AUTH).json()["transitions"]
    done = next(t for t in on_cloud if t["id"] == "31")
    assert {k for k in done if k.startswith(("has", "is"))} == {
        "hasScreen",
        "isGlobal",
        "isInitial",
        "isAvailable",
        "isConditional",
    }
    assert done["fields"]["resolution"]["key"] == "resolution"
    assert done["to"]["statusCategory"]["key"] == "done"
    assert "fields" not in http.get(url, auth=AUTH).json()["transitions"][0]
    url = f"{server_url}/rest/api/2/issue/{server_key}/transitions"
    on_server = http.get(url, params=expand, auth=SERVER_AUTH).json()["transitions"]
    done = next(t for t in on_server if t["id"] == "31")
    assert set(done) == {"id", "name", "opsbarSequence", "to", "fields"}
    assert done["opsbarSequence"] == 30
    assert done["fields"]["resolution"]["fieldId"] == "resolution"
    assert "key" not in done["fields"]["resolution"]


def test_a_transition_sets_only_its_screen_fields_but_takes_a_comment(cloud, cloud_url):
    # Fields off the transition screen answer 400 per field; a comment goes with any transition.
    key = cloud.add_issue("SUP", "Moving")
    url = f"{cloud_url}/rest/api/3/issue/{key}/transitions"
    off_screen = http.post(
        url,
        json={
            "transition": {"id": "21"},
            "fields": {"summary": "New"},
            "update": {"labels": [{"add": "x"}]},
        },
        auth=AUTH,
    )
    assert off_screen.status_code == 400
    assert set(off_screen.json()["errors"]) == {"summary", "labels"}
    both = http.post(
        url,
        json={
            "transition": {"id": "31"},
            "fields": {"resolution": {"name": "Done"}},
            "update": {"resolution": [{"set": {"name": "Duplicate"}}]},
        },
        auth=AUTH,
    )
    assert both.status_code == 400
    assert both.json()["errorMessages"] == [
        "Field 'resolution' cannot appear in both 'fields' and 'update'"
    ]
    moved = http.post(
        url,
        json={"transition": {"id": "21"}, "update": {"comment": [{"add": {"body": adf("Go")}}]}},
        auth=AUTH,
    )
    assert moved.status_code == 204
    issue = cloud.issue(key)
    assert issue["status"] == "In Progress" and [c["body"] for c in issue["comments"]] == ["Go"]
    resolved = http.post(
        url,
        json={"transition": {"id": "31"}, "update": {"resolution": [{"set": {"id": "10002"}}]}},
        auth=AUTH,
    )
    assert resolved.status_code == 204 and cloud.issue(key)["resolution"] == "Duplicate"


def test_without_transition_issues_the_list_is_empty_and_a_move_is_400(cloud, cloud_url):
    # The reference: no transitions are listed, and POST answers 400 (it documents no 403).
    key = cloud.add_issue("SUP", "Frozen")
    cloud.revoke_permission(BOT["email"], "TRANSITION_ISSUES")
    url = f"{cloud_url}/rest/api/3/issue/{key}"
    assert http.get(f"{url}/transitions", auth=AUTH).json()["transitions"] == []
    expanded = http.get(url, params={"expand": "transitions"}, auth=AUTH).json()
    assert expanded["transitions"] == []
    refused = http.post(f"{url}/transitions", json={"transition": {"id": "31"}}, auth=AUTH)
    assert refused.status_code == 400 and refused.json()["errorMessages"]


def test_edit_rules_overlap_permission_and_return_issue(cloud, cloud_url):
    # A field in both fields and update is refused; without Edit Issues every field is
    # off-screen (400); returnIssue=true answers 200 with the issue and its expansions.
    key = cloud.add_issue("SUP", "Edit me", labels=["a"])
    url = f"{cloud_url}/rest/api/3/issue/{key}"
    both = http.put(
        url, json={"fields": {"labels": ["b"]}, "update": {"labels": [{"add": "c"}]}}, auth=AUTH
    )
    assert both.status_code == 400
    assert both.json()["errorMessages"] == [
        "Field 'labels' cannot appear in both 'fields' and 'update'"
    ]
    returned = http.put(
        url,
        params={"returnIssue": "true", "expand": "changelog"},
        json={"fields": {"summary": "Edited"}},
        auth=AUTH,
    )
    assert returned.status_code == 200
    body = returned.json()
    assert body["fields"]["summary"] == "Edited"
    assert body["changelog"]["histories"][-1]["items"][0]["toString"] == "Edited"
    cloud.revoke_permission(BOT["email"], "EDIT_ISSUES")
    locked = http.put(url, json={"fields": {"summary": "No"}}, auth=AUTH)
    assert locked.status_code == 400
    assert locked.json()["errors"] == {
        "summary": "Field 'summary' cannot be set. It is not on the appropriate screen, or unknown."
    }
    assert cloud.issue(key)["summary"] == "Edited"


def test_cloud_assignee_takes_exactly_an_account_id(cloud, cloud_url):
    # PUT assignee: accountId assigns, null and "-1" (no project default) unassign, a name or
    # a missing accountId is 400, an unknown accountId 400, without Assign Issues 403.
    key = cloud.add_issue("SUP", "Owner?")
    url = f"{cloud_url}/rest/api/3/issue/{key}/assignee"
    alice = cloud.user("alice.agent@example.com")
    assert http.put(url, json={"accountId": alice["accountId"]}, auth=AUTH).status_code == 204
    assert cloud.issue(key)["assignee"] == "alice.agent@example.com"
    history = http.get(
        f"{cloud_url}/rest/api/3/issue/{key}", params={"expand": "changelog"}, auth=AUTH
    ).json()["changelog"]["histories"]
    item = history[-1]["items"][0]
    assert item["field"] == "assignee" and item["toString"] == "Alice Agent"
    assert item["to"] == alice["accountId"]
    assert http.put(url, json={"accountId": "-1"}, auth=AUTH).status_code == 204
    assert cloud.issue(key)["assignee"] is None
    http.put(url, json={"accountId": alice["accountId"]}, auth=AUTH)
    assert http.put(url, json={"accountId": None}, auth=AUTH).status_code == 204
    assert cloud.issue(key)["assignee"] is None
    assert http.put(url, json={"name": "alice.agent"}, auth=AUTH).status_code == 400
    assert http.put(url, json={}, auth=AUTH).status_code == 400
    unknown = http.put(url, json={"accountId": "nobody"}, auth=AUTH)
    assert unknown.status_code == 400 and "assignee" in unknown.json()["errors"]
    missing = http.put(
        f"{cloud_url}/rest/api/3/issue/SUP-999/assignee", json={"accountId": None}, auth=AUTH
    )
    assert missing.status_code == 404 and missing.json() == NOT_FOUND
    cloud.revoke_permission(BOT["email"], "ASSIGN_ISSUES")
    assert http.put(url, json={"accountId": alice["accountId"]}, auth=AUTH).status_code == 403


def test_server_assignee_takes_a_name_and_answers_404_for_an_unknown_user(server, server_url):
    # Server: {"name"} assigns, {"name": null} unassigns, an unknown user is 404 (as documented).
    key = server.add_issue("SUP", "Owner?")
    url = f"{server_url}/rest/api/2/issue/{key}/assignee"
    assert http.put(url, json={"name": "alice.agent"}, auth=SERVER_AUTH).status_code == 204
    assert server.issue(key)["assignee"] == "alice.agent@example.com"
    assert http.put(url, json={"name": None}, auth=SERVER_AUTH).status_code == 204
    assert server.issue(key)["assignee"] is None
    unknown = http.put(url, json={"name": "ghost"}, auth=SERVER_AUTH)
    assert unknown.status_code == 404
    assert unknown.json()["errors"] == {"assignee": "User 'ghost' does not exist."}
    both = http.put(url, json={"name": "alice.agent", "key": "x"}, auth=SERVER_AUTH)
    assert both.status_code == 400
