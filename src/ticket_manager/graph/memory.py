"""A process-wide budget for attachment bytes held in memory, so that peaks do not add up.

An email's files are downloaded from Graph and held until they are uploaded to Jira. The
worker processes several emails at once (``PROCESSING_CONCURRENCY``): without a bound shared
by the process, four emails with a 25 MB file each hold four such files at once. Each thread
that downloads files first reserves their declared size; the reservation lasts until the
thread's email is done (:meth:`AttachmentMemory.holding`), and a reservation that does not fit
waits for others to finish.

- A file larger than the whole budget is still processed: it takes the whole budget, alone.
- A thread that already holds bytes is never made to wait for more (two threads each holding
  part and waiting for the other's part would wait forever); it may go over the budget.
- Outside :meth:`holding` (the API, a command), nothing is reserved.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class AttachmentMemory:
    """Bytes of attachments the process may hold at once, shared by its threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._condition = threading.Condition()
        self._held = threading.local()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Scope of one email's processing: everything reserved inside is released after."""
        outer = getattr(self._held, "bytes", None)
        if outer is not None:  # nested: the outer scope releases
            yield
            return
        self._held.bytes = 0
        try:
            yield
        finally:
            held, self._held.bytes = self._held.bytes, None
            if held:
                with self._condition:
                    self.in_use -= held
                    self._condition.notify_all()

    def reserve(self, size: int) -> None:
        """Wait until ``size`` bytes fit in the budget, then count them as this thread's."""
        held = getattr(self._held, "bytes", None)
        if held is None or size <= 0:
            return
        size = min(size, self.limit) if self.limit else size
        with self._condition:
            if held == 0 and self.limit:
                self._condition.wait_for(lambda: self.in_use + size <= self.limit)
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
        self._held.bytes = held + size
