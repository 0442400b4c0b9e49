"""Prometheus metrics: what this process counted, and what the database says at scrape time.

Two kinds, so that numbers agree whichever process is asked:

- **Instruments** (counters, histograms) that the code updates as things happen: calls to
  Graph and Jira, retries, processing outcomes, tickets, relayed comments, API requests.
  They live in this module's own :data:`REGISTRY`, not prometheus_client's global one, and
  count what *this* process did. Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, every
  worker process writes its counts there and a scrape adds them up.
- :class:`DatabaseCollector` reads the ledger, the mailboxes, the outbox and the stored
  sign-in when scraped, so the web app and the mail worker report the same backlog.

The web app serves both on ``GET /metrics`` (bearer token with ``metrics:read``, see
:func:`init_app`); the worker serves its own on ``METRICS_PORT`` (:func:`serve_worker_metrics`).
See docs/metrics.md.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime

import msal
import requests
from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager.clock import as_utc, now
from ticket_manager.config import ConfigError, Settings
from ticket_manager.extensions import db
from ticket_manager.http import observe_requests
from ticket_manager.models import (
    LedgerMessage,
    Mailbox,
    MessageState,
    OutboundMessage,
    OutboundState,
)

log = logging.getLogger("ticket_manager.metrics")

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
SCOPE = "metrics:read"
EXTENSION = "ticket_manager.metrics"
# Methods counted by name; anything else a client invents is "other" (bounded label values).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# prometheus_client opens its files there as soon as an instrument exists: check it first.
if os.environ.get(MULTIPROCESS_DIRECTORY) and not os.path.isdir(os.environ[MULTIPROCESS_DIRECTORY]):
    raise ConfigError(
        MULTIPROCESS_DIRECTORY,
        f"names a folder that does not exist: {os.environ[MULTIPROCESS_DIRECTORY]}",
    )

REGISTRY = CollectorRegistry(auto_describe=True)

GRAPH_REQUESTS = Counter(
    "ticket_manager_graph_requests",
    "HTTP requests to Microsoft Graph, by method and status code (error: no answer).",
    ["method", "status"],
    registry=REGISTRY,
)
JIRA_REQUESTS = Counter(
    "ticket_manager_jira_requests",
    "HTTP requests to Jira, by method and status code (error: no answer).",
    ["method", "status"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "ticket_manager_retries",
    "Calls retried after throttling or an outage, by service (graph, jira).",
    ["service"],
    registry=REGISTRY,
)
MESSAGES_PROCESSED = Counter(
    "ticket_manager_messages_processed",
    "Emails processed, by outcome (ticket_created, commented, rejected, failed, deferred) and "
    "by the rule that rejected them.",
    ["outcome", "rule"],
    registry=REGISTRY,
)
TICKETS_CREATED = Counter(
    "ticket_manager_tickets_created",
    "Jira tickets created, by source (email, api).",
    ["source"],
    registry=REGISTRY,
)
COMMENTS_RELAYED = Counter(
    "ticket_manager_comments_relayed",
    "Jira comments sent to the requester by email.",
    registry=REGISTRY,
)
EMAIL_TO_TICKET = Histogram(
    "ticket_manager_email_to_ticket_seconds",
    "From an email's arrival in the mailbox (receivedDateTime) to its ticket's creation.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "ticket_manager_api_requests",
    "Requests the web app answered, by endpoint name, method and status code.",
    ["endpoint", "method", "status"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "ticket_manager_api_request_duration_seconds",
    "Time the web app took to answer a request, by endpoint name and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)

# Series that should read 0 rather than be missing before the first event.
for _service in ("graph", "jira"):
    RETRIES.labels(_service)
for _source in ("email", "api"):
    TICKETS_CREATED.labels(_source)


# -- recording ---------------------------------------------------------------------------------


def count_graph_requests(session: requests.Session) -> None:
    """Count every request ``session`` makes to Graph (once per session)."""
    _count_requests(session, GRAPH_REQUESTS, on_answer=None)


def count_jira_requests(session: requests.Session) -> None:
    """Count every request ``session`` makes to Jira, and the answers the jira package retries."""
    _count_requests(session, JIRA_REQUESTS, on_answer=_count_jira_retry)


def _count_requests(session, counter: Counter, on_answer) -> None:
    if getattr(session, "_ticket_manager_counted", False):
        return
    session._ticket_manager_counted = True

    def answered(response: requests.Response) -> None:
        counter.labels(_method(response.request.method), str(response.status_code)).inc()
        if on_answer is not None:
            on_answer(response)

    def failed(prepared: requests.PreparedRequest) -> None:
        counter.labels(_method(prepared.method), "error").inc()

    observe_requests(session, answered, failed)


def _count_jira_retry(response: requests.Response) -> None:
    # The jira package retries 429 always, and 503 when Retry-After says how long to wait.
    status = response.status_code
    if status == 429 or (status == 503 and "Retry-After" in response.headers):
        RETRIES.labels("jira").inc()


def count_graph_retry() -> None:
    RETRIES.labels("graph").inc()


def count_processed(outcome: str, rule: str | None = None) -> None:
    MESSAGES_PROCESSED.labels(outcome, rule or "").inc()


def count_ticket_created(source: str, received_at: datetime | None = None) -> None:
    """A new ticket; for an email, also how long after its arrival."""
    TICKETS_CREATED.labels(source).inc()
    received = as_utc(received_at)
    if received is not None:
        EMAIL_TO_TICKET.observe(max((now() - received).total_seconds(), 0.0))


def count_comment_relayed() -> None:
    COMMENTS_RELAYED.inc()


def _method(method: str | None) -> str:
    method = (method or "").upper()
    return method if method in HTTP_METHODS else "other"


# -- reading the database at scrape time ---------------------------------------------------


class DatabaseCollector:
    """Gauges read from the database when scraped: the same in every process."""

    def __init__(self, app: Flask, tokens=None) -> None:
        self.app = app
        # The worker's TokenProvider: app-only tokens live only in its memory.
        self.tokens = tokens

    def describe(self) -> list[Metric]:
        return []  # generated per scrape; nothing to register up front

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ticket_manager_database_up", "1 when the database answered this scrape, else 0."
        )
        try:
            families = self._read_all()
        except SQLAlchemyError as exc:
            log.warning("metrics: database not readable", extra={"error": _first_line(exc)})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read_all(self) -> list[Metric]:
        from ticket_manager.extensions import get_settings

        with self.app.app_context():
            try:
                return self._read(get_settings(self.app))
            finally:
                db.session.remove()

    def _read(self, settings: Settings) -> list[Metric]:
        families = [
            self._messages(),
            self._backlog(settings),
            *self._mailboxes(),
            self._outbound(),
        ]
        expiry = self._token_expiry(settings)
        if expiry is not None:
            gauge = GaugeMetricFamily(
                "ticket_manager_token_expiry_timestamp_seconds",
                "When the cached Microsoft Graph access token expires (Unix time).",
            )
            gauge.add_metric([], expiry)
            families.append(gauge)
        return families

    @staticmethod
    def _messages() -> Metric:
        gauge = GaugeMetricFamily(
            "ticket_manager_messages",
            "Emails in the ledger, by state and by the rule that rejected them.",
            labels=["state", "rule"],
        )
        counts = {(state.value, ""): 0 for state in MessageState}
        rows = db.session.execute(
            select(LedgerMessage.state, LedgerMessage.rule, func.count()).group_by(
                LedgerMessage.state, LedgerMessage.rule
            )
        )
        for state, rule, count in rows:
            counts[(MessageState(state).value, rule or "")] = count
        for (state, rule), count in sorted(counts.items()):
            gauge.add_metric([state, rule], count)
        return gauge

    @staticmethod
    def _backlog(settings: Settings) -> Metric:
        gauge = GaugeMetricFamily(
            "ticket_manager_backlog",
            "Emails waiting to be processed: pending, and failed with automatic attempts left.",
            labels=["mailbox"],
        )
        counts = {address.lower(): 0 for address in settings.mailboxes}
        waiting = or_(
            LedgerMessage.state == MessageState.PENDING,
            and_(
                LedgerMessage.state == MessageState.FAILED,
                LedgerMessage.attempts < settings.max_attempts,
            ),
        )
        rows = db.session.execute(
            select(LedgerMessage.mailbox, func.count())
            .where(waiting)
            .group_by(LedgerMessage.mailbox)
        )
        counts.update(dict(rows.all()))
        for mailbox, count in sorted(counts.items()):
            gauge.add_metric([mailbox], count)
        return gauge

    @staticmethod
    def _mailboxes() -> list[Metric]:
        synced = GaugeMetricFamily(
            "ticket_manager_last_sync_timestamp_seconds",
            "When the mailbox's last delta round finished (Unix time).",
            labels=["mailbox"],
        )
        subscription = GaugeMetricFamily(
            "ticket_manager_subscription_expiry_timestamp_seconds",
            "When the mailbox's change-notification subscription expires (Unix time).",
            labels=["mailbox"],
        )
        rows = db.session.execute(
            select(Mailbox.address, Mailbox.last_sync_at, Mailbox.subscription_expires_at)
        )
        for address, last_sync_at, expires_at in rows:
            if last_sync_at is not None:
                synced.add_metric([address], as_utc(last_sync_at).timestamp())
            if expires_at is not None:
                subscription.add_metric([address], as_utc(expires_at).timestamp())
        return [synced, subscription]

    @staticmethod
    def _outbound() -> Metric:
        gauge = GaugeMetricFamily(
            "ticket_manager_outbound_messages",
            "Emails the service sends (acknowledgements, comments, status), by state.",
            labels=["state"],
        )
        counts = {state.value: 0 for state in OutboundState}
        rows = db.session.execute(
            select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)
        )
        for state, count in rows:
            counts[OutboundState(state).value] = count
        for state, count in sorted(counts.items()):
            gauge.add_metric([state], count)
        return gauge

    def _token_expiry(self, settings: Settings) -> float | None:
        """The latest expiry among the cached access tokens: delegated sign-ins are stored in
        the database; app-only tokens are known only to the worker that holds them."""
        if settings.auth_flow == "credentials":
            cache = self.tokens.cache if self.tokens is not None else None
        else:
            cache = _stored_token_cache(settings)
        if cache is None:
            return None
        moments = [
            int(entry["expires_on"])
            for entry in cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
            if str(entry.get("expires_on", "")).isdigit()
        ]
        return float(max(moments)) if moments else None


def _stored_token_cache(settings: Settings) -> msal.SerializableTokenCache | None:
    from ticket_manager.graph.errors import SignInError
    from ticket_manager.graph.token_store import DatabaseTokenStore

    if not (settings.secret_key and settings.tenant_id and settings.client_id):
        return None
    cache = msal.SerializableTokenCache()
    store = DatabaseTokenStore(settings.secret_key, f"{settings.tenant_id}/{settings.client_id}")
    try:
        return cache if store.load_into(cache) else None
    except SignInError:  # not readable with this SECRET_KEY: /status and the worker say so
        return None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


# -- exposure ------------------------------------------------------------------------------


def scrape_registry(app: Flask, tokens=None) -> CollectorRegistry:
    """What a scrape of this process returns: its instruments and the database's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_process_instruments())
    registry.register(DatabaseCollector(app, tokens))
    return registry


