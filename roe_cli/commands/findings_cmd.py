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
    ws = options.workspace(ctx)
    ws.open()  # the mirror first, then the filters are checked, as always
    flt = options.finding_filter(rule, severity, owner, status, source, new)
    if fmt is Format.json:
        render.print_json_document(json.dumps(ws.findings_document(flt), indent=2, ensure_ascii=False))
        return
    run_id, shown, total = ws.findings(flt, limit)
    render.print_findings_table(shown, total, run_id)
