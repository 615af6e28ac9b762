"""HND003 neglected-account: an account with an open deal that its owner has gone quiet on.

Flags live owned accounts with at least one live open opportunity when the owner logged no
activity on the account in the last ``max_idle_days`` days.
Why: open deals go cold without a touch; a leading indicator for the forecast.
Fix: the owner follows up; no suggestion.
"""

from __future__ import annotations

from pydantic import PositiveInt

from .base import RuleParams, Severity

CODE = "HND003"
NAME = "neglected-account"


class Params(RuleParams):
    severity: Severity = "high"
    max_idle_days: PositiveInt = 21


def query(ctx):
    raise NotImplementedError
