"""Everything the CLI prints: the consoles, the one error printer, tables, progress bars, logging.

Commands compute, then hand their result here. Text that comes from files or the CRM (paths,
names, e-mails, problems) is printed literally, never as rich markup: ``[teams]`` or ``:100:``
must not turn into a style tag or an emoji.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from ..shared.errors import RoeError, redact
from ..workspace import Advance, ignore_advance

if TYPE_CHECKING:
    from pathlib import Path

    from ..apply import ApplyReport
    from ..audit import AuditResult
    from ..doctor import Check
    from ..plans import Approval, BuildResult, Change, Plan
    from ..rulesfile import ParamSpec
    from ..sync import SyncReport

console = Console(highlight=False, soft_wrap=True)  # plain lines never wrap mid-path
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

SEVERITY_COLORS = {"high": "red", "medium": "yellow", "low": "cyan"}
STATUS_STYLES = {"open": "bold", "waived": "dim", "resolved": "green"}


# -- set-up --------------------------------------------------------------------------------------


def set_widths() -> None:
    """Per invocation: the terminal's width, else ``COLUMNS``, else 160 (rich's 80 columns
    wrap tables and messages in cron logs and pipes)."""
    for con, stream in ((console, sys.stdout), (err_console, sys.stderr)):
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit():
            con.width = int(columns)
        elif not stream.isatty():
            con.width = 160


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(verbose: bool, log_file: str | None) -> None:
    """Warnings to stderr (info with -v); everything at info level to ``--log-file`` if given."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO if (verbose or log_file) else logging.WARNING)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.INFO if verbose else logging.WARNING)
    stderr.setFormatter(_RedactingFormatter("roe: %(levelname)s %(message)s"))
    root.addHandler(stderr)
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(handler)
    for noisy in ("urllib3", "alembic", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- errors and progress -------------------------------------------------------------------------


def print_error(exc: RoeError) -> None:
    """``Error: what``, the problems of a plan's input one a line, and an indented ``todo``.

    All literal text: messages quote files and CRM values. A rules file's problems are part of
    its ``what`` already; a plan input error lists them apart.
    """
    from ..plans import PlanInputError

    err_console.print(Text.assemble(("Error:", "bold red"), " ", exc.what), soft_wrap=True)
    if isinstance(exc, PlanInputError):
        for problem in exc.problems:
            err_console.print(Text(f"  {problem}"), soft_wrap=True)
    if exc.todo:
        err_console.print(Text("  " + exc.todo), soft_wrap=True)


def interactive() -> bool:
    """True when a person is watching: progress bars then, silence in cron and CI."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Advance]:
    """A rich progress bar on stderr when interactive; a no-op ``advance`` otherwise.

    It is a :data:`roe_cli.workspace.Progress`, so the workspace can drive it.
    """
    if not interactive():
        yield ignore_advance
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance


def literal(text: str) -> None:
    """One line on stdout, exactly as given."""
    console.print(text, markup=False, highlight=False)


# -- sync and audit ------------------------------------------------------------------------------


def print_sync_report(report: SyncReport, api_usage: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"sync {report.source}{' (full)' if report.full else ''}")
    for col in ("object", "read", "inserted", "updated", "deleted", "owner changes"):
        table.add_column(col, justify="right" if col != "object" else "left")
    for obj in report.objects.values():
        table.add_row(obj.object_type, f"{obj.read:,}", f"{obj.inserted:,}", f"{obj.updated:,}",
                      f"{obj.deleted:,}", f"{obj.owner_changes:,}")
    console.print(table)
    line = f"API calls: {report.api_calls:,}"
    if api_usage:
        line += f"; org API usage: {api_usage}"
    console.print(line)
    for note in report.notes:
        console.print(note)


def print_audit_table(result: AuditResult, fail_on: str) -> None:
    from rich.table import Table

    table = Table(title=f"roe audit, run {result.run_id}, as of {result.as_of:%Y-%m-%d %H:%M} UTC")
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
    console.print(table)
    failing = result.failing(fail_on)
    if failing:
        console.print(f"{failing:,} open finding(s) at or above {fail_on}: exit code 1. "
                      "See them with `roe findings --status open`.")
    else:
        console.print(f"No open findings at or above {fail_on}." if fail_on != "never"
                      else "--fail-on never: exit code 0.")


def print_findings_table(items: list[dict[str, Any]], total: int, run_id: int) -> None:
    from rich.table import Table

    if not items:
        console.print("No findings match these filters.")
        return
    table = Table(title=f"Findings (latest audit run {run_id})", title_justify="left")
    for col in ("id", "rule", "severity", "status", "object", "owner", "suggested owner", "first seen"):
        table.add_column(col, justify="right" if col == "id" else "left",
                         overflow="fold", no_wrap=col in ("id", "rule", "severity", "status"))
    for f in items:
        # Names come from the CRM: Text cells, so no "[...]" in a name is read as markup.
        name = f["object_name"] if f["object_name"] is not None else f["object_id"]
        table.add_row(
            str(f["id"]), f["rule"], Text(f["severity"], style=SEVERITY_COLORS.get(f["severity"], "")),
            Text(f["status"], style=STATUS_STYLES.get(f["status"], "")),
            Text(f"{f['object_type']}:{name}"),
            Text(f["owner_email"] or f["owner_id"] or "(none)"),
            Text(f["suggested_owner_email"] or f["suggested_owner_id"] or ""),
            (f["first_seen"] or "")[:10],
        )
    console.print(table)
    more = total - len(items)
    if more > 0:
        console.print(f"Showing {len(items):,} of {total:,} findings; {more:,} more. "
                      "--limit 0 shows all; `roe export findings -o findings.csv` writes them to a file.",
                      markup=False)
    else:
        console.print(f"{total:,} finding(s).")


# -- write-back ----------------------------------------------------------------------------------


def plan_totals(plan: Plan) -> tuple[Counter[str], Counter[str]]:
    """Counts of changes by object type and by new owner (e-mail, else id)."""
    by_object = Counter(str(c.object_type) for c in plan.changes)
    by_owner = Counter(c.new_email or c.new for c in plan.changes)
    return by_object, by_owner


def why_text(change: Change) -> str:
    """A short reason for a change, for tables: ``OWN002 #12``, ``row 3``, ``transfer``."""
    why = change.why or {}
    kind = why.get("kind")
    if kind == "finding":
        return ", ".join(f"{f.get('rule')} #{f.get('id')}" for f in why.get("findings", []))
    if kind == "csv":
        return f"CSV row {why.get('row')}"
    if kind == "transfer":
        return "transfer"
    if kind == "revert":
        return f"revert row {why.get('row')}"
    return kind or ""


def print_plan(result: BuildResult, show: int, *, saving: bool) -> None:
    """The changes (up to ``show`` rows; 0 = all), totals, what was left out, and the dry-run line."""
    from rich.table import Table

    plan = result.plan
    changes = plan.changes
    if changes:
        table = Table(title=f"Planned owner changes ({plan.source})", title_justify="left")
        for col in ("object", "id"):
            table.add_column(col, no_wrap=True)
        for col in ("name", "current owner", "new owner", "why"):
            table.add_column(col, overflow="fold")
        limit = len(changes) if show <= 0 else min(show, len(changes))
        for c in changes[:limit]:
            table.add_row(c.object_type, c.object_id, c.object_name or "",
                          c.expected_email or c.expected or "(none)", c.new_email or c.new,
                          why_text(c), end_section=False)
        console.print(table, markup=False)
        if limit < len(changes):
            console.print(f"... and {len(changes) - limit:,} more (--show 0 lists all; every change "
                          "is in the plan file).", markup=False)
        by_object, by_owner = plan_totals(plan)
        totals = Table(title="Totals", title_justify="left")
        totals.add_column("object")
        totals.add_column("changes", justify="right")
        for object_type, n in sorted(by_object.items()):
            totals.add_row(object_type, f"{n:,}")
        totals.add_row("all", f"{len(changes):,}", end_section=True)
        owners = Table(title="By new owner", title_justify="left")
        owners.add_column("new owner")
        owners.add_column("changes", justify="right")
        for owner, n in by_owner.most_common():
            owners.add_row(owner, f"{n:,}")
        console.print(totals, markup=False)
        console.print(owners, markup=False)
    if result.skipped:
        console.print(f"Left out of the plan ({len(result.skipped):,}):", markup=False)
        for line in result.skipped:
            literal(f"  {line}")
    if result.unchanged:
        console.print(f"{result.unchanged:,} record(s) already have the new owner: nothing to do "
                      "there.", markup=False)
    if result.empty:
        console.print("Nothing to change: no plan was written." if saving else "Nothing to change.",
                      markup=False)
        return
    console.print(f"Dry run: {len(plan.changes):,} owner change(s) planned on {plan.source}; "
                  "nothing was written to the CRM.", markup=False)


def print_plan_saved(plan: Plan, path: Path | None) -> None:
    """Where the plan went, and what to do next."""
    if path is None:
        console.print("Save it with -o plan.json to approve and apply it.", markup=False)
        return
    console.print(f"Plan saved to {path} (hash {plan.hash[:12]}).", markup=False)
    console.print(f"Next: review it, then `roe approve {path} --by NAME`.", markup=False)


def print_approval(plan: Plan, plan_file: Path, previous: Approval | None) -> None:
    approval = plan.approval
    assert approval is not None
    if previous and previous.hash == plan.hash:
        console.print(f"(It was approved before by {previous.by} at {previous.at}; "
                      "this approval replaces that one.)", markup=False)
    console.print(f"Approved {plan_file}: {len(plan.changes):,} owner change(s) on {plan.source}, "
                  f"by {approval.by} at {approval.at} (hash {plan.hash[:12]}).", markup=False)
    console.print(f"Next: `roe apply {plan_file}`.", markup=False)


def print_apply_report(report: ApplyReport, results_path: Path) -> None:
    from rich.table import Table

    from ..shared.vocab import ApplyStatus, Source

    out = console
    plan = report.plan
    statuses = (ApplyStatus.APPLIED, ApplyStatus.DRIFTED, ApplyStatus.FAILED, ApplyStatus.SENDING,
                ApplyStatus.PENDING)
    table = Table(title=f"apply {plan.source} (plan {plan.hash[:12]})", title_justify="left")
    table.add_column("object")
    for status in statuses:
        table.add_column(str(status), justify="right")
    by_object: dict[str, dict[str, int]] = {}
    for result in report.ordered():
        row = by_object.setdefault(result.change.object_type, dict.fromkeys(statuses, 0))
        row[result.status] += 1
    for object_type, row in sorted(by_object.items()):
        table.add_row(object_type, *(f"{row[s]:,}" for s in statuses))
    total = report.counts()
    table.add_row("all", *(f"{total[s]:,}" for s in statuses), end_section=True)
    out.print(table, markup=False)
    out.print(f"Sent {report.sent:,} record(s) this run in {report.write_calls:,} write call(s); "
              f"{report.read_calls:,} call(s) read current owners.", markup=False)
    if report.earlier:
        out.print(f"{report.earlier:,} record(s) were settled by an earlier run of this plan and "
                  "were not sent again (a plan is applied once; to make its changes again, build "
                  "a new plan).", markup=False)
    if report.confirmed:
        out.print(f"{report.confirmed:,} record(s) written by an interrupted run were confirmed "
                  "in the CRM and not sent again.", markup=False)
    if plan.source == Source.DEMO:
        out.print("Demo source: only the mirror changed.", markup=False)
    if total[ApplyStatus.DRIFTED]:
        out.print(f"{total[ApplyStatus.DRIFTED]:,} record(s) changed in the CRM since the plan was "
                  "built and were left untouched: run `roe sync`, then plan them again.",
                  markup=False)
    if total[ApplyStatus.FAILED]:
        out.print(f"{total[ApplyStatus.FAILED]:,} record(s) failed: see the error column of the "
                  "results.", markup=False)
    if total[ApplyStatus.SENDING] or total[ApplyStatus.PENDING]:
        out.print(f"The apply did not finish: run `roe apply {plan.path}` again; it sends only "
                  "what is missing.", markup=False)
    out.print(f"Results: {results_path}", markup=False)
    if total[ApplyStatus.APPLIED]:
        out.print(f"To undo: `roe revert {results_path} -o revert.json`, then approve and apply "
                  "that plan.", markup=False)


# -- rules ---------------------------------------------------------------------------------------


def setting_text(value: Any) -> str:
    """A setting's value as TOML-ish text: ``[a, b]``, ``{k = v}``, ``true``."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(setting_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {setting_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def print_rules_table(rules_file: Path, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=Text(f"Rules in {rules_file}"))
    for column in ("code", "name", "severity", "enabled", "parameters"):
        table.add_column(column, no_wrap=column != "parameters")
    for row in rows:
        params = "\n".join(
            f"{name} = {setting_text(value)}{'' if name in row['set_in_file'] else '  (default)'}"
            for name, value in row["parameters"].items()
        )
        table.add_row(row["code"], row["name"], row["severity"], "yes" if row["enabled"] else "no",
                      Text(params))
    console.print(table)
    console.print("`roe rules --explain CODE` tells what a rule flags and why.", markup=False)


def print_rule_explained(doc: str, where: str, specs: list[ParamSpec]) -> None:
    from rich.table import Table

    console.print(reflow(doc), markup=False)
    table = Table(title=Text(f"Settings ({where})"), title_justify="left")
    for column in ("setting", "takes", "default", "in force"):
        table.add_column(column)
    for s in specs:
        in_force = setting_text(s.value) + ("" if s.set_in_file else " (default)")
        table.add_row(Text(s.name), Text(s.kind), Text(setting_text(s.default)), Text(in_force))
    console.print()
    console.print(table)


def reflow(doc: str) -> str:
    """A docstring's wrapped lines joined into paragraphs, so the terminal can wrap them.

    A blank line, or a line opening with a label such as ``Why:`` or ``Fix:``, starts a new one.
    """
    paragraphs: list[str] = []
    joining = False
    for line in doc.splitlines():
        line = line.strip()
        if not line:
            paragraphs.append("")
            joining = False
        elif joining and not re.match(r"^[A-Z][\w -]{0,20}:\s", line):
            paragraphs[-1] += " " + line
        else:
            paragraphs.append(line)
            joining = True
    return "\n".join(paragraphs).replace("``", "`")


DOCTOR_STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}


def print_doctor(checks: list[Check]) -> None:
    """One line per check: status, name, what was seen and, unless it passed, the fix; then the
    totals. Plain text (no markup), so a cron mail reads the same as the terminal."""
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        line = Text.assemble((f"{check.status.value:<4}", DOCTOR_STYLES[check.status.value]),
                             f"  {check.name:<{width}}  {check.detail}")
        if check.fix and check.status.value != "PASS":
            line.append(f"  Fix: {check.fix}")
        console.print(line, soft_wrap=True)
    counts = Counter(c.status.value for c in checks)
    console.print(f"{counts['PASS']} passed, {counts['WARN']} warned, {counts['FAIL']} failed.")


def print_json(text: str) -> None:
    """Pretty JSON on stdout, coloured on a terminal (``roe rules --format json``)."""
    console.print_json(text)
