"""``roe audit``: run the rules against the mirror."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from ..cli import app
from . import common


class Format(StrEnum):
    table = "table"
    json = "json"


class FailOn(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    never = "never"


def split_codes(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [c.strip().upper() for c in value.split(",") if c.strip()]


@app.command("audit")
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
    from ..audit import run_audit
    from ..db import run_lock
    from ..findings import FindingFilter, document, iter_findings
    from ..shared.clock import parse_as_of

    when = parse_as_of(as_of) if as_of else None
    config = common.load_config(ctx)
    engine = common.open_engine(ctx)
    with run_lock(engine, "audit"):
        result = run_audit(engine, config, when, split_codes(rule))
    if fmt is Format.json:
        items = iter_findings(engine, FindingFilter(run_id=result.run_id))
        doc = document(result.run_id, result.as_of, result.summary(), items)
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print_audit_table(result, fail_on.value)
    if result.failing(fail_on.value):
        raise typer.Exit(1)


def print_audit_table(result, fail_on: str) -> None:
    from rich.table import Table

    table = Table(title=f"roe audit, run {result.run_id}, as of {result.as_of:%Y-%m-%d %H:%M} UTC")
    for col in ("rule", "name", "severity", "open", "waived", "new", "resolved"):
        table.add_column(col, justify="right" if col in ("open", "waived", "new", "resolved") else "left")
    colors = {"high": "red", "medium": "yellow", "low": "cyan"}
    for r in result.rules.values():
        table.add_row(
            r.code, r.name, f"[{colors[r.severity]}]{r.severity}[/]", f"{r.open:,}", f"{r.waived:,}",
            f"{r.new + r.reopened:,}", f"{r.resolved:,}",
        )
    table.add_section()
    table.add_row("", "total", "", f"{result.total('open'):,}", f"{result.total('waived'):,}",
                  f"{result.total('new') + result.total('reopened'):,}", f"{result.total('resolved'):,}")
    common.console.print(table)
    failing = result.failing(fail_on)
    if failing:
        common.console.print(f"{failing:,} open finding(s) at or above {fail_on}: exit code 1. "
                             "See them with `roe findings --status open`.")
    else:
        common.console.print(f"No open findings at or above {fail_on}." if fail_on != "never"
                             else "--fail-on never: exit code 0.")
