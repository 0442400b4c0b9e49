"""Held mail: a ledger state for email kept aside by an intake cap or a sender check.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:50:00
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    # SQLite stores the state as text without a CHECK constraint: nothing to do there.
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute("ALTER TYPE message_state ADD VALUE IF NOT EXISTS 'held'")


def downgrade():
    # PostgreSQL cannot drop an enum value; held rows go back to the queue as pending.
    op.execute("UPDATE messages SET state = 'pending' WHERE state = 'held'")
