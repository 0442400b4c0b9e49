"""The errors a Graph or sign-in call can end in, each a decision for the caller.

GraphError
├── GraphAuthError          401: the token was refused; sign in again
├── GraphPermissionError    403: the app lacks a permission or mailbox access
├── GraphNotFoundError      404: the item or mailbox does not exist (any more)
├── DeltaTokenExpiredError  410: the delta token is gone; start a full sync
├── GraphRequestError       other 4xx: our request was wrong; retrying will not help
└── GraphUnavailableError   429, 5xx, timeouts, resets after the retry budget; try later
SignInError                 the identity platform refused us (consent, secret, refresh token)
"""

from __future__ import annotations


class GraphError(Exception):
    """A Graph call failed; ``status`` and Graph's ``code`` say how."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class GraphAuthError(GraphError):
    """Graph refused the access token."""


class GraphPermissionError(GraphError):
    """The app or user lacks the permission for this mailbox or operation."""


class GraphNotFoundError(GraphError):
    """The mailbox, folder or message does not exist."""


class DeltaTokenExpiredError(GraphError):
    """The stored delta link is no longer valid; a full resynchronisation is needed."""


class GraphRequestError(GraphError):
    """Graph rejected the request as malformed."""


class GraphUnavailableError(GraphError):
    """Graph is throttling or failing; ``retry_after`` seconds is its advice, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class SignInError(Exception):
    """The identity platform did not give a token; the message tells the user what to do."""

    def __init__(self, message: str, *, error: str | None = None, codes: list[int] | None = None):
        super().__init__(message)
        self.error = error
        self.codes = codes or []
