"""The product's Jira client, over real HTTPS against the Jira emulator (Cloud and Server)."""

from __future__ import annotations

import pytest

from ticket_manager.config import load_settings
from ticket_manager.jira.client import JiraClient, JiraUser
from ticket_manager.jira.errors import (
    JiraAuthError,
    JiraNotFoundError,
    JiraRejectedError,
    JiraUnavailableError,
)
from ticket_manager_sandbox.jira import JiraEmulator

ACCOUNT = {"email": "ticket-bot@example.com", "api_token": "bot-token"}


def settings_for(base_url: str, sandbox_ca, **changes: str):
    env = {
        "ATLASSIAN_URL": base_url,
        "ATLASSIAN_USER": ACCOUNT["email"],
        "ATLASSIAN_API_TOKEN": ACCOUNT["api_token"],
        "JIRA_SUPPORT_BOARD": "support",
        "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
        "REQUESTS_CA_BUNDLE": str(sandbox_ca.bundle_path),
        **changes,
    }
    return load_settings(env)


@pytest.fixture
def cloud(serve):
    emulator = JiraEmulator(deployment="Cloud", service_account=ACCOUNT)
    return emulator, serve(emulator.app)


@pytest.fixture
def server(serve):
    emulator = JiraEmulator(deployment="Server", service_account=ACCOUNT)
    return emulator, serve(emulator.app)


def test_cloud_is_detected_and_spoken_to_in_rest_v3(cloud, sandbox_ca):
    # serverInfo's deploymentType "Cloud" selects REST v3 (ADF bodies).
    _, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca))
    assert client.is_cloud
    assert client.api_version == "3"
    assert client.myself()["emailAddress"] == ACCOUNT["email"]


def test_server_is_detected_and_spoken_to_in_rest_v2(server, sandbox_ca):
    # Jira Server/Data Center answers deploymentType "Server": REST v2 and wiki markup.
    emulator, url = server
    client = JiraClient(settings_for(url, sandbox_ca))
    assert not client.is_cloud
    assert client.api_version == "2"
    assert client.myself()["name"]
    assert all("/rest/api/3/" not in r.path for r in emulator.controls.requests)


def test_a_board_name_resolves_to_its_project_once(cloud, sandbox_ca):
    # The board's Agile location gives the project key; the answer is cached.
    emulator, url = cloud
    emulator.add_project("SALES", "Sales", "support-sales")
    client = JiraClient(settings_for(url, sandbox_ca))
    assert client.project_key_for_board("support") == "SUP"
    assert client.project_key_for_board("support") == "SUP"
    assert client.project_key_for_board("support-sales") == "SALES"
    board_calls = [r for r in emulator.controls.requests if r.path.endswith("/board")]
    assert len(board_calls) == 2


def test_an_unknown_board_is_a_clear_not_found(cloud, sandbox_ca):
    # A board name Jira does not know is reported by name.
    _, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca))
    with pytest.raises(JiraNotFoundError, match="'helpdesk'"):
        client.project_key_for_board("helpdesk")


def test_wrong_credentials_name_the_keys_to_check(cloud, sandbox_ca):
    # A 401 tells the user which configuration keys hold the credentials, not their values.
    _, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca, ATLASSIAN_API_TOKEN="wrong-token"))
    with pytest.raises(JiraAuthError) as caught:
        client.myself()
    assert caught.value.status == 401
    assert "ATLASSIAN_API_TOKEN" in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_a_429_is_waited_out_as_jira_asks(cloud, sandbox_ca):
    # One 429 with Retry-After is retried by the client and the call succeeds.
    emulator, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca), max_retries=2)
    emulator.controls.fail_next(1, status=429, retry_after=1, path_contains="/myself")
    assert client.myself()["emailAddress"] == ACCOUNT["email"]
    statuses = [r.status for r in emulator.controls.requests if r.path.endswith("/myself")]
    assert statuses == [429, 200]


