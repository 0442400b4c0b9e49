"""Prometheus metrics: the pipeline's counts and the database's gauges, scraped over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ticket_manager.config import ConfigError, load_settings
from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage, MessageState

MAILBOX = "support@example.com"


class Scrape:
    """The samples of one scrape, looked up by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and labels.items() <= sample_labels.items()
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(
            sample_name == name and labels.items() <= sample_labels.items()
            for sample_name, sample_labels, _value in self.samples
        )

    def labels_of(self, name: str, label: str) -> set[str]:
        return {labels[label] for sample_name, labels, _v in self.samples if sample_name == name}


def scrape(url: str, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return Scrape(response.text)


def grew(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much a process counter grew (other tests in this process count too)."""
    return after.value(name, **labels) - before.value(name, **labels)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_count_what_the_pipeline_did_and_read_the_database(make_api):
    # One ticket (after a Graph 429 and a Jira 503, both retried), one rejection and one
    # Jira failure show in the counters by outcome and rule, and in the ledger's gauges.
    api = make_api()
    pipeline = api.pipeline
    url = f"{api.server_url}/metrics"
    token = api.key("metrics:read")
    before = scrape(url, token)

    synced_after = time.time()  # the pipeline's rounds below all happen after this moment
    pipeline.deliver(subject="Printer jammed", sender="Alice Martin <alice@example.com>")
    pipeline.deliver(subject="Cheap watches", sender="spam@evil.org")
    pipeline.sandbox.graph.controls.fail_next(1, status=429, retry_after=0, path_contains="delta")
    pipeline.sandbox.jira.controls.fail_next(
        1, status=503, retry_after=0, path_contains="/rest/api/3/issue", method="POST"
    )
    pipeline.run_once()
    pipeline.deliver(subject="Jira is down", sender="Bob Stone <bob@example.com>")
    pipeline.sandbox.jira.controls.fail_next(
        1, status=500, path_contains="/rest/api/3/issue", method="POST"
    )
    pipeline.run_once()
    assert sorted(row.state for row in pipeline.rows()) == sorted(
        [MessageState.TICKET_CREATED, MessageState.REJECTED, MessageState.FAILED]
    )

    after = scrape(url, token)
    processed = "ticket_manager_messages_processed_total"
    assert grew(before, after, processed, outcome="ticket_created", rule="") == 1
    assert grew(before, after, processed, outcome="rejected", rule="domain-not-allowed") == 1
    assert grew(before, after, processed, outcome="failed") == 1
    assert grew(before, after, "ticket_manager_tickets_created_total", source="email") == 1
    assert grew(before, after, "ticket_manager_email_to_ticket_seconds_count") == 1
    assert grew(before, after, "ticket_manager_comments_relayed_total") == 0

    graph = "ticket_manager_graph_requests_total"
    assert grew(before, after, graph, method="GET", status="200") > 0
    assert grew(before, after, graph, method="PATCH", status="200") >= 1  # email marked
    assert grew(before, after, graph, status="429") == 1
    jira = "ticket_manager_jira_requests_total"
    assert grew(before, after, jira, method="POST", status="201") >= 1
    assert grew(before, after, jira, status="503") == 1
    assert grew(before, after, jira, method="POST", status="500") == 1
    assert grew(before, after, "ticket_manager_retries_total", service="graph") == 1
    assert grew(before, after, "ticket_manager_retries_total", service="jira") == 1

    # The database's gauges are this test's alone (a fresh database).
    assert after.value("ticket_manager_database_up") == 1
    messages = "ticket_manager_messages"
    assert after.value(messages, state="ticket_created", rule="") == 1
    assert after.value(messages, state="rejected", rule="domain-not-allowed") == 1
    assert after.value(messages, state="failed") == 1
    assert after.value(messages, state="pending") == 0
    # The failed email has automatic attempts left: it is part of the backlog.
    assert after.value("ticket_manager_backlog", mailbox=MAILBOX) == 1
    last_sync = after.value("ticket_manager_last_sync_timestamp_seconds", mailbox=MAILBOX)
    assert synced_after <= last_sync <= time.time()
    assert after.value("ticket_manager_outbound_messages", state="sent") == 1  # the ack
    assert after.value("ticket_manager_outbound_messages", state="failed") == 0
    # App-only tokens live in the worker's memory: the web app does not claim to know.
    assert not after.has("ticket_manager_token_expiry_timestamp_seconds")

    # The first scrape was itself counted, by endpoint name (not path), with its latency.
    requests_total = "ticket_manager_api_requests_total"
    assert after.value(requests_total, endpoint="metrics.metrics_view", status="200") >= 1
    assert after.has(
        "ticket_manager_api_request_duration_seconds_count", endpoint="metrics.metrics_view"
    )
    assert not any("/" in e for e in after.labels_of(requests_total, "endpoint"))


def test_a_recovered_backlog_and_api_tickets_show(make_api):
    # A failed email made due again and retried leaves no backlog; an API ticket is counted.
    api = make_api()
    url = f"{api.server_url}/metrics"
    token = api.key("metrics:read")
    api.pipeline.deliver(subject="Later")
    api.sandbox.jira.controls.fail_next(
        1, status=500, path_contains="/rest/api/3/issue", method="POST"
    )
    api.pipeline.run_once()
    assert scrape(url, token).value("ticket_manager_backlog", mailbox=MAILBOX) == 1

    with api.app.app_context():
        db.session.query(LedgerMessage).update({LedgerMessage.next_attempt_at: None})
        db.session.commit()
    before = scrape(url, token)
    api.pipeline.run_once()
    created = api.client("tickets:write").post("/tickets", json={"title": "From the API"})
    assert created.status_code == 201, created.text
    after = scrape(url, token)
    assert after.value("ticket_manager_backlog", mailbox=MAILBOX) == 0
    assert after.value("ticket_manager_messages", state="ticket_created") == 1
    assert grew(before, after, "ticket_manager_tickets_created_total", source="api") == 1
    api_request = {"endpoint": "tickets.create_ticket", "method": "POST", "status": "201"}
    assert grew(before, after, "ticket_manager_api_requests_total", **api_request) == 1


def test_metrics_need_a_token_with_the_metrics_scope(api):
    # No token: 401; a token without metrics:read: 403; metrics:read or admin: 200.
    url = f"{api.server_url}/metrics"
    anonymous = requests.get(url, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    assert anonymous.json()["type"].endswith("/unauthenticated")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "ticket_manager_" not in anonymous.text

    wrong = requests.get(
        url, headers={"Authorization": "Bearer tm_00000000_" + "x" * 40}, timeout=30
    )
    assert wrong.status_code == 401
    assert wrong.json()["type"].endswith("/invalid-token")

    reader = requests.get(
        url, headers={"Authorization": f"Bearer {api.key('tickets:read')}"}, timeout=30
    )
    assert reader.status_code == 403
    assert reader.headers["Content-Type"] == "application/problem+json"
    assert reader.json()["type"].endswith("/insufficient-scope")
    assert "metrics:read" in reader.json()["detail"]

    for scope in ("metrics:read", "admin"):
        assert scrape(url, api.key(scope)).has("ticket_manager_database_up")
    # At the app's root, not under APPLICATION_CONTEXT.
    assert requests.get(f"{api.base_url}/metrics", timeout=30).status_code == 404


def test_an_unreadable_database_is_reported_not_a_failed_scrape(api):
    # When the database cannot answer, the scrape still works and says so.
    from sqlalchemy import text

    with api.app.app_context():
        db.session.execute(text("DROP TABLE outbound_messages"))
        db.session.commit()
    found = scrape(f"{api.server_url}/metrics", api.key("metrics:read"))
    assert found.value("ticket_manager_database_up") == 0
    assert not found.has("ticket_manager_backlog")
    assert found.has("ticket_manager_retries_total", service="graph")


def test_openmetrics_is_served_when_asked_for(api):
    # A Prometheus that prefers OpenMetrics gets it.
    response = requests.get(
        f"{api.server_url}/metrics",
        headers={
            "Authorization": f"Bearer {api.key('metrics:read')}",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_a_refused_connection_is_counted_as_an_error():
    # A Graph call that gets no answer at all is counted with status "error".
    from ticket_manager.counters import REGISTRY
    from ticket_manager.graph.client import GraphClient
    from ticket_manager.graph.errors import GraphUnavailableError
    from ticket_manager.http import build_session

    labels = {"method": "GET", "status": "error"}
    before = REGISTRY.get_sample_value("ticket_manager_graph_requests_total", labels) or 0
    graph = GraphClient(
        f"http://127.0.0.1:{free_port()}/v1.0", lambda: "token", build_session(), max_attempts=1
    )
    with pytest.raises(GraphUnavailableError):
        graph.get_folder(MAILBOX)
    assert REGISTRY.get_sample_value("ticket_manager_graph_requests_total", labels) == before + 1


def test_a_stored_sign_in_tells_when_its_access_token_expires(make_api):
    # With a delegated sign-in stored in the database, every process reports its token expiry.
    from ticket_manager.graph.sign_in import token_provider

    api = make_api(
        O365_AUTH_FLOW="device", SECRET_KEY="Qw8-rT3zLp0_vX6yNb2mKc9hJf4dGs1aEo7uIi5WqZx"
    )
    identity = api.sandbox.identity
    identity.device_code_interval = 1
    with api.app.app_context():
        tokens = token_provider(api.pipeline.settings)
        flow = tokens.initiate_device_flow()
        identity.approve_device_code(flow["user_code"])
        tokens.complete_device_flow(flow)
        expected = tokens.cache.search(tokens.cache.CredentialType.ACCESS_TOKEN)
        db.session.remove()
    expiry = scrape(f"{api.server_url}/metrics", api.key("metrics:read")).value(
        "ticket_manager_token_expiry_timestamp_seconds"
    )
    assert expiry == max(int(entry["expires_on"]) for entry in expected)
    assert expiry > time.time()


def worker(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ticket_manager", "o365", "handle-incoming-email", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_worker_serves_its_metrics_on_metrics_port(pipeline):
    # With METRICS_PORT the running worker answers scrapes: its counts and the database's.
    pipeline.deliver(subject="Counted by the worker")
    port = free_port()
    env = {**pipeline.env, "METRICS_PORT": str(port), "O365_POLL_INTERVAL": "60"}
    process = worker([], env)
    try:
        deadline = time.monotonic() + 60
        found = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                found = scrape(f"http://127.0.0.1:{port}/metrics")
            except requests.ConnectionError:
                found = None
            if found and found.value(
                "ticket_manager_messages_processed_total", outcome="ticket_created"
            ):
                break
            time.sleep(0.3)
        assert found is not None, process.stderr.read() if process.poll() is not None else ""
        assert found.value("ticket_manager_messages_processed_total", outcome="ticket_created") == 1
        assert found.value("ticket_manager_tickets_created_total", source="email") == 1
        assert found.value("ticket_manager_graph_requests_total", method="GET", status="200") > 0
        assert found.value("ticket_manager_jira_requests_total", method="POST", status="201") > 0
        assert found.value("ticket_manager_messages", state="ticket_created") == 1
        assert found.value("ticket_manager_backlog", mailbox=MAILBOX) == 0
        # The worker holds the app-only token, so it knows when that expires.
        assert found.value("ticket_manager_token_expiry_timestamp_seconds") > time.time()
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "metrics served" in err
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_a_busy_metrics_port_stops_the_worker_with_one_line(pipeline):
    # A port already taken is a configuration error naming METRICS_PORT, not a traceback.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = worker(["--once"], {**pipeline.env, "METRICS_PORT": str(port)})
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "configuration key METRICS_PORT: cannot listen on 127.0.0.1:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"METRICS_PORT": "0"}, "METRICS_PORT"),
        ({"METRICS_PORT": "65536"}, "METRICS_PORT"),
        ({"METRICS_PORT": "nine"}, "METRICS_PORT"),
        ({"METRICS_PORT": "9100", "METRICS_ADDRESS": "not an address"}, "METRICS_ADDRESS"),
        ({"METRICS_PORTS": "9100"}, "METRICS_PORTS"),
    ],
)
def test_metrics_keys_are_checked(changes, key):
    # A malformed metrics key stops start-up with an error naming it.
    with pytest.raises(ConfigError) as raised:
        load_settings(changes)
    assert raised.value.key == key


def test_metrics_keys_have_defaults():
    # The worker serves no metrics unless METRICS_PORT is set; then on 127.0.0.1.
    settings = load_settings({})
    assert settings.metrics_port is None
    assert settings.metrics_address == "127.0.0.1"
    settings = load_settings({"METRICS_PORT": "9464", "METRICS_ADDRESS": "::"})
    assert (settings.metrics_port, settings.metrics_address) == (9464, "::")


def test_gunicorn_workers_are_summed_with_a_multiprocess_directory(api, tmp_path):
    # Under gunicorn with PROMETHEUS_MULTIPROC_DIR, any worker's scrape counts every worker's
    # requests.
    directory = tmp_path / "prometheus"
    directory.mkdir()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **api.pipeline.env,
        "API_RATE_LIMIT": "off",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    command = [sys.executable, "-m", "gunicorn", "--workers", "3", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "ticket_manager.app:create_app()"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    live = f"{base}{api.pipeline.settings.application_context}/health/live"
    try:
        # Wait on a path that is not counted as health.live, so a probe that the client gave
        # up on but a worker answered later cannot change the count below.
        wait_until_answering(f"{base}/not-counted-probe", server)
        for _ in range(30):  # one connection each: gunicorn hands them to any worker
            assert requests.get(live, timeout=30).status_code == 200
        token = api.key("metrics:read")
        for _ in range(6):
            found = scrape(f"{base}/metrics", token)
            assert found.value("ticket_manager_api_requests_total", endpoint="health.live") == 30
            assert found.value("ticket_manager_database_up") == 1
        assert list(directory.glob("*.db"))
    finally:
        server.terminate()
        server.communicate(timeout=30)


def wait_until_answering(url: str, server: subprocess.Popen) -> None:
    """Poll ``url`` until the server answers at all (any status), or fail if it exits."""
    while True:
        assert server.poll() is None, server.communicate(timeout=30)[1]
        try:
            requests.get(url, timeout=30)
            return
        except requests.ConnectionError:  # not listening yet
            time.sleep(0.2)
        except requests.Timeout:  # listening, workers still loading
            continue


def test_a_missing_multiprocess_directory_is_one_clear_line(tmp_path):
    # PROMETHEUS_MULTIPROC_DIR naming no folder stops every command with one line.
    result = subprocess.run(
        [sys.executable, "-m", "ticket_manager", "tickets", "api-key", "list"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "configuration key PROMETHEUS_MULTIPROC_DIR: names a folder that does not exist" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
