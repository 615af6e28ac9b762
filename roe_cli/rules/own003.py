"""OWN003 duplicate-account-split: one company, several accounts, several owners.

Flags owned live accounts that share a normalized domain with accounts of a different owner: one
finding per account not owned by the preferred owner. ``prefer = "most_active"`` prefers the owner
of the account with the most activities in the last 365 days (ties: the earliest created);
``"oldest"`` prefers the owner of the earliest created account.
Why: reps compete for the same customer and the customer sees two faces.
Fix: give the accounts to the preferred owner (the suggestion), then merge them in the CRM.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, literal, or_, select, union_all

from ..models import accounts, contacts
from .base import RuleParams, Severity, finding_columns
from .context import RuleContext, owner_roles
from .pins import unindexed

CODE = "OWN003"
NAME = "duplicate-account-split"
SUGGESTS_OWNER = True


class Params(RuleParams):
    severity: Severity = "medium"
    prefer: Literal["most_active", "oldest"] = "most_active"


def query(ctx: RuleContext, params: Params) -> Select[Any]:
    ctx.ensure("roles")
    free = [d.lower() for d in ctx.config.free_email_domains]
    a = accounts
    # ``+owner_id``: "owned" filters; it is not a range of the owner index to drive by.
    live_owned = and_(a.c.deleted.is_(False), unindexed(a.c.owner_id).is_not(None))
    no_website = or_(a.c.website.is_(None), func.trim(a.c.website) == "")

    # The account's domain: from its website (a free-mail website gives none); with no website,
    # the most common non-free e-mail domain of its live contacts (ties: alphabetically first).
    from_website = select(a.c.source, a.c.id.label("account_id"), a.c.domain.label("domain")).where(
        live_owned, ~no_website, a.c.domain.is_not(None), a.c.domain.not_in(free)
    )
    c = contacts
    per_domain = (
        select(
            c.c.source, c.c.account_id, c.c.email_domain.label("domain"), func.count().label("n")
        )
        .join(a, and_(a.c.source == c.c.source, a.c.id == c.c.account_id))
        .where(
            live_owned,
            no_website,
            c.c.deleted.is_(False),
            c.c.email_domain.is_not(None),
            c.c.email_domain.not_in(free),
        )
        .group_by(c.c.source, c.c.account_id, c.c.email_domain)
        .subquery("per_domain")
    )
    ranked = select(
        per_domain,
        func.row_number()
        .over(
            partition_by=(per_domain.c.source, per_domain.c.account_id),
            order_by=(per_domain.c.n.desc(), per_domain.c.domain),
        )
        .label("rn"),
    ).subquery("ranked")
    from_contacts = select(ranked.c.source, ranked.c.account_id, ranked.c.domain).where(
        ranked.c.rn == 1
    )
    domains = union_all(from_website, from_contacts).cte("domains")

    acc = accounts.alias("acc")
    members = (
        select(
            domains.c.source,
            domains.c.domain,
            domains.c.account_id,
            acc.c.owner_id,
            acc.c.created_at,
        )
        .join(acc, and_(acc.c.source == domains.c.source, acc.c.id == domains.c.account_id))
        .cte("members")
    )
    split = (
        select(members.c.source, members.c.domain)
        .group_by(members.c.source, members.c.domain)
        .having(func.count(func.distinct(members.c.owner_id)) >= 2)
        .subquery("split")
    )
    cluster = (
        select(members)
        .join(split, and_(split.c.source == members.c.source, split.c.domain == members.c.domain))
        .cte("cluster")
    )
    created_order = (
        case((cluster.c.created_at.is_(None), 1), else_=0),
        cluster.c.created_at,
        cluster.c.account_id,
    )
    order: tuple[Any, ...]
    if params.prefer == "most_active":
        activity = ctx.activity_count(
            cluster.c.source, cluster.c.account_id, ctx.days_ago(365), ctx.now
        )
        order = (activity.desc(), *created_order)
    else:
        activity = literal(None)
        order = created_order
    ranked_members = select(
        cluster,
        activity.label("activities"),
        func.row_number()
        .over(partition_by=(cluster.c.source, cluster.c.domain), order_by=order)
        .label("rank"),
    ).cte("ranked_members")
    preferred = ranked_members.alias("preferred")
    preferred_owner = owner_roles.alias("preferred_owner")
    m = ranked_members
    return (
        select(
            *finding_columns(
                m.c.source,
                "account",
                m.c.account_id,
                m.c.account_id,
                m.c.owner_id,
                ctx.json(
                    domain=m.c.domain,
                    preferred_account_id=preferred.c.account_id,
                    prefer=literal(params.prefer),
                    account_activities=m.c.activities,
                    preferred_activities=preferred.c.activities,
                ),
                suggested=case((preferred_owner.c.active.is_(True), preferred.c.owner_id)),
            )
        )
        .join(
            preferred,
            and_(
                preferred.c.source == m.c.source,
                preferred.c.domain == m.c.domain,
                preferred.c.rank == 1,
            ),
        )
        .outerjoin(
            preferred_owner,
            and_(
                preferred_owner.c.source == preferred.c.source,
                preferred_owner.c.id == preferred.c.owner_id,
            ),
        )
        .where(m.c.owner_id != preferred.c.owner_id)
    )
