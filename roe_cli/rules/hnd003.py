"""HND003 neglected-account: an account with an open deal that its owner has gone quiet on.

Flags live owned accounts with at least one live open opportunity when the owner logged no
activity on the account in the last ``max_idle_days`` days.
Why: open deals go cold without a touch; a leading indicator for the forecast.
Fix: the owner follows up; no suggestion.
"""

from __future__ import annotations

from typing import Any

from pydantic import PositiveInt
from sqlalchemy import Select, exists, literal, select

from ..models import opportunities
from .base import RuleParams, Severity, finding_columns
from .context import RuleContext, live_owned_accounts
from .pins import indexed_alias

CODE = "HND003"
NAME = "neglected-account"
SUGGESTS_OWNER = False


class Params(RuleParams):
    severity: Severity = "high"
    max_idle_days: PositiveInt = 21


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    a, a_live = live_owned_accounts()
    # Pinned: the account's deals by the (source, account_id) index, never a scan of deals.
    o = indexed_alias(opportunities, "open_deal", "source", "account_id")
    start = ctx.days_ago(params.max_idle_days)
    open_opp = exists().where(
        o.c.source == a.c.source,
        o.c.account_id == a.c.id,
        o.c.deleted.is_(False),
        o.c.is_closed.is_(False),
    )
    touched = ctx.activity_exists(a, a.c.owner_id, after=start, until=ctx.now)
    return select(
        *finding_columns(
            a.c.source,
            "account",
            a.c.id,
            a.c.id,
            a.c.owner_id,
            ctx.json(max_idle_days=literal(params.max_idle_days)),
        )
    ).where(a_live, open_opp, ~touched)
