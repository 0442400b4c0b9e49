"""MSAL's token cache kept in the database, encrypted, so that every worker can sign in.

A delegated sign-in (``authorization`` or ``device`` flow) is made once by a person with
`flask o365 authenticate`; the refresh token it leaves must then reach every worker process
and host. It is stored in the ``token_caches`` table, encrypted with a key derived from
``SECRET_KEY``, and read back before each token request.

Rotating ``SECRET_KEY``: the old value moves to ``SECRET_KEY_FALLBACKS``; a sign-in still
encrypted under it is read with it and written back at once under the new key, after which
the old value can be dropped. The configuration refuses a weak ``SECRET_KEY``, so the fast
HKDF derivation has a key worth deriving from.
"""

from __future__ import annotations

import base64

import msal
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ticket_manager.config import Secret
from ticket_manager.extensions import db
from ticket_manager.graph.errors import SignInError
from ticket_manager.models import TokenCache


def _fernet(secret_key: Secret) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"ticket-manager token cache"
    ).derive(secret_key.reveal().encode())
    return Fernet(base64.urlsafe_b64encode(key))


class DatabaseTokenStore:
    """Loads and saves one MSAL cache (one app registration and tenant) in the database."""

    def __init__(self, secret_key: Secret, name: str, fallbacks: tuple[Secret, ...] = ()) -> None:
        self._fernet = _fernet(secret_key)
        self._any_key = MultiFernet([self._fernet, *(_fernet(old) for old in fallbacks)])
        self.name = name

    def load_into(self, cache: msal.SerializableTokenCache) -> bool:
        """Fill ``cache`` from the database; False when nothing was stored yet."""
        row = db.session.get(TokenCache, self.name)
        db.session.rollback()
        if row is None:
            return False
        try:
            plain = self._any_key.decrypt(row.data.encode())
        except InvalidToken:
            raise SignInError(
                "the stored sign-in cannot be decrypted with this SECRET_KEY "
                "(was it changed?): run `flask o365 authenticate` to sign in again"
            ) from None
        if not self._is_under_current_key(row.data):
            row.data = self._fernet.encrypt(plain).decode()  # rotated to the new SECRET_KEY
            db.session.commit()
        cache.deserialize(plain.decode())
        return True

    def _is_under_current_key(self, data: str) -> bool:
        try:
            self._fernet.decrypt(data.encode())
        except InvalidToken:
            return False
        return True

    def save(self, cache: msal.SerializableTokenCache) -> None:
        """Write ``cache`` back if MSAL changed it (a new or refreshed token)."""
        if not cache.has_state_changed:
            return
        data = self._fernet.encrypt(cache.serialize().encode()).decode()
        row = db.session.get(TokenCache, self.name)
        if row is None:
            db.session.add(TokenCache(name=self.name, data=data))
        else:
            row.data = data
        db.session.commit()
        cache.has_state_changed = False

    def clear(self) -> None:
        """Forget the stored sign-in."""
        row = db.session.get(TokenCache, self.name)
        if row is not None:
            db.session.delete(row)
        db.session.commit()
