"""Microsoft 365 as real tenants are: delta partial items, token generations, mailbox identity,
subscriptions, Send As and the errors Graph really returns, over real HTTPS."""

from __future__ import annotations

from ticket_manager.models import MessageState
from ticket_manager.sandbox.graph_delta import DELTA_GENERATIONS


def _delta_requests(graph) -> list:
    return [r for r in graph.controls.requests if r.path.endswith("/delta")]


def test_our_own_marking_of_processed_email_makes_no_ledger_row(pipeline):
    # 100 processed emails (marked read and categorised by us), then a round whose delta items
    # are partial updates: no phantom row, and no request per email.
    for n in range(100):
        pipeline.deliver(
            subject=f"Case {n}", sender=f"c{n}@example.com", message_id=f"<case-{n}@example.com>"
        )
    pipeline.run_once()
    rows = pipeline.rows()
    assert len(rows) == 100
    assert {r.state for r in rows} == {MessageState.TICKET_CREATED}

    graph = pipeline.sandbox.graph
    graph.controls.reset_log()
    pipeline.run_once()
    rows = pipeline.rows()
    assert len(rows) == 100
    assert all(r.internet_message_id.startswith("<case-") for r in rows)
    message_calls = [r for r in graph.controls.requests if "/messages" in r.path]
    assert len(message_calls) == len(_delta_requests(graph)) == 1


def test_a_replay_after_a_crash_survives_graph_forgetting_old_delta_tokens(pipeline):
    # A worker that keeps crashing before it stores its new delta link uses the same old link
    # again and again; once Graph keeps only newer generations, that link answers 410 and the
    # full resync makes each email a ticket once.
    pipeline.deliver(subject="First", message_id="<first@example.com>")
    pipeline.run_once()
    graph = pipeline.sandbox.graph
    pipeline.deliver(subject="Second", message_id="<second@example.com>")
    for _ in range(DELTA_GENERATIONS):  # rounds that crashed before storing their new link
        _walk_without_storing(pipeline)
    graph.controls.reset_log()
    pipeline.run_once()

    assert _delta_requests(graph)[0].status == 410
    assert sorted(i["summary"] for i in pipeline.issues()) == ["First", "Second"]
    assert len(pipeline.rows()) == 2


def _walk_without_storing(pipeline) -> None:
    """Walk the stored delta link as a crashed round did: the new link is never stored."""
    from ticket_manager.extensions import db
    from ticket_manager.pipeline.sync import mailbox_state
    from ticket_manager.pipeline.worker import Services

    with pipeline.app.app_context():
        link = mailbox_state(pipeline.mailbox).delta_link
        db.session.remove()
        assert link
        graph = Services(pipeline.settings).graph
        for _page in graph.delta_pages(pipeline.mailbox, delta_link=link):
            pass
