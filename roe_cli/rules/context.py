"""The rule pass's working set: small lookup tables computed once per audit, shared by the rules.

Everything here is set-based SQL through SQLAlchemy Core, so the same code runs on SQLite and
PostgreSQL. Only the owners (a few hundred or thousand rows) pass through Python, to resolve each
user's role from ``[[teams]]`` and ``[role_map]``; the large tables never leave the database.

Temporary tables (per connection):

* ``roe_owner_roles``: every owner with its resolved roe role.
* ``roe_team_members``: (team, owner) pairs from ``[[teams]]`` matched to owners by e-mail.
* ``roe_territories``: the territories in order, with the default owner resolved per source.
* ``roe_account_territory``: each live account's territory (the first whose match fits).

Activity that counts for an account (through the account itself or its live contacts and
opportunities) is reached through the mirror's composite indexes, never copied: see
:meth:`RuleContext.activity_exists`, :meth:`RuleContext.activity_count` and
:meth:`RuleContext.activity_totals`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import FromClause, Select, Subquery
from sqlalchemy.sql.expression import ColumnElement

from ..models import accounts, activities, contacts, opportunities, owners
from ..shared.vocab import OBJECT_TYPES
from .base import finding_columns
from .pins import indexed_alias, unindexed

if TYPE_CHECKING:
    from ..rulesfile.schema import Match, RulesConfig

Col = ColumnElement[Any]

_tmp = MetaData()


def _temp(name: str, *cols: Column[Any] | Index) -> Table:
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
# The lookup tables by name, each with the temporary tables it creates.
_TABLES: dict[str, tuple[Table, ...]] = {
    "roles": (owner_roles, team_members),
    "territory": (territories_t, account_territory),
}


@dataclass
class RuleContext:
    """What a rule's ``query`` gets: the connection, ``now``, the config and the lookup tables.

    The context owns the temporary tables it builds: :meth:`drop_tables` drops them at the end of
    the pass. It holds nothing about the rule that is running; a rule's settings are an argument
    of its ``query``.
    """

    conn: Connection
    now: datetime
    config: RulesConfig
    _built: list[str] = field(default_factory=list)  # in the order built
    owner_ids_by_email: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    # -- time -------------------------------------------------------------------------------
    def days_ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    # -- JSON details, portable -------------------------------------------------------------
    def json(self, **values: Any) -> Col:
        """A JSON object built in SQL from column expressions (SQLite or PostgreSQL).

        Date-times become ISO 8601 UTC text with whole seconds (``2026-03-31T00:00:00Z``, as
        :func:`~roe_cli.shared.clock.utc_text` writes them) on every database, not each
        database's own rendering of a timestamp."""
        args: list[Any] = []
        for key, value in values.items():
            args.extend([literal(key), self.iso_utc(value)])
        if self.conn.dialect.name == "postgresql":
            return cast(func.json_build_object(*args), Text)
        return func.json_object(*args)

    def iso_utc(self, value: Any) -> Any:
        """``value`` as ISO 8601 UTC text when it is a date-time column (NULL stays NULL), else
        ``value`` itself. Stored times are naive UTC."""
        if not isinstance(getattr(value, "type", None), DateTime):
            return value
        if self.conn.dialect.name == "postgresql":
            return func.to_char(value, literal('YYYY-MM-DD"T"HH24:MI:SS"Z"'))
        return func.strftime(literal("%Y-%m-%dT%H:%M:%SZ"), value)

    # -- lookup tables ----------------------------------------------------------------------
    def ensure(self, *names: str) -> None:
        """Build the named lookup tables (and what they depend on) once per audit."""
        for name in names:
            if name in self._built:
                continue
            if name == "territory":
                self.ensure("roles")
            getattr(self, f"_build_{name}")()
            self._built.append(name)

    def built_tables(self) -> list[Table]:
        """The temporary tables this context has created so far."""
        return [table for name in self._built for table in _TABLES[name]]

    def drop_tables(self) -> None:
        """Drop the temporary tables this context created (they last as long as the connection)."""
        for table in self.built_tables():
            table.drop(self.conn, checkfirst=True)
        self._built.clear()

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

    def owner_id_for(self, source_col: Col, email: str | None) -> Col:
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
        rows: list[dict[str, Any]] = []
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
        whens: list[tuple[Col, int]] = []
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

    # -- activity that counts for an account -----------------------------------------------
    def _link_branches(
        self,
        source_col: Col,
        account_col: Col,
        owner_col: Col | None = None,
        after: datetime | Col | None = None,
        until: datetime | Col | None = None,
        at_or_after: datetime | Col | None = None,
        exclusive: bool = False,
    ) -> list[tuple[list[FromClause], list[Col]]]:
        """Three selects over live activities that count for the account ``account_col``:
        linked directly, through a live contact of it, through a live deal of it; each answered by
        seeks on the mirror's composite indexes. With ``exclusive``, an activity linked to the
        account more than one way is kept in its first branch only, so the three counts add up to
        the number of distinct activities."""
        branches: list[tuple[list[FromClause], list[Col]]] = []
        for path in OBJECT_TYPES:
            # Pinned (see pins.py): each branch seeks its composite index from the account, on
            # any statistics; the time bounds filter the rows the seek finds.
            act = indexed_alias(activities, f"act_{path}", "source", f"{path}_id", "owner_id",
                                "occurred_at")
            conds: list[Col] = [act.c.source == source_col, act.c.deleted.is_(False)]
            if owner_col is not None:
                conds.append(act.c.owner_id == owner_col)
            when = unindexed(act.c.occurred_at)
            if after is not None:
                conds.append(when > after)
            if at_or_after is not None:
                conds.append(when >= at_or_after)
            if until is not None:
                conds.append(when <= until)
            froms: list[FromClause] = [act]
            if path == "account":
                conds.append(act.c.account_id == account_col)
            else:
                table = contacts if path == "contact" else opportunities
                link = indexed_alias(table, f"link_{path}", "source", "account_id")
                link_col = act.c.contact_id if path == "contact" else act.c.opportunity_id
                # IN (the account's live contacts/deals): SQLite then seeks activities by each id.
                conds.append(link_col.in_(
                    select(link.c.id)
                    .where(link.c.source == source_col, link.c.account_id == account_col,
                           link.c.deleted.is_(False))
                    .correlate_except(link)
                ))
                if exclusive:
                    conds.append(or_(act.c.account_id.is_(None), act.c.account_id != account_col))
                if exclusive and path == "opportunity":
                    other = contacts.alias("other_contact")
                    conds.append(~exists().where(
                        other.c.source == source_col, other.c.id == act.c.contact_id,
                        other.c.account_id == account_col, other.c.deleted.is_(False)
                    ).correlate_except(other))
            branches.append((froms, conds))
        return branches

    def activity_exists(
        self,
        account: FromClause,
        owner_col: Col,
        after: datetime | Col | None = None,
        until: datetime | Col | None = None,
        at_or_after: datetime | Col | None = None,
    ) -> Col:
        """SQL true when a live activity by ``owner_col`` counts for the ``account`` alias with
        ``after < occurred_at <= until`` (or ``occurred_at >= at_or_after``)."""
        return or_(*(
            select(literal(1)).select_from(*froms).where(*conds).exists()
            for froms, conds in self._link_branches(account.c.source, account.c.id, owner_col,
                                                          after, until, at_or_after)
        ))

    def activity_count(self, source_col: Col, account_col: Col, after: datetime,
                       until: datetime) -> Col:
        """Scalar SQL: how many live activities count for the account in ``(after, until]``."""
        counts = [
            select(func.count()).select_from(*froms).where(*conds).scalar_subquery()
            for froms, conds in self._link_branches(source_col, account_col, None, after, until,
                                                          exclusive=True)
        ]
        return counts[0] + counts[1] + counts[2]

    def activity_totals(self, after: datetime, until: datetime) -> Subquery:
        """A subquery of (source, account_id, owner_id, n): how many live activities each user has
        that count for each live account, with ``after < occurred_at <= until``.

        One pass over the window finds each activity's three candidate accounts (its own, its live
        contact's, its live deal's); each activity then counts once per distinct live account."""
        act = activities
        con, opp = contacts.alias("window_contact"), opportunities.alias("window_deal")
        w = (
            select(
                act.c.source,
                act.c.owner_id,
                act.c.account_id.label("direct"),
                case((con.c.deleted.is_(False), con.c.account_id)).label("via_contact"),
                case((opp.c.deleted.is_(False), opp.c.account_id)).label("via_deal"),
            )
            .select_from(act)
            .outerjoin(con, and_(con.c.source == act.c.source, con.c.id == act.c.contact_id))
            .outerjoin(opp, and_(opp.c.source == act.c.source, opp.c.id == act.c.opportunity_id))
            # A month or more of activity is a large share of the table: on SQLite one sequential
            # scan beats a range of the time index followed by a random read per row.
            .where(act.c.deleted.is_(False), unindexed(act.c.occurred_at) > after,
                   unindexed(act.c.occurred_at) <= until)
            .cte("window_activities")
        )

        def differs(col: Col, other: Col) -> Col:
            return or_(other.is_(None), col != other)

        parts = union_all(
            select(w.c.source, w.c.direct.label("account_id"), w.c.owner_id).where(w.c.direct.is_not(None)),
            select(w.c.source, w.c.via_contact, w.c.owner_id).where(
                w.c.via_contact.is_not(None), differs(w.c.via_contact, w.c.direct)
            ),
            select(w.c.source, w.c.via_deal, w.c.owner_id).where(
                w.c.via_deal.is_not(None), differs(w.c.via_deal, w.c.direct),
                differs(w.c.via_deal, w.c.via_contact),
            ),
        ).subquery("activity_parts")
        live_acc = accounts.alias("live_acc")
        return (
            select(parts.c.source, parts.c.account_id, parts.c.owner_id, func.count().label("n"))
            .join(live_acc, and_(live_acc.c.source == parts.c.source, live_acc.c.id == parts.c.account_id,
                                 live_acc.c.deleted.is_(False)))
            .group_by(parts.c.source, parts.c.account_id, parts.c.owner_id)
            .subquery("activity_totals")
        )


