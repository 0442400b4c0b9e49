"""JSON batching (POST /v1.0/$batch): up to 20 sub-requests routed through the same app,
with dependsOn ordering and per-step id/status/headers/body answers."""

from __future__ import annotations

import base64
import json
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import request

from ticket_manager_sandbox.graph_http import (
    json_response,
)
from ticket_manager_sandbox.graph_query import GraphQueryError

if TYPE_CHECKING:
    from ticket_manager_sandbox.graph import GraphEmulator

MAX_BATCH_REQUESTS = 20
_BATCH_HEADERS = {
    "content-type",
    "location",
    "retry-after",
    "preference-applied",
    "odata-version",
    "cache-control",
}


def register_batch_routes(emu: GraphEmulator) -> None:
    """Attach POST /v1.0/$batch."""
    app = emu.app

    # -- JSON batching ---------------------------------------------------------------------

    @app.route("/v1.0/$batch", methods=["POST"])
    def batch():
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            raise GraphQueryError(400, "BadRequest", "Invalid batch payload format.")
        steps = body["requests"]
        if len(steps) > MAX_BATCH_REQUESTS:
            raise GraphQueryError(
                400,
                "BadRequest",
                f"Number of batch request steps exceeds the maximum of {MAX_BATCH_REQUESTS}.",
            )
        ids = [
            str(s.get("id")) if isinstance(s, dict) and s.get("id") is not None else None
            for s in steps
        ]
        # Ids are compared without regard to case, as the batching documentation states.
        if None in ids or len({i.lower() for i in ids}) != len(ids):
            raise GraphQueryError(
                400, "BadRequest", "Batch request ids must be present and unique."
            )
        for step in steps:
            if not step.get("method") or not step.get("url"):
                raise GraphQueryError(
                    400, "BadRequest", "Every batch request must have a method and a url."
                )
            step_headers = {str(k).lower() for k in (step.get("headers") or {})}
            if "body" in step and "content-type" not in step_headers:
                raise GraphQueryError(
                    400,
                    "BadRequest",
                    f"Write request id : {step['id']} does not contain Content-Type header or "
                    "body.",
                )
            depends = step.get("dependsOn") or []
            if any(str(d).lower() not in {i.lower() for i in ids} for d in depends):
                raise GraphQueryError(
                    400, "BadRequest", "dependsOn refers to a request id that is not in the batch."
                )
        base = request.host_url.rstrip("/")
        # Only the credentials carry over; each step states its own headers (Prefer etc.).
        outer_headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        results: list[dict] = []

        def run() -> None:
            client = app.test_client()
            status_by_id: dict[str, int] = {}
            for step in _dependency_order(steps):
                step_id = str(step["id"])
                failed = [
                    d
                    for d in step.get("dependsOn") or []
                    if status_by_id.get(str(d).lower(), 500) >= 400
                ]
                if failed:
                    status_by_id[step_id.lower()] = 424
                    results.append(
                        {
                            "id": step_id,
                            "status": 424,
                            "headers": {"Content-Type": "application/json"},
                            "body": {
                                "error": {
                                    "code": "FailedDependency",
                                    "message": "Failed dependency.",
                                }
                            },
                        }
                    )
                    continue
                results.append(_run_step(client, base, outer_headers, step))
                status_by_id[step_id.lower()] = results[-1]["status"]

        worker = threading.Thread(target=run, name="graph-batch")
        worker.start()
        worker.join()
        return json_response({"responses": results})


def _dependency_order(steps: list[dict]) -> list[dict]:
    done: set[str] = set()
    ordered: list[dict] = []
    pending = list(steps)
    while pending:
        progressed = False
        for step in list(pending):
            if all(str(d).lower() in done for d in step.get("dependsOn") or []):
                ordered.append(step)
                done.add(str(step["id"]).lower())
                pending.remove(step)
                progressed = True
        if not progressed:
            ordered.extend(pending)
            break
    return ordered


def _run_step(client, base: str, outer_headers: dict, step: dict) -> dict:
    """Send one batch step through the app, the way Graph fans a batch out internally."""
    url = str(step["url"])
    if "://" in url:
        parts = urlsplit(url)
        url = parts.path + (f"?{parts.query}" if parts.query else "")
    url = "/" + url.lstrip("/")
    if not url.lower().startswith("/v1.0/"):
        url = "/v1.0" + url
    headers = {**outer_headers, **{str(k): str(v) for k, v in (step.get("headers") or {}).items()}}
    data = step.get("body")
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(data, str) and "json" not in headers.get("Content-Type", "").lower():
        data = base64.b64decode(data)
    response = client.open(
        url, method=str(step["method"]).upper(), headers=headers, data=data, base_url=base
    )
    result: dict = {
        "id": str(step["id"]),
        "status": response.status_code,
        "headers": {k: v for k, v in response.headers.items() if k.lower() in _BATCH_HEADERS},
    }
    payload = response.get_data()
    if payload:
        if response.mimetype == "application/json":
            result["body"] = json.loads(payload)
        else:
            result["body"] = base64.b64encode(payload).decode("ascii")
    return result
