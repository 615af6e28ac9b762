"""Leading indicators (KPIs): live activities per owner per ISO week, month or quarter.

One GROUP BY counts activities by kind per (source, owner, period start), in SQL for SQLite and
PostgreSQL. Every active owner gets a row for every period of the span, zeros included: a rep with
no activity in a week is the signal this report exists for. Days are UTC and inclusive.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, Integer, and_, case, cast, func, select
from sqlalchemy.engine import Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from ..models import activities, owners
from ..shared.errors import UsageError
from ..shared.vocab import PERIODS
from .writers import Column, ExportResult, write_rows

if TYPE_CHECKING:
    from ..rulesfile import RulesConfig

ACTIVITY_KINDS = ("call", "meeting", "email", "task", "note", "event")


def period_start_of(day: date, period: str) -> date:
    """The first day of the ISO week (Monday), month or quarter that ``day`` falls in."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def next_period(start: date, period: str) -> date:
    """The first day of the period after the one starting on ``start``."""
    if period == "week":
        return start + timedelta(days=7)
    months = 1 if period == "month" else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def period_label(start: date, period: str) -> str:
    """``2026-W44``, ``2026-11`` or ``2026-Q4``."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start:%Y-%m}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def period_start_sql(column: ColumnElement[Any], period: str, dialect: str) -> ColumnElement[Any]:
    """SQL for the first day of ``column``'s ISO week, month or quarter (UTC), as a date."""
    if period not in PERIODS:
        raise UsageError(f"Unknown period {period!r}.", "Use week, month or quarter.")
    if dialect == "sqlite":
        if period == "week":  # the coming Sunday (or today, on a Sunday), then back to its Monday
            return func.date(column, "weekday 0", "-6 days", type_=Date)
        if period == "month":
            return func.date(column, "start of month", type_=Date)
        back = (cast(func.strftime("%m", column), Integer) - 1) % 3
        return func.date(column, "start of month", func.printf("-%d months", back), type_=Date)
    if dialect == "postgresql":
        return cast(func.date_trunc(period, column), Date)
    raise UsageError(
        f"The KPI export does not support {dialect} databases yet.",
        "Use a SQLite or PostgreSQL mirror.",
    )


KPI_COLUMNS = [
    Column("period"), Column("period_start", "date"), Column("source"), Column("owner_id"),
    Column("owner_email"), Column("owner_name"), Column("role"), Column("crm_role"),
    Column("team"), Column("active", "bool"), Column("activities", "int"),
    *(Column(kind, "int") for kind in ACTIVITY_KINDS), Column("other", "int"),
]
"""One row per owner and period: ``activities`` in all, then by kind (``other``: any other kind)."""


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def kpi_counts(
    engine: Engine,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> list[Row[Any]]:
    """Live activities per (source, owner, period start), counted by kind in one GROUP BY.

    ``since`` and ``until`` are inclusive days (UTC). Activities without an owner or a time do not
    count. Returns the result rows (``source, owner_id, period_start, activities, <kinds>``).
    """
    a = activities
    start = period_start_sql(a.c.occurred_at, period, engine.dialect.name).label("period_start")
    kinds = [
        func.sum(case((a.c.kind == kind, 1), else_=0)).label(kind) for kind in ACTIVITY_KINDS
    ]
    stmt = (
        select(a.c.source, a.c.owner_id, start, func.count().label("activities"), *kinds)
        .where(a.c.deleted.is_(False), a.c.owner_id.is_not(None), a.c.occurred_at.is_not(None))
        .group_by(a.c.source, a.c.owner_id, start)
    )
    if since:
        stmt = stmt.where(a.c.occurred_at >= _day_start(since))
    if until:
        stmt = stmt.where(a.c.occurred_at < _day_start(until + timedelta(days=1)))
    if source:
        stmt = stmt.where(a.c.source == source)
    with engine.connect() as conn:
        return list(conn.execute(stmt).all())


def _activity_span(engine: Engine, since: date | None, until: date | None,
                   source: str | None) -> tuple[date | None, date | None]:
    a = activities
    cond: list[ColumnElement[bool]] = [a.c.deleted.is_(False), a.c.owner_id.is_not(None), a.c.occurred_at.is_not(None)]
    if since:
        cond.append(a.c.occurred_at >= _day_start(since))
    if until:
        cond.append(a.c.occurred_at < _day_start(until + timedelta(days=1)))
    if source:
        cond.append(a.c.source == source)
    with engine.connect() as conn:
        first, last = conn.execute(
            select(func.min(a.c.occurred_at), func.max(a.c.occurred_at)).where(and_(*cond))
        ).one()
    return since or _as_date(first), until or _as_date(last)


def _as_date(value: datetime | date | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def kpi_rows(
    engine: Engine,
    config: RulesConfig | None = None,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """The leading indicators: one row per owner and period, in :data:`KPI_COLUMNS`.

    Counts come from :func:`kpi_counts`. Every active owner gets a row for every period of the
    span (``since``..``until``, by default the first to the last activity), zeros included: a rep
    with no activity in a week is the signal this report exists for. Inactive owners appear only
    where they have activities. ``role`` is the roe role (``[[teams]]``, then ``[role_map]`` of
    ``config``), ``crm_role`` the CRM's own.
    """
    if since and until and since > until:
        raise UsageError(f"--since {since} is after --until {until}.", "Swap them.")
    counts = {(r.source, r.owner_id, r.period_start): r for r in kpi_counts(engine, period, since, until, source)}
    first, last = _activity_span(engine, since, until, source)
    periods: list[date] = []
    if first and last:
        p = period_start_of(first, period)
        while p <= last:
            periods.append(p)
            p = next_period(p, period)
    stmt = select(owners)
    if source:
        stmt = stmt.where(owners.c.source == source)
    with engine.connect() as conn:
        people = {(o.source, o.id): o for o in conn.execute(stmt)}
    keys = {(s, o) for s, o, _ in counts} | {k for k, o in people.items() if o.active}

    def sort_key(key: tuple[str, str]) -> tuple[str, str, str]:
        o = people.get(key)
        return ((o.email or "").lower() if o else "~", key[0], key[1])

    out: list[dict[str, Any]] = []
    for key in sorted(keys, key=sort_key):
        o = people.get(key)
        active = bool(o.active) if o else None
        for start in periods:
            r = counts.get((*key, start))
            if r is None and not active:
                continue
            row = {
                "period": period_label(start, period),
                "period_start": start,
                "source": key[0],
                "owner_id": key[1],
                "owner_email": o.email if o else None,
                "owner_name": o.name if o else None,
                "role": config.role_of(o.email, o.role) if (o and config) else None,
                "crm_role": o.role if o else None,
                "team": o.team if o else None,
                "active": active,
                "activities": r.activities if r else 0,
            }
            known = 0
            for kind in ACTIVITY_KINDS:
                row[kind] = int(getattr(r, kind) or 0) if r else 0
                known += row[kind]
            row["other"] = row["activities"] - known
            out.append(row)
    return out


def export_kpi(
    engine: Engine,
    path: str | Path,
    fmt: str,
    *,
    config: RulesConfig | None = None,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> ExportResult:
    """Write :func:`kpi_rows` to ``path``."""
    rows = kpi_rows(engine, config, period, since, until, source)
    return write_rows(path, fmt, KPI_COLUMNS, rows, sheet=f"activity per {period}")

