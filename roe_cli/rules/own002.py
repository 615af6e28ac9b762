"""OWN002 inactive-owner: an account, contact or open opportunity owned by a deactivated user.

Flags live records of the types in ``objects`` whose owner is inactive in the CRM (someone left).
Why: nobody answers the customer; renewals and deals die quietly.
Fix: contacts and opportunities go to their account's owner if active; otherwise, and for accounts,
by ``fallback``: ``territory`` (the territory's default owner), ``manager`` (the leaver's manager)
or an owner's e-mail. No suggestion when that gives no active owner.
"""

from __future__ import annotations

from typing import Literal

from .base import RuleParams, Severity

CODE = "OWN002"
NAME = "inactive-owner"


class Params(RuleParams):
    severity: Severity = "high"
    objects: tuple[Literal["account", "contact", "opportunity"], ...] = ("account", "contact", "opportunity")
    fallback: str = "territory"


def query(ctx):
    raise NotImplementedError
