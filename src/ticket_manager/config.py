"""Read and check Ticket Manager's configuration from the environment and `.env`.

The keys are the users' interface (the original product's README named them); they are read
once, at start-up, into an immutable :class:`Settings`. A missing or malformed key raises
:class:`ConfigError`, which the command line prints as one line naming the key and what is
expected. Secrets are wrapped in :class:`Secret` so that they never show in a log or a repr.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import click
from dotenv import dotenv_values, find_dotenv
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

AUTH_FLOWS = ("authorization", "credentials", "device")
LOG_FORMATS = ("text", "json")
# EMAIL_SENDER_AUTHENTICATION: reject DMARC failures under a reject/quarantine policy and hold
# other doubts; hold every doubt; or trust From as it is.
SENDER_CHECKS = ("reject", "hold", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DEFAULTS: dict[str, str] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite:///ticket_manager.db",
    "APPLICATION_CONTEXT": "/api/tickets/v3",
    "OPENAPI": "3.0.3",
    "O365_AUTH_FLOW": "authorization",
    "O365_AUTHORITY_HOST": "https://login.microsoftonline.com",
    "O365_GRAPH_URL": "https://graph.microsoft.com/v1.0",
    "O365_SCOPES": "offline_access,message_all,message_all_shared",
    "JIRA_TICKET_TYPE": "Task",
    "JIRA_REQUEST_TYPE": "Emailed request",
    "O365_REDIRECT_URI": "https://login.microsoftonline.com/common/oauth2/nativeclient",
    "O365_POLL_INTERVAL": "2",
    "O365_REQUEST_BUDGET": "9500",
    "O365_MARK_AS_READ": "true",
    "EMAIL_MAX_PER_SENDER_PER_DAY": "50",
    "EMAIL_MAX_PER_DOMAIN_PER_HOUR": "100",
    "EMAIL_MAX_PER_MAILBOX_PER_HOUR": "300",
    "EMAIL_MAX_WATCHERS": "20",
    "EMAIL_SENDER_AUTHENTICATION": "reject",
    "JIRA_MAX_ATTACHMENT_SIZE": "10MB",
    "JIRA_RECOVERY_DELAY": "30",
    "HTTP_READ_TIMEOUT": "60",
    "PROCESSING_CONCURRENCY": "16",
    "PROCESSING_ATTACHMENT_MEMORY": "32MB",
    "PROCESSING_MAX_ATTEMPTS": "8",
    "EMAIL_ACKNOWLEDGE": "true",
    "EMAIL_ACKNOWLEDGE_ALL": "false",
    "EMAIL_BODY_FORMAT": "html",
    "EMAIL_NOTIFY_STATUS": "false",
    "EMAIL_MAX_ATTACHMENT_SIZE": "20MB",
    "JIRA_POLL_INTERVAL": "60",
    "O365_SENT_ITEMS_AS_COMMENTS": "false",
    "API_RATE_LIMIT": "600 per minute",
    "API_RATE_LIMIT_STORAGE_URI": "memory://",
    "API_UNAUTHENTICATED_RATE_LIMIT": "120 per minute",
    "O365_NOTIFICATION_MAX_ENTRIES": "1000",
    "O365_NOTIFICATION_MAX_SIZE": "1MB",
    "API_MAX_REQUEST_SIZE": "25MB",
    "API_PAGE_SIZE_MAX": "100",
    "API_FIELDS_PAGE_SIZE_MAX": "10",
    "METRICS_ADDRESS": "127.0.0.1",
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "INFO",
}

KNOWN_KEYS = frozenset(
    {
        *DEFAULTS,
        "TICKET_CLIENT_APP",
        "MAILBOX",
        "O365_TENANT_ID",
        "O365_CLIENT_ID",
        "O365_CLIENT_SECRET",
        "ATLASSIAN_URL",
        "ATLASSIAN_USER",
        "ATLASSIAN_API_TOKEN",
        "JIRA_TICKET_LABELS",
        "JIRA_TICKET_LABEL_CATEGORIES",
        "JIRA_TICKET_LABEL_DEFAULT_CATEGORY",
        "JIRA_BOARDS",
        "JIRA_DEFAULT_BOARD",
        "EMAIL_WHITELISTED_DOMAINS",
        "EMAIL_BLACKLIST",
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "MAILBOX_BOARDS",
        "O365_NOTIFICATION_URL",
        "O365_PROCESSED_FOLDER",
        "EMAIL_TEMPLATES_DIR",
        "JIRA_WEBHOOK_SECRET",
        "API_ENTRA_AUDIENCE",
        "API_ENTRA_TENANT_ID",
        "METRICS_PORT",
        "JIRA_CUSTOM_FIELDS",
        "ROUTING_RULES",
        "O365_CLIENT_SECRET_EXPIRES",
        "O365_CLIENT_CERTIFICATE",
        "TRUSTED_PROXIES",
    }
)

# Keys with these prefixes belong to us: a near miss of a known key is a typo worth stopping for.
OWN_PREFIXES = ("O365_", "ATLASSIAN_", "JIRA_", "EMAIL_", "TICKET_", "MAILBOX", "API_", "METRICS_")

# The original product took the O365 library's scope aliases; they map to Graph permissions.
SCOPE_ALIASES: dict[str, tuple[str, ...]] = {
    "basic": ("User.Read",),
    "mailbox": ("Mail.Read",),
    "mailbox_shared": ("Mail.Read.Shared",),
    "mailbox_settings": ("MailboxSettings.ReadWrite",),
    "message_send": ("Mail.Send",),
    "message_send_shared": ("Mail.Send.Shared",),
    "message_all": ("Mail.ReadWrite", "Mail.Send"),
    "message_all_shared": ("Mail.ReadWrite.Shared", "Mail.Send.Shared"),
    "users": ("User.ReadBasic.All",),
}
# MSAL asks for these by itself and refuses them in a scope list.
RESERVED_SCOPES = frozenset({"offline_access", "openid", "profile"})

_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_LABEL = re.compile(r"^\S+$")
_PROJECT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")
_SCOPE = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class ConfigError(click.ClickException):
    """A configuration key is missing or malformed; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"configuration key {key}: {problem}")


