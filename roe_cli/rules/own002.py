"""OWN002 inactive-owner: an account, contact or open opportunity owned by a deactivated user.

Flags live records of the types in ``objects`` whose owner is inactive in the CRM (someone left).
Why: nobody answers the customer; renewals and deals die quietly.
Fix: contacts and opportunities go to their account's owner if active; otherwise, and for accounts,
by ``fallback``: ``territory`` (the territory's default owner), ``manager`` (the leaver's manager)
or an owner's e-mail. No suggestion when that gives no active owner.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select

from ..models import accounts, contacts, opportunities
from ..shared.text import suggest
from .base import RuleParams, Severity, Takes, finding_columns, is_email
from .context import RuleContext, account_territory, owner_roles, territories_t
from .pins import unindexed

CODE = "OWN002"
NAME = "inactive-owner"
SUGGESTS_OWNER = True
FALLBACKS = ("territory", "manager")  # or an owner's e-mail


def _fallback(value: str) -> str:
    """'territory', 'manager', or an owner's e-mail (lower-cased; the mirror must know it)."""
    if value in FALLBACKS:
        return value
    if not is_email(value):
        raise ValueError(
            f"'{value}' is not a fallback: use 'territory', 'manager' or an owner's "
            f"e-mail{suggest(value, FALLBACKS)}"
        )
    return value.strip().lower()


class Params(RuleParams):
    severity: Severity = "high"
    objects: tuple[Literal["account", "contact", "opportunity"], ...] = (
        "account",
        "contact",
        "opportunity",
    )
    fallback: Annotated[
        str, AfterValidator(_fallback), Takes("'territory', 'manager' or an owner's e-mail")
    ] = "territory"


def query(ctx: RuleContext, params: Params) -> list[Select[Any]]:
    ctx.ensure("roles", "territory")
    return [_select(ctx, object_type, params.fallback) for object_type in params.objects]


def _select(ctx: RuleContext, object_type: str, fallback: str) -> Select[Any]:
    table = {"account": accounts, "contact": contacts, "opportunity": opportunities}[object_type]
    rec = table.alias("rec")
    owner = owner_roles.alias("owner")
    acct = accounts.alias("acct")
    acct_owner = owner_roles.alias("acct_owner")
    at = account_territory.alias("at")
    terr = territories_t.alias("terr")
    default_owner = owner_roles.alias("default_owner")
    manager = owner_roles.alias("manager")

    account_id = rec.c.id if object_type == "account" else rec.c.account_id
    fallback_owner: ColumnElement[Any]
    if fallback == "territory":
        fallback_owner = case((default_owner.c.active.is_(True), default_owner.c.id))
    elif fallback == "manager":
        fallback_owner = case((manager.c.active.is_(True), manager.c.id))
    else:
        fallback_owner = ctx.owner_id_for(rec.c.source, fallback)
    if object_type == "account":
        suggested = fallback_owner
    else:
        suggested = func.coalesce(
            case((acct_owner.c.active.is_(True), acct_owner.c.id)), fallback_owner
        )

    stmt = (
        select(
            *finding_columns(
                rec.c.source,
                object_type,
                rec.c.id,
                (acct.c.id if object_type != "account" else rec.c.id),
                rec.c.owner_id,
                ctx.json(
                    inactive_owner_id=rec.c.owner_id,
                    fallback=literal(fallback),
                    territory=terr.c.name,
                ),
                suggested=suggested,
            )
        )
        .select_from(rec)
        # Pinned (see pins.py): every record read once, its owner sought by key; not the records
        # of each owner through the owner index, which sampled statistics can make look cheap.
        .join(owner, and_(owner.c.source == unindexed(rec.c.source),
                          owner.c.id == unindexed(rec.c.owner_id)))
        .outerjoin(
            acct,
            and_(acct.c.source == rec.c.source, acct.c.id == account_id, acct.c.deleted.is_(False)),
        )
        .outerjoin(
            acct_owner,
            and_(acct_owner.c.source == acct.c.source, acct_owner.c.id == acct.c.owner_id),
        )
        .outerjoin(at, and_(at.c.source == acct.c.source, at.c.account_id == acct.c.id))
        .outerjoin(terr, and_(terr.c.source == at.c.source, terr.c.ordinal == at.c.ordinal))
        .outerjoin(
            default_owner,
            and_(
                default_owner.c.source == terr.c.source,
                default_owner.c.id == terr.c.default_owner_id,
            ),
        )
        .outerjoin(
            manager, and_(manager.c.source == owner.c.source, manager.c.id == owner.c.manager_id)
        )
        .where(rec.c.deleted.is_(False), owner.c.active.is_(False))
    )
    if object_type == "opportunity":
        stmt = stmt.where(rec.c.is_closed.is_(False))
    return stmt
