"""Start the three emulators together and describe them as Ticket Manager configuration."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ticket_manager_sandbox.graph import GraphEmulator
from ticket_manager_sandbox.identity import IdentityEmulator
from ticket_manager_sandbox.jira import JiraEmulator
from ticket_manager_sandbox.server import EmulatorServer, SandboxCA


@dataclass
class SandboxAccounts:
    """The tenant, app registration, mailboxes and Jira account the emulators know."""

    tenant_id: str = "8f3b1c2d-5e6f-4a7b-9c8d-0e1f2a3b4c5d"
    client_id: str = "0b5c7e2a-1d3f-4e5a-8b6c-7d8e9f0a1b2c"
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - a fixture of the emulator
    mailboxes: list[str] = field(default_factory=lambda: ["support@example.com"])
    jira_user: str = "ticket-bot@example.com"
    jira_api_token: str = "sandbox-jira-token"  # noqa: S105 - a fixture of the emulator
    jira_deployment: str = "Cloud"


class Sandbox:
    """Identity platform, Graph and Jira emulators sharing one test CA."""

    def __init__(
        self,
        accounts: SandboxAccounts | None = None,
        *,
        state_dir: Path | None = None,
        ports: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.accounts = accounts or SandboxAccounts()
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="ticket-manager-sandbox-"))
        self.ca = SandboxCA()
        self.ca_bundle = self.ca.write_ca_bundle(self.state_dir / "sandbox-ca.pem")
        a = self.accounts
        self.identity = IdentityEmulator(
            tenant_id=a.tenant_id,
            clients={a.client_id: a.client_secret},
            users=[{"upn": mailbox} for mailbox in a.mailboxes],
        )
        self.graph = GraphEmulator(
            token_validator=self.identity.validate_access_token,
            mailboxes=a.mailboxes,
        )
        self.jira = JiraEmulator(
            deployment=a.jira_deployment,
            service_account={"email": a.jira_user, "api_token": a.jira_api_token},
        )
        self._ports = ports
        self.servers: dict[str, EmulatorServer] = {}

    def start(self) -> Sandbox:
        identity_port, graph_port, jira_port = self._ports
        self.servers = {
            name: EmulatorServer(self.serve_app(name), ca=self.ca, port=port).start()
            for name, port in (
                ("identity", identity_port),
                ("graph", graph_port),
                ("jira", jira_port),
            )
        }
        self._connect()
        return self

    def serve_app(self, name: str):
        """A WSGI app that hands each request to the emulator's current ``app`` (new after
        :meth:`reset`), so that a running server survives a reset."""
        emulator = getattr(self, name)

        def current(environ, start_response):
            return emulator.app(environ, start_response)

        return current

    def reset(self) -> None:
        """Every emulator as if just started, on the same servers, ports and CA."""
        self.graph.notifier.wait_idle()  # no delivery of the last test lands in the next
        for emulator in (self.identity, self.graph, self.jira):
            emulator.reset()
        self._connect()

    def _connect(self) -> None:
        """What each emulator knows of the others once their servers are listening."""
        # The emulated Graph calls subscribers back over HTTPS served with the sandbox CA.
        self.graph.notifier.verify = str(self.ca_bundle)
        if "graph" in self.servers:
            self.identity.graph_resources.add(self.servers["graph"].base_url)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers = {}

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def authority_host(self) -> str:
        return self.servers["identity"].base_url

    @property
    def graph_url(self) -> str:
        return f"{self.servers['graph'].base_url}/v1.0"

    @property
    def jira_url(self) -> str:
        return self.servers["jira"].base_url

    def environment(self) -> dict[str, str]:
        """Ticket Manager configuration that points every client at the emulators."""
        a = self.accounts
        return {
            "O365_AUTHORITY_HOST": self.authority_host,
            "O365_GRAPH_URL": self.graph_url,
            "O365_TENANT_ID": a.tenant_id,
            "O365_CLIENT_ID": a.client_id,
            "O365_CLIENT_SECRET": a.client_secret,
            "O365_AUTH_FLOW": "credentials",
            "MAILBOX": ",".join(a.mailboxes),
            "ATLASSIAN_URL": self.jira_url,
            "ATLASSIAN_USER": a.jira_user,
            "ATLASSIAN_API_TOKEN": a.jira_api_token,
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "SSL_CERT_FILE": str(self.ca_bundle),
        }
