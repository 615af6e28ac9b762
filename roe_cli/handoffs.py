"""Handoff first touches: the one SQL for "accounts handed to a rep, and when that rep first
touched them", shared by `roe report` (per receiving rep) and `roe export kpi` (per rep and
period).

A *handoff* is an ownership change of a live account to a new owner (``ownership_changes`` with
``object_type = 'account'``, a new owner that differs from the old one), HND001's meaning: the
account was given to that rep at ``changed_at``. The same change recorded twice (the CRM's
history and a sync's observation at the same time) counts once.

The *first touch* is the earliest live activity by that rep that counts for the account as the
rules count it (logged on the account itself, on one of its live contacts or on one of its live
deals) with ``changed_at <= occurred_at`` (and ``<= as_of`` when given); None when there is none
yet. Touches are looked for past the end of the span: a handoff on its last day touched two days
later was touched within the SLA. Each path is
one seek on the mirror's composite activity indexes (source, link, owner, time).

A handoff is *touched within the SLA* when ``first_touch_at <= changed_at + sla_days`` (HND001's
``sla_days``): exactly the handoffs HND001 would never flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from .models import accounts, activities, contacts, opportunities, ownership_changes
from .rules.context import unindexed

if TYPE_CHECKING:
    from .rulesfile import RulesConfig


@dataclass(frozen=True)
class Handoff:
    """One account handed to ``rep_id`` at ``changed_at``, and the rep's first touch since."""

    source: str
    rep_id: str
    account_id: str
    changed_at: datetime
    first_touch_at: datetime | None

    @property
    def days_to_first_touch(self) -> float | None:
        if self.first_touch_at is None:
            return None
        return (self.first_touch_at - self.changed_at).total_seconds() / 86400

    def touched_within(self, sla_days: float) -> bool:
        return (self.first_touch_at is not None
                and self.first_touch_at <= self.changed_at + timedelta(days=sla_days))


def sla_days_of(config: RulesConfig | None) -> int:
    """HND001's ``sla_days`` in the rules file (its default without one)."""
    from .rules.hnd001 import Params

    params = config.rules.get("HND001") if config is not None else None
    return int(getattr(params, "sla_days", Params().sla_days))


def handoff_sla(engine: Engine, since: datetime | None = None, until: datetime | None = None,
                *, as_of: datetime | None = None, source: str | None = None) -> list[Handoff]:
    """Every handoff with ``since <= changed_at < until`` (naive UTC, both optional) and its
    first touch (up to ``as_of`` when given), ordered by source, rep, time and account."""
    oc = ownership_changes
    acc = accounts.alias("handed_account")
    cond: list[Any] = [
        oc.c.object_type == "account", oc.c.new_owner_id.is_not(None),
        or_(oc.c.old_owner_id.is_(None), oc.c.old_owner_id != oc.c.new_owner_id),
    ]
    for bound in (oc.c.changed_at >= since if since else None,
                  oc.c.changed_at < until if until else None,
                  oc.c.changed_at <= as_of if as_of else None):
        if bound is not None:
            cond.append(bound)
    if source is not None:
        cond.append(oc.c.source == source)
    h = (
        select(oc.c.source, oc.c.object_id.label("account_id"), oc.c.new_owner_id.label("rep_id"),
               oc.c.changed_at)
        .join(acc, and_(acc.c.source == oc.c.source, acc.c.id == oc.c.object_id,
                        acc.c.deleted.is_(False)))
        .where(*cond)
        .distinct()
        .subquery("handoffs")
    )

    def first_touch(path: str) -> Any:
        act = activities.alias(f"touch_{path}")
        when = unindexed(act.c.occurred_at)
        conds: list[Any] = [act.c.source == h.c.source, act.c.owner_id == h.c.rep_id,
                            act.c.deleted.is_(False), when >= h.c.changed_at]
        if as_of is not None:
            conds.append(when <= as_of)
        if path == "account":
            conds.append(act.c.account_id == h.c.account_id)
        else:
            table = contacts if path == "contact" else opportunities
            link = table.alias(f"touch_link_{path}")
            link_col = act.c.contact_id if path == "contact" else act.c.opportunity_id
            conds.append(link_col.in_(
                select(link.c.id).where(link.c.source == h.c.source,
                                        link.c.account_id == h.c.account_id,
                                        link.c.deleted.is_(False)).correlate_except(link)))
        return select(func.min(act.c.occurred_at)).where(*conds).scalar_subquery().label(path)

    stmt = select(h.c.source, h.c.rep_id, h.c.account_id, h.c.changed_at,
                  first_touch("account"), first_touch("contact"), first_touch("opportunity"))
    stmt = stmt.order_by(h.c.source, h.c.rep_id, h.c.changed_at, h.c.account_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    out: list[Handoff] = []
    for src, rep, account, changed, *touches in rows:
        times = [_as_datetime(t) for t in touches if t is not None]
        out.append(Handoff(src, rep, account, _as_datetime(changed), min(times) if times else None))
    return out


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))  # SQLite's MIN() of a DateTime hands back text


@dataclass(frozen=True)
class RepHandoffs:
    """One receiving rep's handoff figures."""

    source: str
    rep_id: str
    received: int
    touched: int
    within_sla: int
    median_days: float | None  # over the touched handoffs; None when none was touched


def summarize(handoffs: Iterable[Handoff], sla_days: float) -> list[RepHandoffs]:
    """Per (source, rep): handoffs received, touched at all, touched within ``sla_days``, and the
    median days to first touch (of those touched), most handoffs received first."""
    by_rep: dict[tuple[str, str], list[Handoff]] = {}
    for h in handoffs:
        by_rep.setdefault((h.source, h.rep_id), []).append(h)
    out = []
    for (source, rep), items in by_rep.items():
        days = [d for h in items if (d := h.days_to_first_touch) is not None]
        out.append(RepHandoffs(source, rep, len(items), len(days),
                               sum(h.touched_within(sla_days) for h in items),
                               round(median(days), 1) if days else None))
    return sorted(out, key=lambda r: (-r.received, r.source, r.rep_id))
