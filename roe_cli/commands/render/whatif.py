"""What ``roe whatif`` prints: the change per rule, then per owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...rules import REGISTRY
from ...whatif import CHANGES
from . import base
from .base import cell, literal

if TYPE_CHECKING:
    from ...whatif import WhatIf

OWNER_ROWS = 30  # the owners with the most change; the JSON and -o have them all


def _counts(entry: dict[str, int]) -> tuple[str, str, str]:
    return f"+{entry['appear']:,}", f"-{entry['disappear']:,}", f"{entry['unchanged']:,}"


def print_whatif(result: WhatIf) -> None:
    """Two tables (per rule, per owner with a change) and a closing line; nothing stored."""
    from rich.table import Table

    title = (f"roe whatif: {result.current} -> {result.proposed}, as of "
             f"{result.as_of:%Y-%m-%d %H:%M} UTC (nothing stored)")
    table = Table(title=title, title_justify="left")
    for col in ("rule", "name", "appear", "disappear", "unchanged"):
        table.add_column(col, justify="left" if col in ("rule", "name") else "right")
    for code, entry in result.rules.items():
        name = REGISTRY[code].name if code in REGISTRY else code
        table.add_row(cell(code), cell(name), *_counts(entry))
    table.add_section()
    table.add_row("", "total", *_counts({c: result.total(c) for c in CHANGES}))
    base.console.print(table)
    if not result.changed:
        literal("No change: the proposed rules find exactly the findings the current ones do.")
        return
    moved = sorted(((owner, e) for owner, e in result.by_owner.items()
                    if e["appear"] or e["disappear"]),
                   key=lambda oe: (-(oe[1]["appear"] + oe[1]["disappear"]), oe[0]))
    owners = Table(title="Per owner (most change first)", title_justify="left")
    for col in ("owner", "appear", "disappear", "unchanged"):
        owners.add_column(col, justify="left" if col == "owner" else "right")
    for owner, entry in moved[:OWNER_ROWS]:
        owners.add_row(cell(owner), *_counts(entry))
    base.console.print(owners)
    if len(moved) > OWNER_ROWS:
        literal(f"{len(moved) - OWNER_ROWS:,} more owner(s) with a change: --format json or -o "
                "FILE lists them all.")
    literal(f"{result.total('appear'):,} finding(s) would appear, "
            f"{result.total('disappear'):,} disappear, {result.total('unchanged'):,} stay.")

