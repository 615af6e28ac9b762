"""OWN005 territory-mismatch: an account owned outside its territory's team.

Flags live owned accounts that fall in a territory (the first in ``[[territories]]`` whose match
fits) when the owner is not a member of that territory's team.
Why: territories decide who works what; exceptions breed disputes over quota and credit.
Fix: move the account to the territory's ``default_owner`` (the suggestion), or waive it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, case, exists, select

from .base import RuleParams, Severity, finding_columns
from .context import (
    RuleContext,
    account_territory,
    live_owned_accounts,
    owner_roles,
    team_members,
    territories_t,
)

CODE = "OWN005"
NAME = "territory-mismatch"
SUGGESTS_OWNER = True


class Params(RuleParams):
    severity: Severity = "medium"


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    ctx.ensure("roles", "territory")
    a, a_live = live_owned_accounts()
    at = account_territory
    terr = territories_t
    default_owner = owner_roles.alias("default_owner")
    member = exists().where(
        team_members.c.team == terr.c.team,
        team_members.c.source == a.c.source,
        team_members.c.owner_id == a.c.owner_id,
    )
    return (
        select(
            *finding_columns(
                a.c.source,
                "account",
                a.c.id,
                a.c.id,
                a.c.owner_id,
                ctx.json(territory=terr.c.name, team=terr.c.team),
                suggested=case((default_owner.c.active.is_(True), default_owner.c.id)),
            )
        )
        .join(at, and_(at.c.source == a.c.source, at.c.account_id == a.c.id))
        .join(terr, and_(terr.c.source == at.c.source, terr.c.ordinal == at.c.ordinal))
        .outerjoin(
            default_owner,
            and_(
                default_owner.c.source == terr.c.source,
                default_owner.c.id == terr.c.default_owner_id,
            ),
        )
        .where(a_live, ~member)
    )
