"""Instruments (counters, histograms) that the code updates as things happen: a leaf module.

Calls to Graph and Jira, retries, processing outcomes, tickets, relayed comments and API
requests are counted here, in this module's own :data:`REGISTRY` (not prometheus_client's
global one): what *this* process did. Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set,
every worker process writes its counts there and a scrape adds them up. Any client may import
this module; it imports only the standard library, prometheus_client, requests and leaves of
this package. The scrape (with the database's gauges) and ``/metrics`` are in web/metrics.py.
"""

from __future__ import annotations

import os
from datetime import datetime

import requests
from prometheus_client import CollectorRegistry, Counter, Histogram

from ticket_manager.clock import as_utc, now
from ticket_manager.config import ConfigError
from ticket_manager.http import observe_requests

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
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
        counter.labels(method_label(response.request.method), str(response.status_code)).inc()
        if on_answer is not None:
            on_answer(response)

    def failed(prepared: requests.PreparedRequest) -> None:
        counter.labels(method_label(prepared.method), "error").inc()

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


def method_label(method: str | None) -> str:
    """The method as a label value: the standard ones by name, anything else \"other\"."""
    method = (method or "").upper()
    return method if method in HTTP_METHODS else "other"
