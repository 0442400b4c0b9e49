"""Fault knobs, request log and call counts shared by every emulator.

Tests and benchmarks need to make an emulated service slow or throttled on purpose and to
count what the product asked of it. Each emulator owns one ``SandboxControls``; its
``install`` hooks into the emulator's Flask app and adds the ``/_sandbox/...`` routes:

- ``GET  /_sandbox/requests``  the request log (method, path, status, duration)
- ``GET  /_sandbox/counts``    calls per ``METHOD route`` (route as declared, ids left out)
- ``POST /_sandbox/faults``    ``{"latency": 0.05}`` and/or
  ``{"fail_next": {"count": 3, "status": 429, "retry_after": 2, "path_contains": "/messages",
  "delay": 0}}``
- ``DELETE /_sandbox/faults``  back to normal
- ``GET  /_sandbox/state``     the emulator's state as JSON
- ``POST /_sandbox/reset-log`` forget the request log and counts

The same knobs are methods on the object, for tests in the same process.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from flask import Flask, Response, g, jsonify, request

ErrorRenderer = Callable[[int, int | None], Response]
StateDumper = Callable[[], dict]

CONTROL_PREFIX = "/_sandbox/"


@dataclass
class Fault:
    """Answer the next ``count`` matching calls with ``status`` instead of serving them."""

    count: int
    status: int = 429
    retry_after: int | None = 1
    path_contains: str | None = None
    delay: float = 0.0

    def matches(self, path: str) -> bool:
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
        self._faults: deque[Fault] = deque()
        self._log: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self.state_dumper: StateDumper = dict

    # -- knobs -----------------------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        self.latency = max(0.0, float(seconds))

    def fail_next(
        self,
        count: int,
        status: int = 429,
        retry_after: int | None = 1,
        path_contains: str | None = None,
        delay: float = 0.0,
    ) -> None:
        with self._lock:
            self._faults.append(Fault(count, status, retry_after, path_contains, delay))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency = 0.0

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

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def install(self, app: Flask) -> None:
        """Hook the knobs and the log into ``app`` and add the control routes."""

        @app.before_request
        def _apply_faults():
            if request.path.startswith(CONTROL_PREFIX):
                return None
            g.sandbox_started = time.perf_counter()
            if self.latency:
                time.sleep(self.latency)
            fault = self._take_fault(request.path)
            if fault is None:
                return None
            if fault.delay:
                time.sleep(fault.delay)
            return self._render_error(fault.status, fault.retry_after)

        @app.after_request
        def _record(response: Response) -> Response:
            if request.path.startswith(CONTROL_PREFIX):
                return response
            started = g.get("sandbox_started", time.perf_counter())
            route = request.url_rule.rule if request.url_rule else "<unrouted>"
            entry = RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string.decode("latin-1"),
                route=route,
                status=response.status_code,
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
            if "latency" in body:
                self.set_latency(body["latency"])
            if "fail_next" in body:
                self.fail_next(**body["fail_next"])
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
