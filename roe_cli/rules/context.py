"""The rule pass's working set: small lookup tables computed once per audit, shared by the rules.

Everything here is set-based SQL through SQLAlchemy Core, so the same code runs on SQLite and
PostgreSQL. Only the owners (a few hundred or thousand rows) pass through Python, to resolve each
user's role from ``[[teams]]`` and ``[role_map]``; the large tables never leave the database.

Temporary tables (per connection):

* ``roe_owner_roles``: every owner with its resolved roe role.
* ``roe_team_members``: (team, owner) pairs from ``[[teams]]`` matched to owners by e-mail.
* ``roe_territories``: the territories in order, with the default owner resolved per source.
* ``roe_account_territory``: each live account's territory (the first whose match fits).
* ``roe_account_activity``: every live activity that counts for a live account, through the account
  itself or its live contacts and opportunities (one row per account and activity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.engine import Connection

from ..models import accounts, activities, contacts, opportunities, owners

_tmp = MetaData()


def _temp(name: str, *cols) -> Table:
    return Table(name, _tmp, *cols, prefixes=["TEMPORARY"])


owner_roles = _temp(
    "roe_owner_roles",
    Column("source", String(32)),
    Column("id", String(64)),
    Column("email", String(320)),
    Column("active", Boolean),
    Column("role", String(64)),
    Column("manager_id", String(64)),
    Index("ix_roe_owner_roles", "source", "id", unique=True),
)
team_members = _temp(
    "roe_team_members",
    Column("team", String(255)),
    Column("source", String(32)),
    Column("owner_id", String(64)),
    Index("ix_roe_team_members", "team", "source", "owner_id"),
)
territories_t = _temp(
    "roe_territories",
    Column("source", String(32)),
    Column("ordinal", Integer),
    Column("name", String(255)),
    Column("team", String(255)),
    Column("default_owner_id", String(64)),
    Index("ix_roe_territories", "source", "ordinal", unique=True),
)
account_territory = _temp(
    "roe_account_territory",
    Column("source", String(32)),
    Column("account_id", String(64)),
    Column("ordinal", Integer),
    Index("ix_roe_account_territory", "source", "account_id", unique=True),
)
account_activity = _temp(
    "roe_account_activity",
    Column("source", String(32)),
    Column("account_id", String(64)),
    Column("activity_id", String(64)),
    Column("owner_id", String(64)),
    Column("occurred_at", DateTime),
)
# Created after the bulk insert, which is faster than maintaining it row by row.
_ACCOUNT_ACTIVITY_INDEX = (
    "CREATE INDEX ix_roe_account_activity ON roe_account_activity "
    "(source, account_id, owner_id, occurred_at)"
)


@dataclass
class RuleContext:
    """What a rule's ``query`` gets: the connection, ``now``, the config and the lookup tables."""

    conn: Connection
    now: datetime
    config: Any  # roe_cli.config.RulesConfig
    params: Any = None  # the running rule's Params, set by the audit before each query
    _built: set[str] = field(default_factory=set)

    # -- time -------------------------------------------------------------------------------
    def days_ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    # -- JSON details, portable -------------------------------------------------------------
    def json(self, **values):
        """A JSON object built in SQL from column expressions (SQLite or PostgreSQL)."""
        args: list = []
        for key, value in values.items():
            args.extend([literal(key), value])
        if self.conn.dialect.name == "postgresql":
            return cast(func.json_build_object(*args), Text)
        return func.json_object(*args)

    # -- lookup tables ----------------------------------------------------------------------
    def ensure(self, *names: str) -> None:
        """Build the named lookup tables (and what they depend on) once per audit."""
        for name in names:
            if name in self._built:
                continue
            if name == "territory":
                self.ensure("roles")
            getattr(self, f"_build_{name}")()
            self._built.add(name)

    def _build_roles(self) -> None:
        owner_roles.create(self.conn)
        team_members.create(self.conn)
        rows = self.conn.execute(
            select(owners.c.source, owners.c.id, owners.c.email, owners.c.active, owners.c.role,
                   owners.c.manager_id)
        ).all()
        role_rows = [
            {"source": s, "id": i, "email": (e or "").strip().lower() or None, "active": bool(a),
             "role": self.config.role_of(e, r), "manager_id": m}
            for s, i, e, a, r, m in rows
        ]
        if role_rows:
            self.conn.execute(insert(owner_roles), role_rows)
        by_email: dict[str, list[tuple[str, str]]] = {}
        for row in role_rows:
            if row["email"]:
                by_email.setdefault(row["email"], []).append((row["source"], row["id"]))
        member_rows = [
            {"team": team.name, "source": source, "owner_id": owner_id}
            for team in self.config.teams
            for email in team.members
            for source, owner_id in by_email.get(email.lower(), ())
        ]
        if member_rows:
            self.conn.execute(insert(team_members), member_rows)
        self.owner_ids_by_email = by_email

    def owner_id_for(self, source_col, email: str | None):
        """A scalar subquery: the active owner with ``email`` in the row's source, or NULL."""
        if not email:
            return null()
        return (
            select(owner_roles.c.id)
            .where(owner_roles.c.source == source_col, owner_roles.c.email == email.lower(),
                   owner_roles.c.active.is_(True))
            .limit(1)
            .scalar_subquery()
        )

    def _build_territory(self) -> None:
        territories_t.create(self.conn)
        account_territory.create(self.conn)
        sources = [s for (s,) in self.conn.execute(select(owners.c.source).distinct())]
        rows = []
        for ordinal, territory in enumerate(self.config.territories):
            for source in sources:
                default = None
                if territory.default_owner:
                    for src, owner_id in self.owner_ids_by_email.get(territory.default_owner.lower(), ()):
                        if src == source:
                            default = owner_id
                rows.append({"source": source, "ordinal": ordinal, "name": territory.name,
                             "team": territory.team, "default_owner_id": default})
        if rows:
            self.conn.execute(insert(territories_t), rows)
        whens = []
        for ordinal, territory in enumerate(self.config.territories):
            whens.append((_match_condition(territory.match), ordinal))
        if not whens:
            return
        ordinal_expr = case(*whens, else_=null())
        inner = (
            select(accounts.c.source, accounts.c.id.label("account_id"), ordinal_expr.label("ordinal"))
            .where(accounts.c.deleted.is_(False))
            .subquery()
        )
        self.conn.execute(
            insert(account_territory).from_select(
                ["source", "account_id", "ordinal"],
                select(inner.c.source, inner.c.account_id, inner.c.ordinal).where(inner.c.ordinal.is_not(None)),
            )
        )

    def _build_activity(self) -> None:
        account_activity.create(self.conn)
        live_acc = accounts.alias("live_acc")
        act = activities
        cols = lambda account_id_col: (  # noqa: E731
            act.c.source, account_id_col.label("account_id"), act.c.id.label("activity_id"),
            act.c.owner_id, act.c.occurred_at,
        )
        live = and_(act.c.deleted.is_(False), act.c.occurred_at.is_not(None))
        direct = (
            select(*cols(act.c.account_id))
            .join(live_acc, and_(live_acc.c.source == act.c.source, live_acc.c.id == act.c.account_id))
            .where(live, live_acc.c.deleted.is_(False))
        )
        via_contact = (
            select(*cols(contacts.c.account_id))
            .join(contacts, and_(contacts.c.source == act.c.source, contacts.c.id == act.c.contact_id))
            .join(live_acc, and_(live_acc.c.source == contacts.c.source, live_acc.c.id == contacts.c.account_id))
            .where(live, contacts.c.deleted.is_(False), live_acc.c.deleted.is_(False))
        )
        via_opp = (
            select(*cols(opportunities.c.account_id))
            .join(opportunities, and_(opportunities.c.source == act.c.source, opportunities.c.id == act.c.opportunity_id))
            .join(live_acc, and_(live_acc.c.source == opportunities.c.source, live_acc.c.id == opportunities.c.account_id))
            .where(live, opportunities.c.deleted.is_(False), live_acc.c.deleted.is_(False))
        )
        self.conn.execute(
            insert(account_activity).from_select(
                ["source", "account_id", "activity_id", "owner_id", "occurred_at"],
                union(direct, via_contact, via_opp),
            )
        )
        self.conn.execute(text(_ACCOUNT_ACTIVITY_INDEX))


