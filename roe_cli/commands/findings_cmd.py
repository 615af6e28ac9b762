"""``roe findings``: list the findings of the audits, with filters.

The filter options are shared with ``roe export findings`` (see :mod:`.options`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from . import options, render
from .options import (
    DEFAULT_STATUS,
    Format,
    NewOpt,
    OwnerOpt,
    RuleOpt,
    SeverityOpt,
    SourceOpt,
    StatusOpt,
)


def findings_command(
    ctx: typer.Context,
    rule: RuleOpt = None,
    severity: SeverityOpt = None,
    owner: OwnerOpt = None,
    status: StatusOpt = DEFAULT_STATUS,
    source: SourceOpt = None,
    new: NewOpt = False,
    fmt: Annotated[Format, typer.Option("--format", help="table or json (the spec's document, every match).")] = Format.table,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Rows in the table (0: all). JSON always has every match.")
    ] = 50,
) -> None:
    """List findings, most severe first: open and waived ones unless --status says otherwise.

    Findings are what `roe audit` stored, with their history: first seen, last seen, and status
    (open, waived, resolved). The JSON document carries the latest run's summary and the
    matching findings, in the same shape as `roe audit --format json`.

    Example: roe findings --rule OWN002 --severity high --owner ana@example.com --new
    """
    from ..findings import count_findings, document, iter_findings, run_summary

    ws = options.workspace(ctx)
    engine = ws.engine
    flt = options.finding_filter(rule, severity, owner, status, source, new)
    run_id = ws.require_run()
    if fmt is Format.json:
        as_of, summary = run_summary(engine, run_id)
        doc = document(run_id, as_of, summary, iter_findings(engine, flt))
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    total = count_findings(engine, flt)
    shown = []
    for item in iter_findings(engine, flt):
        if limit and len(shown) >= limit:
            break
        shown.append(item)
    render.print_findings_table(shown, total, run_id)