class Secret:
    """A secret value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class Board:
    """A Jira board the service files tickets on: the key that names it and its board name."""

    setting: str
    name: str


@dataclass(frozen=True)
class Settings:
    """Every configuration value, checked and typed."""

    database_uri: str
    application_context: str
    openapi_version: str
    ticket_client_app: str | None
    mailboxes: tuple[str, ...]
    tenant_id: str | None
    client_id: str | None
    client_secret: Secret
    # When the client secret expires (O365_CLIENT_SECRET_EXPIRES), for warnings days ahead.
    client_secret_expires: date | None
    # A PEM file with the private key and certificate, to sign in without a secret.
    client_certificate: str | None
    scopes: tuple[str, ...]
    auth_flow: str
    authority_host: str
    graph_url: str
    atlassian_url: str | None
    atlassian_user: str | None
    atlassian_api_token: Secret
    ticket_type: str
    ticket_labels: tuple[str, ...]
    label_categories: tuple[str, ...]
    default_category: str | None
    boards: tuple[Board, ...]
    default_board: Board | None
    whitelisted_domains: tuple[str, ...]
    blacklist: frozenset[str]
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    secret_key_fallbacks: tuple[Secret, ...] = ()
    redirect_uri: str = DEFAULTS["O365_REDIRECT_URI"]
    poll_interval: int = 2
    graph_request_budget: int = 9500
    notification_url: str | None = None
    processed_folder: str | None = None
    mark_as_read: bool = True
    mailbox_boards: Mapping[str, Board] = field(default_factory=dict)
    max_per_sender_per_day: int = 50
    max_per_domain_per_hour: int = 100
    max_per_mailbox_per_hour: int = 300
    max_watchers: int = 20
    sender_authentication: str = "reject"
    max_attachment_size: int = 10 * 1024 * 1024
    recovery_delay: int = 30
    http_read_timeout: int = 60
    processing_concurrency: int = 16
    processing_attachment_memory: int = 32 * 1024 * 1024
    max_attempts: int = 8
    request_type: str = DEFAULTS["JIRA_REQUEST_TYPE"]
    # Values for a create screen's required custom fields, by field id or name.
    custom_fields: Mapping[str, object] = field(default_factory=dict)
    # ROUTING_RULES, read and checked at start (a RoutingRules), or None without a file.
    routing_rules: object | None = None
    acknowledge: bool = True
    acknowledge_all: bool = False
    email_body_format: str = "html"
    notify_status: bool = False
    email_max_attachment_size: int = 20 * 1024 * 1024
    templates_dir: str | None = None
    jira_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    jira_poll_interval: int = 60
    sent_items_as_comments: bool = False
    api_rate_limit: str | None = "600 per minute"
    api_rate_limit_storage_uri: str = "memory://"
    api_unauthenticated_rate_limit: str | None = "120 per minute"
    trusted_proxies: tuple = ()
    notification_max_entries: int = 1000
    notification_max_size: int = 1024 * 1024
    api_max_request_size: int = 25 * 1024 * 1024
    api_page_size_max: int = 100
    api_fields_page_size_max: int = 10
    api_entra_audience: str | None = None
    api_entra_tenant_id: str | None = None
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    log_format: str = "text"
    log_level: str = "INFO"
    ca_bundle: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def graph_resource(self) -> str:
        """The resource (scheme and host) that Graph scopes are issued for."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def graph_scopes(self) -> list[str]:
        """Scopes to ask the identity platform for, in the form MSAL expects."""
        if self.auth_flow == "credentials":
            return [f"{self.graph_resource}/.default"]
        return [f"{self.graph_resource}/{scope}" for scope in self.scopes]

    def board_for(self, mailbox: str) -> Board | None:
        """The board a mailbox files into: its MAILBOX_BOARDS entry, else the default."""
        return self.mailbox_boards.get(mailbox.lower(), self.default_board)

    def board(self, setting: str) -> Board:
        for board in self.boards:
            if board.setting == setting:
                return board
        raise KeyError(setting)

    def require(self, *keys: str) -> None:
        """Fail with a ConfigError for the first of ``keys`` that has no value."""
        for key in keys:
            if not (self.raw.get(key) or "").strip():
                raise ConfigError(key, "is required for this command but is not set")

    def require_microsoft(self) -> None:
        """The keys every mailbox operation needs."""
        self.require("MAILBOX", "O365_TENANT_ID", "O365_CLIENT_ID")
        if self.auth_flow == "credentials":
            if not self.client_certificate:
                self.require("O365_CLIENT_SECRET")
        else:
            # A delegated sign-in is stored (encrypted) for every worker to read.
            self.require("SECRET_KEY")

    def require_jira(self) -> None:
        """The keys every Jira operation needs."""
        self.require("ATLASSIAN_URL", "ATLASSIAN_USER", "ATLASSIAN_API_TOKEN", "JIRA_BOARDS")
        unmapped = [m for m in self.mailboxes if m.lower() not in self.mailbox_boards]
        if self.default_board is None and unmapped:
            raise ConfigError(
                "JIRA_DEFAULT_BOARD",
                f"is required: several boards are listed and {unmapped[0]} has no "
                "MAILBOX_BOARDS entry",
            )


