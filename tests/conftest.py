"""Shared fixtures: the sandbox CA and the three emulators served over real HTTPS."""

from __future__ import annotations

import os

import pytest

from ticket_manager_sandbox.server import EmulatorServer, SandboxCA


@pytest.fixture(scope="session")
def sandbox_ca(tmp_path_factory) -> SandboxCA:
    """One test CA for the whole run; every HTTPS client in the tests trusts it."""
    ca = SandboxCA()
    bundle = ca.write_ca_bundle(tmp_path_factory.mktemp("ca") / "sandbox-ca.pem")
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
    os.environ["SSL_CERT_FILE"] = str(bundle)
    ca.bundle_path = bundle
    return ca


@pytest.fixture
def serve(sandbox_ca):
    """Serve a WSGI app over HTTPS on 127.0.0.1 for one test: ``serve(app) -> base_url``."""
    servers: list[EmulatorServer] = []

    def _serve(app, *, tls: bool = True) -> str:
        server = EmulatorServer(app, ca=sandbox_ca if tls else None).start()
        servers.append(server)
        return server.base_url

    yield _serve
    for server in servers:
        server.stop()


@pytest.fixture
def base(graph, serve) -> str:
    """The base URL of a test module's own ``graph`` emulator, served over HTTPS."""
    return serve(graph.app) + "/v1.0"


@pytest.fixture
def http():
    """A session with the ``app-token`` the Graph emulator tests' token tables accept."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = "Bearer app-token"
    return session


# -- databases: every database test runs on SQLite and on PostgreSQL -------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server the suite may create throw-away databases on."""
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # the suite must not pass quietly without PostgreSQL
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc.__class__.__name__}); "
            "start it or set TEST_POSTGRES_URL"
        )
    finally:
        engine.dispose()
    return POSTGRES_ADMIN_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database: a temporary SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ticket_manager.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = request.getfixturevalue("postgres_server_url")
    name = f"tm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# -- the three emulators together, and configuration pointing at them -----------------------


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory):
    """One running set of the three emulators for the whole session (see ``sandbox``)."""
    from ticket_manager_sandbox.sandbox import Sandbox

    with Sandbox(state_dir=tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def sandbox(shared_sandbox):
    """Identity platform, Graph and Jira emulators on 127.0.0.1, over HTTPS, fresh for each
    test: the session's servers, reset to their first state before the test."""
    shared_sandbox.reset()
    return shared_sandbox


@pytest.fixture
def sandbox_env(sandbox, tmp_path) -> dict[str, str]:
    """Ticket Manager configuration for the sandbox, with the support board and SQLite."""
    return {
        **sandbox.environment(),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'ticket_manager.db'}",
        "JIRA_SUPPORT_BOARD": "support",
        "JIRA_BOARDS": "JIRA_SUPPORT_BOARD",
        "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
    }


# -- the pipeline against the emulators --------------------------------------------------------


class PipelineHarness:
    """An app wired to the sandbox and a fresh database, with helpers to run and inspect it."""

    def __init__(self, sandbox, env: dict[str, str]) -> None:
        from flask_migrate import upgrade

        from ticket_manager import create_app
        from ticket_manager.extensions import get_settings

        self.sandbox = sandbox
        self.env = env
        self.app = create_app(env)
        self.settings = get_settings(self.app)
        with self.app.app_context():
            upgrade()
        self.mailbox = sandbox.accounts.mailboxes[0]

    def deliver(self, **kwargs) -> str:
        kwargs.setdefault("sender", "Alice Martin <alice@example.com>")
        kwargs.setdefault("body", "Hello, the printer is jammed.")
        kwargs.setdefault("subject", "Printer jammed")
        return self.sandbox.graph.deliver(self.mailbox, **kwargs)

    def run_once(self):
        from ticket_manager.pipeline.worker import Worker

        worker = Worker(self.app, self.settings, list(self.settings.mailboxes))
        worker.run(once=True)
        return worker

    def rows(self):
        from ticket_manager.extensions import db
        from ticket_manager.models import LedgerMessage

        with self.app.app_context():
            rows = db.session.query(LedgerMessage).order_by(LedgerMessage.id).all()
            db.session.expunge_all()
            return rows

    def issues(self) -> list[dict]:
        return self.sandbox.jira.issues()


