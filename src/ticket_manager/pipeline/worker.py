"""The long-running worker behind `flask o365 handle-incoming-email`.

It runs a delta round per mailbox, then sleeps for the poll interval, waking early when a
change notification asked for a sync, and stops cleanly on SIGTERM/SIGINT. A mailbox whose
sign-in or permission fails is reported and skipped; the others go on.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from sqlalchemy import select

from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.auth import TokenProvider
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.graph.token_store import DatabaseTokenStore
from ticket_manager.http import build_session
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraError
from ticket_manager.models import Mailbox, MessageState
from ticket_manager.pipeline.outbox import Outbox
from ticket_manager.pipeline.processor import MessageProcessor
from ticket_manager.pipeline.relay import CommentPoller, remember_service_account
from ticket_manager.pipeline.subscriptions import ensure_subscription
from ticket_manager.pipeline.sync import MailboxSync, RoundResult, mailbox_state

log = logging.getLogger("ticket_manager.worker")


def token_provider(settings: Settings) -> TokenProvider:
    """The sign-in for the configured flow; delegated sign-ins are read from the database."""
    session = build_session(settings.ca_bundle)
    store = None
    if settings.auth_flow != "credentials":
        store = DatabaseTokenStore(
            settings.secret_key, f"{settings.tenant_id}/{settings.client_id}"
        )
    return TokenProvider(settings, session, store)


class Services:
    """The clients the pipeline needs, built once; Jira is connected lazily and retried."""

    def __init__(self, settings: Settings) -> None:
        settings.require_microsoft()
        settings.require_jira()
        self.settings = settings
        self.tokens = token_provider(settings)
        self.graph = GraphClient(
            settings.graph_url, self.tokens.access_token, build_session(settings.ca_bundle)
        )
        self._jira: JiraClient | None = None

    @property
    def jira(self) -> JiraClient:
        if self._jira is None:
            self._jira = JiraClient(self.settings)
        return self._jira

    def processor(self) -> MessageProcessor:
        return MessageProcessor(self.settings, self.graph, self.jira)

    def outbox(self, app: Flask | None = None) -> Outbox:
        return Outbox(self.settings, self.graph, self.jira, app)


class Worker:
    """Polls every mailbox until told to stop."""

    def __init__(self, app: Flask, settings: Settings, mailboxes: list[str]) -> None:
        self.app = app
        self.settings = settings
        self.mailboxes = mailboxes
        self.services = Services(settings)
        self._stop = threading.Event()
        self._sync: MailboxSync | None = None
        self._next_jira_poll = 0.0

    def stop(self) -> None:
        """Ask the worker to finish what it is doing and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, once: bool = False) -> None:
        """Sync every mailbox, wait, repeat; with ``once``, a single pass."""
        try:
            while not self.stopping:
                for address in self.mailboxes:
                    if self.stopping:
                        break
                    self.sync_one(address)
                if not self.stopping:
                    self.relay_to_customers()
                if once:
                    break
                self._wait_for_next_round()
        finally:
            if self._sync is not None:
                self._sync.close()

    def sync_one(self, address: str) -> RoundResult | None:
        """One round for one mailbox; every failure is logged and recorded, never raised."""
        with self.app.app_context():
            try:
                if self._sync is None:
                    self._sync = MailboxSync(
                        self.app,
                        self.settings,
                        self.services.graph,
                        self.services.processor(),
                        should_stop=lambda: self.stopping,
                    )
                ensure_subscription(self.services.graph, self.settings, address)
                result = self._sync.run_round(address)
                log.info(
                    "sync round done",
                    extra={
                        "mailbox": address,
                        "seen": result.seen,
                        "tickets": result.count(MessageState.TICKET_CREATED),
                        "rejected": result.count(MessageState.REJECTED),
                        "failed": result.count(MessageState.FAILED),
                    },
                )
                return result
            except (SignInError, GraphError, JiraError) as exc:
                self._record_error(address, exc)
            except Exception as exc:  # the loop must survive anything one round does
                log.exception("sync round crashed", extra={"mailbox": address})
                self._record_error(address, exc)
            finally:
                db.session.remove()
        return None

    def relay_to_customers(self) -> None:
        """Poll Jira for new comments when due, then send every email that is waiting."""
        with self.app.app_context():
            try:
                jira = self.services.jira
                remember_service_account(jira.service_account_id())
                interval = self.settings.jira_poll_interval
                if interval and time.monotonic() >= self._next_jira_poll:
                    self._next_jira_poll = time.monotonic() + interval
                    queued = CommentPoller(self.settings, jira).poll()
                    if queued:
                        log.info("jira comments to relay", extra={"seen": queued})
                self.services.outbox(self.app).send_due()
            except (SignInError, GraphError, JiraError) as exc:
                log.error("relay to customers failed", extra={"error": str(exc)})
            except Exception:  # the loop must survive anything the relay does
                log.exception("relay to customers crashed")
            finally:
                db.session.remove()

    def _record_error(self, address: str, exc: Exception) -> None:
        message = str(exc) or exc.__class__.__name__
        log.error("mailbox not synced", extra={"mailbox": address, "error": message})
        try:
            db.session.rollback()
            state = mailbox_state(address)
            state.last_sync_error = message[:2000]
            db.session.commit()
        except Exception:  # the database itself may be what failed
            db.session.rollback()

    def _wait_for_next_round(self) -> None:
        """Sleep for the poll interval, waking when a notification asks for a sync."""
        deadline = time.monotonic() + self.settings.poll_interval
        while not self.stopping and time.monotonic() < deadline:
            if self._sync_requested():
                return
            self._stop.wait(1.0)

    def _sync_requested(self) -> bool:
        with self.app.app_context():
            try:
                requested = db.session.scalar(
                    select(Mailbox.id).where(Mailbox.sync_requested_at.is_not(None)).limit(1)
                )
                if requested is None:
                    return False
                db.session.query(Mailbox).update({Mailbox.sync_requested_at: None})
                db.session.commit()
                return True
            except Exception:
                db.session.rollback()
                return False
            finally:
                db.session.remove()
