"""HND002 stage-role-mismatch: the account's stage calls for another role than its owner's.

Flags live owned accounts whose ``lifecycle_stage`` is mapped in ``stage_roles`` to roles that do
not include the owner's role, once the stage is older than ``grace_days`` days (an unknown stage
time counts as old). Stage names compare case-insensitively.
Why: leads belong with SDRs, deals with AEs, customers with account management.
Fix: hand the account to the right role; no suggestion (the team decides who).
"""

from __future__ import annotations

from pydantic import NonNegativeInt

from .base import RuleParams, Severity

CODE = "HND002"
NAME = "stage-role-mismatch"


class Params(RuleParams):
    severity: Severity = "medium"
    grace_days: NonNegativeInt = 14
    stage_roles: dict[str, tuple[str, ...]] = {"lead": ("SDR",), "opportunity": ("AE",), "customer": ("AM", "CSM")}


def query(ctx):
    raise NotImplementedError
