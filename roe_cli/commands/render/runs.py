"""What sync, audit, findings, nightly and doctor print."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from datetime import datetime

    from ...audit import AuditResult
    from ...doctor import Check
    from ...nightly import NightlyReport
    from ...sync import SyncReport

from . import base
from .base import SEVERITY_COLORS, STATUS_STYLES, cell, literal

DOCTOR_STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}

# -- sync and audit ------------------------------------------------------------------------------


def print_sync_report(report: SyncReport, api_usage: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"sync {report.source}{' (full)' if report.full else ''}")
    for col in ("object", "read", "inserted", "updated", "deleted", "owner changes"):
        table.add_column(col, justify="right" if col != "object" else "left")
    for obj in report.objects.values():
        table.add_row(obj.object_type, f"{obj.read:,}", f"{obj.inserted:,}", f"{obj.updated:,}",
                      f"{obj.deleted:,}", f"{obj.owner_changes:,}")
    base.console.print(table)
    line = f"API calls: {report.api_calls:,}"
    if api_usage:
        line += f"; org API usage: {api_usage}"
    base.console.print(line)
    for note in report.notes:
        literal(note)


def print_not_stored(result: AuditResult, latest: datetime | None) -> None:
    """Say (on stderr, so JSON stays clean) that an audit was a dry run, and why."""
    from ...shared.clock import iso_or_none

    if latest is None:
        base.err_console.print("Dry run (--no-store): nothing was stored.")
    else:
        base.err_console.print(
            f"Dry run: --as-of {iso_or_none(result.as_of)} is earlier than the latest stored run's "
            f"({iso_or_none(latest)}), so nothing was stored and the live history is unchanged. "
            "Add --record to store it as the latest run."
        )


def print_audit_table(result: AuditResult, fail_on: str) -> None:
    from rich.table import Table

    run = f"run {result.run_id}" if result.stored else "dry run, not stored"
    table = Table(title=f"roe audit, {run}, as of {result.as_of:%Y-%m-%d %H:%M} UTC")
    for col in ("rule", "name", "severity", "open", "waived", "new", "resolved"):
        table.add_column(col, justify="right" if col in ("open", "waived", "new", "resolved") else "left")
    for r in result.rules.values():
        table.add_row(
            r.code, r.name, f"[{SEVERITY_COLORS[r.severity]}]{r.severity}[/]", f"{r.open:,}",
            f"{r.waived:,}", f"{r.new + r.reopened:,}", f"{r.resolved:,}",
        )
    table.add_section()
    table.add_row("", "total", "", f"{result.total('open'):,}", f"{result.total('waived'):,}",
                  f"{result.total('new') + result.total('reopened'):,}", f"{result.total('resolved'):,}")
    base.console.print(table)
    failing = result.failing(fail_on)
    if failing:
        base.console.print(f"{failing:,} open finding(s) at or above {fail_on}: exit code 1. "
                      "See them with `roe findings --status open`.")
    else:
        base.console.print(f"No open findings at or above {fail_on}." if fail_on != "never"
                      else "--fail-on never: exit code 0.")


def print_findings_table(items: list[dict[str, Any]], total: int, run_id: int) -> None:
    from rich.table import Table

    if not items:
        base.console.print("No findings match these filters.")
        return
    table = Table(title=f"Findings (latest audit run {run_id})", title_justify="left")
    for col in ("id", "rule", "severity", "status", "object", "owner", "suggested owner", "first seen"):
        table.add_column(col, justify="right" if col == "id" else "left",
                         overflow="fold", no_wrap=col in ("id", "rule", "severity", "status"))
    for f in items:
        # Names come from the CRM: Text cells, so no "[...]" in a name is read as markup.
        name = f["object_name"] if f["object_name"] is not None else f["object_id"]
        table.add_row(
            str(f["id"]), cell(f["rule"]), cell(f["severity"], SEVERITY_COLORS.get(f["severity"], "")),
            cell(f["status"], STATUS_STYLES.get(f["status"], "")),
            cell(f"{f['object_type']}:{name}"),
            cell(f["owner_email"] or f["owner_id"] or "(none)"),
            cell(f["suggested_owner_email"] or f["suggested_owner_id"] or ""),
            cell((f["first_seen"] or "")[:10]),
        )
    base.console.print(table)
    more = total - len(items)
    if more > 0:
        base.console.print(f"Showing {len(items):,} of {total:,} findings; {more:,} more. "
                      "--limit 0 shows all; `roe export findings -o findings.csv` writes them to a file.",
                      markup=False)
    else:
        base.console.print(f"{total:,} finding(s).")


def print_nightly_summary(report: NightlyReport) -> None:
    """The nightly's few plain lines (:meth:`~roe_cli.nightly.NightlyReport.summary_lines`)."""
    for line in report.summary_lines():
        literal(line)




def print_doctor(checks: list[Check]) -> None:
    """One line per check: status, name, what was seen and, unless it passed, the fix; then the
    totals. Plain text (no markup), so a cron mail reads the same as the terminal."""
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        line = Text.assemble((f"{check.status.value:<4}", DOCTOR_STYLES[check.status.value]),
                             f"  {check.name:<{width}}  {check.detail}")
        if check.fix and check.status.value != "PASS":
            line.append(f"  Fix: {check.fix}")
        base.console.print(line, soft_wrap=True)
    counts = Counter(c.status.value for c in checks)
    base.console.print(f"{counts['PASS']} passed, {counts['WARN']} warned, {counts['FAIL']} failed.")
