"""Fault knobs, request log and call counts shared by every emulator.

Tests and benchmarks need to make an emulated service slow or throttled on purpose and to
count what the product asked of it. Each emulator owns one ``SandboxControls``; its
``install`` hooks into the emulator's Flask app and adds the ``/_sandbox/...`` routes:

- ``GET  /_sandbox/requests``  the request log (method, path, status, duration)
- ``GET  /_sandbox/counts``    calls per ``METHOD route`` (route as declared, ids left out)
- ``POST /_sandbox/faults``    ``{"latency": 0.05, "latency_jitter": 0.03}`` and/or
  ``{"fail_next": {"count": 3, "status": 429, "retry_after": 2, "path_contains": "/messages",
  "delay": 0, "method": "GET"}}``, ``{"reset_next": {"count": 1, "path_contains": "/issue",
  "after_processing": true}}``, ``{"slow_next": {"count": 1, "delay": 3}}``
- ``DELETE /_sandbox/faults``  back to normal
- ``GET  /_sandbox/state``     the emulator's state as JSON
- ``POST /_sandbox/reset-log`` forget the request log and counts

An emulator may add routes of its own under the same prefix: the Graph emulator's
``/_sandbox/quota`` sets its per-mailbox request quota (see ``graph.py``).

The same knobs are methods on the object, for tests in the same process.

The faults are what a client meets on a bad day: an error answer (``fail_next``), a
connection closed without any answer, before or after the request was carried out
(``reset_next``; the client sees a ``ConnectionError`` and cannot tell which), and an answer
held back until after the client's read timeout although the work was done (``slow_next``).
A fault applies to requests whose path contains ``path_contains`` (or matches the regular
expression ``path_pattern``) and, if given, whose method is ``method``.
"""

from __future__ import annotations

import random
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from flask import Flask, Response, g, jsonify, request

ErrorRenderer = Callable[[int, int | None], Response]
StateDumper = Callable[[], dict]

CONTROL_PREFIX = "/_sandbox/"


# What a fault does to a matching request.
ERROR = "error"  # answer ``status`` instead of serving the request
RESET = "reset"  # close the connection without answering; the request is not carried out
RESET_AFTER = "reset_after"  # carry the request out, then close without answering
SLOW = "slow"  # carry the request out, then hold the answer back for ``delay`` seconds
ACTIONS = (ERROR, RESET, RESET_AFTER, SLOW)

_DROP_CONNECTION = "sandbox.drop_connection"


class ConnectionDropped(ConnectionResetError):
    """Raised through the WSGI server so that it writes nothing and lets the socket go."""


@dataclass
class Fault:
    """Do ``action`` to the next ``count`` matching calls (by default: answer ``status``)."""

    count: int
    status: int = 429
    retry_after: int | None = 1
    path_contains: str | None = None
    delay: float = 0.0
    method: str | None = None
    path_pattern: str | None = None
    action: str = ERROR

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; one of {ACTIONS}")

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_pattern is not None and not re.search(self.path_pattern, path):
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    route: str
    status: int
    duration_ms: float
    at: float = field(default_factory=time.time)


