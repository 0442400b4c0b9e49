"""One way to build outgoing HTTP sessions, so that every client trusts the same CAs."""

from __future__ import annotations

import types

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "ticket-manager/0.1"

# Seconds to connect, seconds to wait for each read: a hung service must not hang the worker.
DEFAULT_TIMEOUT = (10, 60)
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
