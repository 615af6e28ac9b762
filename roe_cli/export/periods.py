"""Periods of the KPI export: ISO weeks, months and quarters, in Python and in SQL (UTC days).

A week that crosses a month boundary is split into two *segments* (Monday to the month's last
day, the 1st to Sunday), so that every week row lies in exactly one month and one quarter: the
additive KPI columns of the week rows of a month sum to that month's row, and the same for a
quarter. Months and quarters are one segment each.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, Integer, cast, func
from sqlalchemy.sql.elements import ColumnElement

from ..shared.errors import UsageError
from ..shared.vocab import PERIODS


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
    """``2026-W44``, ``2026-11`` or ``2026-Q4`` (both halves of a split week share its label)."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start:%Y-%m}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def segment_start_of(day: date, period: str) -> date:
    """The first day of ``day``'s segment: its week's Monday or its month's 1st, the later; or
    its month's or quarter's first day."""
    start = period_start_of(day, period)
    return max(start, day.replace(day=1)) if period == "week" else start


def segment_end(start: date, period: str) -> date:
    """The last day of the segment that starts on ``start``."""
    if period != "week":
        return next_period(start, period) - timedelta(days=1)
    sunday = period_start_of(start, "week") + timedelta(days=6)
    return min(sunday, next_period(start.replace(day=1), "month") - timedelta(days=1))


def segments(first: date, last: date, period: str) -> list[tuple[date, date]]:
    """The segments (first day, last day) from ``first``'s to ``last``'s, in order."""
    out: list[tuple[date, date]] = []
    start = segment_start_of(first, period)
    while start <= last:
        end = segment_end(start, period)
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


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


def segment_start_sql(column: ColumnElement[Any], period: str, dialect: str) -> ColumnElement[Any]:
    """SQL for :func:`segment_start_of` of ``column``: the same day Python computes."""
    start = period_start_sql(column, period, dialect)
    if period != "week":
        return start
    month = period_start_sql(column, "month", dialect)
    if dialect == "sqlite":  # two-argument max() is SQLite's scalar maximum; ISO dates sort as text
        return func.max(start, month, type_=Date)
    return func.greatest(start, month, type_=Date)
