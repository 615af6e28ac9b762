"""OWN003 duplicate-account-split: one company, several accounts, several owners.

Flags owned live accounts that share a normalized domain with accounts of a different owner: one
finding per account not owned by the preferred owner. ``prefer = "most_active"`` prefers the owner
of the account with the most activities in the last 365 days (ties: the earliest created);
``"oldest"`` prefers the owner of the earliest created account.
Why: reps compete for the same customer and the customer sees two faces.
Fix: give the accounts to the preferred owner (the suggestion), then merge them in the CRM.
"""

from __future__ import annotations

from typing import Literal

from .base import RuleParams, Severity

CODE = "OWN003"
NAME = "duplicate-account-split"


class Params(RuleParams):
    severity: Severity = "medium"
    prefer: Literal["most_active", "oldest"] = "most_active"


def query(ctx):
    raise NotImplementedError
