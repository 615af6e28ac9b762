"""Approval history: every approval of a plan is kept (``plans`` holds only the latest), so a
re-approval never erases who approved the plan before.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=320), nullable=False),
        sa.Column("approved_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_hash"], ["plans.hash"], name=op.f("fk_plan_approvals_plan_hash_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_approvals")),
    )
    op.create_index("ix_plan_approvals_plan_hash", "plan_approvals", ["plan_hash"])
    # The approvals recorded before this revision are the first entries of their history.
    op.execute(
        "INSERT INTO plan_approvals (plan_hash, approved_by, approved_at, note) "
        "SELECT hash, approved_by, approved_at, note FROM plans "
        "WHERE approved_by IS NOT NULL AND approved_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_plan_approvals_plan_hash", table_name="plan_approvals")
    op.drop_table("plan_approvals")
