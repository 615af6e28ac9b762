"""What `roe report` prints: the four sections of the weekly review as rich tables."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from . import base
from .base import SEVERITY_COLORS, cell

if TYPE_CHECKING:
    from ...report import Report

TERMINAL_ROWS = 20  # rows per table in the terminal (the HTML page has every one)
KINDS = ("call", "meeting", "email", "task", "note", "event", "other")


def print_report(report: Report) -> None:
    from rich.table import Table

    con = base.console
    con.print(f"roe report, as of {report.as_of:%Y-%m-%d %H:%M} UTC", markup=False)
    # the feedback loop: one row per run, one column per rule (open), then new and resolved
    rules = sorted({r.rule for r in report.run_rules})
    table = Table(title=f"Open findings over the last {len(report.run_ids())} run(s)")
    table.add_column("run", justify="right")
    table.add_column("as of (UTC)")
    for rule in rules:
        table.add_column(rule, justify="right")
    for col in ("open", "new", "resolved"):
        table.add_column(col, justify="right")
    per_run: dict[int, dict[str, tuple[int, int, int]]] = defaultdict(dict)
    as_of = {}
    for r in report.run_rules:
        per_run[r.run_id][r.rule] = (r.open, r.new, r.resolved)
        as_of[r.run_id] = r.as_of
    for run_id in report.run_ids():
        counts = per_run[run_id]
        table.add_row(str(run_id), f"{as_of[run_id]:%Y-%m-%d %H:%M}",
                      *(f"{counts.get(rule, (0, 0, 0))[0]:,}" for rule in rules),
                      *(f"{sum(c[i] for c in counts.values()):,}" for i in range(3)))
    con.print(table)

    table = Table(title="Owners with the most open findings")
    table.add_column("owner")
    table.add_column("source")
    for sev in ("high", "medium", "low", "open"):
        table.add_column(sev, justify="right")
    for o in report.owners[:TERMINAL_ROWS]:
        table.add_row(cell(o.label), o.source,
                      *(cell(f"{o.by_severity.get(s, 0):,}", SEVERITY_COLORS[s])
                        for s in ("high", "medium", "low")), f"{o.total:,}")
    _print_or_none(table, report.owners, "No open findings.")

    since = f"{report.since:%Y-%m-%d}" if report.since else ""
    table = Table(title=f"Handoff SLA since {since} (first touch within {report.sla_days} days)")
    for col in ("rep", "source", "received", "touched", "within SLA", "median days"):
        table.add_column(col, justify="left" if col in ("rep", "source") else "right")
    for h in report.handoffs[:TERMINAL_ROWS]:
        table.add_row(cell(report.label(h.source, h.rep_id)), h.source, f"{h.received:,}",
                      f"{h.touched:,}", f"{h.within_sla:,}",
                      "-" if h.median_days is None else f"{h.median_days:.1f}")
    _print_or_none(table, report.handoffs, f"No handoffs since {since}.")

    weeks = len({a.week_start for a in report.activity})
    table = Table(title=f"Activity per rep since {since} ({weeks} week(s); per week in --html)")
    table.add_column("rep")
    table.add_column("source")
    for col in (*KINDS, "all", "per week"):
        table.add_column(col, justify="right")
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    for a in report.activity:
        for kind, n in a.by_kind.items():
            totals[(a.source, a.rep_id)][kind] += n
    busiest = sorted(totals.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    for (source, rep), kinds in busiest[:TERMINAL_ROWS]:
        total = sum(kinds.values())
        table.add_row(cell(report.label(source, rep)), source, *(f"{kinds[k]:,}" for k in KINDS),
                      f"{total:,}", f"{total / max(weeks, 1):.1f}")
    _print_or_none(table, busiest, f"No activity since {since}.")
    shown = max(len(report.owners), len(report.handoffs), len(busiest))
    if shown > TERMINAL_ROWS:
        con.print(f"Each table shows its first {TERMINAL_ROWS} rows; `roe report --html FILE` "
                  "has every row and the charts.", markup=False)


def _print_or_none(table: object, rows: object, empty: str) -> None:
    if rows:
        base.console.print(table)
    else:
        base.console.print(empty, markup=False)
