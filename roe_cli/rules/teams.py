"""Account teams for the coverage rules (COV001-COV003): who works an account, with which role.

An account's *members* are its owner plus the live rows of ``account_team_members`` on it (the
account itself live). A member's roe role is the row's ``team_role`` mapped through
``[role_map]`` (exact, then ignoring case), else the user's own roe role (``[[teams]]`` role,
else their CRM role through ``[role_map]``, as :meth:`RulesConfig.role_of` resolves it); the
owner's row has no team role, so it is the owner's own roe role. A person may be a member twice
(the owner, and a team row with another role): each row keeps its role.

Only *active* members count anywhere in the coverage rules (a user inactive in the CRM covers
nothing; OWN002 deals with their records): "shared" is two or more distinct active members.

The team-role lookup is a small temporary table (``roe_team_roles``: each distinct team role in
the mirror with its mapped roe role, NULL when ``[role_map]`` does not map it), built once per
audit like the context's other lookups; the account tables never leave the database.

Kept apart from ``context.py`` (which is near its size limit); it registers its table with the
context so that :meth:`RuleContext.drop_tables` drops it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Index,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.sql import Subquery

from ..models import account_team_members, accounts
from . import context
from .context import RuleContext, owner_roles
from .pins import unindexed

_tmp = MetaData()
team_roles_t = Table(
    "roe_team_roles",
    _tmp,
    Column("source", String(32)),
    Column("team_role", String(255)),
    Column("role", String(64)),
    Index("ix_roe_team_roles", "source", "team_role", unique=True),
    prefixes=["TEMPORARY"],
)
context._TABLES["team_roles"] = (team_roles_t,)

NAME = "team_roles"


def ensure_team_roles(ctx: RuleContext) -> None:
    """Build ``roe_team_roles`` (and the owners' roles it falls back to) once per audit."""
    ctx.ensure("roles")
    if NAME in ctx._built:
        return
    team_roles_t.create(ctx.conn)
    t = account_team_members
    rows = ctx.conn.execute(
        select(t.c.source, t.c.team_role).where(t.c.deleted.is_(False), t.c.team_role.is_not(None)).distinct()
    ).all()
    values = [{"source": s, "team_role": r, "role": ctx.config.role_of(None, r)} for s, r in rows]
    if values:
        ctx.conn.execute(insert(team_roles_t), values)
    ctx._built.append(NAME)


def account_members(ctx: RuleContext, *, active_only: bool = True) -> Subquery:
    """(source, account_id, owner_id, user_id, team_role, role, active): one row per member of
    each live account: its owner (team_role NULL) and each live team row. With ``active_only``
    (the default) only members active in the CRM."""
    ensure_team_roles(ctx)
    a = accounts.alias("team_account")
    t = account_team_members.alias("team_row")
    # Pinned (see pins.py): the accounts and the team rows are each read in one pass, and each
    # team row's account by primary key. The ``deleted`` filters are kept out of any index (on
    # fresh statistics SQLite would build an automatic partial index on ``deleted`` for each
    # table, a full read plus a sort, where one pass does), and the team row's columns out of the
    # join (so no plan reads accounts first and seeks team rows by (source) alone).
    owner_part = select(
        a.c.source, a.c.id.label("account_id"), a.c.owner_id, a.c.owner_id.label("user_id"),
        null().label("team_role"),
    ).where(unindexed(a.c.deleted).is_(False), a.c.owner_id.is_not(None))
    a2 = accounts.alias("team_row_account")
    team_part = (
        select(t.c.source, t.c.account_id, a2.c.owner_id, t.c.user_id, t.c.team_role)
        .join(a2, and_(a2.c.source == unindexed(t.c.source), a2.c.id == unindexed(t.c.account_id)))
        .where(unindexed(t.c.deleted).is_(False), unindexed(a2.c.deleted).is_(False))
    )
    rows = union_all(owner_part, team_part).subquery("member_rows")
    u = owner_roles.alias("member_user")
    tr = team_roles_t.alias("member_team_role")
    query = (
        select(
            rows.c.source, rows.c.account_id, rows.c.owner_id, rows.c.user_id, rows.c.team_role,
            func.coalesce(tr.c.role, u.c.role).label("role"),
            func.coalesce(u.c.active, literal(False)).label("active"),
        )
        .select_from(rows)
        .outerjoin(u, and_(u.c.source == rows.c.source, u.c.id == rows.c.user_id))
        .outerjoin(tr, and_(tr.c.source == rows.c.source, tr.c.team_role == rows.c.team_role))
    )
    if active_only:
        query = query.where(u.c.active.is_(True))
    return query.subquery("account_members")


def flag_any(role_col: Any, roles: tuple[str, ...]) -> Any:
    """1 when ``role_col`` is one of ``roles`` (a NULL role is in no list), else 0: for max()."""
    from sqlalchemy import case

    if not roles:
        return literal(0)
    return case((role_col.in_(list(roles)), 1), else_=0)


def id_list(ctx: RuleContext, col: Any) -> Any:
    """An aggregate: the values of ``col`` in the group, comma-separated, in order."""
    if ctx.conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        return func.string_agg(col, aggregate_order_by(literal(","), col))
    return func.group_concat(col, literal(","))
