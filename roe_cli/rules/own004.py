"""OWN004 non-owner-engagement: someone else is working the account more than its owner.

Flags (account, user) pairs where a user who is not the owner and whose role is not in
``exempt_roles`` logged at least ``min_activities`` activities on the account in the last
``window_days`` days, and more than the owner did in that window.
Why: either the owner is wrong or someone is poaching; both need a conversation.
Fix: a person decides: reassign the account, or agree who works it. No suggestion.
"""

from __future__ import annotations

from pydantic import PositiveInt
from sqlalchemy import and_, func, literal, null, select

from .base import RuleParams, Severity
from .context import account_activity, live_owned_accounts, owner_roles, role_not_in

CODE = "OWN004"
NAME = "non-owner-engagement"


class Params(RuleParams):
    severity: Severity = "low"
    window_days: PositiveInt = 30
    min_activities: PositiveInt = 3
    exempt_roles: tuple[str, ...] = ("SE",)


def query(ctx):
    ctx.ensure("roles", "activity")
    a, a_live = live_owned_accounts()
    x = account_activity
    counts = (
        select(x.c.source, x.c.account_id, x.c.owner_id, func.count().label("n"))
        .where(x.c.owner_id.is_not(None), x.c.occurred_at > ctx.days_ago(ctx.params.window_days),
               x.c.occurred_at <= ctx.now)
        .group_by(x.c.source, x.c.account_id, x.c.owner_id)
        .subquery("counts")
    )
    owner_counts = counts.alias("owner_counts")
    user = owner_roles.alias("engaged")
    owner_n = func.coalesce(owner_counts.c.n, 0)
    return (
        select(
            a.c.source,
            literal("account").label("object_type"),
            a.c.id.label("object_id"),
            counts.c.owner_id.label("related_user_id"),
            a.c.id.label("account_id"),
            a.c.owner_id,
            null().label("suggested_owner_id"),
            ctx.json(user_activities=counts.c.n, owner_activities=owner_n,
                     window_days=literal(ctx.params.window_days)).label("details"),
        )
        .select_from(counts)
        .join(a, and_(a.c.source == counts.c.source, a.c.id == counts.c.account_id))
        .outerjoin(owner_counts, and_(owner_counts.c.source == a.c.source,
                                      owner_counts.c.account_id == a.c.id,
                                      owner_counts.c.owner_id == a.c.owner_id))
        .outerjoin(user, and_(user.c.source == counts.c.source, user.c.id == counts.c.owner_id))
        .where(
            a_live,
            counts.c.owner_id != a.c.owner_id,
            counts.c.n >= ctx.params.min_activities,
            counts.c.n > owner_n,
            role_not_in(user.c.role, ctx.params.exempt_roles),
        )
    )
