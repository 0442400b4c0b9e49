"""Prometheus metrics: what this process counted, and what the database says at scrape time.

Two kinds, so that numbers agree whichever process is asked:

- **Instruments** (counters, histograms) that the code updates as things happen, in the leaf
  module ticket_manager/counters.py (clients import it; it imports nothing above it).
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

import msal
from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ticket_manager import health
from ticket_manager.clock import as_utc
from ticket_manager.config import ConfigError, Settings
from ticket_manager.counters import (
    API_LATENCY,
    API_REQUESTS,
    MULTIPROCESS_DIRECTORY,
    REGISTRY,
    method_label,
)
from ticket_manager.extensions import db
from ticket_manager.models import (
    LedgerMessage,
    Mailbox,
    MessageState,
    OutboundMessage,
    OutboundState,
)

log = logging.getLogger("ticket_manager.metrics")

SCOPE = "metrics:read"
EXTENSION = "ticket_manager.metrics"


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
        credentials = GaugeMetricFamily(
            "ticket_manager_credential_expiry_timestamp_seconds",
            "When a credential stops working (Unix time): the client secret "
            "(O365_CLIENT_SECRET_EXPIRES) or the delegated sign-in's refresh token.",
            labels=["credential"],
        )
        for expiry in health.expiries(settings):
            credentials.add_metric([expiry.kind], expiry.expires_at.timestamp())
        families.append(credentials)
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
    store = DatabaseTokenStore(
        settings.secret_key,
        f"{settings.tenant_id}/{settings.client_id}",
        settings.secret_key_fallbacks,
    )
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
    method = method_label(request.method)
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