def _ci_in(column, values) -> Any:
    return func.lower(column).in_([v.lower() for v in values])


def _match_condition(match) -> Any:
    """SQL for a territory's ``match``: every given criterion must hold (case-insensitive lists,
    inclusive employee bounds; an unknown employee count fails any bound)."""
    conds = []
    if match.country is not None:
        conds.append(_ci_in(accounts.c.country, match.country))
    if match.state is not None:
        conds.append(_ci_in(accounts.c.state, match.state))
    if match.industry is not None:
        conds.append(_ci_in(accounts.c.industry, match.industry))
    if match.min_employees is not None:
        conds.append(accounts.c.employees >= match.min_employees)
    if match.max_employees is not None:
        conds.append(accounts.c.employees <= match.max_employees)
    if not conds:
        return false()
    return and_(*conds)


def live_owned_accounts(alias: str = "a"):
    """An alias of accounts with the filter every account rule shares: live and owned."""
    a = accounts.alias(alias)
    return a, and_(a.c.deleted.is_(False), a.c.owner_id.is_not(None))


def role_not_in(role_col, roles) -> Any:
    """True when a user's role is not one of ``roles`` (a user with no role is in no list)."""
    roles = list(roles)
    if not roles:
        return literal(True)
    return or_(role_col.is_(None), role_col.not_in(roles))
