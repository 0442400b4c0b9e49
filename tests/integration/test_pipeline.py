"""Email to ticket, end to end: the worker against the emulated Graph and Jira over HTTPS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline.jira_writes import upload_content_type
from ticket_manager_sandbox.samples import PIXEL_PNG


def only_issue(pipeline) -> dict:
    issues = pipeline.issues()
    assert len(issues) == 1, [i["summary"] for i in issues]
    return issues[0]


def test_a_plain_email_becomes_one_ticket_and_the_email_is_marked(pipeline):
    # A new email becomes one Jira issue in the board's project; the email shows the key.
    pipeline.deliver(
        subject="Printer on the 3rd floor is jammed",
        body="It shows error E-42.",
        sender="Carol Customer <carol.customer@example.com>",
        cc=["alice.agent@example.com"],
        importance="high",
    )
    pipeline.run_once()

    issue = only_issue(pipeline)
    assert issue["key"].startswith("SUP-")
    assert issue["summary"] == "Printer on the 3rd floor is jammed"
    assert issue["issuetype"] == "Task"
    assert issue["labels"] == ["ticket", "general"]
    assert issue["priority"] == "High"
    assert issue["reporter"] == "carol.customer@example.com"
    assert "It shows error E-42." in issue["description"]
    assert "carol.customer@example.com" in issue["description"]
    assert issue["description_raw"]["type"] == "doc"  # Cloud: Atlassian Document Format
    watchers = pipeline.sandbox.jira.store.find_issue(issue["key"])["watchers"]
    assert any(
        pipeline.sandbox.jira.store.users[w]["email"] == "alice.agent@example.com" for w in watchers
    )

    [row] = pipeline.rows()
    assert row.state == MessageState.TICKET_CREATED
    assert row.ticket_key == issue["key"]
    [email] = pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")
    assert email["categories"] == [f"Ticket {issue['key']}"]
    assert email["isRead"] is True


def test_an_unknown_sender_is_the_reporter_named_in_the_description(pipeline):
    # A sender who is not a Jira user leaves the service account as reporter.
    pipeline.deliver(sender="Eve Newcomer <eve@example.com>")
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert issue["reporter"] == pipeline.sandbox.accounts.jira_user
    assert "eve@example.com" in issue["description"]


@pytest.mark.parametrize(
    ("sender", "headers", "rule"),
    [
        ("bob@example.com", {"Auto-Submitted": "auto-replied"}, "auto-reply"),
        ("bob@example.com", {"Precedence": "bulk"}, "auto-reply"),
        ("bob@example.com", {"X-Autoreply": "yes"}, "auto-reply"),
        ("MAILER-DAEMON@example.com", {}, "auto-reply"),
        ("Malicious@Example.com", {}, "blocked-sender"),
        ("x@evil.org", {}, "domain-not-allowed"),
        ('"ceo@example.com" <x@evil.org>', {}, "domain-not-allowed"),
        ("boss@example.com.evil.org", {}, "domain-not-allowed"),
        ("support@example.com", {}, "own-mailbox"),
        ("bob@example.com", {"X-Ticket-Manager": "ack; ticket=SUP-1"}, "own-mailbox"),
    ],
)
def test_rejected_mail_opens_no_ticket_and_records_why(pipeline, sender, headers, rule):
    # A rule's refusal is recorded with its name and reason; Jira is not touched.
    pipeline.deliver(sender=sender, headers=headers)
    pipeline.run_once()
    assert pipeline.issues() == []
    [row] = pipeline.rows()
    assert row.state == MessageState.REJECTED
    assert row.rule == rule
    assert row.reason
    [email] = pipeline.sandbox.graph.messages(pipeline.mailbox, "inbox")
    assert email["isRead"] is False  # the email stays as it was, for a person to look at


def test_auto_submitted_no_is_a_person(pipeline):
    # "Auto-Submitted: no" is what a person's mail client may send: it is not an auto-reply.
    pipeline.deliver(headers={"Auto-Submitted": "no"})
    pipeline.run_once()
    assert len(pipeline.issues()) == 1


def test_a_sender_storm_is_capped(make_pipeline):
    # Past EMAIL_MAX_PER_SENDER_PER_DAY tickets, a sender's further mail is rejected.
    harness = make_pipeline(EMAIL_MAX_PER_SENDER_PER_DAY="2")
    for n in range(4):
        harness.deliver(subject=f"Storm {n}")
    harness.run_once()
    assert len(harness.issues()) == 2
    assert sorted(r.rule or "" for r in harness.rows()) == ["", "", "sender-cap", "sender-cap"]


def test_a_category_in_the_subject_becomes_a_label(pipeline):
    # "[bug]" names a configured category: it is a label and leaves the summary.
    pipeline.deliver(subject="[Bug] Login page answers 500")
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert issue["summary"] == "Login page answers 500"
    assert issue["labels"] == ["ticket", "bug"]


def test_an_empty_subject_gets_a_placeholder_summary(pipeline):
    # Jira refuses an empty summary: "(no subject)" stands in.
    pipeline.deliver(subject="")
    pipeline.run_once()
    assert only_issue(pipeline)["summary"] == "(no subject)"


def test_a_folded_subject_becomes_one_line(pipeline):
    # A subject folded over two header lines (RFC 5322) is one line in Jira.
    raw = (
        b"From: Alice <alice@example.com>\r\nTo: support@example.com\r\n"
        b"Subject: Line one\r\n\tline two\r\nMessage-ID: <fold@example.com>\r\n"
        b"Content-Type: text/plain\r\n\r\nBody\r\n"
    )
    pipeline.sandbox.graph.deliver_mime(pipeline.mailbox, raw)
    pipeline.run_once()
    assert only_issue(pipeline)["summary"] == "Line one line two"


def test_a_300_character_subject_is_cut_to_255(pipeline):
    # Jira's 255-character limit is met by cutting, never by failing the email.
    pipeline.deliver(subject="x" * 300)
    pipeline.run_once()
    summary = only_issue(pipeline)["summary"]
    assert len(summary) <= 255
    assert summary.startswith("xxxx")


def test_attachments_and_inline_images_are_uploaded_and_oversized_ones_listed(make_pipeline):
    # Every file is attached; an inline image too; one over the limit is named instead.
    harness = make_pipeline(JIRA_MAX_ATTACHMENT_SIZE="1KB")
    harness.deliver(
        html=True,
        body='<p>See the screenshot:</p><img src="cid:shot1">',
        attachments=[
            {
                "name": "screen.png",
                "content": PIXEL_PNG,
                "content_type": "image/png",
                "inline": True,
                "content_id": "shot1",
            },
            ("../../etc/passwd", b"not really", "text/plain"),
            ("big.log", b"x" * 4096, "text/plain"),
        ],
    )
    harness.run_once()
    issue = only_issue(harness)
    names = sorted(a["filename"] for a in issue["attachments"])
    assert names == ["passwd", "screen.png"]
    assert "big.log" in issue["description"]
    assert "screen.png" in issue["description"]


def test_a_file_too_large_to_upload_is_never_downloaded(make_pipeline):
    # Graph lists the files' sizes first: one over JIRA_MAX_ATTACHMENT_SIZE is named in the
    # ticket without its content ever crossing the wire; the small one is uploaded.
    harness = make_pipeline(JIRA_MAX_ATTACHMENT_SIZE="100KB")
    harness.deliver(
        attachments=[
            ("huge.iso", b"\x00" * 400_000, "application/octet-stream"),
            ("small.txt", b"fine", "text/plain"),
        ]
    )
    graph = harness.sandbox.graph.controls
    graph.reset_log()
    harness.run_once()
    issue = only_issue(harness)
    assert [a["filename"] for a in issue["attachments"]] == ["small.txt"]
    assert "huge.iso" in issue["description"]
    reads = [r for r in graph.requests if "/attachments" in r.path]
    assert len(reads) == 2  # the sizes, then small.txt alone
    assert "select" in reads[0].query
    assert reads[1].path.count("/attachments/") == 1 and not reads[1].path.endswith("$value")


def test_a_large_file_is_fetched_raw_and_uploaded_whole(make_pipeline):
    # A 5 MB file comes as raw bytes ($value), not base64 in JSON, and reaches Jira intact.
    harness = make_pipeline(JIRA_MAX_ATTACHMENT_SIZE="30MB")
    content = bytes(range(256)) * (5 * 4096)
    harness.deliver(attachments=[("dump.bin", content, "application/octet-stream")])
    graph = harness.sandbox.graph.controls
    graph.reset_log()
    harness.run_once()
    issue = only_issue(harness)
    [attachment] = issue["attachments"]
    assert attachment["filename"] == "dump.bin" and attachment["size"] == len(content)
    stored = harness.sandbox.jira.store.attachments[str(attachment["id"])]
    assert stored["data"] == content
    assert [r.path.endswith("/$value") for r in graph.requests if "/attachments" in r.path] == [
        False,
        True,
    ]


def test_an_email_s_files_go_to_jira_in_one_upload_with_their_types(pipeline):
    # Three files are one multipart request, each with the type the email gave it.
    pipeline.deliver(
        attachments=[
            ("report.pdf", b"%PDF-1.4 report", "application/pdf"),
            ("notes.txt", b"some notes", "text/plain"),
            ("data", b"\x00\x01", "application/x-custom"),
        ],
    )
    jira = pipeline.sandbox.jira.controls
    jira.reset_log()
    pipeline.run_once()
    issue = only_issue(pipeline)
    files = {a["filename"]: a["mimeType"] for a in issue["attachments"]}
    assert files == {
        "report.pdf": "application/pdf",
        "notes.txt": "text/plain",
        "data": "application/x-custom",
    }
    uploads = [r for r in jira.requests if r.path.endswith("/attachments")]
    assert [(r.method, r.status) for r in uploads] == [("POST", 200)]
    reads = [r for r in jira.requests if r.method == "GET" and r.path.endswith(issue["key"])]
    assert reads == []  # a ticket made this round has no files to look for


@pytest.mark.parametrize(
    ("declared", "sent"),
    [
        ("image/PNG", "image/png"),
        ("text/plain; charset=utf-8", "text/plain"),
        ("text/plain\r\nX-Injected: yes", "application/octet-stream"),
        ('text/"plain"', "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_only_a_plain_media_type_reaches_the_upload_s_part_header(declared, sent):
    # Whatever an email claims as a file's type, the multipart part gets no header of its own.
    assert upload_content_type(declared) == sent


def test_an_upload_whose_answer_was_lost_is_not_made_twice(pipeline):
    # Jira stored the files but the connection dropped before its answer: the email's retry
    # finds them on the issue and uploads nothing again.
    pipeline.deliver(attachments=[("a.txt", b"first", "text/plain"), ("b.txt", b"2", "text/plain")])
    pipeline.sandbox.jira.controls.reset_next(1, "/attachments", after_processing=True)
    pipeline.run_once()
    [row] = pipeline.rows()
    assert row.state == MessageState.FAILED
    with pipeline.app.app_context():
        db.session.query(LedgerMessage).update({"next_attempt_at": None})
        db.session.commit()
        db.session.remove()
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert sorted(a["filename"] for a in issue["attachments"]) == ["a.txt", "b.txt"]
    assert pipeline.rows()[0].state == MessageState.TICKET_CREATED


def test_the_same_email_delivered_twice_makes_one_ticket(pipeline):
    # Two copies of one Message-ID (a duplicate delivery) are one ledger row and one ticket.
    for _ in range(2):
        pipeline.deliver(message_id="<same-one@example.com>")
    pipeline.run_once()
    pipeline.run_once()
    assert len(pipeline.issues()) == 1
    assert len(pipeline.rows()) == 1


def test_an_expired_delta_token_resyncs_without_duplicates(pipeline):
    # After Graph's 410, a full resync sees old mail again and creates nothing twice.
    pipeline.deliver(subject="First")
    pipeline.run_once()
    pipeline.sandbox.graph.expire_delta_tokens(pipeline.mailbox)
    pipeline.deliver(subject="Second")
    pipeline.run_once()
    assert sorted(i["summary"] for i in pipeline.issues()) == ["First", "Second"]
    assert len(pipeline.rows()) == 2


def test_a_jira_outage_fails_the_message_then_it_is_retried(pipeline):
    # Jira answering 503 leaves the row failed with a retry time; the next round creates it.
    pipeline.deliver()
    pipeline.sandbox.jira.controls.fail_next(
        20, status=503, retry_after=0, path_contains="/rest/api/3/issue"
    )
    pipeline.run_once()
    [row] = pipeline.rows()
    assert row.state == MessageState.FAILED
    assert "503" in row.last_error
    assert row.next_attempt_at is not None
    assert pipeline.issues() == []

    pipeline.sandbox.jira.controls.clear_faults()
    with pipeline.app.app_context():
        db.session.query(LedgerMessage).update(
            {LedgerMessage.next_attempt_at: datetime.now(UTC) - timedelta(seconds=1)}
        )
        db.session.commit()
    pipeline.run_once()
    assert len(pipeline.issues()) == 1
    assert pipeline.rows()[0].state == MessageState.TICKET_CREATED


def test_graph_throttling_is_waited_out(pipeline):
    # A burst of 429s with Retry-After on the delta query delays the round, loses nothing.
    for n in range(3):
        pipeline.deliver(subject=f"Mail {n}")
    pipeline.sandbox.graph.controls.fail_next(2, status=429, retry_after=1, path_contains="delta")
    pipeline.run_once()
    assert len(pipeline.issues()) == 3


def test_jira_server_gets_wiki_markup(make_pipeline, tmp_path):
    # Against Jira Server/Data Center the description is escaped wiki markup (REST v2).
    from ticket_manager_sandbox.sandbox import Sandbox, SandboxAccounts

    with Sandbox(SandboxAccounts(jira_deployment="Server"), state_dir=tmp_path / "s") as server:
        harness = make_pipeline(server)
        harness.deliver(body="Please run {code}rm -rf /{code} and ping [~admin] *now*")
        harness.run_once()
        issue = only_issue(harness)
        assert isinstance(issue["description_raw"], str)
        assert "{code}rm" not in issue["description_raw"]
        assert "[~admin]" not in issue["description_raw"]
        assert all("/rest/api/3/" not in r.path for r in server.jira.controls.requests)


def test_unicode_and_a_large_body_survive(pipeline):
    # Right-to-left text and a 200 KB body reach Jira without error.
    body = ("שלום, המדפסת תקועה. " * 20) + ("A" * 200_000)
    pipeline.deliver(subject="מדפסת תקועה", body=body)
    pipeline.run_once()
    issue = only_issue(pipeline)
    assert issue["summary"] == "מדפסת תקועה"
    assert "שלום" in issue["description"]


def test_one_mailbox_failing_does_not_stop_the_others(make_pipeline, sandbox):
    # A mailbox Graph refuses is reported on its row; the next mailbox still gets its tickets.
    harness = make_pipeline(MAILBOX="ghost@example.com,support@example.com")
    harness.deliver(subject="Still handled")
    harness.run_once()
    assert [i["summary"] for i in harness.issues()] == ["Still handled"]
    from ticket_manager.models import Mailbox

    with harness.app.app_context():
        ghost = db.session.query(Mailbox).filter_by(address="ghost@example.com").one()
        assert "404" in ghost.last_sync_error


def test_reconciliation_and_the_worker_at_once_make_each_ticket_once(pipeline):
    # check-for-missing-tickets racing the worker over the same mail creates nothing twice.
    import threading

    from ticket_manager.pipeline.reconcile import Reconciler
    from ticket_manager.pipeline.worker import Services

    for n in range(12):
        pipeline.deliver(subject=f"Race {n}")

    def reconcile() -> None:
        with pipeline.app.app_context():
            reconciler = Reconciler(pipeline.app, pipeline.settings, Services(pipeline.settings))
            report = reconciler.find_missing(pipeline.mailbox, timedelta(days=1))
            reconciler.process(pipeline.mailbox, report, progress=lambda _n: None)
            db.session.remove()

    racer = threading.Thread(target=reconcile)
    racer.start()
    pipeline.run_once()
    racer.join(60)
    pipeline.run_once()  # whatever the race left pending is finished here
    summaries = sorted(i["summary"] for i in pipeline.issues())
    assert summaries == sorted(f"Race {n}" for n in range(12))
    assert {r.state for r in pipeline.rows()} == {MessageState.TICKET_CREATED}


def test_a_large_backlog_is_fetched_as_fast_as_it_is_processed(make_pipeline):
    # A first sync over 300 emails fetches a delta page only once at most two pages are
    # left to process: memory holds a few pages, not the whole backlog.
    pipeline = make_pipeline(EMAIL_MAX_PER_DOMAIN_PER_HOUR="0")
    for n in range(300):
        pipeline.deliver(subject=f"Backlog {n}", sender=f"p{n % 20}@example.com")
    pipeline.sandbox.jira.controls.set_latency(0.1)
    pipeline.sandbox.graph.controls.reset_log()
    pipeline.sandbox.jira.controls.reset_log()
    pipeline.run_once()

    pages = [r for r in pipeline.sandbox.graph.controls.requests if "/delta" in r.path]
    creates = sorted(
        r.at
        for r in pipeline.sandbox.jira.controls.requests
        if r.method == "POST" and r.path == "/rest/api/3/issue"
    )
    assert len(creates) == 300 and len(pages) >= 6
    for number, page in enumerate(pages[:6]):
        started = page.at - page.duration_ms / 1000
        finished = sum(1 for at in creates if at < started)
        assert finished >= number * 50 - 2 * 50, (number, finished)


def test_graph_never_sees_more_than_four_calls_on_the_mailbox(pipeline):
    # With 16 emails processed at once and slow Graph answers, Exchange's limit of 4
    # concurrent requests per mailbox is never crossed (no 429 MailboxConcurrency).
    for n in range(24):
        pipeline.deliver(subject=f"Busy {n}")
    pipeline.sandbox.graph.controls.set_latency(0.05)
    pipeline.run_once()
    assert len(pipeline.issues()) == 24
    assert all(r.status != 429 for r in pipeline.sandbox.graph.controls.requests)


def test_a_processed_email_moves_to_the_configured_folder(make_pipeline):
    # With O365_PROCESSED_FOLDER, the email leaves the Inbox once its ticket exists.
    harness = make_pipeline(O365_PROCESSED_FOLDER="archive")
    harness.deliver(subject="File me")
    harness.run_once()
    [issue] = harness.issues()
    assert harness.sandbox.graph.messages(harness.mailbox, "inbox") == []
    [archived] = harness.sandbox.graph.messages(harness.mailbox, "archive")
    assert archived["categories"] == [f"Ticket {issue['key']}"]
