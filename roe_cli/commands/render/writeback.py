"""What the write-back prints: plans, approvals, applies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from pathlib import Path

    from ...apply import ApplyReport
    from ...plans import Approval, BuildResult, Change, Plan

from . import base
from .base import cell, literal

# -- write-back ----------------------------------------------------------------------------------


def why_text(change: Change) -> str:
    """A short reason for a change, for tables: ``OWN002 #12``, ``row 3``, ``transfer``."""
    why = change.why or {}
    kind = why.get("kind")
    if kind == "finding":
        return ", ".join(f"{f.get('rule')} #{f.get('id')}" for f in why.get("findings", []))
    if kind == "csv":
        return f"CSV row {why.get('row')}"
    if kind == "transfer":
        return f"realign: {why['realign']}" if why.get("realign") else "transfer"
    if kind == "revert":
        return f"revert row {why.get('row')}"
    if kind == "team_seat":
        return f"team seat{': ' + str(why['team_role']) if why.get('team_role') else ''}"
    return kind or ""


OwnerLabel = Callable[[str | None, str | None], str]


def _email_or_id(owner_id: str | None, email: str | None) -> str:
    return email or owner_id or "(none)"


def print_plan(result: BuildResult, show: int, *, saving: bool) -> None:
    """The changes (up to ``show`` rows; 0 = all), totals, what was left out, and the dry-run line."""
    plan = result.plan
    if plan.changes:
        print_changes(plan, show, f"Planned owner changes ({plan.source})")
    if result.skipped:
        base.console.print(f"Left out of the plan ({len(result.skipped):,}):", markup=False)
        for line in result.skipped:
            literal(f"  {line}")
    if result.unchanged:
        base.console.print(f"{result.unchanged:,} record(s) already have the new owner: nothing to do "
                      "there.", markup=False)
    if result.empty:
        base.console.print("Nothing to change: no plan was written." if saving else "Nothing to change.",
                      markup=False)
        return
    seats = sum(1 for c in plan.changes if c.is_seat)
    what = f"{len(plan.changes) - seats:,} owner change(s)" + (
        f" and {seats:,} team seat move(s)" if seats else "")
    base.console.print(f"Dry run: {what} planned on {plan.source}; "
                  "nothing was written to the CRM.", markup=False)


def print_changes(plan: Plan, show: int, title: str,
                  owner_label: OwnerLabel = _email_or_id) -> None:
    """A plan's changes (up to ``show`` rows; 0 = all), its totals by object and by new owner."""
    from rich.table import Table

    changes = plan.changes
    if changes:
        table = Table(title=title, title_justify="left")
        for col in ("object", "id"):
            table.add_column(col, no_wrap=True)
        for col in ("name", "current owner", "new owner", "why"):
            table.add_column(col, overflow="fold")
        limit = len(changes) if show <= 0 else min(show, len(changes))
        for c in changes[:limit]:
            table.add_row(cell(c.object_type), cell(c.object_id), cell(c.object_name or ""),
                          cell(owner_label(c.expected, c.expected_email)),
                          cell(owner_label(c.new, c.new_email)), cell(why_text(c)),
                          end_section=False)
        base.console.print(table, markup=False)
        if limit < len(changes):
            base.console.print(f"... and {len(changes) - limit:,} more (--show 0 lists all; every change "
                          "is in the plan file).", markup=False)
        by_object = Counter(str(c.object_type) for c in changes)
        by_owner = Counter(owner_label(c.new, c.new_email) for c in changes)
        totals = Table(title="Totals", title_justify="left")
        totals.add_column("object")
        totals.add_column("changes", justify="right")
        for object_type, n in sorted(by_object.items()):
            totals.add_row(cell(object_type), f"{n:,}")
        totals.add_row("all", f"{len(changes):,}", end_section=True)
        owners = Table(title="By new owner", title_justify="left")
        owners.add_column("new owner")
        owners.add_column("changes", justify="right")
        for owner, n in by_owner.most_common():
            owners.add_row(cell(owner), f"{n:,}")
        base.console.print(totals, markup=False)
        base.console.print(owners, markup=False)