class Environment(dict):
    """The configuration's keys and values, and which of them a `.env` file set (and where)."""

    dotenv_path: Path | None = None
    from_dotenv: frozenset[str] = frozenset()

    def source(self, key: str) -> str:
        """Where ``key`` was set, in words for an error message."""
        if self.dotenv_path is not None and key in self.from_dotenv:
            return f"in {self.dotenv_path}"
        return "in the environment"

    def base_directory(self, key: str) -> Path:
        """The directory a relative path in ``key`` is relative to: its `.env`'s, or the cwd."""
        if self.dotenv_path is not None and key in self.from_dotenv:
            return self.dotenv_path.parent
        return Path.cwd()


def read_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """Merge `.env` (found from the working directory upwards) under the process environment."""
    if environ is not None:
        return Environment(environ)
    dotenv_path = find_dotenv(".env", usecwd=True)
    values = Environment((k, v) for k, v in dotenv_values(dotenv_path).items() if v is not None)
    if dotenv_path:
        values.dotenv_path = Path(dotenv_path).resolve()
        # `flask` may have loaded the file into the environment already; it never overrides.
        values.from_dotenv = frozenset(k for k, v in values.items() if os.environ.get(k, v) == v)
    values.update(os.environ)
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build checked :class:`Settings` from ``environ`` (default: environment plus `.env`)."""
    env = read_environment(environ)

    def get(key: str) -> str:
        value = env.get(key)
        if value is None or not value.strip():
            return DEFAULTS.get(key, "")
        return value.strip()

    _reject_misspelt_keys(env)
    boards = _boards(env, get)
    auth_flow = _choice(get, "O365_AUTH_FLOW", AUTH_FLOWS)
    categories = _list(get("JIRA_TICKET_LABEL_CATEGORIES"))
    for category in categories:
        _check_label("JIRA_TICKET_LABEL_CATEGORIES", category)
    default_category = get("JIRA_TICKET_LABEL_DEFAULT_CATEGORY") or None
    if default_category and categories and default_category not in categories:
        raise ConfigError(
            "JIRA_TICKET_LABEL_DEFAULT_CATEGORY",
            f"must be one of JIRA_TICKET_LABEL_CATEGORIES ({', '.join(categories)}), "
            f"got {default_category!r}",
        )
    labels = _list(get("JIRA_TICKET_LABELS"))
    for label in labels:
        _check_label("JIRA_TICKET_LABELS", label)

    settings = Settings(
        database_uri=_database_uri(
            get("SQLALCHEMY_DATABASE_URI"), env.base_directory("SQLALCHEMY_DATABASE_URI")
        ),
        application_context=_application_context(get("APPLICATION_CONTEXT")),
        openapi_version=_openapi_version(get("OPENAPI")),
        ticket_client_app=_url(get, "TICKET_CLIENT_APP", required=False),
        mailboxes=tuple(_email(m, "MAILBOX") for m in _list(get("MAILBOX"))),
        tenant_id=_tenant(get("O365_TENANT_ID")),
        client_id=get("O365_CLIENT_ID") or None,
        client_secret=Secret(get("O365_CLIENT_SECRET")),
        client_certificate=_certificate_file(get("O365_CLIENT_CERTIFICATE")),
        client_secret_expires=_date(
            get("O365_CLIENT_SECRET_EXPIRES"), "O365_CLIENT_SECRET_EXPIRES"
        ),
        scopes=_scopes(get("O365_SCOPES")),
        auth_flow=auth_flow,
        authority_host=_url(get, "O365_AUTHORITY_HOST", https=True).rstrip("/"),
        graph_url=_url(get, "O365_GRAPH_URL", https=True).rstrip("/"),
        atlassian_url=(_url(get, "ATLASSIAN_URL", required=False) or "").rstrip("/") or None,
        atlassian_user=get("ATLASSIAN_USER") or None,
        atlassian_api_token=Secret(get("ATLASSIAN_API_TOKEN")),
        ticket_type=get("JIRA_TICKET_TYPE"),
        request_type=get("JIRA_REQUEST_TYPE"),
        custom_fields=_custom_fields(get("JIRA_CUSTOM_FIELDS")),
        routing_rules=_routing_rules(get("ROUTING_RULES"), boards[0]),
        ticket_labels=tuple(labels),
        label_categories=tuple(categories),
        default_category=default_category,
        boards=boards[0],
        default_board=boards[1],
        whitelisted_domains=tuple(
            _domain(d, "EMAIL_WHITELISTED_DOMAINS") for d in _list(get("EMAIL_WHITELISTED_DOMAINS"))
        ),
        blacklist=frozenset(
            _email(a, "EMAIL_BLACKLIST").lower() for a in _list(get("EMAIL_BLACKLIST"))
        ),
        secret_key=_secret_key(get("SECRET_KEY")),
        secret_key_fallbacks=tuple(Secret(v) for v in _list(get("SECRET_KEY_FALLBACKS"))),
        redirect_uri=_url(get, "O365_REDIRECT_URI"),
        poll_interval=_integer(get, "O365_POLL_INTERVAL", minimum=1, maximum=3600),
        graph_request_budget=_integer(get, "O365_REQUEST_BUDGET", minimum=0, maximum=1_000_000),
        notification_url=_url(get, "O365_NOTIFICATION_URL", required=False, https=True) or None,
        processed_folder=get("O365_PROCESSED_FOLDER") or None,
        mark_as_read=_boolean(get, "O365_MARK_AS_READ"),
        mailbox_boards=_mailbox_boards(get, boards[0]),
        max_per_sender_per_day=_integer(get, "EMAIL_MAX_PER_SENDER_PER_DAY", minimum=0),
        max_per_domain_per_hour=_integer(get, "EMAIL_MAX_PER_DOMAIN_PER_HOUR", minimum=0),
        max_per_mailbox_per_hour=_integer(get, "EMAIL_MAX_PER_MAILBOX_PER_HOUR", minimum=0),
        max_watchers=_integer(get, "EMAIL_MAX_WATCHERS", minimum=0, maximum=1000),
        sender_authentication=_choice(get, "EMAIL_SENDER_AUTHENTICATION", SENDER_CHECKS),
        max_attachment_size=_size(get, "JIRA_MAX_ATTACHMENT_SIZE"),
        recovery_delay=_integer(get, "JIRA_RECOVERY_DELAY", minimum=0, maximum=3600),
        http_read_timeout=_integer(get, "HTTP_READ_TIMEOUT", minimum=1, maximum=600),
        processing_concurrency=_integer(get, "PROCESSING_CONCURRENCY", minimum=1, maximum=64),
        processing_attachment_memory=_size(get, "PROCESSING_ATTACHMENT_MEMORY"),
        max_attempts=_integer(get, "PROCESSING_MAX_ATTEMPTS", minimum=1, maximum=100),
        acknowledge=_boolean(get, "EMAIL_ACKNOWLEDGE"),
        acknowledge_all=_boolean(get, "EMAIL_ACKNOWLEDGE_ALL"),
        email_body_format=_choice(get, "EMAIL_BODY_FORMAT", ("html", "text")),
        notify_status=_boolean(get, "EMAIL_NOTIFY_STATUS"),
        email_max_attachment_size=_size(get, "EMAIL_MAX_ATTACHMENT_SIZE"),
        templates_dir=_directory(get, "EMAIL_TEMPLATES_DIR"),
        jira_webhook_secret=Secret(get("JIRA_WEBHOOK_SECRET")),
        jira_poll_interval=_integer(get, "JIRA_POLL_INTERVAL", minimum=0, maximum=86400),
        sent_items_as_comments=_boolean(get, "O365_SENT_ITEMS_AS_COMMENTS"),
        api_rate_limit=_rate_limit(get("API_RATE_LIMIT")),
        api_unauthenticated_rate_limit=_rate_limit(
            get("API_UNAUTHENTICATED_RATE_LIMIT"), "API_UNAUTHENTICATED_RATE_LIMIT"
        ),
        trusted_proxies=_networks(get("TRUSTED_PROXIES"), "TRUSTED_PROXIES"),
        notification_max_entries=_integer(
            get, "O365_NOTIFICATION_MAX_ENTRIES", minimum=1, maximum=100_000
        ),
        notification_max_size=_size(get, "O365_NOTIFICATION_MAX_SIZE"),
        api_rate_limit_storage_uri=_storage_uri(get("API_RATE_LIMIT_STORAGE_URI")),
        api_max_request_size=_size(get, "API_MAX_REQUEST_SIZE"),
        api_page_size_max=_integer(get, "API_PAGE_SIZE_MAX", minimum=1, maximum=1000),
        api_fields_page_size_max=_integer(get, "API_FIELDS_PAGE_SIZE_MAX", minimum=1, maximum=1000),
        api_entra_audience=_entra_audience(get("API_ENTRA_AUDIENCE")),
        api_entra_tenant_id=_entra_tenant(get),
        metrics_port=_port(get, "METRICS_PORT"),
        metrics_address=_listen_address(get("METRICS_ADDRESS")),
        log_format=_choice(get, "LOG_FORMAT", LOG_FORMATS),
        log_level=_log_level(get("LOG_LEVEL")),
        ca_bundle=_ca_bundle(env),
        raw=env,
    )
    if (
        settings.auth_flow == "credentials"
        and settings.client_id
        and not (settings.client_secret or settings.client_certificate)
    ):
        raise ConfigError(
            "O365_CLIENT_SECRET",
            "is required when O365_AUTH_FLOW=credentials (app-only sign-in), unless "
            "O365_CLIENT_CERTIFICATE is set",
        )
    return settings


# -- one checker per kind of value ----------------------------------------------------------


def _integer(get, key: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = get(key)
    upper = f" and {maximum}" if maximum is not None else ""
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(key, f"expected a whole number, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        raise ConfigError(key, f"expected a number between {minimum}{upper}, got {number}")
    return number


def _port(get, key: str) -> int | None:
    """A TCP port to listen on, or None when the key is unset (the feature is off)."""
    if not get(key):
        return None
    return _integer(get, key, minimum=1, maximum=65535)


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*$")


def _listen_address(value: str) -> str:
    """METRICS_ADDRESS: an IP address (``0.0.0.0`` or ``::`` for every interface) or host name."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOST_NAME.match(value):
        raise ConfigError(
            "METRICS_ADDRESS",
            f"expected an IP address to listen on, like 127.0.0.1 or 0.0.0.0, got {value!r}",
        )
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def _rate_limit(value: str, key: str = "API_RATE_LIMIT") -> str | None:
    """A rate in the notation of the ``limits`` package, or None for ``off``."""
    if value.lower() in ("off", "none", "0"):
        return None
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            key, f"expected a rate like '600 per minute' or 'off', got {value!r}"
        ) from None
    return value


