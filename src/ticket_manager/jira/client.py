"""A thin Jira client on top of the ``jira`` package: one place for auth, versions and errors.

Jira Cloud and Jira Server/Data Center differ in API version (3 with Atlassian Document Format
against 2 with wiki markup) and in how users are named (accountId against name). The client
asks ``serverInfo`` once and exposes ``is_cloud`` so that callers pick the right content format.
The ``jira`` package already retries 429 and 503 with the server's Retry-After.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import requests
from jira import JIRA, JIRAError

from ticket_manager.config import Settings
from ticket_manager.http import DEFAULT_TIMEOUT, USER_AGENT, pin_ca_bundle
from ticket_manager.jira.errors import (
    JiraAuthError,
    JiraError,
    JiraNotFoundError,
    JiraRejectedError,
    JiraUnavailableError,
)

log = logging.getLogger("ticket_manager.jira")

T = TypeVar("T")


class JiraClient:
    """Talks to one Jira site with the service account from the configuration."""

    def __init__(self, settings: Settings, *, max_retries: int = 3) -> None:
        settings.require_jira()
        self.settings = settings
        self._board_projects: dict[str, str] = {}
        self._lock = threading.Lock()
        options = {
            "headers": {"User-Agent": USER_AGENT},
            "verify": settings.ca_bundle or True,
            # serverInfo exists in v2 on every deployment; the version is chosen below.
            "rest_api_version": "2",
        }
        self.jira = self._call(
            lambda: JIRA(
                server=settings.atlassian_url,
                basic_auth=(settings.atlassian_user, settings.atlassian_api_token.reveal()),
                options=options,
                max_retries=max_retries,
                timeout=DEFAULT_TIMEOUT[1],
                get_server_info=False,
            ),
            "connect",
        )
        pin_ca_bundle(self.jira._session, settings.ca_bundle)
        info = self._call(self.jira.server_info, "serverInfo")
        self.jira.deploymentType = info.get("deploymentType")
        self.jira._version = tuple(info.get("versionNumbers") or (0, 0, 0))
        self.is_cloud = self.jira.deploymentType == "Cloud"
        self.jira._options["rest_api_version"] = "3" if self.is_cloud else "2"

    @property
    def api_version(self) -> str:
        return self.jira._options["rest_api_version"]

    def myself(self) -> dict:
        """The service account as Jira sees it: proves the credentials work."""
        return self._call(self.jira.myself, "myself")

    def project_key_for_board(self, board_name: str) -> str:
        """The project a board files into (Agile API ``location.projectKey``), cached."""
        with self._lock:
            if board_name in self._board_projects:
                return self._board_projects[board_name]
        boards = self._call(lambda: self.jira.boards(name=board_name, maxResults=50), "boards")
        # The name filter also matches parts of names: only an exact name will do.
        exact = [b for b in boards if b.name == board_name] or [
            b for b in boards if b.name.lower() == board_name.lower()
        ]
        location = getattr(exact[0], "location", None) if exact else None
        project_key = getattr(location, "projectKey", None)
        if not project_key:
            raise JiraNotFoundError(
                f"no Jira board is named {board_name!r}, or it belongs to no project", status=404
            )
        with self._lock:
            self._board_projects[board_name] = project_key
        return project_key

    def _call(self, function: Callable[[], T], operation: str) -> T:
        """Run one ``jira`` package call and translate its failures."""
        try:
            return function()
        except JIRAError as exc:
            raise _translate(exc, operation) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise JiraUnavailableError(
                f"Jira did not answer ({operation}): {exc.__class__.__name__}"
            ) from None


def _translate(exc: JIRAError, operation: str) -> JiraError:
    status = exc.status_code
    errors: dict[str, str] = {}
    messages: list[str] = []
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
            errors = body.get("errors") or {}
            messages = body.get("errorMessages") or []
        except ValueError:
            pass
    detail = "; ".join([*messages, *(f"{k}: {v}" for k, v in errors.items())]) or exc.text
    message = f"Jira answered {status} to {operation}: {(detail or '').strip()}"
    if status == 401:
        message += " (check ATLASSIAN_USER and ATLASSIAN_API_TOKEN)"
    kwargs = {"status": status, "errors": errors, "error_messages": messages}
    if status in (401, 403):
        return JiraAuthError(message, **kwargs)
    if status == 404:
        return JiraNotFoundError(message, **kwargs)
    if status is not None and 400 <= status < 500 and status != 429:
        return JiraRejectedError(message, **kwargs)
    return JiraUnavailableError(message, **kwargs)
