"""COV001 coasting: a member of a shared account who leaves the work to the rest of the team.

On a shared account (two or more distinct active members, the owner included: see "Account
teams" in the README) with at least ``min_activities`` activities counted for it in the last
``window_days`` days (the account itself, its live contacts and live deals, each activity once),
flags each active member whose share of those activities is below ``min_share``; members with a
role in ``exempt_roles`` are not flagged. All activities count in the total, a non-member's too.
Why: shared accounts fall prey to sellers who coast: the customer sees fewer people than it pays for.
Fix: the team agrees who does what, or the member leaves the team. No suggestion.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types
from pydantic import PositiveInt
from sqlalchemy import CTE, Float, Select, cast, func, literal, select

from .base import RuleParams, Severity, finding_columns
from .context import RuleContext
from .teams import account_members, flag_any

CODE = "COV001"
NAME = "coasting"
SUGGESTS_OWNER = False


class Params(RuleParams):
    severity: Severity = "medium"
    window_days: PositiveInt = 30
    min_activities: PositiveInt = 5
    min_share: Annotated[float, annotated_types.Ge(0), annotated_types.Le(1)] = 0.1
    exempt_roles: tuple[str, ...] = ()


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    m = account_members(ctx)
    # Each distinct active member of each account once, with the number of distinct active
    # members of the account (a window over the groups: the same pass, no second grouping).
    users = (
        select(m.c.source, m.c.account_id, m.c.owner_id, m.c.user_id,
               func.max(flag_any(m.c.role, params.exempt_roles)).label("exempt"),
               func.min(m.c.role).label("role"),
               func.count().over(partition_by=[m.c.source, m.c.account_id]).label("members"))
        .group_by(m.c.source, m.c.account_id, m.c.owner_id, m.c.user_id)
        .cte("team_users")
    )
    # The window's activities, read from each shared account by the per-account seeks (its own,
    # its live contacts', its live deals'; each activity once): the account's total, and each
    # member's own by the same seeks narrowed to the member (the composite indexes lead with
    # (source, link, owner_id)). Only shared accounts are read: a few of all, where one pass over
    # the window and a count for every account cost several times more at 100,000 accounts.
    after = ctx.days_ago(params.window_days)
    totals = _materialized(
        select(users, ctx.activity_count(users.c.source, users.c.account_id, after, ctx.now).label("total"))
        .where(users.c.members >= 2, users.c.exempt == 0)
        .cte("member_totals")
    )
    # Each member's own count only where the account has enough activity to judge.
    counts = _materialized(
        select(totals, ctx.activity_count(totals.c.source, totals.c.account_id, after, ctx.now,
                                          owner_col=totals.c.user_id).label("mine"))
        .where(totals.c.total >= params.min_activities)
        .cte("member_counts")
    )
    c = counts
    return (
        select(
            *finding_columns(
                c.c.source,
                "account",
                c.c.account_id,
                c.c.account_id,
                c.c.owner_id,
                ctx.json(member_activities=c.c.mine, account_activities=c.c.total,
                         member_role=c.c.role, members=c.c.members,
                         window_days=literal(params.window_days)),
                related=c.c.user_id,
            )
        )
        .where(
            cast(c.c.mine, Float) / cast(c.c.total, Float) < params.min_share,
        )
    )


def _materialized(cte: CTE) -> CTE:
    """``cte`` computed once (``AS MATERIALIZED``): its counts are read by a filter and by the
    details; inlined, SQLite (and PostgreSQL 12+) would run the count's seeks once for each use."""
    return cte.prefix_with("MATERIALIZED", dialect="sqlite").prefix_with("MATERIALIZED", dialect="postgresql")