# SECRET_KEY must be long and varied enough that a copy of the database cannot be decrypted
# by guessing it: at least this many characters and this many bits by their frequencies.
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_BITS = 96
HOW_TO_GENERATE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _secret_key(value: str) -> Secret:
    """SECRET_KEY, refused when short or repetitive (it encrypts the stored sign-in)."""
    if not value:
        return Secret("")
    counts = Counter(value)
    bits = -sum(n * math.log2(n / len(value)) for n in counts.values())
    if len(value) < SECRET_KEY_MIN_LENGTH or bits < SECRET_KEY_MIN_BITS:
        raise ConfigError(
            "SECRET_KEY",
            f"is too weak ({len(value)} characters, about {int(bits)} bits; at least "
            f"{SECRET_KEY_MIN_LENGTH} random characters are needed): generate one with "
            f"{HOW_TO_GENERATE_A_KEY}",
        )
    return Secret(value)


def _networks(value: str, key: str) -> tuple:
    """A list of IP addresses or networks (CIDR), e.g. the reverse proxies to trust."""
    networks = []
    for item in _list(value):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                key, f"expected IP addresses or networks like 10.0.0.0/8, got {item!r}"
            ) from None
    return tuple(networks)


def _storage_uri(value: str) -> str:
    scheme = value.partition("://")[0].lower()
    if scheme not in ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster", "valkey"):
        raise ConfigError(
            "API_RATE_LIMIT_STORAGE_URI",
            f"expected memory:// or a redis:// address, got {_without_password(value)!r}",
        )
    return value


