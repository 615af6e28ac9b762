"""OWN006 opportunity-owner-mismatch: an open deal owned by someone other than its account's owner.

Flags live open opportunities whose owner is not their (live, owned) account's owner and whose
role is not in ``allowed_roles`` (SEs on technical deals, for example).
Why: forecasts and commissions follow the deal owner; the account owner loses sight of the deal.
Fix: move the deal to the account's owner (the suggestion, when active).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from ..models import opportunities
from .base import RuleParams, Severity
from .context import RuleContext, owned_apart_from_account

CODE = "OWN006"
NAME = "opportunity-owner-mismatch"
SUGGESTS_OWNER = True


class Params(RuleParams):
    severity: Severity = "medium"
    allowed_roles: tuple[str, ...] = ("SE",)


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    o = opportunities
    return owned_apart_from_account(
        ctx, o, "opportunity", params.allowed_roles, o.c.is_closed.is_(False), stage=o.c.stage
    )