def test_an_outage_past_the_retries_is_unavailable(cloud, sandbox_ca):
    # Jira answering 503 beyond the retry budget is JiraUnavailableError: try again later.
    emulator, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca), max_retries=1)
    emulator.controls.fail_next(5, status=503, retry_after=1, path_contains="/myself")
    with pytest.raises(JiraUnavailableError) as caught:
        client.myself()
    assert caught.value.status == 503


# -- issue operations, on Cloud (v3, ADF) and Server (v2, wiki) --------------------------------


@pytest.fixture(params=["Cloud", "Server"])
def site(request, serve, sandbox_ca):
    """An emulator of either deployment and the product's client connected to it."""
    emulator = JiraEmulator(deployment=request.param, service_account=ACCOUNT)
    client = JiraClient(settings_for(serve(emulator.app), sandbox_ca))
    return emulator, client


def rich(client: JiraClient, text: str) -> dict | str:
    """Text as this deployment takes it: an ADF document on Cloud, wiki markup on Server."""
    if not client.is_cloud:
        return text
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


def test_get_issue_returns_only_the_fields_asked_for(site):
    # fields limits the answer; expand adds Jira's extra sections such as names.
    emulator, client = site
    key = emulator.add_issue("SUP", "Printer jam", labels=["email"])
    issue = client.get_issue(key, ["summary", "labels"], expand=["names"])
    assert issue["key"] == key
    assert issue["fields"] == {"summary": "Printer jam", "labels": ["email"]}
    assert issue["names"]["summary"] == "Summary"


def test_an_unknown_issue_is_not_found_on_every_operation(site):
    # Each issue operation turns Jira's 404 into JiraNotFoundError.
    _, client = site
    alice = client.find_user("alice.agent@example.com")
    operations = [
        lambda: client.get_issue("SUP-404", ["summary"]),
        lambda: client.edit_issue("SUP-404", {"summary": "x"}),
        lambda: client.assign("SUP-404", alice),
        lambda: client.transitions("SUP-404"),
        lambda: client.transition("SUP-404", "31"),
        lambda: client.watchers("SUP-404"),
        lambda: client.comments_page("SUP-404", 0, 10),
    ]
    for operation in operations:
        with pytest.raises(JiraNotFoundError) as caught:
            operation()
        assert caught.value.status == 404 and caught.value.error_messages


def test_edit_issue_sets_fields_and_applies_updates(site):
    # PUT issue sets fields, applies label operations, and can ask Jira not to notify.
    emulator, client = site
    key = emulator.add_issue("SUP", "Old title", labels=["email", "new"])
    client.edit_issue(
        key,
        {"summary": "New title", "priority": {"name": "High"}},
        {"labels": [{"add": "urgent"}, {"remove": "new"}]},
        notify_users=False,
    )
    issue = emulator.issue(key)
    assert issue["summary"] == "New title" and issue["priority"] == "High"
    assert issue["labels"] == ["email", "urgent"]
    edit = [r for r in emulator.controls.requests if r.method == "PUT"][-1]
    assert edit.status == 204 and "notifyUsers=false" in edit.query


def test_edit_issue_refusals_name_the_fields(site):
    # A field off the edit screen, an unknown priority or a bad summary is JiraRejectedError.
    emulator, client = site
    key = emulator.add_issue("SUP", "Stays")
    with pytest.raises(JiraRejectedError) as caught:
        client.edit_issue(
            key, {"customfield_10010": "x", "priority": {"name": "Urgent"}, "summary": "a\nb"}
        )
    errors = caught.value.errors
    assert caught.value.status == 400 and set(errors) == {
        "customfield_10010",
        "priority",
        "summary",
    }
    assert "not on the appropriate screen" in errors["customfield_10010"]
    with pytest.raises(JiraRejectedError, match="cannot appear in both"):
        client.edit_issue(key, {"labels": ["a"]}, {"labels": [{"add": "b"}]})
    assert emulator.issue(key)["summary"] == "Stays"


