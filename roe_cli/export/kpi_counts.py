"""The KPI export's counts, each one GROUP BY (source, owner, segment start) in SQL for SQLite
and PostgreSQL: activities by kind, distinct accounts touched, opportunities created and the
referral-sourced ones. Segments are those of :mod:`.periods` (a week split at a month's end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select, union_all
from sqlalchemy.engine import Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from ..models import accounts, activities, contacts, opportunities
from ..rules.context import unindexed
from .periods import segment_start_sql

ACTIVITY_KINDS = ("call", "meeting", "email", "task", "note", "event")

Key = tuple[str, str, date]  # (source, owner id, segment start)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _span(column: ColumnElement[Any], since: date | None, until: date | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if since:
        conds.append(column >= day_start(since))
    if until:
        conds.append(column < day_start(until + timedelta(days=1)))
    return conds


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def _keyed(rows: Sequence[Row[Any]]) -> dict[Key, Row[Any]]:
    return {(r.source, r.owner_id, _as_date(r.seg)): r for r in rows}


def activity_counts(engine: Engine, period: str, since: date | None, until: date | None,
                    source: str | None) -> dict[Key, Row[Any]]:
    """Live activities with an owner and a time per key: ``activities`` and one column per kind."""
    a = activities
    seg = segment_start_sql(a.c.occurred_at, period, engine.dialect.name).label("seg")
    kinds = [func.sum(case((a.c.kind == kind, 1), else_=0)).label(kind) for kind in ACTIVITY_KINDS]
    stmt = (
        select(a.c.source, a.c.owner_id, seg, func.count().label("activities"), *kinds)
        .where(a.c.deleted.is_(False), a.c.owner_id.is_not(None), a.c.occurred_at.is_not(None),
               *_span(a.c.occurred_at, since, until))
        # +source: grouping by it must not make SQLite walk the (source, occurred_at) index, one
        # random table read per activity (3x slower than a sequential scan at 2M activities).
        .group_by(unindexed(a.c.source), a.c.owner_id, seg)
    )
    if source:
        stmt = stmt.where(a.c.source == source)
    with engine.connect() as conn:
        return _keyed(list(conn.execute(stmt)))


def accounts_touched(engine: Engine, period: str, since: date | None, until: date | None,
                     source: str | None) -> dict[Key, int]:
    """Distinct live accounts each owner's live activities count for, per key: an activity counts
    for its own account, its live contact's and its live deal's (as the rules count activity)."""
    a = activities
    con, opp = contacts.alias("kpi_contact"), opportunities.alias("kpi_deal")
    seg = segment_start_sql(a.c.occurred_at, period, engine.dialect.name).label("seg")
    w = (
        select(a.c.source, a.c.owner_id, seg, a.c.account_id.label("direct"),
               case((con.c.deleted.is_(False), con.c.account_id)).label("via_contact"),
               case((opp.c.deleted.is_(False), opp.c.account_id)).label("via_deal"))
        .select_from(a)
        .outerjoin(con, and_(con.c.source == a.c.source, con.c.id == a.c.contact_id))
        .outerjoin(opp, and_(opp.c.source == a.c.source, opp.c.id == a.c.opportunity_id))
        .where(a.c.deleted.is_(False), a.c.owner_id.is_not(None), a.c.occurred_at.is_not(None),
               *_span(a.c.occurred_at, since, until))
    )
    if source:
        w = w.where(a.c.source == source)
    wc = w.cte("kpi_window")
    parts = union_all(*(
        select(wc.c.source, wc.c.owner_id, wc.c.seg, col.label("account_id")).where(col.is_not(None))
        for col in (wc.c.direct, wc.c.via_contact, wc.c.via_deal)
    )).subquery("kpi_touches")
    live = accounts.alias("kpi_account")
    stmt = (
        select(parts.c.source, parts.c.owner_id, parts.c.seg,
               func.count(parts.c.account_id.distinct()).label("n"))
        .join(live, and_(live.c.source == parts.c.source, live.c.id == parts.c.account_id,
                         live.c.deleted.is_(False)))
        .group_by(parts.c.source, parts.c.owner_id, parts.c.seg)
    )
    with engine.connect() as conn:
        return {k: r.n for k, r in _keyed(list(conn.execute(stmt))).items()}


def opportunity_counts(engine: Engine, period: str, since: date | None, until: date | None,
                       source: str | None, referral: Mapping[str, Sequence[str]]) -> dict[Key, Row[Any]]:
    """Live opportunities per key of their owner and creation day: ``created``, ``referrals``
    (lead source among the source's ``referral`` values, ignoring case) and ``referrals_won``."""
    o = opportunities
    seg = segment_start_sql(o.c.created_at, period, engine.dialect.name).label("seg")
    is_referral = or_(false(), *(
        and_(o.c.source == src, func.lower(o.c.lead_source).in_(sorted({v.lower() for v in values})))
        for src, values in referral.items() if values
    ))
    stmt = (
        select(o.c.source, o.c.owner_id, seg, func.count().label("created"),
               func.sum(case((is_referral, 1), else_=0)).label("referrals"),
               func.sum(case((and_(is_referral, o.c.is_won.is_(True)), 1), else_=0)).label("referrals_won"))
        .where(o.c.deleted.is_(False), o.c.owner_id.is_not(None), o.c.created_at.is_not(None),
               *_span(o.c.created_at, since, until))
        .group_by(o.c.source, o.c.owner_id, seg)
    )
    if source:
        stmt = stmt.where(o.c.source == source)
    with engine.connect() as conn:
        return _keyed(list(conn.execute(stmt)))


def data_span(engine: Engine, since: date | None, until: date | None,
              source: str | None) -> tuple[date | None, date | None]:
    """``since``..``until``, each by default the first/last day with an activity, a created
    opportunity or a handoff (what the export counts)."""
    from ..models import ownership_changes as oc

    firsts: list[date] = []
    lasts: list[date] = []
    a, o = activities, opportunities
    spans: list[tuple[ColumnElement[Any], list[ColumnElement[bool]], ColumnElement[Any]]] = [
        (a.c.occurred_at, [a.c.deleted.is_(False), a.c.owner_id.is_not(None)], a.c.source),
        (o.c.created_at, [o.c.deleted.is_(False), o.c.owner_id.is_not(None)], o.c.source),
        (oc.c.changed_at, [oc.c.object_type == "account", oc.c.new_owner_id.is_not(None)], oc.c.source),
    ]
    with engine.connect() as conn:
        for col, conds, src in spans:
            where = [*conds, col.is_not(None), *_span(col, since, until)]
            if source:
                where.append(src == source)
            lo, hi = conn.execute(select(func.min(col), func.max(col)).where(*where)).one()
            if lo is not None:
                firsts.append(_as_date(lo))
                lasts.append(_as_date(hi))
    return since or (min(firsts) if firsts else None), until or (max(lasts) if lasts else None)
