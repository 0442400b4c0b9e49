"""A thin Jira client on top of the ``jira`` package: one place for auth, versions and errors.

Jira Cloud and Jira Server/Data Center differ in API version (3 with Atlassian Document Format
against 2 with wiki markup) and in how users are named (accountId against name). The client
asks ``serverInfo`` once and exposes ``is_cloud`` so that callers pick the right content format.

Retries are decided here, not by the ``jira`` package (whose session would repeat a create
after a dropped connection): 429 and 503 were refused, so any call is repeated after
Retry-After; a timeout or a dropped connection leaves unknown whether Jira acted, so only
calls that are harmless twice are repeated. A create or a comment is not: its caller looks
for what the lost attempt may have made (issue and comment properties) before trying again.
"""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from jira import JIRA, JIRAError
from requests_toolbelt import MultipartEncoder
from urllib3.exceptions import NewConnectionError

from ticket_manager.config import Settings
from ticket_manager.counters import count_jira_requests
from ticket_manager.http import (
    USER_AGENT,
    pin_ca_bundle,
    request_timeout,
    retry_after_seconds,
    size_pool,
)
from ticket_manager.jira.errors import (
    JiraAuthError,
    JiraError,
    JiraNotFoundError,
    JiraRejectedError,
    JiraUnavailableError,
)
from ticket_manager.jira.service_desk import ServiceDeskClient

log = logging.getLogger("ticket_manager.jira")

T = TypeVar("T")

# A board key's value naming a project directly: JIRA_HELPDESK_BOARD=project:HD
PROJECT_PREFIX = "project:"
# Jira's answers that mean "not done, try again" (Atlassian: 429 with Retry-After, and 503
# "when a resource limit has been reached", which may also carry Retry-After).
REFUSED_STATUSES = frozenset({429, 503})
# A gateway's 502/504 or a 500 may come after the work was done: repeated only when harmless.
UNSURE_STATUSES = frozenset({500, 502, 504})
# A longer Retry-After is not waited out in the call: the caller schedules the retry.
MAX_RETRY_WAIT = 60.0

# What the poller reads of an updated issue: relay needs status, files and comments; the
# service's copy of the ticket (what the API serves) needs the rest.
# Jira Service Management's mark of an internal note (the only one on Server/Data Center).
INTERNAL_NOTE_PROPERTY = "sd.public.comment"
UPDATED_ISSUE_FIELDS = (
    "status",
    "attachment",
    "comment",
    "summary",
    "priority",
    "labels",
    "assignee",
    "reporter",
    "updated",
)


@dataclass(frozen=True)
class JiraUser:
    """A Jira user as the pipeline needs it: Cloud names users by accountId, Server by name."""

    account_id: str | None
    name: str | None
    email: str | None
    display_name: str


@dataclass(frozen=True)
class ScreenField:
    """A field of a project's create screen for one issue type."""

    id: str
    name: str
    required: bool
    has_default: bool


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
        properties = {p.get("key"): p.get("value") for p in raw.get("properties") or []}
        return cls(
            id=str(raw.get("id")),
            author_id=author.get("accountId") or author.get("name") or "",
            author_name=author.get("displayName") or author.get("name") or "Support",
            author_email=author.get("emailAddress"),
            body=raw.get("body") or "",
            public=not is_internal_comment(raw, properties),
            created=raw.get("created") or "",
            properties=properties,
        )


def is_internal_comment(raw: dict, properties: dict) -> bool:
    """Whether the customer must not see a comment, on any kind of Jira.

    Cloud Service Management says ``jsdPublic: false``; Server/Data Center Service Management
    says so only in the comment property ``sd.public.comment`` (``{"internal": true}``), read
    with ``expand=properties``; any Jira hides a comment restricted to a role or group.
    """
    note = properties.get(INTERNAL_NOTE_PROPERTY)
    return (
        raw.get("jsdPublic", True) is False
        or bool(raw.get("visibility"))
        or (isinstance(note, dict) and note.get("internal") is True)
    )


def says_whether_public(raw: dict) -> bool:
    """Whether a comment as Jira sent it is enough to tell (else read it with its properties).

    Cloud always sends ``jsdPublic``; a comment read with ``expand=properties`` carries them.
    """
    return "jsdPublic" in raw or "properties" in raw or bool(raw.get("visibility"))


