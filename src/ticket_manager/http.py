"""One way to build outgoing HTTP sessions, so that every client trusts the same CAs."""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "ticket-manager/0.1"

# Seconds to connect, seconds to wait for each read: a hung service must not hang the worker.
CONNECT_TIMEOUT = 10
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT, 60)
# Connections kept open per host: enough for every processing thread (PROCESSING_CONCURRENCY).
POOL_SIZE = 64


def build_session(ca_bundle: str | None = None) -> requests.Session:
    """A requests session that trusts ``ca_bundle`` (REQUESTS_CA_BUNDLE / SSL_CERT_FILE)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    size_pool(session)
    pin_ca_bundle(session, ca_bundle)
    return session


def size_pool(session: requests.Session) -> None:
    """Keep a connection per processing thread, instead of a TLS handshake per request."""
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


def pin_ca_bundle(session: requests.Session, ca_bundle: str | None) -> None:
    """Make ``session`` verify with ``ca_bundle`` on every request.

    requests lets the process's REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's
    ``verify``; the configuration already resolved those (and SSL_CERT_FILE, which requests
    ignores) into ``ca_bundle``, so that value must win. Proxies from the environment still
    apply.
    """
    if not ca_bundle:
        return
    session.verify = ca_bundle
    merge = session.merge_environment_settings

    def merge_keeping_ca_bundle(self, url, proxies, stream, verify, cert):
        merged = merge(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            merged["verify"] = ca_bundle
        return merged

    session.merge_environment_settings = types.MethodType(merge_keeping_ca_bundle, session)


def observe_requests(
    session: requests.Session,
    on_answer: Callable[[requests.Response], None],
    on_failure: Callable[[requests.PreparedRequest], None],
) -> None:
    """Call ``on_answer`` for every response ``session`` receives (retries and redirects
    included), and ``on_failure`` for every request that got none (refused, reset, timed out).
    """
    session.hooks["response"].append(lambda response, *args, **kwargs: on_answer(response))
    send = session.send

    def send_observing_failures(self, request, **kwargs):
        try:
            return send(request, **kwargs)
        except requests.RequestException:
            on_failure(request)
            raise

    session.send = types.MethodType(send_observing_failures, session)


def request_timeout(read_timeout: float) -> tuple[float, float]:
    """The (connect, read) timeout for a read timeout of ``read_timeout`` (HTTP_READ_TIMEOUT)."""
    return (min(CONNECT_TIMEOUT, read_timeout), read_timeout)


def retry_after_seconds(response: requests.Response, cap: float) -> float | None:
    """Retry-After in seconds, given as a number or as an HTTP date, at most ``cap``."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), cap)
    except ValueError:
        pass
    try:
        delay = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError):
        return None
    return min(max(delay, 0.0), cap)
