"""``roe audit``: run the rules against the mirror."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from . import options, render
from .options import FailOn, Format


def audit(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Audit as of this ISO 8601 date or time (UTC unless it has an offset)."),
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only these rule codes, comma separated (e.g. OWN001,HND003).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 when open findings reach this severity (never: always 0)."),
    ] = FailOn.high,
) -> None:
    """Check the mirror against rules.toml, store the findings, and summarize the run.

    Findings keep their identity across runs: new ones are counted as new, ones no longer
    seen are resolved, waived ones are reported but never fail the run. Exit code 1 when open
    findings reach --fail-on (default high), 0 otherwise.

    Example: roe audit --fail-on medium --format json > audit.json
    """
    from ..shared.clock import parse_as_of
    from ..shared.errors import EXIT_FINDINGS

    when = parse_as_of(as_of) if as_of else None
    ws = options.workspace(ctx)
    result = ws.audit(when, options.split_codes(rule))
    if fmt is Format.json:
        render.print_json_document(json.dumps(ws.audit_document(result), indent=2, ensure_ascii=False))
    else:
        render.print_audit_table(result, fail_on.value)
    if result.failing(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)
