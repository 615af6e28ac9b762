"""Leading indicators (KPIs) per owner and ISO week, month or quarter.

Per (source, owner, period): live activities by kind, distinct accounts touched, handoffs
received and how fast they were touched, opportunities created and the referral-sourced ones.
The counts are GROUP BYs in SQL for SQLite and PostgreSQL (:mod:`.kpi_counts`); the handoffs
come from :func:`roe_cli.handoffs.handoff_sla`. Days are UTC and inclusive.

Rows roll up exactly: a week that crosses a month boundary is two rows (see :mod:`.periods`),
so every additive column summed over the week rows of a month or a quarter equals that month's
or quarter's row. ``accounts_touched`` and ``median_days_to_first_touch`` are computed per row
and do not add up.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..handoffs import Handoff, handoff_sla, sla_days_of
from ..models import owners
from ..shared.errors import UsageError
from ..shared.vocab import PERIODS
from .kpi_counts import (
    ACTIVITY_KINDS,
    accounts_touched,
    activity_counts,
    data_span,
    day_start,
    opportunity_counts,
)
from .periods import (
    next_period,
    period_label,
    period_start_of,
    period_start_sql,
    segment_start_of,
    segments,
)
from .writers import Column, ExportResult, write_rows

if TYPE_CHECKING:
    from ..rulesfile import RulesConfig

__all__ = [
    "ACTIVITY_KINDS", "ADDITIVE", "KPI_COLUMNS", "PERIODS", "export_kpi", "kpi_rows", "next_period",
    "period_label", "period_start_of", "period_start_sql", "referral_values",
]

KPI_COLUMNS = [
    Column("period"), Column("period_start", "date"), Column("period_end", "date"),
    Column("source"), Column("owner_id"), Column("owner_email"), Column("owner_name"),
    Column("role"), Column("crm_role"), Column("team"), Column("active", "bool"),
    Column("activities", "int"), *(Column(kind, "int") for kind in ACTIVITY_KINDS),
    Column("other", "int"), Column("accounts_touched", "int"), Column("handoffs_received", "int"),
    Column("handoffs_touched_in_sla", "int"), Column("median_days_to_first_touch", "float"),
    Column("opportunities_created", "int"), Column("referrals_created", "int"),
    Column("referrals_won", "int"),
]
"""One row per owner and period; the README's KPI table says what each column means."""

ADDITIVE = ("activities", *ACTIVITY_KINDS, "other", "handoffs_received", "handoffs_touched_in_sla",
            "opportunities_created", "referrals_created", "referrals_won")
"""The columns whose week rows sum to the month's and quarter's rows."""


def referral_values(config: RulesConfig | None) -> dict[str, tuple[str, ...]]:
    """Per source, the lead source values that mean a referral: ``referral_values`` of the
    ``[salesforce]`` / ``[hubspot]`` table (its default when the file has none), the demo org's."""
    from connectors.demo.settings import REFERRAL_VALUES
    from connectors.registry import settings_model

    out: dict[str, tuple[str, ...]] = {"demo": tuple(REFERRAL_VALUES)}
    for src in ("salesforce", "hubspot"):
        settings = getattr(config, src, None) if config is not None else None
        if settings is None or isinstance(settings, dict):
            model = settings_model(src)
            settings = model() if model is not None else None
        out[src] = tuple(getattr(settings, "referral_values", ()) or ())
    return out


def _handoff_figures(handoffs: Sequence[Handoff], period: str, sla_days: int) -> dict[tuple[str, str, date], dict[str, Any]]:
    grouped: dict[tuple[str, str, date], list[Handoff]] = defaultdict(list)
    for h in handoffs:
        grouped[(h.source, h.rep_id, segment_start_of(h.changed_at.date(), period))].append(h)
    out = {}
    for key, group in grouped.items():
        days = [d for d in (h.days_to_first_touch for h in group) if d is not None]
        out[key] = {
            "handoffs_received": len(group),
            "handoffs_touched_in_sla": sum(h.touched_within(sla_days) for h in group),
            "median_days_to_first_touch": round(statistics.median(days), 2) if days else None,
        }
    return out


def kpi_rows(
    engine: Engine,
    config: RulesConfig | None = None,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """The leading indicators: one row per owner and period (segment), in :data:`KPI_COLUMNS`.

    Every active owner gets a row for every period of the span (``since``..``until``, by default
    the first to the last day with an activity, a created opportunity or a handoff), zeros
    included: a rep with no activity in a week is the signal this report exists for. Inactive
    owners appear only where they have something counted. ``role`` is the roe role
    (``[[teams]]``, then ``[role_map]`` of ``config``), ``crm_role`` the CRM's own. The first
    and last rows are clipped to the span (``period_start``/``period_end``).
    """
    if period not in PERIODS:
        raise UsageError(f"Unknown period {period!r}.", "Use week, month or quarter.")
    if since and until and since > until:
        raise UsageError(f"--since {since} is after --until {until}.", "Swap them.")
    acts = activity_counts(engine, period, since, until, source)
    touched = accounts_touched(engine, period, since, until, source)
    opps = opportunity_counts(engine, period, since, until, source, referral_values(config))
    handoffs = _handoff_figures(
        handoff_sla(engine, day_start(since) if since else None,
                    day_start(until + timedelta(days=1)) if until else None, source=source),
        period, sla_days_of(config))
    first, last = data_span(engine, since, until, source)
    spans = segments(first, last, period) if first and last else []
    stmt = select(owners)
    if source:
        stmt = stmt.where(owners.c.source == source)
    with engine.connect() as conn:
        people = {(o.source, o.id): o for o in conn.execute(stmt)}
    counted = {k[:2] for part in (acts, touched, opps, handoffs) for k in part}
    keys = counted | {k for k, o in people.items() if o.active}

    def sort_key(key: tuple[str, str]) -> tuple[str, str, str]:
        o = people.get(key)
        return ((o.email or "").lower() if o else "~", key[0], key[1])

    out: list[dict[str, Any]] = []
    for key in sorted(keys, key=sort_key):
        o = people.get(key)
        active = bool(o.active) if o else None
        for start, end in spans:
            k = (*key, start)
            if not active and not any(k in part for part in (acts, touched, opps, handoffs)):
                continue
            r, p = acts.get(k), opps.get(k)
            row: dict[str, Any] = {
                "period": period_label(start, period),
                "period_start": max(start, since) if since else start,
                "period_end": min(end, until) if until else end,
                "source": key[0],
                "owner_id": key[1],
                "owner_email": o.email if o else None,
                "owner_name": o.name if o else None,
                "role": config.role_of(o.email, o.role) if (o and config) else None,
                "crm_role": o.role if o else None,
                "team": o.team if o else None,
                "active": active,
                "activities": int(r.activities) if r else 0,
            }
            known = 0
            for kind in ACTIVITY_KINDS:
                row[kind] = int(getattr(r, kind) or 0) if r else 0
                known += row[kind]
            row["other"] = row["activities"] - known
            row["accounts_touched"] = touched.get(k, 0)
            row.update(handoffs.get(k, {"handoffs_received": 0, "handoffs_touched_in_sla": 0,
                                        "median_days_to_first_touch": None}))
            row["opportunities_created"] = int(p.created) if p else 0
            row["referrals_created"] = int(p.referrals or 0) if p else 0
            row["referrals_won"] = int(p.referrals_won or 0) if p else 0
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
    return write_rows(path, fmt, KPI_COLUMNS, rows, sheet=f"kpi per {period}")
