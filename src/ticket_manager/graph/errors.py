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

# What a person does about each error code Graph gives for a mailbox (lower-cased codes).
NEXT_STEPS = {
    "mailboxnotenabledforrestapi": (
        "the mailbox is inactive, soft-deleted or hosted on-premises, and Graph reaches only "
        "Exchange Online mailboxes: move it to Exchange Online or pick another mailbox"
    ),
    "resourcenotfound": (
        "Graph finds no Exchange Online mailbox for this user: it has no Exchange Online "
        "license, or is still on-premises; assign a license (a shared mailbox needs none) "
        "and allow an hour for the mailbox to be provisioned"
    ),
    "errorinvaliduser": (
        "Graph knows no user by this name in the path: in hybrid tenants the mailbox's UPN "
        "differs from its address; write the UPN in MAILBOX or grant User.Read.All so the "
        "address is resolved"
    ),
    "erroraccessdenied": (
        "the app (or the signed-in person) may not open this mailbox: check that Mail.ReadWrite "
        "is granted, that the mailbox is inside the application access policy or RBAC scope "
        "(changes take an hour or more), or, signed in as a person, Full Access on it"
    ),
    "errorsendasdenied": (
        "the signed-in person may open the mailbox but not send from it: grant Send As or "
        "Send on Behalf, then check with `flask check --send-test ADDRESS`"
    ),
    "errorquotaexceeded": (
        "the mailbox is full: nothing can be moved, drafted or sent until its Deleted Items "
        "are emptied or its quota raised"
    ),
}


class GraphError(Exception):
    """A Graph call failed; ``status`` and Graph's ``code`` say how.

    ``request_id`` and ``date`` are Graph's ``innerError`` fields, which Microsoft support
    asks for: they are part of the message, so every log line and stored error keeps them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        date: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.date = date

    @property
    def next_step(self) -> str | None:
        return NEXT_STEPS.get((self.code or "").lower())


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