def _without_password(uri: str) -> str:
    """``uri`` with everything secret in its user part masked, for an error message."""
    head, at, host = uri.rpartition("@")
    if not at:
        return uri
    scheme, sep, userinfo = head.rpartition("://")
    user = userinfo.partition(":")[0] if ":" in userinfo else ""
    return f"{scheme}{sep}{user + ':' if user else ''}********@{host}"


def _directory(get, key: str) -> str | None:
    value = get(key)
    if not value:
        return None
    if not Path(value).is_dir():
        raise ConfigError(key, f"names a folder that does not exist: {value}")
    return value


def _routing_rules(path: str, boards: tuple[Board, ...]):
    """ROUTING_RULES: the rules file, refused at start with the rule and the problem."""
    if not path:
        return None
    from ticket_manager.routing import RoutingError, load_rules

    try:
        return load_rules(path, board_keys=tuple(b.setting for b in boards))
    except RoutingError as exc:
        raise ConfigError("ROUTING_RULES", str(exc)) from None


def _custom_fields(value: str) -> dict[str, object]:
    """JIRA_CUSTOM_FIELDS: a JSON object of field id or name -> the value Jira takes."""
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ConfigError(
            "JIRA_CUSTOM_FIELDS",
            f'expected a JSON object like {{"customfield_10050": "n/a"}}: {exc}',
        ) from None
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and k for k in parsed):
        raise ConfigError(
            "JIRA_CUSTOM_FIELDS", "expected a JSON object whose keys are field ids or names"
        )
    return parsed


