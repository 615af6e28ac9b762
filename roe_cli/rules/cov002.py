"""COV002 quarterback: a shared account with no quarterback, or with more than one.

Flags each shared account (two or more distinct active members, the owner included) whose active
members include no one, or more than one distinct person, with a role in ``quarterback_roles``.
The details name the quarterbacks found (user ids, comma-separated) and how many.
Why: an account manager is meant to pull the team together; without one, or with two, it fumbles.
Fix: name one quarterback on the account team (or make one of them leave it). No suggestion.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types
from sqlalchemy import Select, case, func, select

from .base import RuleParams, Severity, finding_columns
from .context import RuleContext
from .teams import account_members, flag_any, id_list

CODE = "COV002"
NAME = "quarterback"
SUGGESTS_OWNER = False


class Params(RuleParams):
    severity: Severity = "medium"
    quarterback_roles: Annotated[tuple[str, ...], annotated_types.MinLen(1)] = ("AM",)


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    m = account_members(ctx)
    users = (
        select(m.c.source, m.c.account_id, m.c.owner_id, m.c.user_id,
               func.max(flag_any(m.c.role, params.quarterback_roles)).label("qb"))
        .group_by(m.c.source, m.c.account_id, m.c.owner_id, m.c.user_id)
        .order_by(m.c.source, m.c.account_id, m.c.user_id)  # the order of the id list (SQLite)
        .subquery("team_users")
    )
    qb_id = case((users.c.qb == 1, users.c.user_id))
    per_account = (
        select(users.c.source, users.c.account_id, users.c.owner_id,
               func.count().label("members"), func.sum(users.c.qb).label("quarterbacks"),
               id_list(ctx, qb_id).label("quarterback_ids"))
        .group_by(users.c.source, users.c.account_id, users.c.owner_id)
        .subquery("team_quarterbacks")
    )
    p = per_account
    return (
        select(
            *finding_columns(
                p.c.source, "account", p.c.account_id, p.c.account_id, p.c.owner_id,
                ctx.json(quarterbacks=p.c.quarterbacks,
                         quarterback_ids=func.coalesce(p.c.quarterback_ids, ""),
                         members=p.c.members),
            )
        )
        .where(p.c.members >= 2, p.c.quarterbacks != 1)
    )
