"""Activity indexes for the rule pass: (source, link, owner_id, occurred_at) for each of the three
ways an activity counts for an account, replacing the single-link indexes, and (source,
occurred_at) for activity in a time window.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LINKS = ("account_id", "contact_id", "opportunity_id")


# Plain index DDL: SQLite supports it without batch mode's table copy.
def upgrade() -> None:
    for link in _LINKS:
        op.drop_index(f"ix_activities_source_{link}", table_name="activities")
        op.create_index(
            f"ix_activities_source_{link}_owner_id_occurred_at",
            "activities",
            ["source", link, "owner_id", "occurred_at"],
        )
    op.create_index("ix_activities_source_occurred_at", "activities", ["source", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_activities_source_occurred_at", table_name="activities")
    for link in _LINKS:
        op.drop_index(f"ix_activities_source_{link}_owner_id_occurred_at", table_name="activities")
        op.create_index(f"ix_activities_source_{link}", "activities", ["source", link])
