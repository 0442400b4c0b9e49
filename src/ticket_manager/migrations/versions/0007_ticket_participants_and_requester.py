"""Participants of each ticket in a table of their own; the requester kept apart from Jira's reporter.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 23:30:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ticket_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("how", sa.String(length=32), nullable=False),
        sa.Column("added_by", sa.String(length=320), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_participants_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_participants")),
        sa.UniqueConstraint(
            "ticket_id", "email", name=op.f("uq_ticket_participants_ticket_id_email")
        ),
    )
    with op.batch_alter_table("ticket_participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_participants_email"), ["email"], unique=False)

    # The comma-separated list becomes rows; the requester is one of them.
    connection = op.get_bind()
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Integer),
        sa.column("requester", sa.String),
        sa.column("participants", sa.Text),
    )
    participants = sa.table(
        "ticket_participants",
        sa.column("ticket_id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("how", sa.String),
        sa.column("added_at", sa.DateTime(timezone=True)),
    )
    moved = datetime.now(UTC)
    rows = []
    for ticket_id, requester, listed in connection.execute(
        sa.select(tickets.c.id, tickets.c.requester, tickets.c.participants)
    ):
        emails = {e.strip().lower() for e in (listed or "").split(",") if e.strip()}
        if requester:
            rows.append({"ticket_id": ticket_id, "email": requester.lower(), "how": "requester"})
            emails.discard(requester.lower())
        rows.extend({"ticket_id": ticket_id, "email": e, "how": "first-email"} for e in emails)
    if rows:
        connection.execute(participants.insert(), [{**r, "added_at": moved} for r in rows])

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requester_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("reporter_email", sa.String(length=320), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_reporter_email"), ["reporter_email"])
        batch_op.drop_column("participants")


def downgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("participants", sa.Text(), server_default="", nullable=False))
        batch_op.drop_index(batch_op.f("ix_tickets_reporter_email"))
        batch_op.drop_column("reporter_email")
        batch_op.drop_column("requester_name")

    connection = op.get_bind()
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("participants", sa.Text))
    listed: dict[int, list[str]] = {}
    for ticket_id, email in connection.execute(
        sa.text("SELECT ticket_id, email FROM ticket_participants ORDER BY email")
    ):
        listed.setdefault(ticket_id, []).append(email)
    for ticket_id, emails in listed.items():
        connection.execute(
            tickets.update().where(tickets.c.id == ticket_id).values(participants=",".join(emails))
        )

    with op.batch_alter_table("ticket_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_participants_email"))
    op.drop_table("ticket_participants")
