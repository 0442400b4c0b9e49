"""``/status`` and ``/stats/flow``: is mail flowing, and how it ended, for people and monitors."""

from __future__ import annotations

from marshmallow import RAISE

from ticket_manager.api.access import ApiBlueprint
from ticket_manager.api.runtime import settings
from ticket_manager.api.schemas import FlowQuerySchema, FlowSchema, ServiceStatusSchema
from ticket_manager.stats import mail_flow
from ticket_manager.status import collect_status

blp = ApiBlueprint(
    "operations",
    __name__,
    description="The service's health and mail flow, as the dashboard shows them.",
)


@blp.route("/status", methods=["GET"])
@blp.requires("messages:read")
@blp.response(200, ServiceStatusSchema)
def service_status():
    """Service status

    The database, the Microsoft 365 sign-in and token expiry, Jira, and per mailbox the last
    sync, the subscription, the backlog and the failures. `problems` says what needs a
    person; it is empty when all is well. Checks of Microsoft and Jira are reused for a
    minute.
    """
    return collect_status(settings()).as_dict()


@blp.route("/stats/flow", methods=["GET"])
@blp.requires("messages:read")
@blp.arguments(FlowQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, FlowSchema)
def flow(period: str, mailbox: str | None = None):
    """Mail flow over time

    The mail recorded in each hour (24h), six hours (7d) or day (30d), by how it ended:
    created a ticket, became a comment, rejected by a rule, failed, or still pending.
    """
    return mail_flow(period, mailbox)
