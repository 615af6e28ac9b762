"""OWN004 non-owner-engagement: someone else is working the account more than its owner.

Flags (account, user) pairs where a user who is not the owner and whose role is not in
``exempt_roles`` logged at least ``min_activities`` activities on the account in the last
``window_days`` days, and more than the owner did in that window.
Why: either the owner is wrong or someone is poaching; both need a conversation.
Fix: a person decides: reassign the account, or agree who works it. No suggestion.
"""

from __future__ import annotations

from typing import Any

from pydantic import PositiveInt
from sqlalchemy import Select, and_, case, func, literal, select

from .base import RuleParams, Severity, finding_columns
from .context import RuleContext, live_owned_accounts, owner_roles, role_not_in

CODE = "OWN004"
NAME = "non-owner-engagement"
SUGGESTS_OWNER = False


class Params(RuleParams):
    severity: Severity = "low"
    window_days: PositiveInt = 30
    min_activities: PositiveInt = 3
    exempt_roles: tuple[str, ...] = ("SE",)


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    ctx.ensure("roles")
    a, a_live = live_owned_accounts()
    totals = ctx.activity_totals(ctx.days_ago(params.window_days), ctx.now)
    # Each user's count beside the owner's count on the same account, in one pass (a window
    # function rather than a self-join, which SQLite plans badly on big windows).
    owner_n = func.max(case((totals.c.owner_id == a.c.owner_id, totals.c.n), else_=0)).over(
        partition_by=(totals.c.source, totals.c.account_id)
    )
    per_user = (
        select(
            totals.c.source,
            totals.c.account_id,
            totals.c.owner_id.label("user_id"),
            totals.c.n,
            a.c.owner_id.label("account_owner_id"),
            owner_n.label("owner_n"),
        )
        .join(a, and_(a.c.source == totals.c.source, a.c.id == totals.c.account_id))
        .where(a_live)
        .subquery("per_user")
    )
    user = owner_roles.alias("engaged")
    return (
        select(
            *finding_columns(
                per_user.c.source,
                "account",
                per_user.c.account_id,
                per_user.c.account_id,
                per_user.c.account_owner_id,
                ctx.json(
                    user_activities=per_user.c.n,
                    owner_activities=per_user.c.owner_n,
                    window_days=literal(params.window_days),
                ),
                related=per_user.c.user_id,
            )
        )
        .outerjoin(user, and_(user.c.source == per_user.c.source, user.c.id == per_user.c.user_id))
        .where(
            per_user.c.user_id.is_not(None),
            per_user.c.user_id != per_user.c.account_owner_id,
            per_user.c.n >= params.min_activities,
            per_user.c.n > per_user.c.owner_n,
            role_not_in(user.c.role, params.exempt_roles),
        )
    )