def test_edit_without_the_edit_permission_is_a_field_refusal(site):
    # Without Edit Issues Jira answers 400 naming every field, not 403.
    emulator, client = site
    key = emulator.add_issue("SUP", "Locked")
    emulator.revoke_permission(ACCOUNT["email"], "EDIT_ISSUES")
    with pytest.raises(JiraRejectedError) as caught:
        client.edit_issue(key, {"summary": "Changed"})
    assert list(caught.value.errors) == ["summary"]


def test_assign_and_unassign(site):
    # PUT assignee names the user as the deployment does; None leaves the issue unassigned.
    emulator, client = site
    key = emulator.add_issue("SUP", "Needs an owner")
    alice = client.find_user("alice.agent@example.com")
    client.assign(key, alice)
    assert emulator.issue(key)["assignee"] == "alice.agent@example.com"
    fields = client.get_issue(key, ["assignee"])["fields"]
    assert fields["assignee"]["displayName"] == "Alice Agent"
    client.assign(key, None)
    assert emulator.issue(key)["assignee"] is None
    body = [r for r in emulator.controls.requests if r.path.endswith("/assignee")]
    assert [r.status for r in body] == [204, 204]


def test_assigning_an_unknown_user_fails_as_each_deployment_documents(site):
    # Cloud answers 400 for an unknown accountId; Server 404 for an unknown user name.
    emulator, client = site
    key = emulator.add_issue("SUP", "Needs an owner")
    ghost = JiraUser(account_id="0" * 24, name="ghost", email=None, display_name="Ghost")
    expected = JiraRejectedError if client.is_cloud else JiraNotFoundError
    with pytest.raises(expected) as caught:
        client.assign(key, ghost)
    assert "assignee" in caught.value.errors
    assert emulator.issue(key)["assignee"] is None


def test_a_service_desk_customer_cannot_be_assigned(cloud, sandbox_ca):
    # On Cloud a customer account lacks Assignable User: 400 naming the assignee.
    emulator, url = cloud
    client = JiraClient(settings_for(url, sandbox_ca))
    key = emulator.add_issue("SUP", "Mine?")
    carol = client.find_user("carol.customer@example.com")
    with pytest.raises(JiraRejectedError) as caught:
        client.assign(key, carol)
    assert caught.value.errors == {"assignee": "User 'Carol Customer' cannot be assigned issues."}


def test_transitions_list_targets_and_required_fields(site):
    # Each transition says where it leads (status and category) and what its screen needs.
    emulator, client = site
    key = emulator.add_issue("SUP", "Workflow")
    found = {t["name"]: t for t in client.transitions(key)}
    assert set(found) == {"In Progress", "Done"}
    done = found["Done"]
    assert done["id"] == "31"
    assert done["to"] == {"id": "10001", "name": "Done", "category": "done"}
    assert done["required_fields"] == ["resolution"]
    assert done["fields"]["resolution"]["allowed_values"][:2] == ["Done", "Won't Do"]
    assert found["In Progress"]["to"]["category"] == "indeterminate"
    assert found["In Progress"]["required_fields"] == []


def test_transition_with_resolution_and_comment(site):
    # POST transitions moves the issue, sets the screen's resolution and adds the comment.
    emulator, client = site
    key = emulator.add_issue("SUP", "Finish me")
    client.transition(
        key, "31", fields={"resolution": {"name": "Won't Do"}}, comment_body=rich(client, "Bye")
    )
    issue = emulator.issue(key)
    assert issue["status"] == "Done" and issue["resolution"] == "Won't Do"
    assert [c["body"] for c in issue["comments"]] == ["Bye"]
    assert client.issue_status(key) == ("Done", "done")
    client.transition(key, "21")
    assert emulator.issue(key)["resolution"] is None


