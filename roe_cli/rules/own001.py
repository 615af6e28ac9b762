"""OWN001 contact-owner-mismatch: a contact owned by someone other than its account's owner.

Flags a live contact whose owner is not its (live, owned) account's owner and whose owner's role is
not in ``allowed_roles`` (SDRs prospecting into an account may own contacts, for example).
Why: two people working one buying committee confuse the customer and split credit.
Fix: move the contact to the account's owner (the suggestion, when that owner is active).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from ..models import contacts
from .base import RuleParams, Severity
from .context import RuleContext, owned_apart_from_account

CODE = "OWN001"
NAME = "contact-owner-mismatch"
SUGGESTS_OWNER = True


class Params(RuleParams):
    severity: Severity = "medium"
    allowed_roles: tuple[str, ...] = ("SDR",)


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    return owned_apart_from_account(ctx, contacts, "contact", params.allowed_roles)
