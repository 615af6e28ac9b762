"""HND002 stage-role-mismatch: the account's stage calls for another role than its owner's.

Flags live owned accounts whose ``lifecycle_stage`` is mapped in ``stage_roles`` to roles that do
not include the owner's role, once the stage is older than ``grace_days`` days (an unknown stage
time counts as old). Stage names compare case-insensitively.
Why: leads belong with SDRs, deals with AEs, customers with account management.
Fix: hand the account to the right role; no suggestion (the team decides who).
"""

from __future__ import annotations

from typing import Any

from pydantic import NonNegativeInt
from sqlalchemy import Select, and_, false, func, or_, select

from .base import RuleParams, Severity, finding_columns
from .context import RuleContext, live_owned_accounts, owner_roles, role_not_in

CODE = "HND002"
NAME = "stage-role-mismatch"
SUGGESTS_OWNER = False


class Params(RuleParams):
    severity: Severity = "medium"
    grace_days: NonNegativeInt = 14
    stage_roles: dict[str, tuple[str, ...]] = {
        "lead": ("SDR",),
        "opportunity": ("AE",),
        "customer": ("AM", "CSM"),
    }


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    ctx.ensure("roles")
    a, a_live = live_owned_accounts()
    r = owner_roles
    stage = func.lower(a.c.lifecycle_stage)
    wrong_role = or_(
        false(),
        *(
            and_(stage == name.lower(), role_not_in(r.c.role, roles))
            for name, roles in params.stage_roles.items()
        ),
    )
    return (
        select(
            *finding_columns(
                a.c.source,
                "account",
                a.c.id,
                a.c.id,
                a.c.owner_id,
                ctx.json(
                    stage=a.c.lifecycle_stage,
                    owner_role=r.c.role,
                    stage_changed_at=a.c.stage_changed_at,
                ),
            )
        )
        .outerjoin(r, and_(r.c.source == a.c.source, r.c.id == a.c.owner_id))
        .where(
            a_live,
            wrong_role,
            or_(
                a.c.stage_changed_at.is_(None),
                a.c.stage_changed_at <= ctx.days_ago(params.grace_days),
            ),
        )
    )
