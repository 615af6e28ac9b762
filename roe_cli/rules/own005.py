"""OWN005 territory-mismatch: an account owned outside its territory's team.

Flags live owned accounts that fall in a territory (the first in ``[[territories]]`` whose match
fits) when the owner is not a member of that territory's team.
Why: territories decide who works what; exceptions breed disputes over quota and credit.
Fix: move the account to the territory's ``default_owner`` (the suggestion), or waive it.
"""

from __future__ import annotations

from .base import RuleParams, Severity

CODE = "OWN005"
NAME = "territory-mismatch"


class Params(RuleParams):
    severity: Severity = "medium"


def query(ctx):
    raise NotImplementedError
