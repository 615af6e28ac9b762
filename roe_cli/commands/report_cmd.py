"""``roe report``: the weekly review in the terminal, or as one self-contained HTML page.

The data is built in :mod:`roe_cli.report`; this module parses options and prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import options, render

DEFAULT_RUNS = 12  # as roe_cli.report.DEFAULT_RUNS (commands do not import the core eagerly)


def report_command(
    ctx: typer.Context,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write the report to this HTML file (self-contained: opens with no network).")] = None,
    runs: Annotated[int, typer.Option(
        "--runs", help="How many of the latest audit runs the findings trend shows.")] = DEFAULT_RUNS,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --html file.")] = False,
) -> None:
    """Show what a RevOps team reviews each week: the findings trend over the last audit runs
    (open, new and resolved per rule), the owners with the most open findings by severity, the
    handoff SLA per receiving rep (handoffs received, first touched within HND001's sla_days,
    median days to first touch) and activity per rep per week by kind.

    Everything is as of the latest audit run. With --html, the same as one HTML page with charts
    and a table under each; it needs no network (its JavaScript is inside the file).

    Example: roe report --html report.html --runs 8
    """
    ws = options.workspace(ctx)
    report, size = ws.report(runs, html, force=force)
    if html is None:
        render.print_report(report)
        return
    render.literal(f"Wrote the report ({size:,} bytes) to {html}: open it in a browser.")
