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
from sqlalchemy import Float, Select, and_, cast, func, literal, select

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
    users = (
        select(m.c.source, m.c.account_id, m.c.owner_id, m.c.user_id,
               func.max(flag_any(m.c.role, params.exempt_roles)).label("exempt"),
               func.min(m.c.role).label("role"))
        .group_by(m.c.source, m.c.account_id, m.c.owner_id, m.c.user_id)
        .subquery("team_users")
    )
    shared = (
        select(users.c.source, users.c.account_id, func.count().label("members"))
        .group_by(users.c.source, users.c.account_id)
        .having(func.count() >= 2)
        .subquery("shared_accounts")
    )
    # A CTE read twice (the account's total, each member's count): SQLite and PostgreSQL
    # materialize it once instead of scanning the window twice.
    window = ctx.activity_totals(ctx.days_ago(params.window_days), ctx.now)
    totals = select(window).cte("cov_activity_totals")
    per_account = (
        select(totals.c.source, totals.c.account_id, func.sum(totals.c.n).label("total"))
        .group_by(totals.c.source, totals.c.account_id)
        .subquery("account_totals")
    )
    mine = totals.alias("member_totals")
    n = func.coalesce(mine.c.n, 0)
    return (
        select(
            *finding_columns(
                users.c.source,
                "account",
                users.c.account_id,
                users.c.account_id,
                users.c.owner_id,
                ctx.json(member_activities=n, account_activities=per_account.c.total,
                         member_role=users.c.role, members=shared.c.members,
                         window_days=literal(params.window_days)),
                related=users.c.user_id,
            )
        )
        .select_from(users)
        .join(shared, and_(shared.c.source == users.c.source, shared.c.account_id == users.c.account_id))
        .join(per_account, and_(per_account.c.source == users.c.source,
                                per_account.c.account_id == users.c.account_id))
        .outerjoin(mine, and_(mine.c.source == users.c.source, mine.c.account_id == users.c.account_id,
                              mine.c.owner_id == users.c.user_id))
        .where(
            users.c.exempt == 0,
            per_account.c.total >= params.min_activities,
            cast(n, Float) / cast(per_account.c.total, Float) < params.min_share,
        )
    )
