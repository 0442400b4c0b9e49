"""`flask o365 ...`: sign in, run the mailbox worker, reconcile, and retry failures."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from ticket_manager import health
from ticket_manager.commands.progress import Progress
from ticket_manager.config import ConfigError, Settings
from ticket_manager.extensions import db, get_settings
from ticket_manager.graph.errors import GraphError, SignInError
from ticket_manager.graph.sign_in import token_provider
from ticket_manager.jira.errors import JiraError
from ticket_manager.logs import configure_logging
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline.leases import WORKER_ID
from ticket_manager.pipeline.ledger import requeue
from ticket_manager.pipeline.reconcile import Reconciler
from ticket_manager.pipeline.worker import Services, Worker
from ticket_manager.web.metrics import serve_worker_metrics

log = logging.getLogger("ticket_manager.o365")

SHUTDOWN_GRACE_SECONDS = 8.0

mailbox_option = click.option(
    "-m",
    "--mailbox",
    "mailboxes",
    multiple=True,
    help="Only this mailbox (one of MAILBOX); repeat for several. Default: all.",
)


@click.group("o365")
def o365() -> None:
    """Microsoft 365 mailbox operations: sign-in, the email worker, reconciliation."""
    configure_logging()


def _settings() -> Settings:
    return get_settings(current_app)


def _selected(settings: Settings, mailboxes: tuple[str, ...]) -> list[str]:
    settings.require("MAILBOX")
    configured = {m.lower(): m for m in settings.mailboxes}
    if not mailboxes:
        return list(settings.mailboxes)
    unknown = [m for m in mailboxes if m.lower() not in configured]
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]} is not one of MAILBOX ({', '.join(settings.mailboxes)})",
            param_hint="--mailbox",
        )
    return [configured[m.lower()] for m in mailboxes]


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from None


@o365.command("authenticate")
@click.option("--force", is_flag=True, help="Sign in again even if a stored sign-in works.")
@with_appcontext
def authenticate(force: bool) -> None:
    """Sign in to Microsoft 365 with the flow set by O365_AUTH_FLOW."""
    settings = _settings()
    try:
        tokens = token_provider(settings)
        if settings.auth_flow == "credentials":
            tokens.access_token()
            click.echo(
                f"App-only sign-in works: the identity platform issued a token for client "
                f"{settings.client_id} in tenant {settings.tenant_id}."
            )
            return
        if not force:
            try:
                tokens.access_token()
                click.echo(f"Account already authenticated as {tokens.signed_in_username()}.")
                return
            except SignInError:
                log.debug("no stored sign-in that works: starting a new one")
        if settings.auth_flow == "device":
            flow = tokens.initiate_device_flow()
            click.echo(flow["message"])
            tokens.complete_device_flow(flow)
        else:
            flow = tokens.initiate_auth_code_flow(settings.redirect_uri)
            click.echo("Visit the following url to give consent:")
            click.echo(flow["auth_uri"])
            pasted = click.prompt("Paste the authenticated url here", prompt_suffix=":\n")
            tokens.complete_auth_code_flow(flow, _auth_response(pasted))
    except (SignInError, GraphError) as exc:
        _fail(exc)
    click.echo(
        f"Authenticated as {tokens.signed_in_username()}. The sign-in is stored, encrypted, "
        "in the database; every worker will use it."
    )


def _auth_response(pasted: str) -> dict[str, str]:
    """The parameters of the URL the browser was sent to (query, or fragment)."""
    parts = urlsplit(pasted.strip())
    params = dict(parse_qsl(parts.query)) or dict(parse_qsl(parts.fragment))
    if not params:
        raise SignInError("the pasted text is not the URL the browser was sent to")
    return params


@o365.command("handle-incoming-email")
@mailbox_option
@click.option("--once", is_flag=True, help="One sync round for each mailbox, then exit.")
@with_appcontext
def handle_incoming_email(mailboxes: tuple[str, ...], once: bool) -> None:
    """Handle incoming email: keep the mailboxes in sync and turn new mail into tickets."""
    settings = _settings()
    selected = _selected(settings, mailboxes)
    app = current_app._get_current_object()
    database = health.database(app)
    if not database.ok:
        # Without a reachable database at the right schema every round would only fail.
        raise click.ClickException(f"the worker cannot start: {database.detail}")
    sqlite_lock = _lock_sqlite_database()  # noqa: F841 - held until the process ends
    metrics_server = None
    try:
        worker = Worker(app, settings, selected)
        if settings.metrics_port:
            metrics_server = serve_worker_metrics(app, settings, worker.services.tokens)
    except (SignInError, GraphError, JiraError, ConfigError) as exc:
        _fail(exc)
    log.info("worker started", extra={"mailbox": ",".join(selected), "worker": WORKER_ID})
    # Said whatever LOG_LEVEL is: a person who started the worker sees that it runs, and how
    # (JSON logs are for machines, which read the "worker started" event instead).
    rounds = "one round" if once else f"a round every {settings.poll_interval} s"
    _tell(
        settings,
        f"Worker started: watching {', '.join(selected)} ({settings.auth_flow} flow, tenant "
        f"{settings.tenant_id}), database {health.database_url()}, {rounds}"
        + ("." if once else "; Ctrl-C to stop."),
    )

    thread = threading.Thread(target=worker.run, kwargs={"once": once}, name="worker")
    stop_requested = threading.Event()

    def request_stop(signum, _frame) -> None:
        if stop_requested.is_set():
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info(
            "stopping: finishing the work in flight", extra={"state": signal.strsignal(signum)}
        )
        stop_requested.set()
        worker.stop()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        thread.start()
        while thread.is_alive() and not stop_requested.is_set():
            thread.join(0.2)
        thread.join(SHUTDOWN_GRACE_SECONDS if stop_requested.is_set() else None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    if thread.is_alive():
        # A call still hangs: its row keeps its ledger state and is retried at the next start.
        log.warning("exiting with work in flight; it will be retried from the ledger")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    log.info("worker stopped")
    _tell(
        settings,
        f"Worker stopped: {worker.rounds_synced} round(s) synced, {worker.rounds_failed} failed.",
    )
    if once and worker.rounds_failed and not worker.rounds_synced:
        raise click.ClickException(f"no mailbox could be synced: {worker.last_error}")


def _tell(settings: Settings, line: str) -> None:
    """A line for the person at the terminal, unless stderr carries JSON logs only."""
    if settings.log_format != "json":
        click.echo(line, err=True)


def _lock_sqlite_database() -> IO[str] | None:
    """SQLite supports one worker: hold a lock file next to the database while this one runs.

    The lock is the operating system's (flock), so it goes with the process however it ends,
    kill -9 included. The web app does not take it: it may run alongside the worker.
    """
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database).resolve()
    lock = database.with_name(database.name + ".worker-lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid, _, host = (lock.read().strip() or "? ?").partition(" ")
        lock.close()
        raise click.ClickException(
            f"another worker (pid {pid} on {host}) is running on this SQLite database; "
            "SQLite supports one worker: use PostgreSQL "
            "(SQLALCHEMY_DATABASE_URI=postgresql+psycopg://...) to run several"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()} {socket.gethostname()}\n")
    lock.flush()
    return lock


@o365.command("check-for-missing-tickets")
@click.option(
    "-d",
    "--days",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="number of days to search back",
)
@click.option("--dry-run", is_flag=True, help="Only report what is missing; change nothing.")
@mailbox_option
@with_appcontext
def check_for_missing_tickets(days: int, dry_run: bool, mailboxes: tuple[str, ...]) -> None:
    """Check for possible tickets that went missing in the last days.

    Without --dry-run it processes what it finds as the worker would: it creates Jira
    tickets and comments and sends the acknowledgement emails. Ctrl-C once stops taking new
    emails and finishes those in flight; twice stops at once (the next run finds the rest).
    """
    settings = _settings()
    selected = _selected(settings, mailboxes)
    stop = _InterruptRequests()
    try:
        services = Services(settings)
        reconciler = Reconciler(current_app._get_current_object(), settings, services)
        exit_code = 0
        with stop.installed():
            for address in selected:
                if stop.requested:
                    break
                report = reconciler.find_missing(address, timedelta(days=days))
                click.echo(
                    f"{address}: {report.listed} emails in the last {days} day(s), "
                    f"{report.listed - len(report.missing)} in the ledger, "
                    f"{len(report.missing)} missing, {len(report.unfinished)} unfinished."
                )
                for item in report.missing:
                    click.echo(
                        f"  missing  {item.received:%Y-%m-%d %H:%M}  {item.sender}  {item.subject}"
                        + _routed_by(services, settings, address, item.id, dry_run)
                    )
                if dry_run or not (report.missing or report.unfinished):
                    continue
                total = len(report.missing) + len(report.unfinished)
                with Progress(total, "  processing") as progress:
                    outcomes = reconciler.process(
                        address, report, progress=progress, should_stop=lambda: stop.requested
                    )
                for state, count in sorted(outcomes.items()):
                    click.echo(f"  {state}: {count}")
                if outcomes.get(MessageState.FAILED.value):
                    exit_code = 1
        if stop.requested:
            click.echo("Stopped on Ctrl-C; run the command again to process the rest.", err=True)
            exit_code = 130
    except (SignInError, GraphError, JiraError) as exc:
        _fail(exc)
    if exit_code:
        raise SystemExit(exit_code)


def _routed_by(services, settings: Settings, mailbox: str, graph_id: str, dry_run: bool) -> str:
    """In a dry run with ROUTING_RULES: which rule the email would be filed by."""
    rules = settings.routing_rules
    if not dry_run or rules is None:
        return ""
    route = rules.route(services.graph.get_message(mailbox, graph_id))
    return f"  [rule {route.rule}]" if route else "  [no rule: mailbox board]"


class _InterruptRequests:
    """Ctrl-C (or SIGTERM) once: stop taking new work; twice: exit now.

    Exiting at once loses nothing: a message is either finished in the ledger, pending in it
    (retried by the worker and the next run), or not yet recorded (still in the mailbox).
    """

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum, _frame) -> None:
        if self.requested:
            click.echo(
                "Second Ctrl-C: stopping now. The emails that were in flight stay claimed for "
                "5 minutes, then the worker or the next run finishes them; the next run finds "
                "the rest.",
                err=True,
            )
            sys.stderr.flush()
            os._exit(130)
        self.requested = True
        click.echo(
            "Stopping: no new emails are taken; finishing those in flight. "
            "Press Ctrl-C again to stop at once.",
            err=True,
        )

    @contextlib.contextmanager
    def installed(self):
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@o365.command("list-failed")
@mailbox_option
@with_appcontext
def list_failed(mailboxes: tuple[str, ...]) -> None:
    """List the messages whose processing failed, with the reason and the next retry."""
    rows = _failed_rows(_selected(_settings(), mailboxes))
    if not rows:
        click.echo("No failed messages.")
        return
    budget = _settings().max_attempts
    for row in rows:
        retry = (
            f"next try {row.next_attempt_at:%Y-%m-%d %H:%M}"
            if row.attempts < budget and row.next_attempt_at
            else "no automatic retry left: use retry-failed"
        )
        click.echo(
            f"#{row.id}  {row.mailbox}  {row.sender or '?'}  {row.subject or '(no subject)'}\n"
            f"    attempts {row.attempts}, {retry}\n    {row.last_error}"
        )


@o365.command("retry-failed")
@click.option("--id", "ids", type=int, multiple=True, help="Only this ledger id; repeatable.")
@mailbox_option
@with_appcontext
def retry_failed(ids: tuple[int, ...], mailboxes: tuple[str, ...]) -> None:
    """Retry failed messages now (all of them, or the ones named with --id)."""
    settings = _settings()
    rows = _failed_rows(_selected(settings, mailboxes), ids)
    if not rows:
        click.echo("No failed messages to retry.")
        return
    try:
        processor = Services(settings).processor()
    except (SignInError, GraphError, JiraError) as exc:
        _fail(exc)
    failed = 0
    for row_id in [r.id for r in rows]:
        outcome = processor.process(row_id, force=True)
        row = db.session.get(LedgerMessage, row_id)
        detail = row.ticket_key or row.reason or row.last_error or ""
        click.echo(f"#{row_id}  {row.state.value}  {detail}")
        failed += row.state == MessageState.FAILED or outcome.state is None
    if failed:
        raise SystemExit(1)


@o365.command("list-held")
@mailbox_option
@with_appcontext
def list_held(mailboxes: tuple[str, ...]) -> None:
    """List the messages held by an intake cap or a sender check, with the reason."""
    rows = _held_rows(_selected(_settings(), mailboxes))
    if not rows:
        click.echo("No held messages.")
        return
    for row in rows:
        click.echo(
            f"#{row.id}  {row.mailbox}  {row.sender or '?'}  {row.subject or '(no subject)'}\n"
            f"    {row.rule}: {row.reason}"
        )


@o365.command("release-held")
@click.option(
    "--id", "ids", type=int, multiple=True, required=True, help="A ledger id; repeatable."
)
@with_appcontext
def release_held(ids: tuple[int, ...]) -> None:
    """Release held messages: the worker processes them on its next round, rules waived."""
    rows = _held_rows(_selected(_settings(), ()), ids)
    found = {row.id for row in rows}
    for row in rows:
        requeue(row, waive_rules=True)
        click.echo(f"#{row.id}  released: the worker takes it on its next round")
    missing = [i for i in ids if i not in found]
    if missing:
        click.echo(f"Not held: {', '.join(f'#{i}' for i in missing)}", err=True)
        raise SystemExit(1)


def _held_rows(mailboxes: list[str], ids: tuple[int, ...] = ()) -> list[LedgerMessage]:
    query = select(LedgerMessage).where(
        LedgerMessage.state == MessageState.HELD,
        LedgerMessage.mailbox.in_([m.lower() for m in mailboxes]),
    )
    if ids:
        query = query.where(LedgerMessage.id.in_(ids))
    return list(db.session.scalars(query.order_by(LedgerMessage.id)))


def _failed_rows(mailboxes: list[str], ids: tuple[int, ...] = ()) -> list[LedgerMessage]:
    database = health.database(current_app._get_current_object())
    if not database.ok:
        raise click.ClickException(database.detail)
    query = select(LedgerMessage).where(
        LedgerMessage.state == MessageState.FAILED,
        LedgerMessage.mailbox.in_([m.lower() for m in mailboxes]),
    )
    if ids:
        query = query.where(LedgerMessage.id.in_(ids))
    return list(db.session.scalars(query.order_by(LedgerMessage.id)))
