"""Account teams and deal sources: the members who work an account beside its owner (for the
coverage rules COV001-COV003 and team-seat transfers), and where each opportunity came from (for
the referral figures of the KPI export).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_team_members",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=320), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("team_role", sa.String(length=255), nullable=True),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id", name=op.f("pk_account_team_members")),
    )
    op.create_index(
        "ix_account_team_members_source_account_id_user_id",
        "account_team_members",
        ["source", "account_id", "user_id"],
    )
    op.create_index(
        "ix_account_team_members_source_user_id", "account_team_members", ["source", "user_id"]
    )
    with op.batch_alter_table("opportunities") as batch_op:
        batch_op.add_column(sa.Column("lead_source", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opportunities") as batch_op:
        batch_op.drop_column("lead_source")
    op.drop_index("ix_account_team_members_source_user_id", table_name="account_team_members")
    op.drop_index(
        "ix_account_team_members_source_account_id_user_id", table_name="account_team_members"
    )
    op.drop_table("account_team_members")
