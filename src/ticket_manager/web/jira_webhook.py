"""Receive Jira webhooks (``comment_created``, ``jira:issue_updated``) and queue the emails.

Jira Cloud signs a webhook registered with a secret: ``X-Hub-Signature: sha256=<HMAC of the
body>``. Jira Server/Data Center cannot sign, so the same secret may instead be given in
the URL (``?secret=...``). Either must match ``JIRA_WEBHOOK_SECRET``; without that key the
endpoint is off. The answer comes at once: the work is a row in the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from ticket_manager.api.problems import Problem
from ticket_manager.extensions import db
from ticket_manager.jira.client import JiraComment, says_whether_public
from ticket_manager.jira.errors import JiraError, JiraNotFoundError
from ticket_manager.models import Ticket
from ticket_manager.pipeline.relay import relay_comment, relay_status
from ticket_manager.pipeline.ticket_records import refresh_from_issue

log = logging.getLogger("ticket_manager.jira_webhook")

WEBHOOK_PATH = "/jira/webhook"

blueprint = Blueprint("jira_webhook", __name__)


def _authentic(secret: str, body: bytes) -> bool:
    signature = request.headers.get("X-Hub-Signature", "")
    if signature.startswith("sha256="):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.removeprefix("sha256="), expected)
    given = request.args.get("secret", "")
    return bool(given) and hmac.compare_digest(given, secret)


@blueprint.post(WEBHOOK_PATH)
def receive_jira_webhook() -> Response | tuple[Response, int]:
    """A Jira event: queue the customer email it calls for, if any."""
    from ticket_manager.extensions import get_settings

    settings = get_settings(current_app)
    secret = settings.jira_webhook_secret.reveal()
    if not secret:
        raise Problem(404, "not-found", "The Jira webhook is not configured (JIRA_WEBHOOK_SECRET).")
    body = request.get_data(cache=True)
    if not _authentic(secret, body):
        log.warning("jira webhook refused: bad signature or secret")
        raise Problem(401, "unauthenticated", "The signature or secret does not match.")
    event = request.get_json(silent=True)
    if not isinstance(event, dict):
        raise Problem(400, "bad-request", "A Jira webhook body is a JSON object.")
    kind = event.get("webhookEvent", "")
    issue = event.get("issue") if isinstance(event.get("issue"), dict) else {}
    key = issue.get("key")
    queued = False
    tracked = bool(key) and db.session.scalar(select(Ticket.id).where(Ticket.key == key))
    if tracked and event.get("comment") and kind in ("comment_created", "jira:issue_updated"):
        attachments = (issue.get("fields") or {}).get("attachment") or []
        try:
            comment = _comment_as_jira_has_it(key, event["comment"])
        except JiraNotFoundError:
            comment = None  # deleted since: nothing to send
        except JiraError as exc:
            log.warning(
                "jira webhook: comment not readable", extra={"ticket": key, "error": str(exc)}
            )
            return jsonify(error="Jira could not be asked whether the comment is public"), 503
        if comment is not None:
            queued = relay_comment(key, comment, settings, attachments)
    status = ((issue.get("fields") or {}).get("status")) or {}
    if key and kind == "jira:issue_updated" and status:
        queued = (
            relay_status(
                key,
                status.get("name", ""),
                (status.get("statusCategory") or {}).get("key", ""),
                settings,
            )
            or queued
        )
    if key and kind == "jira:issue_updated":
        _refresh_copy(key, issue, settings)
    return jsonify(queued=queued), 202


def _comment_as_jira_has_it(key: str, raw: dict) -> JiraComment:
    """The event's comment, or, when the event cannot tell whether it is public (Server/Data
    Center sends neither jsdPublic nor the internal-note property), the comment read from Jira
    with its properties."""
    if says_whether_public(raw):
        return JiraComment.from_jira(raw)
    from ticket_manager.api.runtime import jira_client

    return jira_client().comment(key, str(raw.get("id")))


def _refresh_copy(key: str, issue: dict, settings) -> None:
    """The issue as the webhook shows it refreshes the service's copy (what the API reads)."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.key == key))
    if ticket is not None:
        refresh_from_issue(ticket, issue, settings)
        db.session.commit()