def _ci_in(column: Col, values: tuple[str, ...]) -> Col:
    return func.lower(column).in_([v.lower() for v in values])


def _match_condition(match: Match) -> Col:
    """SQL for a territory's ``match``: every given criterion must hold (case-insensitive lists,
    inclusive employee bounds; an unknown employee count fails any bound)."""
    conds: list[Col] = []
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


def live_owned_accounts(alias: str = "a") -> tuple[FromClause, Col]:
    """An alias of accounts with the filter every account rule shares: live and owned."""
    a = accounts.alias(alias)
    # ``+owner_id``: "owned" is a filter, never a range of the owner index to drive by.
    return a, and_(a.c.deleted.is_(False), unindexed(a.c.owner_id).is_not(None))


def owned_apart_from_account(
    ctx: RuleContext,
    table: Table,
    object_type: str,
    allowed_roles: tuple[str, ...],
    *conditions: Col,
    **details: Col,
) -> Select[Any]:
    """Live ``table`` records (contacts, deals) of a live owned account, owned by someone else
    whose role is not in ``allowed_roles``; suggesting the account's owner if active.
    The shared shape of OWN001 and OWN006; ``details`` adds columns to the finding's details."""
    ctx.ensure("roles")
    a, a_live = live_owned_accounts()
    record_owner = owner_roles.alias("record_owner")
    account_owner = owner_roles.alias("account_owner")
    return (
        select(
            *finding_columns(
                table.c.source,
                object_type,
                table.c.id,
                table.c.account_id,
                table.c.owner_id,
                ctx.json(owner_role=record_owner.c.role, account_owner_id=a.c.owner_id, **details),
                suggested=case((account_owner.c.active.is_(True), a.c.owner_id)),
            )
        )
        .select_from(table)
        # ``+source``, ``+account_id``: every record is read once, its account sought by key; the
        # planner may not turn it around (each account, then its records by an index on source).
        .join(a, and_(a.c.source == unindexed(table.c.source),
                      a.c.id == unindexed(table.c.account_id)))
        .outerjoin(record_owner, and_(record_owner.c.source == table.c.source,
                                      record_owner.c.id == table.c.owner_id))
        .outerjoin(account_owner, and_(account_owner.c.source == a.c.source,
                                       account_owner.c.id == a.c.owner_id))
        .where(
            a_live,
            table.c.deleted.is_(False),
            unindexed(table.c.owner_id).is_not(None),
            table.c.owner_id != a.c.owner_id,
            role_not_in(record_owner.c.role, allowed_roles),
            *conditions,
        )
    )


def role_not_in(role_col: Col, roles: Iterable[str]) -> Col:
    """True when a user's role is not one of ``roles`` (a user with no role is in no list)."""
    wanted = list(roles)
    if not wanted:
        return literal(True)
    return or_(role_col.is_(None), role_col.not_in(wanted))
