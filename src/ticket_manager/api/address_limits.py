"""Per-address limits for requests that present no valid key, counted before authentication.

An API key's requests are limited per key (``API_RATE_LIMIT``); everything else (health
checks, the Jira webhook, Graph's notification endpoint, and requests with a missing or bad
key) is limited per client address (``API_UNAUTHENTICATED_RATE_LIMIT``), so that nobody can
make the service do unbounded work without a key. Behind a reverse proxy the client address
comes from ``X-Forwarded-For``, but only as far as the hops listed in ``TRUSTED_PROXIES``:
anyone can write that header, so an untrusted peer's version of it is ignored.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from flask import Flask, current_app, request
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ticket_manager.api.problems import Problem
from ticket_manager.config import Settings

log = logging.getLogger("ticket_manager.api")

EXTENSION = "ticket_manager.address_limits"
# Endpoints anyone may call without a key: each call counts against the caller's address.
OPEN_BLUEPRINTS = frozenset({"health", "graph_notifications", "jira_webhook"})
LOG_INTERVAL = 60.0


class AddressLimiter:
    """``API_UNAUTHENTICATED_RATE_LIMIT`` per client address, in the rate limiter's storage."""

    def __init__(self, settings: Settings) -> None:
        self.limits = parse_many(settings.api_unauthenticated_rate_limit or "")
        self.trusted = settings.trusted_proxies
        storage = storage_from_string(settings.api_rate_limit_storage_uri)
        self.limiter = MovingWindowRateLimiter(storage)
        self._logged: dict[str, float] = {}

    def client_address(self) -> str:
        """The caller's address: the peer, or the last untrusted hop a trusted proxy reported."""
        peer = request.remote_addr or ""
        if not self.trusted or not self._is_trusted(peer):
            return peer
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._is_trusted(hop):
                return hop
        return peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def _log_once(self, address: str) -> None:
        """One warning per address per minute, however many requests it floods in."""
        moment = time.monotonic()
        last = self._logged.get(address)
        if last is not None and moment - last < LOG_INTERVAL:
            return
        if len(self._logged) > 10_000:
            self._logged.clear()
        self._logged[address] = moment
        log.warning("requests without a valid key refused: rate limit", extra={"address": address})

    def hit(self) -> None:
        """Count one request from this address; a 429 problem when it is over the limit."""
        address = self.client_address()
        for limit in self.limits:
            try:
                allowed = self.limiter.hit(limit, "address", address)
            except Exception:  # an unreachable Redis lets requests through, as the key limit does
                log.warning("rate limit storage unreachable", exc_info=True)
                return
            if not allowed:
                raise self._refusal(limit, address)

    def _refusal(self, limit, address: str) -> Problem:
        reset, _remaining = self.limiter.get_window_stats(limit, "address", address)
        retry_after = max(1, int(reset - time.time()) + 1)
        self._log_once(address)
        return Problem(
            429,
            "rate-limited",
            f"Too many requests without a valid key from this address ({limit}).",
            headers={"Retry-After": str(retry_after)},
        )


def init_app(app: Flask, settings: Settings) -> None:
    """Count unauthenticated requests per address, before anything else runs."""
    if settings.api_unauthenticated_rate_limit:
        app.extensions[EXTENSION] = AddressLimiter(settings)
    app.before_request(limit_open_requests)


def address_limiter() -> AddressLimiter | None:
    return current_app.extensions.get(EXTENSION)


def limit_open_requests() -> None:
    """``before_request``: count calls to open endpoints; cap the size of a notification POST."""
    if request.blueprint == "graph_notifications":
        from ticket_manager.extensions import get_settings

        request.max_content_length = get_settings(current_app).notification_max_size
    limiter = address_limiter()
    if limiter is not None and request.blueprint in OPEN_BLUEPRINTS:
        limiter.hit()


def count_refused_key() -> None:
    """A request whose key was missing or refused counts against its address: over the limit,
    the answer is a 429 instead of a 401, so keys cannot be guessed at speed. A valid key is
    never refused for what others behind the same address did."""
    limiter = address_limiter()
    if limiter is not None:
        limiter.hit()
