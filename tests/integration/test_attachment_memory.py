"""The process-wide budget for attachment bytes held in memory while emails are processed."""

from __future__ import annotations

import threading

from ticket_manager.graph.memory import AttachmentMemory

MB = 1024 * 1024


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_reservation_that_does_not_fit_waits_for_another_email_to_finish():
    # Two emails with 20 MB of files each under a 30 MB budget: the second downloads only
    # once the first is done.
    memory = AttachmentMemory(30 * MB)
    first_holds, first_may_finish, second_holds = (threading.Event() for _ in range(3))

    def first() -> None:
        with memory.holding():
            memory.reserve(20 * MB)
            first_holds.set()
            first_may_finish.wait(30)

    def second() -> None:
        with memory.holding():
            memory.reserve(20 * MB)
            second_holds.set()

    one = _in_thread(first)
    assert first_holds.wait(30)
    two = _in_thread(second)
    assert not second_holds.wait(0.2)  # it waits (a lower bound on time, never an upper one)
    assert memory.in_use == 20 * MB
    first_may_finish.set()
    assert second_holds.wait(30)
    one.join(30)
    two.join(30)
    assert memory.peak == 20 * MB
    assert memory.in_use == 0


def test_a_file_larger_than_the_budget_is_processed_alone():
    # A 50 MB file under a 30 MB budget takes the whole budget and does not wait forever.
    memory = AttachmentMemory(30 * MB)
    with memory.holding():
        memory.reserve(50 * MB)
        assert memory.in_use == 30 * MB
    assert memory.in_use == 0


def test_a_thread_holding_bytes_is_never_made_to_wait_for_more():
    # Two threads each holding part of the budget and asking for more would wait for each
    # other forever: a thread that holds bytes gets more at once, over the budget.
    memory = AttachmentMemory(30 * MB)
    holding, done = threading.Event(), threading.Event()

    def other() -> None:
        with memory.holding():
            memory.reserve(20 * MB)
            holding.set()
            done.wait(30)

    thread = _in_thread(other)
    assert holding.wait(30)
    with memory.holding():
        memory.reserve(5 * MB)
        memory.reserve(10 * MB)  # would not fit, but this thread already holds bytes
        assert memory.in_use == 35 * MB
    done.set()
    thread.join(30)
    assert memory.in_use == 0


def test_outside_an_email_nothing_is_reserved():
    # The API and commands download files without a processing scope: no accounting, no wait.
    memory = AttachmentMemory(1 * MB)
    memory.reserve(50 * MB)
    assert memory.in_use == 0


def test_the_worker_holds_at_most_the_budget_of_attachments_at_once(make_pipeline):
    # Four emails with a 600 KB file each, processed four at a time under a 1 MB budget:
    # never more than one email's files in memory at once, and every ticket gets its file.
    harness = make_pipeline(PROCESSING_ATTACHMENT_MEMORY="1MB", PROCESSING_CONCURRENCY="4")
    for n in range(4):
        harness.deliver(
            subject=f"Scan {n}",
            sender=f"Person {n} <person{n}@example.com>",
            attachments=[(f"scan{n}.pdf", bytes([n]) * (600 * 1024), "application/pdf")],
        )
    worker = harness.run_once()
    memory = worker.services.graph.memory
    assert 600 * 1024 <= memory.peak <= 1 * MB
    assert memory.in_use == 0
    issues = harness.issues()
    assert len(issues) == 4
    for issue in issues:
        names = [a["filename"] for a in issue["attachments"]]
        assert len(names) == 1 and names[0].startswith("scan")
