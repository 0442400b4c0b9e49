"""`make demo`: run Ticket Manager against the built-in emulators, no account needed.

Starts the identity platform, Graph and Jira emulators, puts sample emails in the emulated
mailbox, migrates an SQLite database in ``.sandbox/``, and runs the service's steps against
them, saying what it found and where to look.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import socket
import threading
from pathlib import Path

import click
import requests
from flask_migrate import upgrade

from ticket_manager.api.keys import create_key
from ticket_manager.app import create_app
from ticket_manager.checks import run_checks
from ticket_manager.config import load_settings
from ticket_manager.extensions import db
from ticket_manager.models import LedgerMessage, MessageState
from ticket_manager.pipeline.worker import Worker
from ticket_manager_sandbox.samples import deliver_samples
from ticket_manager_sandbox.sandbox import Sandbox
from ticket_manager_sandbox.server import EmulatorServer

DEMO_SETTINGS = {
    "JIRA_TICKET_TYPE": "Task",
    "JIRA_TICKET_LABELS": "ticket",
    "JIRA_TICKET_LABEL_CATEGORIES": "general,bug",
    "JIRA_TICKET_LABEL_DEFAULT_CATEGORY": "general",
    "JIRA_SUPPORT_BOARD": "support",
    "JIRA_HELPDESK_BOARD": "project:HD",
    "JIRA_BOARDS": "JIRA_SUPPORT_BOARD,JIRA_HELPDESK_BOARD",
    "JIRA_DEFAULT_BOARD": "JIRA_SUPPORT_BOARD",
    "EMAIL_WHITELISTED_DOMAINS": "example.com",
    "EMAIL_BLACKLIST": "malicious@example.com",
    "TICKET_CLIENT_APP": "https://tickets.example.com/browse/",
}
# The demo tells its own story, so its own process logs only warnings; the env file it
# writes leaves LOG_LEVEL alone, so a worker started from it says what it does.
DEMO_PROCESS_SETTINGS = {"LOG_LEVEL": "WARNING"}
LOCK_FILE = "demo.lock"


class DemoRunning(Exception):
    """Another demo holds the state directory."""


def hold_state_dir(state_dir: Path):
    """Lock ``state_dir`` for this demo, or raise :class:`DemoRunning` naming the one there.

    The lock is the operating system's (flock): it goes with the process however it ends.
    """
    import fcntl
    import os

    lock = (state_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise DemoRunning(
            f"a demo is already running in {state_dir} ({holder}): stop it with Ctrl-C, or "
            "start this one elsewhere with DEMO_ARGS='--state-dir DIR'"
        ) from None
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock


def say(text: str = "", **style) -> None:
    click.echo(click.style(text, **style) if style else text)


def write_env_file(path: Path, environment: dict[str, str]) -> None:
    """Write the demo's configuration so other terminals can point commands at the sandbox."""
    lines = [f"{key}={shlex.quote(value)}" for key, value in sorted(environment.items())]
    path.write_text("# Written by `make demo`; valid while it runs.\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)


def ledger_rows(app) -> list[LedgerMessage]:
    """The ledger, oldest first, detached from the session for printing."""
    with app.app_context():
        rows = db.session.query(LedgerMessage).order_by(LedgerMessage.id).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def show_conversation(app, settings, sandbox: Sandbox, mailbox: str) -> None:
    """Alice reads the acknowledgement, answers it, and gets an agent's Jira comment back."""
    customer = "alice@example.com"
    [ack] = sandbox.graph.messages(customer, "inbox")
    say(f"\n{customer}'s inbox (emulated) received:", bold=True)
    say(f"  {ack['subject']!r} from {ack['from']['emailAddress']['address']}")
    key = ack["subject"].split("[", 1)[1].split("]", 1)[0]

    sandbox.graph.deliver(
        mailbox,
        subject=f"RE: {ack['subject'].removeprefix('RE: ')}",
        body="Thanks! It also shows E-43 now.",
        sender="Alice Martin <alice@example.com>",
        in_reply_to=ack["internetMessageId"],
    )
    sandbox.jira.add_comment_as(key, "bob.agent@example.com", "A technician is on the way.")
    say("Alice answers in the thread; agent Bob comments in Jira. One more round:", bold=True)
    Worker(app, settings, list(settings.mailboxes)).run(once=True)
    for comment in sandbox.jira.issue(key)["comments"]:
        first_line = next((line for line in comment["body"].splitlines() if "E-43" in line), "")
        if first_line:
            say(f"  {key} got a comment from Alice's email: {first_line.strip()!r}", fg="green")
    for message in sandbox.graph.messages(customer, "inbox"):
        if "technician" in message["body"]["content"]:
            say(f"  {customer} received {message['subject']!r}: Bob's comment", fg="green")


# Mail for the helpdesk@ alias goes to the Jira Service Management project HD.
DEMO_ROUTING = """
[[rules]]
name = "helpdesk"
match.recipient = "helpdesk@example.com"
set.board = "project:HD"
"""


def show_service_desk(app, settings, sandbox: Sandbox, mailbox: str) -> None:
    """An email to the helpdesk@ alias becomes a JSM customer request, and the conversation
    goes on through the portal's public comments; an internal note stays internal."""
    say("\nJira Service Management (helpdesk@ routes to service desk HD):", bold=True)
    customer, colleague = "dana@example.com", "erik@example.com"
    for address in (customer, colleague):
        sandbox.graph.add_mailbox(address)
    sandbox.graph.deliver(
        mailbox,
        subject="VPN keeps disconnecting",
        body="Since this morning the VPN drops every five minutes.",
        sender=f"Dana Customer <{customer}>",
        to=["Helpdesk <helpdesk@example.com>"],
        cc=[f"Erik Colleague <{colleague}>"],
        headers={"Delivered-To": "helpdesk@example.com"},
    )
    Worker(app, settings, list(settings.mailboxes)).run(once=True)
    row = ledger_rows(app)[-1]
    issue = sandbox.jira.issue(row.ticket_key) if row.ticket_key else None
    if issue is None or issue["request"] is None:
        say(f"  no customer request: {row.state.value} {row.last_error or row.reason}", fg="red")
        return
    key = issue["key"]
    say(
        f"  {key}  customer request raised for {issue['reporter']} (rule {row.rule}); "
        f"participant(s): {', '.join(issue['request']['participants'])}",
        fg="green",
    )
    [ack] = sandbox.graph.messages(customer, "inbox")
    portal = next((w for w in ack["body"]["content"].split('"') if "/portal/" in w), None)
    say(f"  {customer} received {ack['subject']!r} with the portal link {portal}", fg="green")

    sandbox.graph.deliver(
        mailbox,
        subject=f"RE: {ack['subject'].removeprefix('RE: ')}",
        body="It happens on the office Wi-Fi only.",
        sender=f"Dana Customer <{customer}>",
        in_reply_to=ack["internetMessageId"],
    )
    agent = "bob.agent@example.com"
    sandbox.jira.add_comment_as(key, agent, "Internal: looks like the Wi-Fi MTU again.", False)
    sandbox.jira.add_comment_as(key, agent, "We changed a setting; please reconnect.", True)
    Worker(app, settings, list(settings.mailboxes)).run(once=True)
    for comment in sandbox.jira.issue(key)["comments"]:
        if "office Wi-Fi" in comment["body"]:
            kind = "public" if comment["public"] else "internal"
            say(f"  Dana's reply became a {kind} request comment on {key}", fg="green")
    inbox = [m["body"]["content"] for m in sandbox.graph.messages(customer, "inbox")]
    emailed = any("please reconnect" in body for body in inbox)
    leaked = any("MTU" in body for body in inbox)
    say(
        f"  agent's public reply emailed to Dana: {'yes' if emailed else 'no'}; "
        f"internal note emailed: {'yes' if leaked else 'no'}",
        fg="green" if emailed and not leaked else "red",
    )


def run(state_dir: Path, once: bool) -> int:
    """Run the demo; returns the exit code."""
    # Everything the demo writes (database, keys, demo.env with its API key) is the user's only.
    os.umask(0o077)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    try:
        lock = hold_state_dir(state_dir)
    except DemoRunning as exc:
        say(f"Error: {exc}", fg="red")
        return 1
    database = state_dir / "demo.db"
    database.unlink(missing_ok=True)
    sandbox = Sandbox(state_dir=state_dir).start()
    api_server = None
    try:
        routing = state_dir / "routing.toml"
        routing.write_text(DEMO_ROUTING)
        sandbox.jira.add_service_desk("HD", "Help desk")
        environment = {
            **sandbox.environment(),
            **DEMO_SETTINGS,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "ROUTING_RULES": str(routing),
        }
        env_file = state_dir / "demo.env"
        write_env_file(env_file, environment)
        environment = {**environment, **DEMO_PROCESS_SETTINGS}
        mailbox = sandbox.accounts.mailboxes[0]

        say("Ticket Manager demo", bold=True)
        say(f"  identity platform  {sandbox.authority_host}")
        say(f"  Microsoft Graph    {sandbox.graph_url}")
        say(f"  Jira Cloud         {sandbox.jira_url}")
        say(f"  database           {database}")

        sandbox.graph.add_mailbox("alice@example.com")  # a customer, to see replies arrive
        delivered = deliver_samples(sandbox.graph, mailbox)
        say(f"\n{len(delivered)} sample emails delivered to {mailbox}.")

        app = create_app(environment)
        with app.app_context():
            upgrade()
        say("Database schema created (flask db upgrade).")

        say("\nflask check:", bold=True)
        results = run_checks(app)
        for result in results:
            mark = click.style("ok  ", fg="green") if result.ok else click.style("FAIL", fg="red")
            say(f"  {mark}  {result.name}: {result.detail}")

        say("\nflask o365 handle-incoming-email (one round):", bold=True)
        settings = load_settings(environment)
        Worker(app, settings, list(settings.mailboxes)).run(once=True)
        for row in ledger_rows(app):
            sender = row.sender or "?"
            if row.state == MessageState.TICKET_CREATED:
                issue = sandbox.jira.issue(row.ticket_key)
                labels = ",".join(issue["labels"])
                files = len(issue["attachments"])
                say(
                    f"  {row.ticket_key}  {issue['summary']!r} from {sender} "
                    f"(labels {labels}; priority {issue['priority']}; {files} attachment(s))",
                    fg="green",
                )
            else:
                say(
                    f"  {row.state.value:<8} {row.subject!r} from {sender}: {row.rule}: "
                    f"{row.reason or row.last_error}",
                    fg="yellow",
                )
        say("  (the mailbox's delta link is stored: the next round fetches changes only)")

        show_conversation(app, settings, sandbox, mailbox)
        show_service_desk(app, settings, sandbox, mailbox)
        api_server, api_key = show_api(app, settings)

        say("\nWhere to look:", bold=True)
        curl = f"curl --cacert {sandbox.ca_bundle}"
        say(f"  mailbox state     {curl} {sandbox.graph_url.rsplit('/v1.0', 1)[0]}/_sandbox/state")
        say(f"  Jira state        {curl} {sandbox.jira_url}/_sandbox/state")
        say(f"  configuration     {env_file}")
        say(f"  other terminal    set -a; . {env_file}; set +a; .venv/bin/flask check")
        if once:
            return 0 if all(r.ok for r in results) else 1
        docs_url = f"{api_server.base_url}{settings.application_context.rstrip('/')}/"
        say("\nThe emulators and the REST API keep running; press Ctrl-C to stop.", bold=True)
        say(f"  Swagger UI        {docs_url}  (Authorize with the key below)")
        say(f"  dashboard         {docs_url}dashboard/  (sign in with the key below)")
        say(f"  API key (admin)   {api_key}")
        say("Try, in another terminal:")
        say(f"  set -a; . {env_file}; set +a")
        say("  .venv/bin/flask o365 check-for-missing-tickets --dry-run")
        say("  .venv/bin/flask o365 handle-incoming-email     # then Ctrl-C")
        say(
            "  .venv/bin/flask sandbox send --from 'Dan <dan@example.com>' "
            "--subject 'Screen flickers' [--attach FILE]"
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        return 0
    finally:
        if api_server is not None:
            api_server.stop()
        sandbox.stop()
        lock.close()


def show_api(app, settings) -> tuple[EmulatorServer, str]:
    """Serve the REST API over HTTP, make an admin key, and call it as a program would."""
    say("\nThe REST API (flask run):", bold=True)
    with app.app_context():
        _row, token = create_key("demo", ["admin"], "carol.customer@example.com")
    say("  flask tickets api-key create --name demo --scope admin: key made (shown below)")
    server = EmulatorServer(app, port=_free_port(5000)).start()
    base = f"{server.base_url}{settings.application_context.rstrip('/')}"
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    created = session.post(
        f"{base}/tickets",
        json={
            "title": "Badge reader at the door",
            "body": "It **beeps** twice.",
            "category": "bug",
        },
        timeout=30,
    )
    if created.status_code == 201:
        ticket = created.json()
        say(
            f"  POST /tickets -> 201 {ticket['key']} ({ticket['status']}, labels "
            f"{','.join(ticket['labels'])})",
            fg="green",
        )
    else:
        say(f"  POST /tickets -> {created.status_code} {created.text[:200]}", fg="red")
    page = session.get(f"{base}/tickets", params={"limit": 10}, timeout=30).json()
    say(
        f"  GET /tickets -> {page['total']} tickets: "
        + ", ".join(f"{t['key']} ({t['source']})" for t in page["items"])
    )
    return server, token


def _free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ticket_manager_sandbox.demo", description=__doc__
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".sandbox"))
    parser.add_argument("--once", action="store_true", help="exit after the steps")
    args = parser.parse_args(argv)
    return run(args.state_dir.resolve(), args.once)


if __name__ == "__main__":
    raise SystemExit(main())
