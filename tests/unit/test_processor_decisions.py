"""The processor's decisions on one ledger row, against in-memory Graph and Jira fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakes import FakeGraph, FakeJira
from flask_migrate import upgrade

from ticket_manager import create_app
from ticket_manager.extensions import db, get_settings
from ticket_manager.graph.messages import MailMessage
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline import ledger
from ticket_manager.pipeline.processor import MessageProcessor

MAILBOX = "support@example.com"


@pytest.fixture
def app(tmp_path):
    """An app on a fresh SQLite file, with the original README's filters."""
    application = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'unit.db'}",
            "MAILBOX": MAILBOX,
            "O365_TENANT_ID": "8f3b1c2d-5e6f-4a7b-9c8d-0e1f2a3b4c5d",
            "O365_CLIENT_ID": "0b5c7e2a-1d3f-4e5a-8b6c-7d8e9f0a1b2c",
            "O365_CLIENT_SECRET": "secret",
            "O365_AUTH_FLOW": "credentials",
            "ATLASSIAN_URL": "https://example.atlassian.net",
            "ATLASSIAN_USER": "ticket-bot@example.com",
            "ATLASSIAN_API_TOKEN": "token",
            "JIRA_SUPPORT_BOARD": "support",
            "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
            "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
            "EMAIL_WHITELISTED_DOMAINS": "example.com",
            "EMAIL_BLACKLIST": "malicious@example.com",
        }
    )
    with application.app_context():
        upgrade()
        yield application
        db.session.remove()
        db.engine.dispose()


def email(number: int, sender: str, subject: str = "Printer jammed") -> MailMessage:
    return MailMessage.from_graph(
        {
            "id": f"graph-{number}",
            "internetMessageId": f"<m{number}@example.com>",
            "conversationId": f"conversation-{number}",
            "subject": subject,
            "from": {"emailAddress": {"name": "Sender", "address": sender}},
            "sender": {"emailAddress": {"name": "Sender", "address": sender}},
            "toRecipients": [{"emailAddress": {"address": MAILBOX}}],
            "receivedDateTime": datetime.now(UTC).isoformat(),
            "body": {"contentType": "text", "content": "Hello, the printer is jammed."},
            "internetMessageHeaders": [{"name": "Message-ID", "value": f"<m{number}@example.com>"}],
        },
        mailbox=MAILBOX,
    )


def process(app, graph: FakeGraph, jira: FakeJira, message: MailMessage):
    graph.add(message)
    ledger.record([message])
    db.session.commit()
    row = ledger.find(MAILBOX, ledger.message_key(message))
    processor = MessageProcessor(get_settings(app), graph, jira)
    outcome = processor.process(row.id, message)
    return outcome, db.session.get(LedgerMessage, row.id)


def test_an_allowed_sender_gets_one_ticket(app):
    # An email from an allowed domain becomes one Jira issue in the support project.
    graph, jira = FakeGraph(), FakeJira()
    outcome, row = process(app, graph, jira, email(1, "alice@example.com"))
    assert row.state == MessageState.TICKET_CREATED
    [(key, issue)] = jira.issues.items()
    assert row.ticket_key == key == outcome.ticket_key
    assert issue["fields"]["summary"] == "Printer jammed"
    assert jira.calls.count("create_issue") == 1


def test_a_blocked_sender_is_rejected_without_asking_jira(app):
    # A blacklisted sender is rejected by its rule, and Jira is never called.
    graph, jira = FakeGraph(), FakeJira()
    _outcome, row = process(app, graph, jira, email(2, "malicious@example.com"))
    assert row.state == MessageState.REJECTED
    assert row.rule
    assert jira.calls == []


def test_processing_the_same_row_again_makes_no_second_ticket(app):
    # A row already ticketed is not ticketed again when processed a second time.
    graph, jira = FakeGraph(), FakeJira()
    message = email(3, "bob@example.com")
    _outcome, row = process(app, graph, jira, message)
    processor = MessageProcessor(get_settings(app), graph, jira)
    processor.process(row.id, message, force=True)
    assert len(jira.issues) == 1
