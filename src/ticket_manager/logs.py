"""Log set-up: one line per event with its fields, as text or JSON lines, secrets masked.

Log calls name the event in the message and attach its fields with ``extra=`` (mailbox,
message id, ticket key, error...). :func:`configure_logging` sends every log line of the
process to stderr through one handler, in ``LOG_FORMAT`` at ``LOG_LEVEL``. The formatters
print only the fields listed in :data:`FIELDS`, never a body, and mask whatever still looks
like a credential: the configured secrets, bearer tokens, API keys, JWTs, Authorization
headers and passwords in URLs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ticket_manager.config import Secret

if TYPE_CHECKING:
    from ticket_manager.config import Settings

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
    "key_id",
    "error_codes",
    "address",
    "port",
    "worker",
)

REDACTED = "[redacted]"
# Shorter configured secrets are masked only where they stand alone (not inside a word):
# masking every "abc" inside other words would garble the log, but none goes unmasked.
MIN_SECRET_LENGTH = 8
# What a credential looks like, whatever the log call: (pattern, replacement).
CREDENTIAL_PATTERNS = (
    # An Authorization header's value, in a header dump or a repr of one.
    (
        re.compile(
            r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic|negotiate)\s+)?"
            r"[^\s,;'\"}]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{REDACTED}"),
    # An API key keeps its public id (tm_<id>_), which says which key without being one.
    (re.compile(r"\b(tm_[a-f0-9]{8,32}_)[A-Za-z0-9_-]{20,128}"), rf"\1{REDACTED}"),
    # A JWT: base64url JSON header and payload ("eyJ" is '{"'), then the signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # user:password@ in a URL (database URLs).
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\1{REDACTED}@"),
    # OAuth and form parameters that carry a credential.
    (
        re.compile(
            r"(?i)\b((?:client_secret|client_assertion|access_token|refresh_token|id_token"
            r"|password|code)=)[^&\s'\"]+"
        ),
        rf"\1{REDACTED}",
    ),
)


class Redactor:
    """Masks credentials in a string: the configured secrets literally, then by their look."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is masked whole.
        self.secrets = tuple(sorted(unique, key=len, reverse=True))
        short = sorted({s for s in secrets if s and len(s) < MIN_SECRET_LENGTH}, key=len)
        self.short_secrets = tuple(
            re.compile(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])") for s in reversed(short)
        )

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern in self.short_secrets:
            text = pattern.sub(REDACTED, text)
        for pattern, replacement in CREDENTIAL_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in ``settings``: its Secret fields and the database password."""
    values = []
    for item in dataclass_fields(settings):
        value = getattr(settings, item.name)
        for secret in value if isinstance(value, tuple) else (value,):
            if isinstance(secret, Secret):
                values.append(secret.reveal())
    for uri in (settings.database_uri, settings.api_rate_limit_storage_uri):
        try:
            password = urlsplit(uri).password
        except ValueError:
            password = None
        if password:
            values.append(password)
    return values


def event_fields(record: logging.LogRecord) -> dict:
    """The fields of :data:`FIELDS` the log call attached, in that order."""
    return {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}


def iso_time(record: logging.LogRecord) -> str:
    """The record's time in ISO 8601, UTC, to the millisecond."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventFormatter(logging.Formatter):
    """``time LEVEL logger: event key=value ...``, credentials masked."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line = f"{iso_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        pairs = [f"{name}={_text_value(value)}" for name, value in event_fields(record).items()]
        if pairs:
            line = f"{line} {' '.join(pairs)}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return self.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, the fields, the exception."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "time": iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name, value in event_fields(record).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(self._masked(entry), ensure_ascii=False, default=str)

    def _masked(self, value):
        """Mask strings before encoding, so that JSON escaping cannot hide a secret."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._masked(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._masked(item) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.redact(str(value))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a redirected or captured stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        """The stream is always the current ``sys.stderr``."""


def build_formatter(log_format: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT`` (``text`` or ``json``), masking ``secrets``."""
    redactor = Redactor(secrets)
    return JsonFormatter(redactor) if log_format == "json" else EventFormatter(redactor)


def configure_logging(settings: Settings | None = None) -> None:
    """Send the process's logs to stderr through one handler, as ``settings`` say.

    Called by every app start (``create_app``) and by the worker commands; calling it again
    replaces the format and level rather than adding a handler. Without ``settings`` it only
    makes sure that a handler exists (text, INFO). ``LOG_LEVEL`` applies to Ticket Manager's
    own loggers, which keep the handler to themselves (a library that reconfigures the root
    logger, as Alembic's migrations do, cannot take it away); other libraries' warnings and
    errors reach it through the root logger.
    """
    ours = logging.getLogger("ticket_manager")
    root = logging.getLogger()
    handler = next(
        (h for h in [*ours.handlers, *root.handlers] if isinstance(h, StderrHandler)), None
    )
    if handler is not None and settings is None:
        return
    if handler is None:
        handler = StderrHandler()
    for logger in (ours, root):
        if handler not in logger.handlers:
            logger.addHandler(handler)
    ours.propagate = False
    if settings is None:
        handler.setFormatter(build_formatter("text"))
        ours.setLevel(logging.INFO)
        return
    handler.setFormatter(build_formatter(settings.log_format, secrets_of(settings)))
    ours.setLevel(settings.log_level)


def _text_value(value) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text
