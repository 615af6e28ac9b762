"""The mirror's schema, as SQLAlchemy Core tables.

Every CRM row is keyed by ``(source, id)`` where ``id`` is the CRM's own id, so one mirror can
hold several orgs side by side. Times are stored as naive UTC ``DateTime`` values, which compare
correctly as text on SQLite and natively on PostgreSQL. The schema is created and upgraded only by
the Alembic migrations in ``migrations/``; a test keeps these tables and the migrations in step.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

SOURCE = 32  # width of the source column
ID = 64  # width of a CRM id

owners = Table(
    "owners",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("email", String(320)),
    Column("name", String(255)),
    Column("active", Boolean, nullable=False, default=True),
    Column("role", String(255)),  # the CRM's role name (Salesforce UserRole.Name, HubSpot team)
    Column("team", String(255)),
    Column("manager_id", String(ID)),
    Column("updated_at", DateTime),
    Index(None, "source", "email"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("name", String(255)),
    Column("website", String(1024)),
    Column("domain", String(255)),  # normalized from the website; see roe_cli.shared.domains
    Column("owner_id", String(ID)),
    Column("parent_id", String(ID)),
    Column("country", String(64)),
    Column("state", String(64)),
    Column("employees", Integer),
    Column("annual_revenue", Float),
    Column("industry", String(255)),
    Column("lifecycle_stage", String(255)),
    Column("stage_changed_at", DateTime),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Index(None, "source", "owner_id"),
    Index(None, "source", "domain"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID)),
    Column("owner_id", String(ID)),
    Column("email", String(320)),
    Column("email_domain", String(255)),  # lower-case part after the @, for account domains
    Column("name", String(255)),
    Column("title", String(255)),
    Column("lifecycle_stage", String(255)),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Index(None, "source", "account_id"),
    Index(None, "source", "owner_id"),
)

opportunities = Table(
    "opportunities",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID)),
    Column("owner_id", String(ID)),
    Column("name", String(255)),
    Column("stage", String(255)),
    Column("amount", Float),
    Column("close_date", Date),
    Column("is_closed", Boolean, nullable=False, default=False),
    Column("is_won", Boolean, nullable=False, default=False),
    # Where the deal came from, as the CRM names it (Salesforce LeadSource, a HubSpot deal
    # property); the KPI export counts the values configured as referrals.
    Column("lead_source", String(255)),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Index(None, "source", "account_id"),
    Index(None, "source", "owner_id"),
)

activities = Table(
    "activities",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("kind", String(16), nullable=False),  # call, meeting, email, task, note, event
    Column("account_id", String(ID)),
    Column("contact_id", String(ID)),
    Column("opportunity_id", String(ID)),
    Column("owner_id", String(ID)),
    Column("occurred_at", DateTime),
    Column("status", String(64)),
    Column("updated_at", DateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    # Composite, so the rules' "activity by this user on this account since T" is one seek per
    # path (directly, through a contact, through a deal) without reading the activity rows.
    Index(None, "source", "account_id", "owner_id", "occurred_at"),
    Index(None, "source", "contact_id", "owner_id", "occurred_at"),
    Index(None, "source", "opportunity_id", "owner_id", "occurred_at"),
    Index(None, "source", "occurred_at"),  # activity in a window (OWN004, KPI exports)
)

# The account team: who works an account beside its owner. From Salesforce ``AccountTeamMember``
# (``origin`` 'AccountTeamMember', ``id`` the CRM's id) and from user fields on the account itself
# (Salesforce ``team_fields``, HubSpot ``team_properties``: ``origin`` the field's API name, ``id``
# '<account id>/<field>'). The account's owner is not stored here: the rules count it as a member.
account_team_members = Table(
    "account_team_members",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("id", String(ID + 1 + 255), primary_key=True),
    Column("account_id", String(ID), nullable=False),
    Column("user_id", String(ID), nullable=False),
    Column("team_role", String(255)),  # the role as the CRM names it (TeamMemberRole, the key)
    Column("origin", String(255), nullable=False),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("deleted", Boolean, nullable=False, default=False),
    Index(None, "source", "account_id", "user_id"),
    Index(None, "source", "user_id"),
)

ownership_changes = Table(
    "ownership_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(SOURCE), nullable=False),
    Column("object_type", String(16), nullable=False),  # account, contact, opportunity
    Column("object_id", String(ID), nullable=False),
    Column("old_owner_id", String(ID)),
    Column("new_owner_id", String(ID)),
    Column("changed_at", DateTime, nullable=False),
    # crm-history (the CRM's own history), observed (a sync saw the owner differ), roe-apply
    Column("origin", String(16), nullable=False),
    UniqueConstraint("source", "object_type", "object_id", "changed_at", "origin"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("object", String(32), primary_key=True),
    Column("watermark", DateTime),  # the newest modification time committed to the mirror
    Column("cursor", Text),  # an opaque resume point inside a pull, when the CRM needs one
    Column("last_full_at", DateTime),
    Column("updated_at", DateTime),
)

audit_runs = Table(
    "audit_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("as_of", DateTime, nullable=False),
    Column("rules_hash", String(64)),
    Column("rules", Text),  # the rule codes that ran, comma separated
    Column("status", String(16), nullable=False),  # running, done, failed
    Column("summary", Text),  # JSON: counts by rule, severity and status
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(16), nullable=False),
    Column("source", String(SOURCE), nullable=False),
    Column("object_type", String(16), nullable=False),
    Column("object_id", String(ID), nullable=False),
    # '' when the rule names no related user, so the identity key stays unique on every database
    Column("related_user_id", String(ID), nullable=False, default=""),
    Column("account_id", String(ID)),
    Column("owner_id", String(ID)),
    Column("suggested_owner_id", String(ID)),
    Column("severity", String(8), nullable=False),
    Column("status", String(16), nullable=False),  # open, waived, resolved
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("first_run_id", Integer),
    Column("last_run_id", Integer),
    Column("resolved_at", DateTime),
    Column("resolved_run_id", Integer),
    Column("details", Text),  # JSON
    UniqueConstraint("rule", "source", "object_type", "object_id", "related_user_id"),
    Index(None, "status", "rule"),
    Index(None, "last_run_id"),
)

waivers = Table(
    "waivers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(16), nullable=False),
    Column("source", String(SOURCE)),  # NULL: any source
    Column("object_type", String(16), nullable=False),
    Column("object_id", String(ID), nullable=False),
    Column("related_user_id", String(ID)),  # NULL: any related user
    Column("reason", Text, nullable=False),
    Column("approved_by", String(320), nullable=False),
    Column("expires", Date),  # NULL: never
    Column("created_at", DateTime, nullable=False),
    Column("origin", String(16), nullable=False),  # cli or rules.toml
    Index(None, "rule", "object_type", "object_id"),
)

plans = Table(
    "plans",
    metadata,
    Column("hash", String(64), primary_key=True),  # sha256 of the plan's changes
    Column("source", String(SOURCE)),
    Column("created_at", DateTime, nullable=False),
    Column("changes", Integer, nullable=False),
    Column("approved_by", String(320)),
    Column("approved_at", DateTime),
    Column("note", Text),
)

apply_journal = Table(
    "apply_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_hash", String(64), nullable=False),
    Column("source", String(SOURCE), nullable=False),
    Column("object_type", String(16), nullable=False),
    Column("object_id", String(ID), nullable=False),
    Column("expected", String(ID)),
    Column("new", String(ID)),
    Column("status", String(16), nullable=False),  # sending, applied, drifted, failed
    Column("error", Text),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("plan_hash", "object_type", "object_id"),
    ForeignKeyConstraint(["plan_hash"], ["plans.hash"]),
)

# Every approval ever given to a plan, the replaced ones included (``plans`` holds the latest).
plan_approvals = Table(
    "plan_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_hash", String(64), nullable=False),
    Column("approved_by", String(320), nullable=False),
    Column("approved_at", DateTime, nullable=False),
    Column("note", Text),
    ForeignKeyConstraint(["plan_hash"], ["plans.hash"]),
    Index("ix_plan_approvals_plan_hash", "plan_hash"),
)

demo_orgs = Table(
    "demo_orgs",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("seed", Integer, nullable=False),
    Column("accounts", Integer, nullable=False),
    Column("as_of", DateTime, nullable=False),  # the generator's "now"
    Column("created_at", DateTime, nullable=False),
    # How many accounts (with their records) are committed; NULL completed_at: a partial org
    # (still loading, or interrupted).
    Column("loaded_accounts", Integer, nullable=False, server_default="0"),
    Column("completed_at", DateTime, nullable=True),
)

demo_planted = Table(
    "demo_planted",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("rule", String(16), primary_key=True),
    Column("object_type", String(16), primary_key=True),
    Column("object_id", String(ID), primary_key=True),
    Column("related_user_id", String(ID), primary_key=True, default=""),
    Column("scenario", String(64), nullable=False),
)

CRM_TABLES = {
    "owner": owners,
    "account": accounts,
    "contact": contacts,
    "opportunity": opportunities,
    "activity": activities,
}
"""The CRM object tables by object type, in the order a sync should load them."""

OWNED_TABLES = {"account": accounts, "contact": contacts, "opportunity": opportunities}
"""Object types whose owner roe can reassign."""
