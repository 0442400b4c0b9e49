"""Mailbox status items: why change notifications or sending are held, and when to try again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:45:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("subscription_retry_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("send_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("send_retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_column("send_retry_at")
        batch_op.drop_column("send_error")
        batch_op.drop_column("subscription_retry_at")
        batch_op.drop_column("subscription_error")