@pytest.fixture
def pipeline_env(sandbox_env, database_url) -> dict[str, str]:
    """Sandbox configuration on each database, with the original README's filters."""
    return {
        **sandbox_env,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JIRA_TICKET_LABELS": "ticket",
        "JIRA_TICKET_LABEL_CATEGORIES": "general,bug",
        "JIRA_TICKET_LABEL_DEFAULT_CATEGORY": "general",
        "EMAIL_WHITELISTED_DOMAINS": "example.com",
        "EMAIL_BLACKLIST": "malicious@example.com",
        "JIRA_RECOVERY_DELAY": "0",
        "TICKET_CLIENT_APP": "https://tickets.example.com/browse/",
    }


@pytest.fixture
def make_pipeline(sandbox, pipeline_env):
    """Build a pipeline harness with configuration changes: ``make_pipeline(KEY="value")``."""
    harnesses: list[PipelineHarness] = []

    def build(target_sandbox=None, **changes: str) -> PipelineHarness:
        target = target_sandbox or sandbox
        env = {**pipeline_env, **changes}
        if target_sandbox is not None:
            env.update(target_sandbox.environment())
        harness = PipelineHarness(target, env)
        harnesses.append(harness)
        return harness

    yield build
    from ticket_manager.extensions import db

    for harness in harnesses:
        with harness.app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def pipeline(sandbox, pipeline_env) -> PipelineHarness:
    """The email pipeline over real HTTPS against the emulators, on SQLite and PostgreSQL."""
    harness = PipelineHarness(sandbox, pipeline_env)
    yield harness
    from ticket_manager.extensions import db

    with harness.app.app_context():
        db.session.remove()
        db.engine.dispose()


# -- the REST API, served over real HTTP ----------------------------------------------------------


class ApiClient:
    """``requests`` against the API's base URL, with a bearer token when given."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        import requests

        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs):
        return self.session.request(method, self.base_url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.request("PATCH", path, **kwargs)


class ApiHarness:
    """The app of a pipeline harness served over HTTP, and keys to call it with."""

    def __init__(self, pipeline: PipelineHarness, server_url: str) -> None:
        self.pipeline = pipeline
        self.app = pipeline.app
        self.sandbox = pipeline.sandbox
        self.server_url = server_url
        self.base_url = server_url + pipeline.settings.application_context.rstrip("/")

    def key(self, *scopes: str, user: str | None = "carol.customer@example.com", **kw) -> str:
        from ticket_manager.api.keys import create_key

        with self.app.app_context():
            _row, token = create_key(
                "test", list(scopes or ("tickets:read", "tickets:write")), user, **kw
            )
        return token

    def client(self, *scopes: str, **kwargs) -> ApiClient:
        return ApiClient(self.base_url, self.key(*scopes, **kwargs))

    def anonymous(self) -> ApiClient:
        return ApiClient(self.base_url)

    def rows(self, model):
        from ticket_manager.extensions import db

        with self.app.app_context():
            rows = db.session.query(model).all()
            db.session.expunge_all()
            return rows


@pytest.fixture
def make_api(make_pipeline, serve):
    """An API over HTTP on a fresh database: ``make_api(KEY="value")``."""

    def build(**changes: str) -> ApiHarness:
        changes.setdefault("API_RATE_LIMIT", "off")
        changes.setdefault("API_UNAUTHENTICATED_RATE_LIMIT", "off")
        harness = make_pipeline(**changes)
        return ApiHarness(harness, serve(harness.app, tls=False))

    return build


@pytest.fixture
def api(make_api) -> ApiHarness:
    """The REST API against the emulated Jira, on SQLite and PostgreSQL."""
    return make_api()


@pytest.fixture
def browser():
    """Headless Debian Chromium with a fresh profile (see tests/chromium.py)."""
    from chromium import launch

    with launch() as chromium:
        yield chromium