def is_on_site(url: str | None, site_url: str) -> bool:
    """Whether ``url`` has the scheme, host and port of the Jira site ``site_url``."""
    try:
        given, site = urlsplit(url or ""), urlsplit(site_url)
        return (
            given.scheme.lower() == site.scheme.lower()
            and (given.hostname or "") == (site.hostname or "")
            and _port(given) == _port(site)
            and not given.username
        )
    except ValueError:  # a malformed port
        return False


def _port(parts) -> int | None:
    return parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())


def quote_jql(value: str) -> str:
    """A JQL string literal: user text never becomes JQL syntax."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class JiraClient:
    """Talks to one Jira site with the service account from the configuration."""

    def __init__(self, settings: Settings, *, max_retries: int = 3) -> None:
        settings.require_jira()
        self.settings = settings
        self._max_retries = max_retries
        self._board_projects: dict[str, str] = {}
        self._priorities: list[str] | None = None
        self._users: dict[str, JiraUser | None] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._me: dict | None = None
        self._service_desks: ServiceDeskClient | None = None
        self._screens: dict[tuple[str, str], dict[str, ScreenField] | None] = {}
        self._attachment_limit: tuple[int | None] | None = None
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
                max_retries=0,  # retries are decided by _call
                timeout=request_timeout(settings.http_read_timeout),
                get_server_info=False,
            ),
            "connect",
        )
        size_pool(self.jira._session)
        pin_ca_bundle(self.jira._session, settings.ca_bundle)
        count_jira_requests(self.jira._session)
        info = self._call(self.jira.server_info, "serverInfo")
        self.jira.deploymentType = info.get("deploymentType")
        self.jira._version = tuple(info.get("versionNumbers") or (0, 0, 0))
        self.is_cloud = self.jira.deploymentType == "Cloud"
        self.jira._options["rest_api_version"] = "3" if self.is_cloud else "2"

    @property
    def api_version(self) -> str:
        return self.jira._options["rest_api_version"]

    @property
    def service_desks(self) -> ServiceDeskClient:
        """Jira Service Management's API on this site (service desks, customers, requests)."""
        with self._lock:
            if self._service_desks is None:
                self._service_desks = ServiceDeskClient(self)
            return self._service_desks

    def rest(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        body: object = None,
        params: dict | None = None,
        repeatable: bool = True,
        **kwargs,
    ) -> object:
        """One call to any REST path of the site (``/rest/servicedeskapi/...``); its JSON.

        Goes through the same session, retries and error translation as every other call;
        204 and empty answers give None.
        """
        url = self.settings.atlassian_url.rstrip("/") + path
        if body is not None:
            kwargs["data"] = json.dumps(body)

        def send() -> object:
            response = self.jira._session.request(method, url, params=params, **kwargs)
            if response.status_code == 204 or not response.content:
                return None
            return response.json()

        return self._call(send, operation, repeatable=repeatable)

    def set_issue_property(self, key: str, property_key: str, value: dict) -> None:
        """Set one issue property (what a create through JSM cannot carry)."""
        self.rest(
            "PUT",
            f"/rest/api/{self.api_version}/issue/{key}/properties/{property_key}",
            "set issue property",
            body=value,
        )

    def set_comment_property(self, comment_id: str, property_key: str, value: dict) -> None:
        """Set one comment property (what a JSM request comment cannot carry)."""
        self.rest(
            "PUT",
            f"/rest/api/{self.api_version}/comment/{comment_id}/properties/{property_key}",
            "set comment property",
            body=value,
        )

    def myself(self) -> dict:
        """The service account as Jira sees it: proves the credentials work."""
        return self._call(self.jira.myself, "myself")

    def project_key_for_board(self, board_name: str) -> str:
        """The project a board files into (Agile API ``location.projectKey``), cached.

        ``project:KEY`` names the project directly, for projects without a board (JSM
        service desks, and sites without Jira Software's Agile API).
        """
        with self._key_lock(f"board:{board_name}"):
            if board_name in self._board_projects:
                return self._board_projects[board_name]
            if board_name.lower().startswith(PROJECT_PREFIX):
                wanted = board_name[len(PROJECT_PREFIX) :].strip()
                project = self._call(lambda: self.jira._get_json(f"project/{wanted}"), "project")
                self._board_projects[board_name] = project["key"]
                return project["key"]
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

    def create_screen(self, project_key: str, issue_type: str) -> dict[str, ScreenField] | None:
        """The fields of the project's create screen for ``issue_type`` (by name), cached.

        ``issue/createmeta/{project}/issuetypes[/{id}]`` on Cloud and Data Center (8.4+);
        the old ``createmeta?expand=`` form is gone from Cloud. None when the site has no
        such endpoint (older Data Center): the fields are then sent as they are.
        """
        cache_key = (project_key.upper(), issue_type.lower())
        with self._key_lock(f"screen:{cache_key}"):
            if cache_key in self._screens:
                screen = self._screens[cache_key]
                return dict(screen) if screen is not None else None
            base = f"/rest/api/{self.api_version}/issue/createmeta/{project_key}/issuetypes"
            try:
                types = self._paged(base, "issueTypes", "create metadata")
            except JiraNotFoundError:
                if not self.is_cloud and self.jira._version < (8, 4, 0):
                    self._screens[cache_key] = None
                    return None
                raise
            found = next(
                (t for t in types if (t.get("name") or "").lower() == issue_type.lower()), None
            )
            if found is None:
                raise JiraNotFoundError(
                    f"project {project_key} has no issue type {issue_type!r}", status=404
                )
            fields = self._paged(f"{base}/{found['id']}", "fields", "create metadata")
            screen = {
                f["fieldId"]: ScreenField(
                    id=f["fieldId"],
                    name=f.get("name") or f["fieldId"],
                    required=bool(f.get("required")),
                    has_default=bool(f.get("hasDefaultValue")),
                )
                for f in fields
            }
            self._screens[cache_key] = screen
            return dict(screen)

    def _paged(self, path: str, cloud_key: str, operation: str) -> list[dict]:
        """Every item of a startAt-paged list (Cloud's ``cloud_key``, Data Center's values)."""
        items: list[dict] = []
        while True:
            page = self.rest(
                "GET", path, operation, params={"startAt": len(items), "maxResults": 200}
            )
            chunk = page.get(cloud_key) if cloud_key in page else page.get("values", [])
            items.extend(chunk or [])
            if not chunk or len(items) >= int(page.get("total", len(items))):
                return items

    def attachment_limit(self) -> int | None:
        """The site's upload limit in bytes (``attachment/meta``), or None when unknown."""
        with self._key_lock("attachment-meta"):
            if self._attachment_limit is None:
                try:
                    meta = self.rest(
                        "GET", f"/rest/api/{self.api_version}/attachment/meta", "attachment meta"
                    )
                    limit = (meta or {}).get("uploadLimit")
                    self._attachment_limit = (int(limit) if limit else None,)
                except (JiraNotFoundError, JiraAuthError):
                    # No such endpoint, or not readable: JIRA_MAX_ATTACHMENT_SIZE alone decides.
                    self._attachment_limit = (None,)
            return self._attachment_limit[0]

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
            self._users[wanted] = user = _exact_user(found or [], wanted)
            return user

    def forget_user(self, email: str) -> None:
        """Drop the cached search for ``email`` (a customer was just created for it)."""
        with self._lock:
            self._users.pop(email.strip().lower(), None)

    def user_from_json(self, raw: dict) -> JiraUser:
        """A user as Jira's JSON gives it (platform or servicedeskapi)."""
        return _user(raw)

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def user_reference(self, user: JiraUser) -> dict:
        """How this deployment names a user in a field (accountId on Cloud, name on Server)."""
        return {"accountId": user.account_id} if self.is_cloud else {"name": user.name}

    def priorities(self) -> list[str]:
        """The names of the site's priorities, highest first, asked once.

        ``GET priority`` is deprecated on Cloud in favour of the paged ``priority/search``
        but still answers there, and it is the only form Server/Data Center knows.
        """
        with self._key_lock("priorities"):
            if self._priorities is None:
                found = self._call(lambda: self.jira._get_json("priority"), "priorities")
                self._priorities = [p["name"] for p in found or [] if p.get("name")]
            return list(self._priorities)

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

        return self._call(post, "create issue", repeatable=False)["key"]

    def get_issue(self, key: str, fields: list[str], expand: list[str] | None = None) -> dict:
        """The issue's JSON with only ``fields`` (Jira's ``*all``, ``-name`` forms work too)."""
        params = {"fields": ",".join(fields)}
        if expand:
            params["expand"] = ",".join(expand)
        return self._call(lambda: self.jira._get_json(f"issue/{key}", params=params), "get issue")

    def edit_issue(
        self, key: str, fields: dict, update: dict | None = None, *, notify_users: bool = True
    ) -> None:
        """Set ``fields`` and apply ``update`` operations; Jira answers 204.

        ``notify_users=False`` asks Jira not to email the watchers; Jira ignores it unless
        the account administers the project.
        """
        payload: dict = {"fields": fields}
        if update:
            payload["update"] = update
        url = self.jira._get_url(f"issue/{key}")
        params = None if notify_users else {"notifyUsers": "false"}
        self._call(
            lambda: self.jira._session.put(url, params=params, data=json.dumps(payload)),
            "edit issue",
        )

    def assign(self, key: str, user: JiraUser | None) -> None:
        """Make ``user`` the assignee, or leave the issue unassigned when ``user`` is None."""
        if self.is_cloud:
            payload = {"accountId": user.account_id if user else None}
        else:
            payload = {"name": user.name if user else None}
        url = self.jira._get_url(f"issue/{key}/assignee")
        self._call(lambda: self.jira._session.put(url, data=json.dumps(payload)), "assign")

    def transitions(self, key: str) -> list[dict]:
        """The workflow moves open to the issue now, with where each leads and what it asks.

        Each is ``{"id", "name", "to": {"id", "name", "category"}, "fields", "required_fields"}``;
        ``fields`` maps each transition-screen field to its ``name``, ``required``,
        ``has_default`` and ``allowed_values`` (names, or ids where a value has no name).
        """
        body = self._call(
            lambda: self.jira._get_json(
                f"issue/{key}/transitions", params={"expand": "transitions.fields"}
            ),
            "transitions",
        )
        return [_transition(raw) for raw in body.get("transitions", [])]

    def transition(
        self,
        key: str,
        transition_id: str,
        fields: dict | None = None,
        comment_body: dict | str | None = None,
    ) -> None:
        """Move the issue along the workflow, setting screen ``fields`` and adding a comment.

        The comment body is ADF on Cloud and wiki markup on Server, as for ``add_comment``.
        """
        payload: dict = {"transition": {"id": str(transition_id)}}
        if fields:
            payload["fields"] = fields
        if comment_body is not None:
            payload["update"] = {"comment": [{"add": {"body": comment_body}}]}
        url = self.jira._get_url(f"issue/{key}/transitions")
        self._call(
            lambda: self.jira._session.post(url, data=json.dumps(payload)),
            "transition",
            repeatable=False,
        )

    def search(
        self, jql: str, fields: list[str], *, token: str | None, max_results: int
    ) -> tuple[list[dict], str | None]:
        """One page of a JQL search: the issues and the token of the next page (None at the end).

        The token is opaque: Cloud's ``nextPageToken``, or Server's next ``startAt``.
        """
        body = self._search(jql, fields=fields, properties=[], token=token, max_results=max_results)
        next_token = body.get("nextPageToken")
        if not next_token or body.get("isLast", True):
            next_token = None
        return body.get("issues", []), next_token

    def find_issue_with_property(
        self, project_key: str, created_since: datetime, property_key: str, match: dict
    ) -> str | None:
        """The key of an issue the service account created since then whose property matches.

        Issue properties are not searchable by JQL unless an app declares them, so the
        candidates are found by creator and time and their property is compared here.
        """
        # Relative minutes: an absolute date would be read in the account's time zone, so
        # west of UTC the window would start hours late and miss the issue.
        elapsed = datetime.now(UTC) - created_since.astimezone(UTC)
        minutes = int(elapsed.total_seconds() // 60) + 2
        jql = (
            f"project = {quote_jql(project_key)} AND creator = currentUser() "
            f"AND created >= -{minutes}m ORDER BY created DESC"
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

    def _search(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str],
        token: str | None,
        max_results: int = 100,
    ):
        if self.is_cloud:
            params: dict = {
                "jql": jql,
                "fields": ",".join(fields),
                "properties": ",".join(properties),
                "maxResults": max_results,
            }
            if token:
                params["nextPageToken"] = token
            return self._call(lambda: self.jira._get_json("search/jql", params=params), "search")
        start = int(token or 0)
        params = {
            "jql": jql,
            "fields": ",".join(fields),
            "properties": ",".join(properties),
            "maxResults": max_results,
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

        return str(self._call(post, "add comment", repeatable=False)["id"])

    def comments(self, key: str) -> list[JiraComment]:
        """Every comment of an issue, oldest first, with what decides whether to relay it."""
        found: list[JiraComment] = []
        while True:
            page, total = self.comments_page(key, start_at=len(found), max_results=100)
            found.extend(page)
            if not page or len(found) >= total:
                return found

    def comments_page(
        self, key: str, start_at: int, max_results: int, order_by: str | None = None
    ) -> tuple[list[JiraComment], int]:
        """One page of an issue's comments and how many there are in all.

        ``order_by`` is Jira's ``created`` or ``-created`` (newest first); Jira caps the page
        size (100 on Cloud).
        """
        params: dict = {"startAt": start_at, "maxResults": max_results, "expand": "properties"}
        if order_by:
            params["orderBy"] = order_by
        page = self._call(
            lambda: self.jira._get_json(f"issue/{key}/comment", params=params), "comments"
        )
        comments = [JiraComment.from_jira(raw) for raw in page.get("comments", [])]
        return comments, int(page.get("total", 0))

    def comment(self, key: str, comment_id: str) -> JiraComment:
        """One comment with its properties (which say whether a DC comment is internal)."""
        raw = self._call(
            lambda: self.jira._get_json(
                f"issue/{key}/comment/{comment_id}", params={"expand": "properties"}
            ),
            "comment",
        )
        return JiraComment.from_jira(raw)

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
            body = self._search(jql, fields=list(UPDATED_ISSUE_FIELDS), properties=[], token=token)
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
        """An attachment's bytes, or None when it is larger than ``limit``.

        Only from the configured site (ATLASSIAN_URL): the session carries the service
        account's credentials, which must never reach another host.
        """
        if not is_on_site(url, self.settings.atlassian_url):
            raise JiraRejectedError("the attachment URL is not on the configured Jira site")

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

    def add_attachments(self, key: str, files: list[tuple[str, bytes, str]]) -> None:
        """Upload files (name, bytes, content type) to an issue in one multipart request.

        Jira's ``POST /issue/{key}/attachments`` takes any number of ``file`` parts, so an
        email's files cost one request instead of one each.
        """
        if not files:
            return

        def post() -> None:
            encoded = MultipartEncoder(
                fields=[("file", (name, io.BytesIO(data), kind)) for name, data, kind in files]
            )
            self.jira._session.post(
                self.jira._get_url(f"issue/{key}/attachments"),
                data=encoded,
                headers={"Content-Type": encoded.content_type, "X-Atlassian-Token": "no-check"},
            )

        self._call(post, "add attachment", repeatable=False)

    def watchers(self, key: str) -> list[JiraUser]:
        """The users watching the issue."""
        body = self._call(lambda: self.jira._get_json(f"issue/{key}/watchers"), "watchers")
        return [_user(raw) for raw in body.get("watchers", [])]

    def add_watcher(self, key: str, user: JiraUser) -> None:
        """Add a user to the issue's watchers."""
        who = user.account_id if self.is_cloud else user.name
        # The body is the bare JSON string of the accountId (Cloud) or user name (Server).
        url = self.jira._get_url(f"issue/{key}/watchers")
        self._call(lambda: self.jira._session.post(url, data=json.dumps(who)), "add watcher")

    def _call(self, function: Callable[[], T], operation: str, *, repeatable: bool = True) -> T:
        """Run one ``jira`` package call, retrying what may be retried, and translate failures.

        ``repeatable`` is False for calls that would make something twice if repeated after
        Jira acted but its answer was lost (a create, a comment, an upload, a transition).
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return function()
            except JIRAError as exc:
                error = _translate(exc, operation)
                retry = error.status in REFUSED_STATUSES or (
                    repeatable and error.status in UNSURE_STATUSES
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = JiraUnavailableError(
                    f"Jira did not answer ({operation}): {exc.__class__.__name__}"
                )
                retry = repeatable or not _may_have_arrived(exc)
            wait = _wait(error, attempt)
            if not retry or attempt > self._max_retries or wait > MAX_RETRY_WAIT:
                raise error from None
            log.warning(
                "jira call will be retried",
                extra={"attempt": attempt, "status": error.status, "wait_s": round(wait, 2)},
            )
            time.sleep(wait)


def rate_limit_wait(response: requests.Response, cap: float = 3600) -> float | None:
    """How long Jira asks us to wait, from the headers it may send.

    ``Retry-After`` first; Atlassian's newer ``Beta-Retry-After`` (Cloud's points-based
    limits) next; else ``X-RateLimit-Reset``, the moment the budget refills (an ISO time).
    """
    wait = retry_after_seconds(response, cap)
    if wait is not None:
        return wait
    beta = response.headers.get("Beta-Retry-After")
    if beta:
        try:
            return min(max(float(beta), 0.0), cap)
        except ValueError:
            pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            moment = datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return min(max((moment - datetime.now(UTC)).total_seconds(), 0.0), cap)
    return None


def _wait(error: JiraError, attempt: int) -> float:
    """Retry-After as Jira gave it; otherwise an exponential back-off with jitter."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return retry_after
    return min(2 ** (attempt - 1), 30) * random.uniform(0.5, 1.0)


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """False only when the request surely never reached Jira (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return not isinstance(reason, NewConnectionError)


def _exact_user(found: list[dict], email: str) -> JiraUser | None:
    """The one user an email search found, never a guess.

    A result showing that email address is the user. Jira Cloud hides most users' email
    (profile visibility), so a search by email may return the right user without it: that
    is accepted only when it is the single active result and shows no other address,
    since the query matched it on the hidden email. A name match is never taken.
    """
    active = [raw for raw in found if raw.get("active", True)]
    for raw in active:
        if (raw.get("emailAddress") or "").lower() == email:
            return _user(raw)
    if len(active) == 1 and not active[0].get("emailAddress") and active[0].get("accountId"):
        return _user({**active[0], "emailAddress": email})
    return None


def _user(raw: dict) -> JiraUser:
    return JiraUser(
        account_id=raw.get("accountId"),
        name=raw.get("name"),
        email=raw.get("emailAddress"),
        display_name=raw.get("displayName") or raw.get("name") or raw.get("accountId") or "",
    )


def _transition(raw: dict) -> dict:
    """A transition as the rest of the product reads it, on Cloud and Server alike."""
    target = raw.get("to") or {}
    fields = {}
    for field_id, meta in (raw.get("fields") or {}).items():
        fields[field_id] = {
            "name": meta.get("name") or field_id,
            "required": bool(meta.get("required")),
            # A required field with a default (Done's resolution) may be left out.
            "has_default": bool(meta.get("hasDefaultValue")),
            "allowed_values": [
                v.get("name") or v.get("value") or v.get("id")
                for v in meta.get("allowedValues") or []
                if isinstance(v, dict)
            ],
        }
    return {
        "id": str(raw.get("id")),
        "name": raw.get("name") or "",
        "to": {
            "id": str(target.get("id") or ""),
            "name": target.get("name") or "",
            "category": (target.get("statusCategory") or {}).get("key", ""),
        },
        "fields": fields,
        "required_fields": [f for f, meta in fields.items() if meta["required"]],
    }


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
            if body.get("errorMessage"):  # Jira Service Management's own error body
                messages = [body["errorMessage"]]
        except ValueError:
            pass
    detail = "; ".join([*messages, *(f"{k}: {v}" for k, v in errors.items())]) or exc.text
    message = f"Jira answered {status} to {operation}: {(detail or '').strip()}"
    if status == 401:
        message += " (check ATLASSIAN_USER and ATLASSIAN_API_TOKEN)"
    kwargs = {"status": status, "errors": errors, "error_messages": messages}
    if status in REFUSED_STATUSES or (status is not None and status >= 500):
        retry_after = rate_limit_wait(response) if response is not None else None
        return JiraUnavailableError(message, retry_after=retry_after, **kwargs)
    if status in (401, 403):
        return JiraAuthError(message, **kwargs)
    if status == 404:
        return JiraNotFoundError(message, **kwargs)
    if status is not None and 400 <= status < 500 and status != 429:
        return JiraRejectedError(message, **kwargs)
    return JiraUnavailableError(message, **kwargs)
