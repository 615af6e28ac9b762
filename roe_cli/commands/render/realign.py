"""What ``roe realign`` prints: the balance per owner before and after, its spread, and the
accounts held and unassigned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import base
from .base import cell, literal

if TYPE_CHECKING:
    from ...plans import RealignResult
    from ...plans.balance import Balance


def _ratio(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.2f}"


def _money(value: float) -> str:
    return f"{value:,.0f}"


def print_realign_balance(result: RealignResult) -> None:
    """Per owner (active members of the territories' teams): accounts, open pipeline and
    activities in the last 90 days, before -> after; then Gini and largest/smallest ratio."""
    from rich.table import Table

    before, after = result.before, result.after
    if before is None or after is None:
        return
    table = Table(title=f"Balance per owner (team members of the territories; balancing by "
                        f"{result.balance_by})", title_justify="left")
    table.add_column("owner", overflow="fold")
    for col in ("accounts", "open pipeline", "activities 90d"):
        table.add_column(col, justify="right", no_wrap=True)
    later = after.by_owner()
    for owner in before.owners:
        new = later[owner.owner_id]
        table.add_row(cell(owner.email or owner.owner_id),
                      _arrow(f"{owner.accounts:,}", f"{new.accounts:,}"),
                      _arrow(_money(owner.pipeline), _money(new.pipeline)),
                      _arrow(f"{owner.activities:,}", f"{new.activities:,}"), end_section=False)
    base.console.print(table, markup=False)
    _print_spread(before, after)


def _arrow(old: str, new: str) -> str:
    return old if old == new else f"{old} -> {new}"


def _print_spread(before: Balance, after: Balance) -> None:
    from rich.table import Table

    table = Table(title="Spread (before -> after)", title_justify="left")
    table.add_column("measure")
    table.add_column("Gini", justify="right", no_wrap=True)
    table.add_column("largest/smallest", justify="right", no_wrap=True)
    for measure, label in (("accounts", "accounts"), ("pipeline", "open pipeline"),
                           ("activities", "activities 90d")):
        table.add_row(label, _arrow(f"{before.gini(measure):.3f}", f"{after.gini(measure):.3f}"),
                      _arrow(_ratio(before.ratio(measure)), _ratio(after.ratio(measure))))
    base.console.print(table, markup=False)


def print_realign_left_out(result: RealignResult, show: int) -> None:
    """The accounts held and unassigned (up to ``show`` of each; 0 = all), and the counts."""
    for title, rows in (("Held (open opportunity)", result.held),
                        ("Unassigned (not moved)", result.unassigned)):
        if not rows:
            continue
        base.console.print(f"{title}: {len(rows):,}", markup=False)
        limit = len(rows) if show <= 0 else min(show, len(rows))
        for p in rows[:limit]:
            literal(f"  account {p.account_id} {p.name or ''} (owner {p.owner_email or p.owner_id}"
                    f", territory {p.territory or '-'}): {p.reason}")
        if limit < len(rows):
            base.console.print(f"  ... and {len(rows) - limit:,} more (--show 0 lists all).",
                               markup=False)
    base.console.print(f"Realign: {result.moved:,} account(s) moved, {len(result.held):,} held, "
                       f"{len(result.unassigned):,} unassigned.", markup=False)
