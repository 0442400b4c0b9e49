"""Receive Jira Automation's "Send web request" for a new comment, and queue the email.

For users who cannot register admin webhooks: a project rule "When: Comment added → Then:
Send web request" posts a payload they write, with the secret in a header they add::

    POST {APPLICATION_CONTEXT}/jira/automation
    X-Automation-Secret: <JIRA_WEBHOOK_SECRET>
    {"issue": {"key": "{{issue.key}}"}, "comment": {"id": "{{comment.id}}"}}

The payload only says *which* comment; the comment itself (body, author, whether it is
internal) is read from Jira with the service account, so a rule's payload can neither forge
a comment nor leak an internal note. The answer comes at once: the work is an outbox row.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, Response, current_app, jsonify, request

from ticket_manager.jira.errors import JiraError, JiraNotFoundError
from ticket_manager.pipeline.relay import relay_comment

log = logging.getLogger("ticket_manager.jira_automation")

AUTOMATION_PATH = "/jira/automation"
SECRET_HEADER = "X-Automation-Secret"  # noqa: S105 - a header name, not a secret
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-\d+$")
_COMMENT_ID = re.compile(r"^\d{1,18}$")

blueprint = Blueprint("jira_automation", __name__)


@blueprint.post(AUTOMATION_PATH)
def receive_automation_request() -> Response | tuple[Response, int]:
    """A comment named by a Jira Automation rule: queue its customer email, if any."""
    from ticket_manager.api.runtime import jira_client
    from ticket_manager.extensions import get_settings

    settings = get_settings(current_app)
    secret = settings.jira_webhook_secret.reveal()
    if not secret:
        return jsonify(error="Jira Automation is not configured (JIRA_WEBHOOK_SECRET)"), 404
    given = request.headers.get(SECRET_HEADER) or request.args.get("secret", "")
    if not given or not hmac.compare_digest(given, secret):
        log.warning("jira automation request refused: bad secret")
        return jsonify(error="secret does not match"), 401
    payload = request.get_json(silent=True) or {}
    key = str(((payload.get("issue") or {}).get("key")) or "").strip().upper()
    comment_id = str(((payload.get("comment") or {}).get("id")) or "").strip()
    if not _ISSUE_KEY.match(key) or not _COMMENT_ID.match(comment_id):
        return jsonify(
            error='expected {"issue": {"key": "{{issue.key}}"}, '
            '"comment": {"id": "{{comment.id}}"}}'
        ), 400
    jira = jira_client()
    try:
        comment = jira.comment(key, comment_id)
        attachments = jira.get_issue(key, ["attachment"]).get("fields", {}).get("attachment")
    except JiraNotFoundError:
        return jsonify(error=f"no comment {comment_id} on {key} in Jira"), 404
    except JiraError as exc:
        log.warning("jira automation request: Jira failed", extra={"error": str(exc)})
        return jsonify(error="Jira did not answer; the rule may retry"), 503
    queued = relay_comment(key, comment, settings, attachments or [])
    return jsonify(queued=queued), 202