def print_plan_saved(plan: Plan, path: Path | None) -> None:
    """Where the plan went, and what to do next."""
    if path is None:
        base.console.print("Save it with -o plan.json to approve and apply it.", markup=False)
        return
    base.console.print(f"Plan saved to {path} (hash {plan.hash[:12]}).", markup=False)
    base.console.print(f"Next: review it, then `roe approve {path} --by NAME`.", markup=False)


def print_plan_written_to_stdout(plan: Plan) -> None:
    """The note after ``-o -``: the plan went to stdout; approving needs it in a file."""
    base.console.print(f"Plan written to standard output (hash {plan.hash[:12]}). Save it to a file "
                  "to approve it: `roe approve FILE --by NAME`.", markup=False)


def print_approval(plan: Plan, plan_file: Path, previous: Approval | None,
                   names: Mapping[str, str | None], show: int = 50) -> None:
    """What was approved (each change with names and e-mails, totals per new owner), then who."""
    def label(owner_id: str | None, email: str | None) -> str:
        if not owner_id:
            return "(none)"
        name = names.get(owner_id)
        who = f"{name} <{email}>" if name and email else (email or name or "")
        return f"{who} ({owner_id})" if who else owner_id

    approval = plan.approval
    assert approval is not None
    print_changes(plan, show, f"Approved owner changes ({plan.source})", label)
    if previous and previous.hash == plan.hash:
        base.console.print(f"(It was approved before by {previous.by} at {previous.at}; "
                      "that approval is kept in the plan's approval_history.)", markup=False)
    base.console.print(f"Approved {plan_file}: {len(plan.changes):,} owner change(s) on {plan.source}, "
                  f"by {approval.by} at {approval.at} (hash {plan.hash[:12]}).", markup=False)
    base.console.print(f"Next: `roe apply {plan_file}`.", markup=False)


def print_apply_report(report: ApplyReport, results_path: Path) -> None:
    from rich.table import Table

    from ...shared.vocab import ApplyStatus, Source

    out = base.console
    plan = report.plan
    statuses = (ApplyStatus.APPLIED, ApplyStatus.DRIFTED, ApplyStatus.FAILED, ApplyStatus.HELD,
                ApplyStatus.SENDING, ApplyStatus.PENDING)
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
    if total[ApplyStatus.HELD]:
        out.print(f"{total[ApplyStatus.HELD]:,} contact(s)/opportunities were held back with "
                  "their account, which was not moved (no split was made): see the error column "
                  "of the results.", markup=False)
    if report.interrupted:
        pass  # one line after the report says it (print_apply_interrupted)
    elif total[ApplyStatus.SENDING] or total[ApplyStatus.PENDING]:
        out.print(f"The apply did not finish: run `roe apply {plan.path}` again; it sends only "
                  "what is missing.", markup=False)
    out.print(f"Results: {results_path}", markup=False)
    if total[ApplyStatus.APPLIED]:
        out.print(f"To undo: `roe revert {results_path} -o revert.json`, then approve and apply "
                  "that plan.", markup=False)


def print_apply_interrupted(report: ApplyReport, plan_file: Path, results_path: Path) -> None:
    """The one line Ctrl-C on apply ends with: what was done, and how to resume."""
    from ...shared.vocab import ApplyStatus

    total = report.counts()
    left = total[ApplyStatus.SENDING] + total[ApplyStatus.PENDING]
    base.err_console.print(Text(
        f"Interrupted: {total[ApplyStatus.APPLIED]:,} of {len(report.plan.changes):,} change(s) "
        f"applied, {left:,} not done (results in {results_path}); run `roe apply {plan_file}` "
        "again to send only what is missing."), soft_wrap=True)
