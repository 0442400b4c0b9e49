"""MSAL's token cache kept in the database, encrypted, so that every worker can sign in.

A delegated sign-in (``authorization`` or ``device`` flow) is made once by a person with
`flask o365 authenticate`; the refresh token it leaves must then reach every worker process
and host. It is stored in the ``token_caches`` table, encrypted with a key derived from
``SECRET_KEY``, and read back before each token request.
"""

from __future__ import annotations

import base64

import msal
from cryptography.fernet import Fernet, InvalidToken
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

    def __init__(self, secret_key: Secret, name: str) -> None:
        self._fernet = _fernet(secret_key)
        self.name = name

    def load_into(self, cache: msal.SerializableTokenCache) -> bool:
        """Fill ``cache`` from the database; False when nothing was stored yet."""
        row = db.session.get(TokenCache, self.name)
        db.session.rollback()
        if row is None:
            return False
        try:
            cache.deserialize(self._fernet.decrypt(row.data.encode()).decode())
        except InvalidToken:
            raise SignInError(
                "the stored sign-in cannot be decrypted with this SECRET_KEY "
                "(was it changed?): run `flask o365 authenticate` to sign in again"
            ) from None
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
