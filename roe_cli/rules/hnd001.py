"""HND001 stale-handoff: an account handed over and not touched by its new owner.

Flags live accounts whose latest ownership change gave the account to its current owner at least
``sla_days`` days ago, when the new owner has logged no activity on the account since the change.
Why: the handoff SLO: a customer passed to a new rep who never calls feels dropped.
Fix: the new owner reaches out now; no suggestion.
"""

from __future__ import annotations

from pydantic import PositiveInt

from .base import RuleParams, Severity

CODE = "HND001"
NAME = "stale-handoff"


class Params(RuleParams):
    severity: Severity = "high"
    sla_days: PositiveInt = 7


def query(ctx):
    raise NotImplementedError
