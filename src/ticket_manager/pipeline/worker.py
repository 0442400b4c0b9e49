"""The long-running worker behind `flask o365 handle-incoming-email`.

It runs a delta round per mailbox it owns, then sleeps for the poll interval, waking early
when a change notification asked for a sync or a mailbox came free, and stops cleanly on
SIGTERM/SIGINT. Several workers share the mailboxes through leases (ownership.py): each
mailbox's rounds, subscription, retries and outgoing email are one worker's at a time. A
mailbox whose sign-in or permission fails is reported and skipped; the others go on.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app, has_app_context
from sqlalchemy import select, update

from ticket_manager.config import Settings
from ticket_manager.extensions import db
from ticket_manager.graph.client import GraphClient
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.graph.memory import AttachmentMemory
from ticket_manager.graph.sign_in import token_provider
from ticket_manager.http import build_session, request_timeout
from ticket_manager.jira.client import JiraClient
from ticket_manager.jira.errors import JiraError
from ticket_manager.models import Mailbox, MessageState
from ticket_manager.pipeline.outbox import Outbox
from ticket_manager.pipeline.ownership import HEARTBEAT_INTERVAL, JIRA_POLLER, Ownership
from ticket_manager.pipeline.pacing import shared_pacer
from ticket_manager.pipeline.processor import MessageProcessor
from ticket_manager.pipeline.relay import CommentPoller, remember_service_account
from ticket_manager.pipeline.subscriptions import ensure_subscription
from ticket_manager.pipeline.sync import MailboxSync, RoundResult, mailbox_state

log = logging.getLogger("ticket_manager.worker")

# A round summary like the one before is logged at INFO at most this often per mailbox.
IDLE_ROUND_LOG_SECONDS = 600


class Services:
    """The clients the pipeline needs, built once; Jira is connected lazily and retried."""

    def __init__(self, settings: Settings, app: Flask | None = None) -> None:
        settings.require_microsoft()
        settings.require_jira()
        self.settings = settings
        self.tokens = token_provider(settings)
        if app is None and has_app_context():
            app = current_app._get_current_object()
        # Each mailbox's Graph budget is split with the other processes that use it at once.
        self.pacer = shared_pacer(app, settings.graph_request_budget) if app else None
        self.graph = GraphClient(
            settings.graph_url,
            self.tokens.access_token,
            build_session(settings.ca_bundle),
            timeout=request_timeout(settings.http_read_timeout),
            pacer=self.pacer,
            memory=AttachmentMemory(settings.processing_attachment_memory),
        )
        self._jira: JiraClient | None = None

    @property
    def jira(self) -> JiraClient:
        if self._jira is None:
            self._jira = JiraClient(self.settings)
        return self._jira

    def close(self) -> None:
        """Give back this process's share of the mailboxes' Graph budget."""
        if self.pacer is not None:
            self.pacer.close()

    def processor(self) -> MessageProcessor:
        return MessageProcessor(self.settings, self.graph, self.jira)

    def outbox(self, app: Flask | None = None) -> Outbox:
        return Outbox(self.settings, self.graph, self.jira, app)


class Worker:
    """Syncs the mailboxes it owns until told to stop."""

    def __init__(self, app: Flask, settings: Settings, mailboxes: list[str]) -> None:
        self.app = app
        self.settings = settings
        self.mailboxes = mailboxes
        self.services = Services(settings, app)
        self.ownership = Ownership(app, mailboxes)
        self._stop = threading.Event()
        self._sync: MailboxSync | None = None
        self._syncing: str | None = None
        self._next_jira_poll = 0.0
        # Rounds that worked and rounds that failed, with the last reason: `--once` exits 1
        # when nothing could be synced.
        self.rounds_synced = 0
        self.rounds_failed = 0
        self.last_error: str | None = None
        self._round_logged: dict[str, tuple[float, tuple]] = {}

    def stop(self) -> None:
        """Ask the worker to finish what it is doing and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, once: bool = False) -> None:
        """Sync the mailboxes this worker owns, wait, repeat; with ``once``, a single pass."""
        self.ownership.start()
        try:
            while not self.stopping:
                self.ownership.rebalance()
                self.ownership.took_mailboxes()  # this round syncs them
                owned = self.ownership.held_mailboxes()
                if once and len(owned) < len(self.mailboxes):
                    others = [m for m in self.mailboxes if m not in owned]
                    log.info("mailboxes left to other workers", extra={"mailbox": ",".join(others)})
                for address in owned:
                    if self.stopping:
                        break
                    if self.ownership.holds_mailbox(address):
                        self.sync_one(address)
                if not self.stopping:
                    self.relay_to_customers()
                if once:
                    break
                self._wait_for_next_round()
        finally:
            if self._sync is not None:
                self._sync.close()
            self.services.close()
            self.ownership.stop()

    def _should_stop_round(self) -> bool:
        """Stop when asked to, or when the mailbox of the round is no longer ours."""
        return self.stopping or not self.ownership.holds_mailbox(self._syncing or "")

    def sync_one(self, address: str) -> RoundResult | None:
        """One round for one mailbox; every failure is logged and recorded, never raised."""
        self._syncing = address
        with self.app.app_context():
            try:
                if self._sync is None:
                    self._sync = MailboxSync(
                        self.app,
                        self.settings,
                        self.services.graph,
                        self.services.processor(),
                        should_stop=self._should_stop_round,
                    )
                ensure_subscription(self.services.graph, self.settings, address)
                result = self._sync.run_round(address)
                counts = {
                    "seen": result.seen,
                    "tickets": result.count(MessageState.TICKET_CREATED),
                    "rejected": result.count(MessageState.REJECTED),
                    "failed": result.count(MessageState.FAILED),
                }
                log.log(
                    self._round_log_level(address, tuple(counts.values())),
                    "sync round done",
                    extra={"mailbox": address, **counts},
                )
                self.rounds_synced += 1
                return result
            except (SignInError, GraphError, JiraError) as exc:
                self._record_error(address, exc)
            except Exception as exc:  # the loop must survive anything one round does
                log.exception("sync round crashed", extra={"mailbox": address})
                self._record_error(address, exc)
            finally:
                db.session.remove()
        return None

    def _round_log_level(self, address: str, summary: tuple) -> int:
        """INFO for a summary unlike the last one, and for a repeat every IDLE_ROUND_LOG_SECONDS.

        Change notifications can wake the worker many times a minute: the same idle summary
        each time would drown the rounds that did something.
        """
        moment = time.monotonic()
        last = self._round_logged.get(address)
        if last is None or last[1] != summary or moment - last[0] >= IDLE_ROUND_LOG_SECONDS:
            self._round_logged[address] = (moment, summary)
            return logging.INFO
        return logging.DEBUG

    def relay_to_customers(self) -> None:
        """Poll Jira for new comments when due, then send the email that is waiting.

        One worker at a time polls Jira (it holds the poller's lease); each sends the email of
        the mailboxes it owns.
        """
        with self.app.app_context():
            try:
                jira = self.services.jira
                interval = self.settings.jira_poll_interval
                if self.ownership.holds(JIRA_POLLER):
                    remember_service_account(jira.service_account_id())
                    if interval and time.monotonic() >= self._next_jira_poll:
                        self._next_jira_poll = time.monotonic() + interval
                        queued = CommentPoller(self.settings, jira).poll()
                        if queued:
                            log.info("jira comments to relay", extra={"seen": queued})
                owned = self.ownership.held_mailboxes()
                if owned:
                    self.services.outbox(self.app).send_due(owned)
            except (SignInError, GraphError, JiraError) as exc:
                log.error("relay to customers failed", extra={"error": str(exc)})
            except Exception:  # the loop must survive anything the relay does
                log.exception("relay to customers crashed")
            finally:
                db.session.remove()

    def _record_error(self, address: str, exc: Exception) -> None:
        message = str(exc) or exc.__class__.__name__
        self.rounds_failed += 1
        self.last_error = message
        log.error("mailbox not synced", extra={"mailbox": address, "error": message})
        try:
            db.session.rollback()
            state = mailbox_state(address)
            state.last_sync_error = message[:2000]
            db.session.commit()
        except Exception:  # the database itself may be what failed
            db.session.rollback()

    def _wait_for_next_round(self) -> None:
        """Sleep for the poll interval, waking early for a sync request or a mailbox taken.

        A change notification asks for a sync of one of our mailboxes; a mailbox is taken when
        another worker stopped or gave it back.
        """
        deadline = time.monotonic() + self.settings.poll_interval
        next_rebalance = time.monotonic() + HEARTBEAT_INTERVAL
        while not self.stopping and time.monotonic() < deadline:
            if self._sync_requested() or self.ownership.took_mailboxes():
                return
            if time.monotonic() >= next_rebalance:
                next_rebalance = time.monotonic() + HEARTBEAT_INTERVAL
                if self.ownership.rebalance():
                    return
            self._stop.wait(max(0.0, min(1.0, deadline - time.monotonic())))

    def _sync_requested(self) -> bool:
        addresses = [m.lower() for m in self.ownership.held_mailboxes()]
        if not addresses:
            return False
        with self.app.app_context():
            try:
                ours = Mailbox.address.in_(addresses)
                requested = db.session.scalar(
                    select(Mailbox.id).where(ours, Mailbox.sync_requested_at.is_not(None)).limit(1)
                )
                if requested is None:
                    return False
                db.session.execute(update(Mailbox).where(ours).values(sync_requested_at=None))
                db.session.commit()
                return True
            except Exception:
                db.session.rollback()
                return False
            finally:
                db.session.remove()
