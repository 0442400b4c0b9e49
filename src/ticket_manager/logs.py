"""Log set-up for the commands: one line per event, with its fields as key=value."""

from __future__ import annotations

import logging

# The fields our log calls attach with ``extra=``; anything else is not printed.
FIELDS = (
    "mailbox",
    "message_id",
    "ticket",
    "rule",
    "state",
    "error",
    "attempt",
    "status",
    "wait_s",
    "fields",
    "seen",
    "tickets",
    "rejected",
    "failed",
)


class EventFormatter(logging.Formatter):
    """``time LEVEL logger: event key=value ...`` (values never include bodies or secrets)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{k}={getattr(record, k)!s}" for k in FIELDS if hasattr(record, k)]
        return f"{line} {' '.join(pairs)}" if pairs else line


def configure_logging(level: int = logging.INFO) -> None:
    """Send ticket_manager's logs to stderr, once."""
    logger = logging.getLogger("ticket_manager")
    if any(isinstance(h.formatter, EventFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(EventFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
