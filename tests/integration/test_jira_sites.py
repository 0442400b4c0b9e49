"""Jira sites as customers configure them: hidden emails, time zones, Java lengths, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticket_manager.config import load_settings
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraUnavailableError
from ticket_manager.models import MessageState


def only_issue(harness) -> dict:
    [issue] = harness.issues()
    return issue


def test_a_user_hiding_their_email_is_still_the_reporter_and_a_watcher(pipeline):
    # Cloud leaves emailAddress out for users who hide it: the single result of an email
    # search is still taken, as reporter and as watcher.
    jira = pipeline.sandbox.jira
    jira.add_user("hana@example.com", "Hana Hidden", email_hidden=True)
    jira.add_user("ivan@example.com", "Ivan Hidden", email_hidden=True)
    pipeline.deliver(sender="Hana <hana@example.com>", cc=["ivan@example.com"])
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert issue["reporter"] == "hana@example.com"
    assert "ivan@example.com" in issue["watchers"]


def test_an_ambiguous_search_among_hidden_emails_is_never_guessed(pipeline):
    # Two users without a visible email answer the search: neither is taken, the reporter
    # stays the service account and the sender is named in the description.
    pipeline.sandbox.jira.add_user("pat@example.com", "Pat One", email_hidden=True)
    pipeline.sandbox.jira.add_user("pat@example.com.au", "Pat Two", email_hidden=True)
    pipeline.deliver(sender="Pat <pat@example.com>")
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert issue["reporter"] == "ticket-bot@example.com"
    assert "pat@example.com" in issue["description"]


def test_a_300_emoji_subject_fits_jira_s_utf16_summary_limit(pipeline):
    # 300 emoji are 600 UTF-16 units: the summary is cut to what Jira accepts (255 units).
    pipeline.deliver(subject="😀" * 300)
    pipeline.run_once()
    [row] = pipeline.rows()
    assert row.state == MessageState.TICKET_CREATED, row.last_error
    summary = only_issue(pipeline)["summary"]
    assert len(summary.encode("utf-16-le")) // 2 <= 255
    assert summary.startswith("😀" * 120)


def _client(sandbox) -> JiraClient:
    env = {**sandbox.environment(), "JIRA_X_BOARD": "support", "JIRA_BOARDS": "JIRA_X_BOARD"}
    return JiraClient(load_settings(env), max_retries=0)


def test_crash_recovery_finds_the_issue_for_an_account_west_of_utc(sandbox):
    # The service account's profile is UTC-8: the recovery search still finds the issue
    # an interrupted attempt created (absolute JQL dates would be read eight hours late).
    jira = sandbox.jira
    jira.set_time_zone("ticket-bot@example.com", "America/Los_Angeles")
    attempt = datetime.now(UTC) - timedelta(seconds=30)
    key = jira.add_issue(
        "SUP",
        "Printer jammed",
        created=attempt + timedelta(seconds=5),
        properties={"ticket-manager.source": {"internetMessageId": "<a@example.com>"}},
    )
    found = _client(sandbox).find_issue_with_property(
        "SUP", attempt, "ticket-manager.source", {"internetMessageId": "<a@example.com>"}
    )
    assert found == key


@pytest.mark.parametrize("beta", [False, True])
def test_jira_s_rate_limit_wait_is_read_from_either_header(sandbox, beta):
    # A 429 with Retry-After, or with Cloud's newer Beta-Retry-After, gives the wait.
    sandbox.jira.beta_rate_limits = beta
    client = _client(sandbox)
    sandbox.jira.controls.fail_next(1, status=429, retry_after=120, path_contains="/myself")
    with pytest.raises(JiraUnavailableError) as raised:
        client.myself()
    assert raised.value.retry_after == 120


# -- create screens -------------------------------------------------------------------------


def test_a_project_whose_screen_lacks_labels_still_gets_tickets(pipeline):
    # The create screen has no labels field: the ticket is made without labels.
    pipeline.sandbox.jira.set_create_screen("SUP", hidden=("labels",))
    pipeline.deliver(subject="[bug] Printer jammed")
    pipeline.run_once()
    [row] = pipeline.rows()
    assert row.state == MessageState.TICKET_CREATED, row.last_error
    assert only_issue(pipeline)["labels"] == []


def test_a_required_custom_field_is_filled_from_configuration(make_pipeline):
    # JIRA_CUSTOM_FIELDS gives the value of a required custom field, by its name.
    harness = make_pipeline(JIRA_CUSTOM_FIELDS='{"Customer tier": "standard"}')
    harness.sandbox.jira.set_create_screen(
        "SUP", custom={"customfield_10060": {"name": "Customer tier", "required": True}}
    )
    harness.deliver()
    harness.run_once()
    assert only_issue(harness)["custom"] == {"customfield_10060": "standard"}


def test_a_required_field_nothing_fills_fails_the_email_and_the_check(pipeline):
    # Without a value, the email fails naming the field, and `flask check` names it too.
    from ticket_manager.checks import run_checks

    pipeline.sandbox.jira.set_create_screen(
        "SUP", custom={"customfield_10060": {"name": "Customer tier", "required": True}}
    )
    pipeline.deliver()
    pipeline.run_once()
    [row] = pipeline.rows()
    assert row.state == MessageState.FAILED
    assert "Customer tier" in row.last_error
    line = next(r for r in run_checks(pipeline.app) if r.name.startswith("board support"))
    assert not line.ok and "Customer tier" in line.detail


def test_the_create_screen_is_read_once_per_project_and_type(pipeline):
    # Three emails cost one create-metadata read of the issue types and one of the fields.
    for n in range(3):
        pipeline.deliver(subject=f"Printer {n}")
    pipeline.run_once()
    paths = [r.path for r in pipeline.sandbox.jira.controls.requests if "createmeta" in r.path]
    assert len(paths) == 2


def test_a_file_over_the_site_s_attachment_limit_is_named_in_the_ticket(make_pipeline):
    # attachment/meta says 1 KB: a 2 KB file is listed in the description, not uploaded,
    # and the email still becomes a ticket.
    harness = make_pipeline(JIRA_MAX_ATTACHMENT_SIZE="10MB")
    harness.sandbox.jira.max_attachment_size = 1024
    harness.deliver(attachments=[("big.log", b"x" * 2048, "text/plain")])
    harness.run_once()
    issue = only_issue(harness)
    assert issue["attachments"] == []
    assert "big.log" in issue["description"]


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_non_ascii_and_quoted_file_names_keep_their_name_and_a_retry_finds_them(
    make_pipeline, tmp_path, deployment
):
    # "naïve "quoted" résumé.txt" is stored as naïve 'quoted' résumé.txt on both kinds of
    # Jira, and a retry after a lost upload answer does not upload it again.
    from ticket_manager.extensions import db
    from ticket_manager.models import LedgerMessage
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(jira_deployment=deployment), state_dir=tmp_path / "s") as box:
        harness = make_pipeline(box)
        harness.deliver(attachments=[('naïve "quoted" résumé.txt', b"cv", "text/plain")])
        box.jira.controls.reset_next(1, "/attachments", after_processing=True)
        harness.run_once()
        with harness.app.app_context():
            db.session.query(LedgerMessage).update({"next_attempt_at": None})
            db.session.commit()
            db.session.remove()
        harness.run_once()
        names = [a["filename"] for a in only_issue(harness)["attachments"]]
        assert names == ["naïve 'quoted' résumé.txt"]
        assert harness.rows()[0].state == MessageState.TICKET_CREATED


def test_data_center_create_screens_are_read_from_their_own_shape(make_pipeline, tmp_path):
    # Data Center answers create metadata as `values` pages: a screen without labels and
    # with a required custom field still gets its ticket, the field from configuration.
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(jira_deployment="Server"), state_dir=tmp_path / "s") as box:
        box.jira.set_create_screen(
            "SUP",
            hidden=("labels",),
            custom={"customfield_10060": {"name": "Customer tier", "required": True}},
        )
        harness = make_pipeline(box, JIRA_CUSTOM_FIELDS='{"customfield_10060": "standard"}')
        harness.deliver()
        harness.run_once()
        issue = only_issue(harness)
        assert issue["labels"] == []
        assert issue["custom"] == {"customfield_10060": "standard"}


def test_data_center_recovery_in_a_utc_minus_8_account_finds_the_issue(tmp_path):
    # The same time-zone-safe recovery search on Data Center (REST v2, startAt paging).
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(jira_deployment="Server"), state_dir=tmp_path / "s") as box:
        box.jira.set_time_zone("ticket-bot@example.com", "America/Los_Angeles")
        attempt = datetime.now(UTC) - timedelta(seconds=30)
        key = box.jira.add_issue(
            "SUP",
            "Printer jammed",
            created=attempt + timedelta(seconds=5),
            properties={"ticket-manager.source": {"internetMessageId": "<b@example.com>"}},
        )
        found = _client(box).find_issue_with_property(
            "SUP", attempt, "ticket-manager.source", {"internetMessageId": "<b@example.com>"}
        )
        assert found == key