class SandboxControls:
    """Latency, forced failures, a request log and counts for one emulator."""

    def __init__(self, name: str, render_error: ErrorRenderer) -> None:
        self.name = name
        self._render_error = render_error
        self._lock = threading.Lock()
        self.latency = 0.0
        self.latency_jitter = 0.0
        self._faults: deque[Fault] = deque()
        self._log: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self.state_dumper: StateDumper = dict

    # -- knobs -----------------------------------------------------------------------------

    def set_latency(self, seconds: float, jitter: float = 0.0) -> None:
        """Add ``seconds`` (plus up to ``jitter`` more, at random) to every call."""
        self.latency = max(0.0, float(seconds))
        self.latency_jitter = max(0.0, float(jitter))

    def fail_next(
        self,
        count: int,
        status: int = 429,
        retry_after: int | None = 1,
        path_contains: str | None = None,
        delay: float = 0.0,
        method: str | None = None,
        path_pattern: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching calls with ``status`` (after ``delay`` seconds)."""
        self._add(
            Fault(count, status, retry_after, path_contains, delay, method, path_pattern, ERROR)
        )

    def reset_next(
        self,
        count: int = 1,
        path_contains: str | None = None,
        *,
        after_processing: bool = False,
        method: str | None = None,
        path_pattern: str | None = None,
    ) -> None:
        """Close the next ``count`` matching connections without an answer.

        With ``after_processing`` the request is carried out first: the answer is what is lost,
        as when a proxy or the network drops a connection mid-response.
        """
        action = RESET_AFTER if after_processing else RESET
        self._add(
            Fault(
                count,
                path_contains=path_contains,
                method=method,
                path_pattern=path_pattern,
                action=action,
            )
        )

    def slow_next(
        self,
        count: int,
        delay: float,
        path_contains: str | None = None,
        *,
        method: str | None = None,
        path_pattern: str | None = None,
    ) -> None:
        """Carry out the next ``count`` matching calls, but answer only ``delay`` seconds later."""
        self._add(
            Fault(
                count,
                path_contains=path_contains,
                delay=delay,
                method=method,
                path_pattern=path_pattern,
                action=SLOW,
            )
        )

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency = 0.0
            self.latency_jitter = 0.0

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()

    # -- observations ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    # -- wiring ----------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def install(self, app: Flask) -> None:
        """Hook the knobs and the log into ``app`` and add the control routes."""
        app.wsgi_app = _ConnectionDropper(app.wsgi_app)

        @app.before_request
        def _apply_faults():
            if request.path.startswith(CONTROL_PREFIX):
                return None
            g.sandbox_started = time.perf_counter()
            if self.latency or self.latency_jitter:
                time.sleep(self.latency + random.uniform(0.0, self.latency_jitter))
            fault = self._take_fault(request.method, request.path)
            g.sandbox_fault = fault
            if fault is None or fault.action in (RESET_AFTER, SLOW):
                return None
            if fault.action == RESET:
                request.environ[_DROP_CONNECTION] = True
                return Response(status=204)  # never sent
            if fault.delay:
                time.sleep(fault.delay)
            return self._render_error(fault.status, fault.retry_after)

        @app.after_request
        def _record(response: Response) -> Response:
            if request.path.startswith(CONTROL_PREFIX):
                return response
            fault = g.get("sandbox_fault")
            if fault is not None and fault.action == RESET_AFTER:
                request.environ[_DROP_CONNECTION] = True
            elif fault is not None and fault.action == SLOW:
                time.sleep(fault.delay)
            started = g.get("sandbox_started", time.perf_counter())
            route = request.url_rule.rule if request.url_rule else "<unrouted>"
            entry = RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string.decode("latin-1"),
                route=route,
                # 0: the connection was dropped and the client got no answer.
                status=0 if request.environ.get(_DROP_CONNECTION) else response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            with self._lock:
                self._log.append(entry)
                self._counts[f"{request.method} {route}"] += 1
            return response

        def requests_view():
            return jsonify([asdict(entry) for entry in self.requests])

        def counts_view():
            return jsonify({"total": self.total, "by_route": dict(self.counts)})

        def faults_view():
            if request.method == "DELETE":
                self.clear_faults()
                return jsonify({"latency": self.latency, "faults": []})
            body = request.get_json(force=True, silent=True) or {}
            if "latency" in body or "latency_jitter" in body:
                self.set_latency(body.get("latency", self.latency), body.get("latency_jitter", 0))
            if "fail_next" in body:
                self.fail_next(**body["fail_next"])
            if "reset_next" in body:
                self.reset_next(**body["reset_next"])
            if "slow_next" in body:
                self.slow_next(**body["slow_next"])
            with self._lock:
                faults = [asdict(f) for f in self._faults]
            return jsonify({"latency": self.latency, "faults": faults})

        def state_view():
            return jsonify(self.state_dumper())

        def reset_log_view():
            self.reset_log()
            return "", 204

        app.add_url_rule(f"{CONTROL_PREFIX}requests", "sandbox_requests", requests_view)
        app.add_url_rule(f"{CONTROL_PREFIX}counts", "sandbox_counts", counts_view)
        app.add_url_rule(
            f"{CONTROL_PREFIX}faults", "sandbox_faults", faults_view, methods=["POST", "DELETE"]
        )
        app.add_url_rule(f"{CONTROL_PREFIX}state", "sandbox_state", state_view)
        app.add_url_rule(
            f"{CONTROL_PREFIX}reset-log", "sandbox_reset_log", reset_log_view, methods=["POST"]
        )


class _ConnectionDropper:
    """WSGI middleware: for a request marked by a reset fault, send nothing and hang up.

    The answer the app made is thrown away before a byte of it is written and the socket is
    shut down (with SO_LINGER 0, so that the final close is a TCP reset); ``ConnectionDropped``
    tells Werkzeug's server that the connection is gone, so it writes nothing either. The
    client reads the end of the stream where a status line should be: ``requests`` raises
    ``ConnectionError`` ("Remote end closed connection without response").
    """

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        result = self.app(environ, start_response)
        if not environ.get(_DROP_CONNECTION):
            return result
        if hasattr(result, "close"):
            result.close()
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionDropped("connection dropped by a sandbox fault")