def _process_instruments():
    """This process's instruments, or every gunicorn worker's with PROMETHEUS_MULTIPROC_DIR."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    if not directory:
        return REGISTRY
    return MultiProcessCollector(None, path=directory)


blueprint = Blueprint("metrics", __name__)


@blueprint.route("/metrics", methods=["GET"])
def metrics_view() -> Response:
    """The Prometheus exposition of this process and the database (text or OpenMetrics)."""
    from flask import current_app

    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    registry = current_app.extensions[EXTENSION]
    return Response(encoder(registry), headers={"Content-Type": content_type})


@blueprint.before_request
def _require_metrics_scope():
    """Bearer token with ``metrics:read`` (or ``admin``); refusals are problem details."""
    from ticket_manager.api.access import check_access
    from ticket_manager.api.problems import Problem, problem_response

    try:
        check_access()
    except Problem as problem:
        return problem_response(problem)
    return None


def init_app(app: Flask) -> None:
    """Serve ``GET /metrics`` at the app's root and count every request the app answers."""
    from ticket_manager.api.access import SCOPE_ATTRIBUTE

    setattr(metrics_view, SCOPE_ATTRIBUTE, SCOPE)
    app.extensions[EXTENSION] = scrape_registry(app)
    app.register_blueprint(blueprint)
    app.before_request(_start_request_timer)
    app.after_request(_count_request)


def _start_request_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    endpoint = request.endpoint or "unmatched"
    method = _method(request.method)
    API_REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
    started = g.pop("metrics_started", None)
    if started is not None:
        API_LATENCY.labels(endpoint, method).observe(time.perf_counter() - started)
    return response


def serve_worker_metrics(app: Flask, settings: Settings, tokens=None):
    """Serve the worker's metrics on METRICS_ADDRESS:METRICS_PORT; returns the server.

    No authentication: bind it to a private address (the default is 127.0.0.1).
    """
    registry = scrape_registry(app, tokens)
    try:
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_address, registry=registry
        )
    except OSError as exc:
        raise ConfigError(
            "METRICS_PORT",
            f"cannot listen on {settings.metrics_address}:{settings.metrics_port} "
            f"({exc.strerror or exc})",
        ) from None
    log.info(
        "metrics served",
        extra={"address": settings.metrics_address, "port": server.server_address[1]},
    )
    return server