def _boolean(get, key: str) -> bool:
    value = get(key).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, f"expected true or false, got {get(key)!r}")


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def _size(get, key: str) -> int:
    match = _SIZE.match(get(key))
    if not match:
        raise ConfigError(key, f"expected a size like 10MB, 512KB or 1048576, got {get(key)!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def _mailbox_boards(get, boards: tuple[Board, ...]) -> dict[str, Board]:
    """MAILBOX_BOARDS: ``mailbox:JIRA_X_BOARD`` pairs, each mailbox one of MAILBOX."""
    mailboxes = {m.lower() for m in _list(get("MAILBOX"))}
    by_setting = {b.setting: b for b in boards}
    mapping: dict[str, Board] = {}
    for item in _list(get("MAILBOX_BOARDS")):
        mailbox, _, setting = item.partition(":")
        mailbox, setting = mailbox.strip().lower(), setting.strip()
        if not setting or mailbox not in mailboxes:
            raise ConfigError(
                "MAILBOX_BOARDS",
                f"expected mailbox:BOARD_KEY pairs for mailboxes listed in MAILBOX, got {item!r}",
            )
        if setting not in by_setting:
            raise ConfigError(
                "MAILBOX_BOARDS", f"{setting} is not one of the keys listed in JIRA_BOARDS"
            )
        mapping[mailbox] = by_setting[setting]
    return mapping


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _choice(get, key: str, choices: tuple[str, ...]) -> str:
    value = get(key).lower()
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}, got {get(key)!r}")
    return value


