"""Pacing Graph requests per mailbox under Outlook's quota, and splitting it between processes."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ticket_manager.config import load_settings
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.pacing import MailboxPacer
from ticket_manager.http import build_session

MAILBOX = "support@example.com"


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def _most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside any window of ``window`` seconds (sliding)."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_mailbox_never_gets_more_than_its_budget_in_any_window():
    # 1,000 requests as fast as the pacer lets them: no sliding window of 60 s holds more
    # than the budget of 100, yet the pacer leaves little of it unused: after an idle
    # mailbox's burst, the requests go out evenly at the budget's rate.
    fake = FakeTime()
    pacer = MailboxPacer(100, 60.0, burst=10, clock=fake.clock, sleep=fake.sleep)
    sent = []
    for _ in range(1000):
        pacer.wait_turn(MAILBOX)
        sent.append(fake.now)
    assert _most_in_any_window(sent, 60.0) == 100
    assert sent[:11] == pytest.approx([1000.0] * 11)  # the burst (and one) at once
    assert sent[-1] - sent[0] == pytest.approx((1000 - 11) * 0.6, abs=0.1)  # 100 a minute


def test_a_burst_never_lets_a_window_overflow():
    # With a burst as large as half the budget, a mailbox idle long enough for its burst but
    # not for its window to empty still gets no more than the budget in any window.
    fake = FakeTime()
    pacer = MailboxPacer(10, 60.0, burst=5, clock=fake.clock, sleep=fake.sleep)
    sent = []
    for pause in (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0):
        fake.now += pause
        pacer.wait_turn(MAILBOX)
        sent.append(fake.now)
    assert _most_in_any_window(sent, 60.0) <= 10


def test_mailboxes_are_paced_apart():
    # Each mailbox has its own budget: a busy one does not slow another.
    fake = FakeTime()
    pacer = MailboxPacer(10, 60.0, burst=2, clock=fake.clock, sleep=fake.sleep)
    for _ in range(20):
        pacer.wait_turn("busy@example.com")
    assert pacer.wait_turn("quiet@example.com") == 0.0


def test_a_retry_after_holds_every_thread_of_the_process():
    # After a 429 with Retry-After: 30 on one mailbox, the next request on it waits the 30 s,
    # whichever thread makes it; another mailbox is not held.
    fake = FakeTime()
    pacer = MailboxPacer(10_000, 600.0, clock=fake.clock, sleep=fake.sleep)
    pacer.hold(MAILBOX, 30)
    assert pacer.wait_turn(MAILBOX) == pytest.approx(30.0)
    assert pacer.wait_turn("other@example.com") == 0.0


def test_shares_split_the_budget_between_processes():
    # Two processes on one mailbox each pace at half the budget.
    fake = FakeTime()
    alone = MailboxPacer(100, 60.0, burst=10, clock=fake.clock, sleep=fake.sleep)
    shared = MailboxPacer(100, 60.0, burst=10, shares=lambda _m: 2, clock=fake.clock)
    assert (alone.limit(MAILBOX), shared.limit(MAILBOX)) == (100, 50)
    assert shared.interval(MAILBOX) == pytest.approx(2 * alone.interval(MAILBOX))


def test_the_client_stays_under_the_emulated_quota_from_several_threads(sandbox, sandbox_env):
    # Graph allows 30 requests per 3 seconds on the mailbox here (the quota scaled down); 60
    # requests from 4 threads through a client paced at 24 per 3 s (a margin for requests that
    # take longer to arrive than others on a busy machine) all succeed, with at most a stray
    # 429. Unpaced, the same requests run into 429s (each of which counts, too).
    settings = load_settings(sandbox_env)
    session = build_session(settings.ca_bundle)
    tokens = TokenProvider(settings, session)
    pacer = MailboxPacer(24, 3.0, burst=5)
    graph = GraphClient(settings.graph_url, tokens.access_token, session, pacer=pacer)
    graph.get_folder(MAILBOX)  # sign in before the quota starts
    sandbox.graph.set_request_quota(30, 3.0)
    sandbox.graph.controls.reset_log()

    def fifteen() -> None:
        for _ in range(15):
            graph.get_folder(MAILBOX)

    threads = [threading.Thread(target=fifteen) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = Counter(
        r.status for r in sandbox.graph.controls.requests if "/mailFolders/" in r.path
    )
    assert statuses[200] == 60
    assert statuses[429] <= 2


def test_processes_on_one_mailbox_share_its_budget_through_the_database(make_pipeline):
    # A worker and check-for-missing-tickets (two owners) on one mailbox each count two
    # sharers; when one gives its share back the other has the whole budget again.
    from ticket_manager.pipeline.pacing import DatabaseShares

    harness = make_pipeline()
    worker = DatabaseShares(harness.app, owner="host:1:worker")
    reconcile = DatabaseShares(harness.app, owner="host:2:reconcile")
    worker._known[MAILBOX] = 1
    reconcile._known[MAILBOX] = 1
    worker.refresh()
    reconcile.refresh()
    worker.refresh()
    assert (worker._known[MAILBOX], reconcile._known[MAILBOX]) == (2, 2)
    assert worker._known == {MAILBOX: 2}
    reconcile.release()
    worker.refresh()
    assert worker._known[MAILBOX] == 1
    worker.release()
