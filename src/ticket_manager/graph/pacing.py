"""Pace Graph requests per mailbox under Outlook's quota, instead of running into its 429s.

Exchange Online lets one app make 10,000 requests per 10 minutes on one mailbox, and counts
the requests it refuses too ("all requests accrue against your usage limits"): a client that
runs into the wall and waits spends budget on the 429s themselves. The pacer keeps each
mailbox's requests within the configured budget on its own:

- a sliding window of the requests it let out, as Exchange counts them: never more than the
  budget in any ``window`` seconds;
- a steady rate of budget/window with a burst (a generic cell rate algorithm), so that a
  backlog is worked off evenly and new mail still gets through, rather than the whole
  window's budget being spent in the first minute and everything waiting out the other nine.

Each request reserves its moment before it sleeps, so the threads of a process queue fairly
without a busy loop. Several processes on one mailbox (the worker,
``check-for-missing-tickets``) split the budget: ``shares(mailbox)`` says how many pace it
now (see :mod:`ticket_manager.pipeline.pacing`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# Outlook's documented limit per app id and mailbox: 10,000 requests in a 10-minute window.
OUTLOOK_QUOTA_WINDOW = 600.0
OUTLOOK_QUOTA_REQUESTS = 10_000
# Requests let through at once after a quiet spell: a delta round's pages and a few emails'
# attachments and replies do not wait for the steady rate.
DEFAULT_BURST = 200
# A request waiting for the window's oldest to leave goes this long after: a moment exactly on
# the window's edge may count on either side of it.
WINDOW_EDGE = 0.001


class MailboxPacer:
    """Keeps each mailbox within a request budget per window; shared by every thread."""

    def __init__(
        self,
        budget: int,
        window: float = OUTLOOK_QUOTA_WINDOW,
        *,
        burst: int = DEFAULT_BURST,
        shares: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if budget < 1:
            raise ValueError("a pacing budget is at least one request per window")
        self.budget = budget
        self.window = window
        self.burst = max(0, min(burst, budget // 2))
        self._shares = shares or (lambda _mailbox: 1)
        self._release = getattr(shares, "release", None)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._theoretical_arrival: dict[str, float] = {}
        self._sent: dict[str, deque[float]] = {}
        self.waited_seconds = 0.0

    def limit(self, mailbox: str) -> int:
        """Requests this process may make on ``mailbox`` in any window: its share of the budget."""
        return max(1, self.budget // max(1, self._shares(mailbox)))

    def interval(self, mailbox: str) -> float:
        """Seconds between two requests on ``mailbox`` at the steady rate of its share."""
        return self.window / self.limit(mailbox)

    def wait_turn(self, mailbox: str) -> float:
        """Block until ``mailbox`` may take one more request; return the seconds waited."""
        key = mailbox.lower()
        limit = self.limit(key)
        interval = self.window / limit
        with self._lock:
            now = self._clock()
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - self.window:
                sent.popleft()
            arrival = max(self._theoretical_arrival.get(key, now), now)
            moment = max(now, arrival - self.burst * interval)
            if len(sent) >= limit:
                # The window is full (reservations included): wait for its oldest to leave.
                moment = max(moment, sent[len(sent) - limit] + self.window + WINDOW_EDGE)
            if sent:
                moment = max(moment, sent[-1])  # first come, first served
            self._theoretical_arrival[key] = max(arrival, moment) + interval
            sent.append(moment)
            wait = moment - now
            self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)
        return wait

    def hold(self, mailbox: str, seconds: float) -> None:
        """Graph said to wait (429 Retry-After): no thread of the process asks before then."""
        key = mailbox.lower()
        interval = self.interval(key)
        with self._lock:
            resume = self._clock() + seconds + self.burst * interval
            self._theoretical_arrival[key] = max(self._theoretical_arrival.get(key, 0.0), resume)

    def close(self) -> None:
        """Give the process's shares of the budget back to the other processes."""
        if self._release is not None:
            self._release()