def test_transition_refusals(site):
    # An unknown transition id and a field off the transition screen are JiraRejectedError.
    emulator, client = site
    key = emulator.add_issue("SUP", "Stuck")
    with pytest.raises(JiraRejectedError) as caught:
        client.transition(key, "99")
    assert caught.value.error_messages == ["Transition id '99' is not valid for this issue."]
    with pytest.raises(JiraRejectedError) as caught:
        client.transition(key, "21", fields={"resolution": {"name": "Done"}})
    assert "not on the appropriate screen" in caught.value.errors["resolution"]
    with pytest.raises(JiraRejectedError) as caught:
        client.transition(key, "31", fields={"resolution": {"name": "Fixed"}})
    assert caught.value.errors == {"resolution": "The resolution selected is invalid."}
    assert emulator.issue(key)["status"] == "To Do"


def test_without_transition_permission_nothing_is_offered(site):
    # Jira lists no transitions to a user without Transition Issues, and refuses one with 400.
    emulator, client = site
    key = emulator.add_issue("SUP", "Frozen")
    emulator.revoke_permission(ACCOUNT["email"], "TRANSITION_ISSUES")
    assert client.transitions(key) == []
    with pytest.raises(JiraRejectedError):
        client.transition(key, "31")


def test_watchers_are_our_users(site):
    # GET watchers gives JiraUser values, named by accountId on Cloud and by name on Server.
    emulator, client = site
    key = emulator.add_issue("SUP", "Watched")
    alice = client.find_user("alice.agent@example.com")
    client.add_watcher(key, alice)
    watchers = client.watchers(key)
    assert {w.email for w in watchers} == {ACCOUNT["email"], "alice.agent@example.com"}
    assert alice in watchers
    if client.is_cloud:
        assert all(w.account_id and w.name is None for w in watchers)
    else:
        assert all(w.name and w.account_id is None for w in watchers)


def test_search_pages_through_with_the_returned_token(site):
    # A page holds at most max_results issues; the token leads to the next page, None at the end.
    emulator, client = site
    keys = {emulator.add_issue("SUP", f"Issue {n}") for n in range(5)}
    emulator.add_issue("DEV", "Elsewhere")
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        issues, token = client.search(
            "project = SUP ORDER BY key ASC", ["summary"], token=token, max_results=2
        )
        pages += 1
        assert len(issues) <= 2 and all(set(i["fields"]) == {"summary"} for i in issues)
        seen.extend(i["key"] for i in issues)
        if token is None:
            break
    assert pages == 3 and seen == sorted(keys, key=lambda k: int(k.split("-")[1]))


def test_a_bad_query_is_rejected_with_jiras_message(site):
    # Invalid JQL answers 400 with errorMessages, which become JiraRejectedError.
    _, client = site
    with pytest.raises(JiraRejectedError) as caught:
        client.search("nosuchfield = 1", ["summary"], token=None, max_results=10)
    assert "nosuchfield" in caught.value.error_messages[0]


def test_comments_page_with_order_and_total(site):
    # A page of comments comes with the total; -created lists the newest first.
    emulator, client = site
    key = emulator.add_issue("SUP", "Chatty")
    for n in range(3):
        client.add_comment(key, rich(client, f"Comment {n}"), {})
    page, total = client.comments_page(key, start_at=0, max_results=2, order_by="-created")
    assert total == 3
    assert [c.body for c in page] == [rich(client, "Comment 2"), rich(client, "Comment 1")]
    page, total = client.comments_page(key, start_at=2, max_results=2)
    assert total == 3 and [c.body for c in page] == [rich(client, "Comment 2")]
    assert len(client.comments(key)) == 3
    with pytest.raises(JiraRejectedError):
        client.comments_page(key, 0, 10, order_by="updated")


def test_priorities_are_asked_once(site):
    # The priority names come from GET priority, once per client.
    emulator, client = site
    assert client.priorities() == ["Highest", "High", "Medium", "Low", "Lowest"]
    assert client.priorities() == ["Highest", "High", "Medium", "Low", "Lowest"]
    assert sum(r.path.endswith("/priority") for r in emulator.controls.requests) == 1
