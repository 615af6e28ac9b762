"""The demo org records how far its load got: ``loaded_accounts`` (committed so far) and
``completed_at`` (NULL while loading, or for good when the load was interrupted). Earlier demo
orgs were complete.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("demo_orgs") as batch:
        batch.add_column(sa.Column("loaded_accounts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("completed_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE demo_orgs SET loaded_accounts = accounts, completed_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("demo_orgs") as batch:
        batch.drop_column("completed_at")
        batch.drop_column("loaded_accounts")
