"""Handoffs and the new owner's first touch, for the KPI export's per-period handoff figures.

A handoff is a change of an account's owner recorded in ``ownership_changes`` (object type
``account``, any origin) that gave a live account to a user: HND001's meaning of "handed over",
counted here once per change, in the period the change happened. The new owner's first touch
is the earliest live activity by that user, at or after the change, that counts for the account
the way the rules count it (on the account itself, on one of its live contacts or on one of its
live deals): the same test as HND001's ``activity_exists(..., at_or_after=changed_at)``.

:func:`handoff_first_touches` is one query: the handoffs in the span, each with three correlated
``MIN(occurred_at)`` seeks on the activities' (source, account/contact/deal, owner, occurred_at)
indexes. Touches are looked for up to the newest activity in the mirror, not only inside the
span: a handoff on the span's last day touched two days later was touched within the SLA.

(``roe_cli/report/handoffs.py`` answers the same question for the HTML report; the two are to
be unified into one function.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import ColumnElement

from ..models import accounts, activities, contacts, opportunities, ownership_changes


@dataclass(frozen=True)
class Handoff:
    """One handoff: ``account_id`` of ``source`` given to ``rep_id`` at ``changed_at``, and that
    rep's first touch of the account at or after it (None: not touched yet)."""

    source: str
    account_id: str
    rep_id: str
    changed_at: datetime
    first_touch: datetime | None

    @property
    def days_to_first_touch(self) -> float | None:
        """Days (fractional) from the handoff to the first touch; None when not touched."""
        if self.first_touch is None:
            return None
        return (self.first_touch - self.changed_at).total_seconds() / 86400

    def touched_within(self, sla_days: int) -> bool:
        """True when the rep touched the account within ``sla_days`` days of the handoff."""
        return self.first_touch is not None and self.first_touch - self.changed_at <= timedelta(days=sla_days)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def handoff_first_touches(
    engine: Engine,
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> list[Handoff]:
    """Every handoff of a live account with ``since <= changed_at < until + 1 day`` (UTC days,
    both optional), oldest first, with the new owner's first touch (see the module docstring)."""
    oc, acc = ownership_changes, accounts
    firsts: list[ColumnElement[Any]] = []
    for path in ("account", "contact", "opportunity"):
        act = activities.alias(f"touch_{path}")
        conds: list[ColumnElement[bool]] = [
            act.c.source == oc.c.source, act.c.owner_id == oc.c.new_owner_id,
            act.c.deleted.is_(False), act.c.occurred_at >= oc.c.changed_at,
        ]
        if path == "account":
            conds.append(act.c.account_id == oc.c.object_id)
        else:
            link = (contacts if path == "contact" else opportunities).alias(f"touch_link_{path}")
            col = act.c.contact_id if path == "contact" else act.c.opportunity_id
            conds.append(col.in_(
                select(link.c.id).where(link.c.source == oc.c.source, link.c.account_id == oc.c.object_id,
                                        link.c.deleted.is_(False)).correlate_except(link)
            ))
        firsts.append(select(func.min(act.c.occurred_at)).where(*conds).correlate(oc)
                      .scalar_subquery().label(f"first_{path}"))
    stmt = (
        select(oc.c.source, oc.c.object_id, oc.c.new_owner_id, oc.c.changed_at, *firsts)
        .join(acc, and_(acc.c.source == oc.c.source, acc.c.id == oc.c.object_id))
        .where(oc.c.object_type == "account", oc.c.new_owner_id.is_not(None), acc.c.deleted.is_(False))
        .order_by(oc.c.changed_at, oc.c.source, oc.c.object_id, oc.c.id)
    )
    if since:
        stmt = stmt.where(oc.c.changed_at >= _day_start(since))
    if until:
        stmt = stmt.where(oc.c.changed_at < _day_start(until + timedelta(days=1)))
    if source:
        stmt = stmt.where(oc.c.source == source)
    out = []
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            touches = [t for t in (r.first_account, r.first_contact, r.first_opportunity) if t is not None]
            out.append(Handoff(r.source, r.object_id, r.new_owner_id, r.changed_at,
                               min(touches) if touches else None))
    return out
