"""HND001 stale-handoff: an account handed over and not touched by its new owner.

Flags live accounts whose latest ownership change gave the account to its current owner at least
``sla_days`` days ago, when the new owner has logged no activity on the account since the change.
Why: the handoff SLO: a customer passed to a new rep who never calls feels dropped.
Fix: the new owner reaches out now; no suggestion.
"""

from __future__ import annotations

from typing import Any

from pydantic import PositiveInt
from sqlalchemy import Select, and_, exists, func, literal, select

from ..models import ownership_changes
from .base import RuleParams, Severity, finding_columns
from .context import RuleContext, live_owned_accounts

CODE = "HND001"
NAME = "stale-handoff"
SUGGESTS_OWNER = False


class Params(RuleParams):
    severity: Severity = "high"
    sla_days: PositiveInt = 7


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    a, a_live = live_owned_accounts()
    oc = ownership_changes
    latest = (
        select(oc.c.source, oc.c.object_id, func.max(oc.c.changed_at).label("changed_at"))
        .where(oc.c.object_type == "account", oc.c.changed_at <= ctx.now)
        .group_by(oc.c.source, oc.c.object_id)
        .subquery("latest")
    )
    handed = oc.alias("handed")
    return (
        select(
            *finding_columns(
                a.c.source,
                "account",
                a.c.id,
                a.c.id,
                a.c.owner_id,
                ctx.json(changed_at=latest.c.changed_at, sla_days=literal(params.sla_days)),
            )
        )
        .join(latest, and_(latest.c.source == a.c.source, latest.c.object_id == a.c.id))
        .where(
            a_live,
            latest.c.changed_at <= ctx.days_ago(params.sla_days),
            exists().where(
                handed.c.source == a.c.source,
                handed.c.object_type == "account",
                handed.c.object_id == a.c.id,
                handed.c.changed_at == latest.c.changed_at,
                handed.c.new_owner_id == a.c.owner_id,
            ),
            ~ctx.activity_exists(a, a.c.owner_id, at_or_after=latest.c.changed_at, until=ctx.now),
        )
    )
