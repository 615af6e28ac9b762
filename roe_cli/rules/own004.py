"""OWN004 non-owner-engagement: someone else is working the account more than its owner.

Flags (account, user) pairs where a user who is not the owner and whose role is not in
``exempt_roles`` logged at least ``min_activities`` activities on the account in the last
``window_days`` days, and more than the owner did in that window.
Why: either the owner is wrong or someone is poaching; both need a conversation.
Fix: a person decides: reassign the account, or agree who works it. No suggestion.
"""

from __future__ import annotations

from pydantic import PositiveInt

from .base import RuleParams, Severity

CODE = "OWN004"
NAME = "non-owner-engagement"


class Params(RuleParams):
    severity: Severity = "low"
    window_days: PositiveInt = 30
    min_activities: PositiveInt = 3
    exempt_roles: tuple[str, ...] = ("SE",)


def query(ctx):
    raise NotImplementedError
