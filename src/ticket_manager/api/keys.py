"""API keys: made and revoked on the command line, checked on every API request.

A key is ``tm_<id>_<secret>``. Only the id and a SHA-256 digest of the whole key are stored:
the secret has 256 random bits, so a slow password hash would add nothing but latency, and
the id turns the check into one primary-key read plus a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ticket_manager.clock import as_utc, now
from ticket_manager.extensions import db
from ticket_manager.models import ApiKey

SCOPES = (
    "tickets:read",
    "tickets:write",
    "tickets:all",
    "tickets:internal",
    "tickets:notify",
    "messages:read",
    "messages:content",
    "messages:write",
    "metrics:read",
    "admin",
)
ADMIN = "admin"
# last_used_at is written at most this often per key, so that reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_KEY = re.compile(r"^tm_([a-f0-9]{8,32})_([A-Za-z0-9_-]{20,128})$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, its scopes, and the person it is bound to."""

    key_id: str
    name: str
    scopes: frozenset[str]
    user_email: str | None

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes


class KeyRefused(Exception):
    """The presented key is unknown, malformed, revoked or expired (the message says which)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(
    name: str, scopes: list[str], user_email: str | None = None, expires_in_days: int | None = None
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its token, which is never stored or shown again."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: choose from {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"at least one scope is needed: {', '.join(SCOPES)}")
    key_id = secrets.token_hex(4)
    while db.session.get(ApiKey, key_id) is not None:
        key_id = secrets.token_hex(4)
    token = f"tm_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        name=name,
        digest=_digest(token),
        scopes=" ".join(s for s in SCOPES if s in scopes),
        user_email=user_email.lower() if user_email else None,
        expires_at=now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    db.session.add(row)
    db.session.commit()
    return row, token


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(key_id: str) -> ApiKey | None:
    """Revoke a key by its id (or its full token); returns it, or None when there is none."""
    match = _KEY.match(key_id)
    row = db.session.get(ApiKey, match.group(1) if match else key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now()
        db.session.commit()
    return row


def authenticate(token: str, at: datetime | None = None) -> Principal:
    """The principal a bearer token stands for, or :class:`KeyRefused`."""
    match = _KEY.match(token)
    if not match:
        raise KeyRefused("the token is not a Ticket Manager API key")
    row = db.session.get(ApiKey, match.group(1))
    if row is None or not hmac.compare_digest(row.digest, _digest(token)):
        raise KeyRefused("the API key is not known")
    moment = at or now()
    if row.revoked_at is not None:
        raise KeyRefused("the API key was revoked")
    if row.expires_at is not None and as_utc(row.expires_at) <= moment:
        raise KeyRefused("the API key has expired")
    if row.last_used_at is None or as_utc(row.last_used_at) < moment - LAST_USED_RESOLUTION:
        db.session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=moment))
        db.session.commit()
    return Principal(
        key_id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        user_email=row.user_email,
    )