def _email(value: str, key: str) -> str:
    if not _EMAIL.match(value):
        raise ConfigError(key, f"expected an email address like name@example.com, got {value!r}")
    return value


def _domain(value: str, key: str) -> str:
    domain = value.lower().lstrip("@")
    if not _DOMAIN.match(domain):
        raise ConfigError(key, f"expected domain names like example.com, got {value!r}")
    return domain


def _check_label(key: str, label: str) -> None:
    if not _LABEL.match(label):
        raise ConfigError(key, f"Jira labels cannot contain spaces, got {label!r}")


def _url(get, key: str, *, required: bool = True, https: bool = False) -> str:
    value = get(key)
    if not value:
        if required:
            raise ConfigError(key, "expected a URL, got nothing")
        return ""
    parts = urlsplit(value)
    allowed = ("https",) if https else ("http", "https")
    if parts.scheme not in allowed or not parts.netloc:
        expected = "an https:// URL" if https else "an http:// or https:// URL"
        raise ConfigError(key, f"expected {expected}, got {value!r}")
    return value


def _certificate_file(value: str) -> str | None:
    """A PEM file holding a private key and its certificate (O365_CLIENT_CERTIFICATE)."""
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError("O365_CLIENT_CERTIFICATE", f"names a file that does not exist: {value}")
    text = path.read_text(errors="replace")
    if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(
            "O365_CLIENT_CERTIFICATE",
            "must be a PEM file with the private key and the certificate (unencrypted)",
        )
    return str(path.resolve())


def _date(value: str, key: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(key, f"expected a date such as 2027-03-31, got {value!r}") from None


def _tenant(value: str) -> str | None:
    if not value:
        return None
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.-]*$", value):
        raise ConfigError(
            "O365_TENANT_ID",
            f"expected a tenant id (a GUID) or a domain like contoso.onmicrosoft.com, "
            f"got {value!r}",
        )
    return value


def _entra_audience(value: str) -> str | None:
    """API_ENTRA_AUDIENCE: the API's application (client) id, which v2.0 tokens carry as aud."""
    if not value:
        return None
    if "://" in value or value.startswith("api:"):
        raise ConfigError(
            "API_ENTRA_AUDIENCE",
            f"expected the API's Application (client) ID, a GUID, got {value!r}: v2.0 access "
            "tokens carry the client id as their audience, never the Application ID URI",
        )
    if not _GUID.match(value):
        raise ConfigError(
            "API_ENTRA_AUDIENCE",
            f"expected the API's Application (client) ID, a GUID, got {value!r}",
        )
    return value.lower()


def _entra_tenant(get) -> str | None:
    """API_ENTRA_TENANT_ID (default O365_TENANT_ID): the one tenant whose tokens are accepted."""
    if not get("API_ENTRA_AUDIENCE"):
        return None
    explicit = get("API_ENTRA_TENANT_ID")
    value = explicit or get("O365_TENANT_ID")
    if not value:
        raise ConfigError(
            "API_ENTRA_TENANT_ID", "is required when API_ENTRA_AUDIENCE is set (or O365_TENANT_ID)"
        )
    shown = repr(value) if explicit else f"{value!r} (from O365_TENANT_ID)"
    if value.lower() in ("common", "organizations", "consumers"):
        raise ConfigError(
            "API_ENTRA_TENANT_ID",
            f"must name one tenant (its GUID or a domain like contoso.onmicrosoft.com), "
            f"got {shown}",
        )
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.-]*$", value):
        raise ConfigError(
            "API_ENTRA_TENANT_ID",
            f"expected a tenant id (a GUID) or a domain like contoso.onmicrosoft.com, got {shown}",
        )
    return value


def _scopes(value: str) -> tuple[str, ...]:
    scopes: list[str] = []
    for item in _list(value):
        if item in RESERVED_SCOPES:
            continue
        expanded = SCOPE_ALIASES.get(item.lower(), (item,))
        for scope in expanded:
            if not _SCOPE.match(scope):
                raise ConfigError(
                    "O365_SCOPES",
                    f"expected Graph permissions (Mail.ReadWrite) or aliases "
                    f"({', '.join(sorted(SCOPE_ALIASES))}), got {item!r}",
                )
            if scope not in scopes:
                scopes.append(scope)
    return tuple(scopes)


