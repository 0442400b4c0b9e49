"""Progress of long command-line work: a bar on a terminal, plain periodic lines elsewhere.

A log file or a CI job cannot show a redrawn bar, so when the output is not a terminal the
same facts (done, total, rate, time left) are printed as a line every tenth of the work.
"""

from __future__ import annotations

import sys
import time
from typing import IO

import click

STEPS = 10


class Progress:
    """Counts finished items; ``with Progress(total, label) as progress: progress(1)``."""

    def __init__(self, total: int, label: str, file: IO[str] | None = None) -> None:
        self.total = total
        self.label = label
        self.file = file or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._next_line = max(1, total // STEPS)
        self._bar = None
        if self.file.isatty():
            self._bar = click.progressbar(
                length=total,
                label=label,
                file=self.file,
                show_pos=True,
                show_percent=True,
                show_eta=True,
                item_show_func=lambda _item: self.rate_text(),
            )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
        elif self.done and self.done % self._next_line:
            self._line()

    def __call__(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count, current_item=self.done)
        elif self.done % self._next_line == 0 or self.done == self.total:
            self._line()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def rate_text(self) -> str:
        return f"{self.rate():.1f}/s"

    def _line(self) -> None:
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else None
        eta = (
            f", about {_duration(left)} left" if left is not None and self.done < self.total else ""
        )
        percent = 100 * self.done // self.total if self.total else 100
        click.echo(
            f"{self.label.strip()}: {self.done}/{self.total} ({percent}%), "
            f"{rate:.1f} emails/s{eta}",
            file=self.file,
        )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
