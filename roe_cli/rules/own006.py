"""OWN006 opportunity-owner-mismatch: an open deal owned by someone other than its account's owner.

Flags live open opportunities whose owner is not their (live, owned) account's owner and whose
role is not in ``allowed_roles`` (SEs on technical deals, for example).
Why: forecasts and commissions follow the deal owner; the account owner loses sight of the deal.
Fix: move the deal to the account's owner (the suggestion, when active).
"""

from __future__ import annotations

from sqlalchemy import and_, case, select

from ..models import opportunities
from .base import RuleParams, Severity, finding_columns
from .context import live_owned_accounts, owner_roles, role_not_in

CODE = "OWN006"
NAME = "opportunity-owner-mismatch"


class Params(RuleParams):
    severity: Severity = "medium"
    allowed_roles: tuple[str, ...] = ("SE",)


def query(ctx):
    ctx.ensure("roles")
    a, a_live = live_owned_accounts()
    o = opportunities
    opp_owner = owner_roles.alias("opp_owner")
    account_owner = owner_roles.alias("account_owner")
    return (
        select(
            *finding_columns(
                o.c.source,
                "opportunity",
                o.c.id,
                o.c.account_id,
                o.c.owner_id,
                ctx.json(
                    opportunity_owner_role=opp_owner.c.role,
                    account_owner_id=a.c.owner_id,
                    stage=o.c.stage,
                ),
                suggested=case((account_owner.c.active.is_(True), a.c.owner_id)),
            )
        )
        .join(a, and_(a.c.source == o.c.source, a.c.id == o.c.account_id))
        .outerjoin(
            opp_owner, and_(opp_owner.c.source == o.c.source, opp_owner.c.id == o.c.owner_id)
        )
        .outerjoin(
            account_owner,
            and_(account_owner.c.source == a.c.source, account_owner.c.id == a.c.owner_id),
        )
        .where(
            a_live,
            o.c.deleted.is_(False),
            o.c.is_closed.is_(False),
            o.c.owner_id.is_not(None),
            o.c.owner_id != a.c.owner_id,
            role_not_in(opp_owner.c.role, ctx.params.allowed_roles),
        )
    )
