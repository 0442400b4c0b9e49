"""A thin Jira client on top of the ``jira`` package: one place for auth, versions and errors.

Jira Cloud and Jira Server/Data Center differ in API version (3 with Atlassian Document Format
against 2 with wiki markup) and in how users are named (accountId against name). The client
asks ``serverInfo`` once and exposes ``is_cloud`` so that callers pick the right content format.
The ``jira`` package already retries 429 and 503 with the server's Retry-After.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import requests
from jira import JIRA, JIRAError

from ticket_manager.config import Settings
from ticket_manager.http import DEFAULT_TIMEOUT, USER_AGENT, pin_ca_bundle, size_pool
from ticket_manager.jira.errors import (
    JiraAuthError,
    JiraError,
    JiraNotFoundError,
    JiraRejectedError,
    JiraUnavailableError,
)

log = logging.getLogger("ticket_manager.jira")

T = TypeVar("T")


@dataclass(frozen=True)
class JiraUser:
    """A Jira user as the pipeline needs it: Cloud names users by accountId, Server by name."""

    account_id: str | None
    name: str | None
    email: str | None
    display_name: str


@dataclass(frozen=True)
class JiraComment:
    """A comment as the relay needs it: who, what, and whether the customer may see it."""

    id: str
    author_id: str
    author_name: str
    author_email: str | None
    body: dict | str
    public: bool
    created: str
    properties: dict

    @classmethod
    def from_jira(cls, raw: dict) -> JiraComment:
        author = raw.get("author") or {}
        # Jira Service Management marks internal notes jsdPublic false; a visibility
        # restriction (role or group) hides a comment from the customer on any Jira.
        public = raw.get("jsdPublic", True) is not False and not raw.get("visibility")
        properties = {p.get("key"): p.get("value") for p in raw.get("properties") or []}
        return cls(
            id=str(raw.get("id")),
            author_id=author.get("accountId") or author.get("name") or "",
            author_name=author.get("displayName") or author.get("name") or "Support",
            author_email=author.get("emailAddress"),
            body=raw.get("body") or "",
            public=public,
            created=raw.get("created") or "",
            properties=properties,
        )


def quote_jql(value: str) -> str:
    """A JQL string literal: user text never becomes JQL syntax."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class JiraClient:
    """Talks to one Jira site with the service account from the configuration."""

    def __init__(self, settings: Settings, *, max_retries: int = 3) -> None:
        settings.require_jira()
        self.settings = settings
        self._board_projects: dict[str, str] = {}
        self._users: dict[str, JiraUser | None] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._me: dict | None = None
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
        size_pool(self.jira._session)
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
        with self._key_lock(f"board:{board_name}"):
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
                    f"no Jira board is named {board_name!r}, or it belongs to no project",
                    status=404,
                )
            self._board_projects[board_name] = project_key
            return project_key

    # -- users -----------------------------------------------------------------------------

    def find_user(self, email: str) -> JiraUser | None:
        """The active Jira user whose email address is exactly ``email``, cached per address."""
        wanted = email.strip().lower()
        with self._key_lock(f"user:{wanted}"):  # one search per address, however many threads
            if wanted in self._users:
                return self._users[wanted]
            param = "query" if self.is_cloud else "username"
            found = self._call(
                lambda: self.jira._get_json(
                    "user/search", params={param: wanted, "maxResults": 20}
                ),
                "user search",
            )
            user = None
            for raw in found or []:
                if (raw.get("emailAddress") or "").lower() == wanted and raw.get("active", True):
                    user = JiraUser(
                        account_id=raw.get("accountId"),
                        name=raw.get("name"),
                        email=raw.get("emailAddress"),
                        display_name=raw.get("displayName") or wanted,
                    )
                    break
            self._users[wanted] = user
            return user

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def user_reference(self, user: JiraUser) -> dict:
        """How this deployment names a user in a field (accountId on Cloud, name on Server)."""
        return {"accountId": user.account_id} if self.is_cloud else {"name": user.name}

    # -- issues ----------------------------------------------------------------------------

    def create_issue(self, fields: dict, properties: dict[str, dict]) -> str:
        """Create an issue with issue properties set in the same call; returns its key."""
        payload = {
            "fields": fields,
            "properties": [{"key": k, "value": v} for k, v in properties.items()],
        }

        def post() -> dict:
            response = self.jira._session.post(
                self.jira._get_url("issue"), data=json.dumps(payload)
            )
            return response.json()

        return self._call(post, "create issue")["key"]

    def find_issue_with_property(
        self, project_key: str, created_since: datetime, property_key: str, match: dict
    ) -> str | None:
        """The key of an issue the service account created since then whose property matches.

        Issue properties are not searchable by JQL unless an app declares them, so the
        candidates are found by creator and time and their property is compared here.
        """
        since = created_since.astimezone(UTC) - timedelta(minutes=1)
        jql = (
            f"project = {quote_jql(project_key)} AND creator = currentUser() "
            f'AND created >= "{since.strftime("%Y-%m-%d %H:%M")}" ORDER BY created DESC'
        )
        token: str | None = None
        for _ in range(20):  # bounded: a recovery window holds few issues
            body = self._search(jql, fields=["summary"], properties=[property_key], token=token)
            for issue in body.get("issues", []):
                value = (issue.get("properties") or {}).get(property_key) or {}
                if all(value.get(k) == v for k, v in match.items()):
                    return issue["key"]
            token = body.get("nextPageToken")
            if not token or body.get("isLast", True):
                break
        return None

    def _search(self, jql: str, *, fields: list[str], properties: list[str], token: str | None):
        if self.is_cloud:
            params: dict = {
                "jql": jql,
                "fields": ",".join(fields),
                "properties": ",".join(properties),
                "maxResults": 100,
            }
            if token:
                params["nextPageToken"] = token
            return self._call(lambda: self.jira._get_json("search/jql", params=params), "search")
        start = int(token or 0)
        params = {
            "jql": jql,
            "fields": ",".join(fields),
            "properties": ",".join(properties),
            "maxResults": 100,
            "startAt": start,
        }
        body = self._call(lambda: self.jira._get_json("search", params=params), "search")
        end = start + len(body.get("issues", []))
        body["isLast"] = end >= body.get("total", 0)
        body["nextPageToken"] = None if body["isLast"] else str(end)
        return body

    # -- comments and conversation -----------------------------------------------------------

    def add_comment(self, key: str, body: dict | str, properties: dict[str, dict]) -> str:
        """Add a comment (ADF on Cloud, wiki on Server) with comment properties; returns its id."""
        payload = {
            "body": body,
            "properties": [{"key": k, "value": v} for k, v in properties.items()],
        }
        url = self.jira._get_url(f"issue/{key}/comment")

        def post() -> dict:
            return self.jira._session.post(url, data=json.dumps(payload)).json()

        return str(self._call(post, "add comment")["id"])

    def comments(self, key: str) -> list[JiraComment]:
        """Every comment of an issue, oldest first, with what decides whether to relay it."""
        found: list[JiraComment] = []
        start = 0
        while True:
            params = {"startAt": start, "maxResults": 100, "expand": "properties"}
            page = self._call(
                lambda params=params: self.jira._get_json(f"issue/{key}/comment", params=params),
                "comments",
            )
            for raw in page.get("comments", []):
                found.append(JiraComment.from_jira(raw))
            start += len(page.get("comments", []))
            if not page.get("comments") or start >= page.get("total", 0):
                return found

    def find_comment_with_property(self, key: str, property_key: str, match: dict) -> str | None:
        """The id of a comment whose property matches (an interrupted earlier attempt's)."""
        for comment in self.comments(key):
            value = comment.properties.get(property_key) or {}
            if all(value.get(k) == v for k, v in match.items()):
                return comment.id
        return None

    def updated_issues(self, keys: list[str], minutes: int) -> list[dict]:
        """Issues among ``keys`` updated in the last ``minutes``, with status, files, comments.

        A relative date (``-90m``) avoids the time zone question of absolute JQL dates,
        which Jira reads in the service account's profile time zone.
        """
        if not keys:
            return []
        jql = (
            f"key in ({', '.join(quote_jql(k) for k in keys)}) "
            f"AND updated >= -{max(int(minutes), 1)}m ORDER BY updated ASC"
        )
        issues: list[dict] = []
        token: str | None = None
        while True:
            body = self._search(
                jql, fields=["status", "attachment", "comment"], properties=[], token=token
            )
            issues.extend(body.get("issues", []))
            token = body.get("nextPageToken")
            if not token or body.get("isLast", True):
                return issues

    def service_account_id(self) -> str:
        """The service account's accountId (Cloud) or name (Server): its comments are ours."""
        with self._lock:
            if self._me is None:
                self._me = self.myself()
            return self._me.get("accountId") or self._me.get("name") or ""

    def issue_status(self, key: str) -> tuple[str, str]:
        """The issue's status name and status category key (``done`` when resolved)."""
        issue = self._call(
            lambda: self.jira._get_json(f"issue/{key}", params={"fields": "status"}), "status"
        )
        status = issue.get("fields", {}).get("status") or {}
        return status.get("name", ""), (status.get("statusCategory") or {}).get("key", "")

    def download(self, url: str, limit: int) -> bytes | None:
        """An attachment's bytes, or None when it is larger than ``limit``."""

        def get() -> bytes | None:
            response = self.jira._session.get(url, stream=True)
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data.extend(chunk)
                if len(data) > limit:
                    response.close()
                    return None
            return bytes(data)

        return self._call(get, "download attachment")

    def attachments_present(self, key: str) -> set[tuple[str, int]]:
        """(file name, size) of every file attached to an issue, so a retry uploads the rest."""
        issue = self._call(
            lambda: self.jira._get_json(f"issue/{key}", params={"fields": "attachment"}),
            "get attachments",
        )
        return {
            (a.get("filename"), int(a.get("size") or 0))
            for a in issue.get("fields", {}).get("attachment") or []
        }

    def add_attachment(self, key: str, filename: str, content: bytes) -> None:
        """Upload one file to an issue."""
        self._call(
            lambda: self.jira.add_attachment(
                key, attachment=io.BytesIO(content), filename=filename
            ),
            "add attachment",
        )

    def add_watcher(self, key: str, user: JiraUser) -> None:
        """Add a user to the issue's watchers."""
        who = user.account_id if self.is_cloud else user.name
        # The body is the bare JSON string of the accountId (Cloud) or user name (Server).
        url = self.jira._get_url(f"issue/{key}/watchers")
        self._call(lambda: self.jira._session.post(url, data=json.dumps(who)), "add watcher")

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
