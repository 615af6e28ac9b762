"""``roe findings``: list the findings of the audits, with filters.

The filter options are shared with ``roe export findings`` (see :func:`finding_filter`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from ..cli import app
from . import common
from .audit_cmd import split_codes


class Format(StrEnum):
    table = "table"
    json = "json"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


# The filters, shared by `roe findings` and `roe export findings`.
RuleOpt = Annotated[
    str | None, typer.Option("--rule", help="Only these rule codes, comma separated (e.g. OWN001,HND003).")
]
SeverityOpt = Annotated[
    Severity | None, typer.Option("--severity", help="Only findings of at least this severity.")
]
OwnerOpt = Annotated[
    str | None, typer.Option("--owner", help="Only findings on records owned by this owner (CRM id or e-mail).")
]
StatusOpt = Annotated[
    str, typer.Option("--status", help="Statuses to include, comma separated: open, waived, resolved.")
]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Only this source (salesforce, hubspot, demo).")]
NewOpt = Annotated[bool, typer.Option("--new", help="Only findings first seen in the latest audit run.")]
DEFAULT_STATUS = "open,waived"


def finding_filter(rule: str | None, severity: Severity | None, owner: str | None, status: str,
                   source: str | None, new: bool):
    """The :class:`~roe_cli.findings.FindingFilter` the options describe (validated)."""
    from ..findings import FindingFilter

    flt = FindingFilter(
        rules=split_codes(rule) or [],
        severities=[severity.value] if severity else [],
        statuses=[s.strip().lower() for s in status.split(",") if s.strip()],
        owner=owner.strip() if owner and owner.strip() else None,
        source=source.strip() if source and source.strip() else None,
        new_only=new,
    )
    flt.validate()
    return flt


def require_run(engine) -> int:
    """The latest finished audit run's id, or a usage error saying to run one."""
    from ..findings import latest_run_id
    from ..shared.errors import UsageError

    run_id = latest_run_id(engine)
    if run_id is None:
        raise UsageError("No audit has run on this mirror yet, so there are no findings.",
                         "Run `roe audit` first.")
    return run_id


@app.command("findings")
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

    engine = common.open_engine(ctx)
    flt = finding_filter(rule, severity, owner, status, source, new)
    run_id = require_run(engine)
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
    print_findings_table(shown, total, run_id)


def print_findings_table(items: list[dict], total: int, run_id: int) -> None:
    from rich.table import Table
    from rich.text import Text

    out = common.console
    if not items:
        out.print("No findings match these filters.")
        return
    table = Table(title=f"Findings (latest audit run {run_id})", title_justify="left")
    for col in ("id", "rule", "severity", "status", "object", "owner", "suggested owner", "first seen"):
        table.add_column(col, justify="right" if col == "id" else "left",
                         overflow="fold", no_wrap=col in ("id", "rule", "severity", "status"))
    colors = {"high": "red", "medium": "yellow", "low": "cyan"}
    status_styles = {"open": "bold", "waived": "dim", "resolved": "green"}
    for f in items:
        # Names come from the CRM: Text cells, so no "[...]" in a name is read as markup.
        name = f["object_name"] if f["object_name"] is not None else f["object_id"]
        table.add_row(
            str(f["id"]), f["rule"], Text(f["severity"], style=colors.get(f["severity"], "")),
            Text(f["status"], style=status_styles.get(f["status"], "")),
            Text(f"{f['object_type']}:{name}"),
            Text(f["owner_email"] or f["owner_id"] or "(none)"),
            Text(f["suggested_owner_email"] or f["suggested_owner_id"] or ""),
            (f["first_seen"] or "")[:10],
        )
    out.print(table)
    more = total - len(items)
    if more > 0:
        out.print(f"Showing {len(items):,} of {total:,} findings; {more:,} more. "
                  "--limit 0 shows all; `roe export findings -o findings.csv` writes them to a file.",
                  markup=False)
    else:
        out.print(f"{total:,} finding(s).")
