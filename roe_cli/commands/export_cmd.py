"""``roe export findings|kpi|runs``: write findings, leading indicators and run history to a file.

The work is done in :mod:`roe_cli.export`; this module parses options and prints what it wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..shared.vocab import ExportFormat, Period
from . import options, render
from .options import (
    DEFAULT_STATUS,
    ExportFormatOpt,
    NewOpt,
    OutputOpt,
    OwnerOpt,
    RuleOpt,
    RunsBy,
    SeverityOpt,
    SourceOpt,
    StatusOpt,
)

if TYPE_CHECKING:
    from ..export import ExportResult

export_app = typer.Typer(
    help=(
        "Export findings, leading indicators (activity per rep) or the audit history to CSV, "
        "XLSX, Parquet or JSON.\n\n"
        "Example: roe export findings -o findings.xlsx --severity high"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _format(output: Path, fmt: ExportFormat | None) -> str:
    from ..export import format_for

    return format_for(output, fmt.value if fmt else None)


def _done(result: ExportResult, what: str) -> None:
    from ..export.writers import STDOUT

    if str(result.path) == STDOUT:  # stdout holds the data: the note goes to stderr
        render.literal(f"Wrote {result.rows:,} {what} to standard output ({result.format}).",
                       err=True)
        return
    render.literal(f"Wrote {result.rows:,} {what} to {result.path} ({result.format}).")


@export_app.command("findings")
def export_findings_command(
    ctx: typer.Context,
    output: OutputOpt,
    fmt: ExportFormatOpt = None,
    rule: RuleOpt = None,
    severity: SeverityOpt = None,
    owner: OwnerOpt = None,
    status: StatusOpt = DEFAULT_STATUS,
    source: SourceOpt = None,
    new: NewOpt = False,
) -> None:
    """Write findings to a file: one row per finding, the filters of `roe findings`.

    Columns: the fields of `roe findings --format json` (details as a JSON string in CSV, XLSX
    and Parquet), then owner_name and account_name. Times are UTC. Streams, so millions of
    findings export in constant memory; the file appears only once complete.

    Example: roe export findings -o findings.csv --status open --rule OWN001,OWN002
    """
    kind = _format(output, fmt)
    ws = options.workspace(ctx)
    ws.open()  # the mirror first, then the filters are checked, as always
    flt = options.finding_filter(rule, severity, owner, status, source, new)
    result = ws.export_findings(flt, output, kind, count_first=render.interactive(),
                                progress=render.progress_bar)
    _done(result, "finding(s)")


@export_app.command("kpi")
def export_kpi_command(
    ctx: typer.Context,
    output: OutputOpt,
    fmt: ExportFormatOpt = None,
    period: Annotated[Period, typer.Option("--period", help="Roll activities up by ISO week, month or quarter.")] = Period.WEEK,
    since: Annotated[str | None, typer.Option("--since", "--from", help="First day to count (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", "--to", help="Last day to count, inclusive (YYYY-MM-DD, UTC).")] = None,
    source: SourceOpt = None,
) -> None:
    """Write the leading indicators per owner and week (or month, quarter): activity and follow-up.

    One row per owner and period with the owner's e-mail, name, roe role (from rules.toml),
    CRM role and team; live activities in all and by kind (call, meeting, email, task, note,
    event, other); distinct accounts touched; handoffs received, those touched within HND001's
    sla_days and the median days to first touch; opportunities created, the referral-sourced
    ones (lead source among the CRM's referral_values) and those of them won. A week that
    crosses a month's end is two rows (period_start, period_end), so week rows add up to month
    and quarter rows exactly. Active owners get a row for every period of the span, zeros
    included. The span is --since/--from to --until/--to, by default all the data.

    Example: roe export kpi -o activity.xlsx --period month --since 2026-01-01
    """
    from ..shared.clock import parse_date

    kind = _format(output, fmt)
    first = parse_date(since, "--since date") if since else None
    last = parse_date(until, "--until date") if until else None
    result = options.workspace(ctx).export_kpi(output, kind, period=period.value, since=first,
                                               until=last, source=source)
    _done(result, f"owner-{period.value} row(s)")


@export_app.command("runs")
def export_runs_command(
    ctx: typer.Context,
    output: OutputOpt,
    fmt: ExportFormatOpt = None,
    by: Annotated[RunsBy, typer.Option("--by", help="One row per run and rule, or per run and owner.")] = RunsBy.rule,
) -> None:
    """Write the findings trend: for every audit run, open, waived, new and resolved counts.

    Per rule (rule, name, severity, open, waived, new, reopened, resolved) or, with --by owner,
    per owner (open, waived, new): the feedback loop over time, oldest run first.

    Example: roe export runs -o trend.csv --by rule
    """
    kind = _format(output, fmt)
    result = options.workspace(ctx).export_runs(output, kind, by.value)
    _done(result, f"run-{by.value} row(s)")
