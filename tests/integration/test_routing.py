"""Routing rules (ROUTING_RULES): first match wins, by recipient, sender, subject, body, mailbox."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ticket_manager.config import ConfigError, load_settings
from ticket_manager.models import MessageState

RULES = """
[[rules]]
name = "billing"
match.recipient = ["billing@example.com"]
set.board = "JIRA_BILLING_BOARD"
set.labels = ["billing"]
set.priority = "High"

[[rules]]
name = "vip"
match.sender = ["@bigcustomer.example.com", "ceo@example.com"]
set.issue_type = "Bug"
set.category = "bug"
set.assignee = "alice.agent@example.com"

[[rules]]
name = "outage"
match.subject = "(?i)\\\\bdown\\\\b"
match.body = "(?i)production"
set.labels = ["outage"]
"""


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "routing.toml"
    path.write_text(RULES)
    return path


@pytest.fixture
def routed(make_pipeline, rules_file):
    """Two boards, SUP (default) and DEV (billing), with the rules above."""
    return make_pipeline(
        JIRA_DEV_BOARD="development",
        JIRA_BILLING_BOARD="development",
        JIRA_BOARDS="JIRA_SUPPORT_BOARD,JIRA_BILLING_BOARD",
        ROUTING_RULES=str(rules_file),
        EMAIL_WHITELISTED_DOMAINS="example.com,bigcustomer.example.com",
    )


def issue_of(harness, subject: str) -> dict:
    return next(i for i in harness.issues() if i["summary"] == subject)


def test_an_alias_delivered_into_the_shared_mailbox_routes_by_delivered_to(routed):
    # Mail for billing@ (Delivered-To of the shared box) goes to the billing board with
    # its labels and priority; the ledger names the rule.
    routed.deliver(subject="Invoice 12", headers={"Delivered-To": "billing@example.com"})
    routed.run_once()
    issue = issue_of(routed, "Invoice 12")
    assert issue["project"] == "DEV"
    assert "billing" in issue["labels"] and issue["priority"] == "High"
    [row] = routed.rows()
    assert row.state == MessageState.TICKET_CREATED and row.rule == "route:billing"


def test_a_cc_to_the_alias_matches_too(routed):
    # A recipient condition looks at To, Cc and Delivered-To.
    routed.deliver(subject="Refund", cc=["Billing <billing@example.com>"])
    routed.run_once()
    assert issue_of(routed, "Refund")["project"] == "DEV"


def test_a_sender_domain_sets_type_category_and_assignee(routed):
    # A sender from a domain of the rule: Bug, category label "bug" instead of "general",
    # and the assignee.
    routed.deliver(subject="Help", sender="Big <it@bigcustomer.example.com>")
    routed.run_once()
    issue = issue_of(routed, "Help")
    assert issue["issuetype"] == "Bug"
    assert "bug" in issue["labels"] and "general" not in issue["labels"]
    assert issue["assignee"] == "alice.agent@example.com"
    assert routed.rows()[0].rule == "route:vip"


def test_subject_and_body_must_both_match_and_the_first_rule_wins(routed):
    # "outage" needs both its subject and body conditions; an email meeting billing and
    # outage is routed by billing, the first.
    routed.deliver(subject="Site down", body="Production is unreachable")
    routed.deliver(subject="Site down again", body="Only staging")
    routed.deliver(
        subject="Billing down", body="production", headers={"Delivered-To": "billing@example.com"}
    )
    routed.run_once()
    assert "outage" in issue_of(routed, "Site down")["labels"]
    assert "outage" not in issue_of(routed, "Site down again")["labels"]
    both = issue_of(routed, "Billing down")
    assert both["project"] == "DEV" and "outage" not in both["labels"]


def test_mail_no_rule_matches_keeps_the_mailbox_board(routed):
    # Without a matching rule the configured board decides, and no rule is recorded.
    routed.deliver(subject="Printer jammed")
    routed.run_once()
    assert issue_of(routed, "Printer jammed")["project"] == "SUP"
    assert routed.rows()[0].rule is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[rules]]\nname = "a"\nmatch.subject = "("\nset.labels = ["x"]\n',
            "rule 1 ('a'): match.subject is not a valid regular expression",
        ),
        (
            '[[rules]]\nname = "a"\nset.board = "JIRA_NOPE_BOARD"\n',
            "rule 1 ('a'): set.board 'JIRA_NOPE_BOARD' is neither",
        ),
        (
            '[[rules]]\nname = "a"\nset.labels = ["x"]\n'
            '[[rules]]\nname = "b"\nmatch.colour = "red"\nset.labels = ["y"]\n',
            "rule 2 ('b'): unknown condition match.colour",
        ),
        ('[[rules]]\nname = "a"\nset.labels = ["two words"]\n', "rule 1 ('a'): set.labels"),
        (
            '[[rules]]\nname = "a"\nmatch.sender = ["not an address"]\nset.labels = ["x"]\n',
            "neither an address nor a domain",
        ),
        ("[[rules]\n", "is not valid TOML"),
    ],
)
def test_a_bad_rules_file_is_refused_at_start_naming_the_rule(tmp_path, sandbox_env, text, message):
    # Each problem is one line naming the key, the rule and what is wrong.
    path = tmp_path / "routing.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings({**sandbox_env, "ROUTING_RULES": str(path)})
    line = raised.value.format_message()
    assert "\n" not in line
    assert line.startswith("configuration key ROUTING_RULES: ")
    assert message in line


def _cli(args, env, cwd):
    return subprocess.run(
        [sys.executable, "-m", "ticket_manager", "o365", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_explain_routing_names_the_rule_of_an_eml_without_touching_jira(routed, tmp_path):
    # The command reads a .eml and says which rule it meets and what it sets; Jira and the
    # mailbox see no request.
    eml = tmp_path / "mail.eml"
    eml.write_bytes(
        b"From: Big <it@bigcustomer.example.com>\r\nTo: support@example.com\r\n"
        b"Subject: Help\r\nMessage-ID: <x@example.com>\r\n\r\nHello\r\n"
    )
    before = len(routed.sandbox.jira.controls.requests)
    result = _cli(["explain-routing", str(eml)], routed.env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rule 2 ('vip') matches." in result.stdout
    assert "issue_type: Bug" in result.stdout
    assert len(routed.sandbox.jira.controls.requests) == before


def test_the_dry_run_of_missing_tickets_says_which_rule_would_file_each(routed, tmp_path):
    # check-for-missing-tickets --dry-run shows the matching rule of each missing email.
    routed.deliver(subject="Invoice 7", headers={"Delivered-To": "billing@example.com"})
    result = _cli(["check-for-missing-tickets", "--dry-run"], routed.env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Invoice 7  [rule billing]" in result.stdout
