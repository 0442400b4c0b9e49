"""Serve an emulator's WSGI app on 127.0.0.1 over real HTTP(S), in a background thread.

The emulators must be reached the way the real services are: over TCP, and over TLS where
the real service insists on it (MSAL refuses plain-http authorities). A throw-away
certificate authority made with ``trustme`` signs the servers' certificates; clients trust
it through ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``, exactly as they would a private CA.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class SandboxCA:
    """A test certificate authority and one server certificate for 127.0.0.1 and localhost."""

    def __init__(self) -> None:
        self._ca = trustme.CA(organization_name="Ticket Manager sandbox")
        self._server_cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")

    def write_ca_bundle(self, path: Path) -> Path:
        """Write the CA certificate as PEM, for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(path))
        return path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context that presents the sandbox server certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the sandbox CA (for tests using ssl directly)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log: the emulators keep a request log of their own."""

    def log_request(self, code="-", size="-") -> None:
        pass


class EmulatorServer:
    """One WSGI app listening on 127.0.0.1, threaded, started and stopped on demand."""

    def __init__(
        self,
        app,
        *,
        ca: SandboxCA | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = app
        self._ca = ca
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            app,
            threaded=True,
            request_handler=QuietRequestHandler,
            ssl_context=ca.server_context() if ca else None,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ca else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
