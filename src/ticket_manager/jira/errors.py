"""The errors a Jira call can end in, translated in one place from the ``jira`` package's.

JiraError
├── JiraAuthError         401/403: credentials or permissions are wrong
├── JiraNotFoundError     404: the issue, project or board does not exist (any more)
├── JiraRejectedError     400: Jira refused what we sent; ``errors`` names the fields
└── JiraUnavailableError  429/5xx/timeouts after the client's retries; try later
                          (``retry_after``: Jira's advice in seconds, when it gave one)
"""

from __future__ import annotations


class JiraError(Exception):
    """A Jira call failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: dict[str, str] | None = None,
        error_messages: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or {}
        self.error_messages = error_messages or []


class JiraAuthError(JiraError):
    """Jira refused our credentials or our account lacks a permission."""


class JiraNotFoundError(JiraError):
    """The thing asked for is not in Jira, or the account cannot see it."""


class JiraRejectedError(JiraError):
    """Jira validated the request and said no; retrying the same request will not help."""


class JiraUnavailableError(JiraError):
    """Jira is throttling or down; ``retry_after`` seconds is its advice, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