def _database_uri(value: str, base: Path | None = None) -> str:
    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigError(
            "SQLALCHEMY_DATABASE_URI",
            f"expected a database URL such as sqlite:///ticket_manager.db or "
            f"postgresql+psycopg://user@host/db, got {value!r}",
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the PostgreSQL driver we ship; plain postgresql:// would ask for psycopg2.
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        # A relative file is beside the .env that names it (else where the user works), so
        # a command run from a subdirectory uses the same database.
        path = Path(url.database).expanduser()
        if not path.is_absolute():
            where = (base or Path.cwd()) / path
            return url.set(database=str(where)).render_as_string(hide_password=False)
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            "SQLALCHEMY_DATABASE_URI",
            f"supported databases are SQLite and PostgreSQL, got {url.get_backend_name()!r}",
        )
    return value


def _application_context(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in " ?#"):
        raise ConfigError(
            "APPLICATION_CONTEXT", f"expected a URL path like /api/tickets/v3, got {value!r}"
        )
    return value.rstrip("/") or "/"


def _openapi_version(value: str) -> str:
    if not re.match(r"^3\.\d+\.\d+$", value):
        raise ConfigError("OPENAPI", f"expected an OpenAPI 3 version like 3.0.3, got {value!r}")
    return value


def _boards(env: Mapping[str, str], get) -> tuple[tuple[Board, ...], Board | None]:
    """JIRA_BOARDS and JIRA_DEFAULT_BOARD hold names of other keys, each holding a board name."""
    names = _list(get("JIRA_BOARDS"))
    boards: list[Board] = []
    for name in names:
        if not _SETTING_NAME.match(name):
            raise ConfigError(
                "JIRA_BOARDS",
                f"expected names of other keys (like JIRA_SUPPORT_BOARD), got {name!r}",
            )
        board_name = (env.get(name) or "").strip()
        if not board_name:
            raise ConfigError(
                name,
                "is listed in JIRA_BOARDS but has no value: set it to a Jira board name "
                "or to project:KEY",
            )
        if board_name.lower().startswith("project:") and not _PROJECT_KEY.match(
            board_name[len("project:") :].strip()
        ):
            raise ConfigError(
                name, f"expected project:KEY with a Jira project key, got {board_name!r}"
            )
        boards.append(Board(setting=name, name=board_name))
    default_name = get("JIRA_DEFAULT_BOARD")
    if not default_name:
        return tuple(boards), boards[0] if len(boards) == 1 else None
    for board in boards:
        if board.setting == default_name:
            return tuple(boards), board
    listed = ", ".join(names) or "nothing"
    raise ConfigError(
        "JIRA_DEFAULT_BOARD",
        f"must name one of the keys listed in JIRA_BOARDS ({listed}), got {default_name!r}",
    )


def _ca_bundle(env: Mapping[str, str]) -> str | None:
    """The CA file for outgoing HTTPS: REQUESTS_CA_BUNDLE, else SSL_CERT_FILE, else the default."""
    for key in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = (env.get(key) or "").strip()
        if value:
            if not Path(value).is_file():
                raise ConfigError(key, f"names a CA file that does not exist: {value}")
            return value
    return None


def _reject_misspelt_keys(env: Mapping[str, str]) -> None:
    """Stop at a key that is a near miss of a known one, wherever it was set.

    Keys with our prefixes (and SQLAlchemy's) are compared with every known key; any other key
    only when it is very close to one (MAILBXO for MAILBOX), so the rest of the environment
    (PATH, HOME, ...) is left alone.
    """
    referenced = set(_list(env.get("JIRA_BOARDS", ""))) | {env.get("JIRA_DEFAULT_BOARD", "")}
    for key in env:
        if key in KNOWN_KEYS or key in referenced:
            continue
        if key.startswith("JIRA_") and key.endswith("_BOARD"):
            continue  # a board key that JIRA_BOARDS does not list (yet): harmless
        ours = key.startswith((*OWN_PREFIXES, "SQLALCHEMY_"))
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.85)
        if close and (ours or len(key) >= 6):
            where = env.source(key) if isinstance(env, Environment) else "in the configuration"
            raise ConfigError(
                key, f"is not a Ticket Manager key (set {where}); did you mean {close[0]}?"
            )
