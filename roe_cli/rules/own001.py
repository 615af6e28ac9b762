"""OWN001 contact-owner-mismatch: a contact owned by someone other than its account's owner.

Flags a live contact whose owner is not its (live, owned) account's owner and whose owner's role is
not in ``allowed_roles`` (SDRs prospecting into an account may own contacts, for example).
Why: two people working one buying committee confuse the customer and split credit.
Fix: move the contact to the account's owner (the suggestion, when that owner is active).
"""

from __future__ import annotations

from sqlalchemy import and_, case, select

from ..models import contacts
from .base import RuleParams, Severity, finding_columns
from .context import live_owned_accounts, owner_roles, role_not_in

CODE = "OWN001"
NAME = "contact-owner-mismatch"


class Params(RuleParams):
    severity: Severity = "medium"
    allowed_roles: tuple[str, ...] = ("SDR",)


def query(ctx):
    ctx.ensure("roles")
    a, a_live = live_owned_accounts()
    c = contacts
    contact_owner = owner_roles.alias("contact_owner")
    account_owner = owner_roles.alias("account_owner")
    return (
        select(
            *finding_columns(
                c.c.source,
                "contact",
                c.c.id,
                c.c.account_id,
                c.c.owner_id,
                ctx.json(contact_owner_role=contact_owner.c.role, account_owner_id=a.c.owner_id),
                suggested=case((account_owner.c.active.is_(True), a.c.owner_id)),
            )
        )
        .join(a, and_(a.c.source == c.c.source, a.c.id == c.c.account_id))
        .outerjoin(
            contact_owner,
            and_(contact_owner.c.source == c.c.source, contact_owner.c.id == c.c.owner_id),
        )
        .outerjoin(
            account_owner,
            and_(account_owner.c.source == a.c.source, account_owner.c.id == a.c.owner_id),
        )
        .where(
            a_live,
            c.c.deleted.is_(False),
            c.c.owner_id.is_not(None),
            c.c.owner_id != a.c.owner_id,
            role_not_in(contact_owner.c.role, ctx.params.allowed_roles),
        )
    )
