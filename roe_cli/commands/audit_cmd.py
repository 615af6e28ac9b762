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
    no_store: Annotated[
        bool, typer.Option("--no-store", help="A dry run: print the findings, store nothing.")
    ] = False,
    record: Annotated[
        bool,
        typer.Option("--record", help="Store an audit whose --as-of is earlier than the latest "
                                      "stored run's (it becomes the latest run)."),
    ] = False,
) -> None:
    """Check the mirror against rules.toml, store the findings, and summarize the run.

    Findings keep their identity across runs: new ones are counted as new, ones no longer
    seen are resolved, waived ones are reported but never fail the run. Exit code 1 when open
    findings reach --fail-on (default high), 0 otherwise.

    --as-of earlier than the latest stored run's audits the past without storing it (a dry run,
    like --no-store) unless --record. --as-of must lie between 2000-01-01 and a day from now.

    Example: roe audit --fail-on medium --format json > audit.json
    """
    from ..shared.clock import parse_as_of
    from ..shared.errors import EXIT_FINDINGS

    when = parse_as_of(as_of) if as_of else None
    ws = options.workspace(ctx)
    result = ws.audit(when, options.split_codes(rule), store=not no_store, record=record)
    if not result.stored:
        render.print_not_stored(result, None if no_store else ws.latest_audit_as_of())
    if fmt is Format.json:
        render.print_json_document(json.dumps(ws.audit_document(result), indent=2, ensure_ascii=False))
    else:
        render.print_audit_table(result, fail_on.value)
    if result.failing(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)
