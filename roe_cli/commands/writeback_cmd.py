"""``roe reassign``, ``roe approve``, ``roe apply``, ``roe revert``: the write-back.

Plan (a dry run that writes nothing), approve (a person signs the plan's hash), apply (an exact,
journaled write to the CRM), revert (the plan that undoes an apply). The work is done in
``roe_cli.plans`` and ``roe_cli.apply``; this module parses, prints and picks exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..cli import app
from . import common

_SOURCE_HELP = "salesforce, hubspot or demo (default: the only source in the mirror)."


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _print_input_error(exc) -> None:
    from rich.markup import escape

    err = common.err_console
    err.print(f"[bold red]Error:[/] {escape(exc.what)}", markup=True, highlight=False)
    for problem in exc.problems:
        err.print(f"  {problem}", markup=False, highlight=False)
    if exc.todo:
        err.print(exc.todo, markup=False, highlight=False)


def _print_plan(result, show: int) -> None:
    """The changes (up to ``show`` rows; 0 = all), totals, and what was left out."""
    from rich.table import Table

    from ..plans import plan_totals, why_text

    plan = result.plan
    out = common.console
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
        out.print(table, markup=False)
        if limit < len(changes):
            out.print(f"... and {len(changes) - limit:,} more (--show 0 lists all; every change is "
                      "in the plan file).", markup=False)
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
        out.print(totals, markup=False)
        out.print(owners, markup=False)
    if result.skipped:
        out.print(f"Left out of the plan ({len(result.skipped):,}):", markup=False)
        for line in result.skipped:
            out.print(f"  {line}", markup=False, highlight=False)
    if result.unchanged:
        out.print(f"{result.unchanged:,} record(s) already have the new owner: nothing to do there.",
                  markup=False)


def _finish_plan(result, output: str | None, show: int) -> None:
    from ..plans import save_plan

    _print_plan(result, show)
    plan = result.plan
    out = common.console
    if result.empty:
        out.print("Nothing to change: no plan was written." if output else "Nothing to change.",
                  markup=False)
        return
    out.print(f"Dry run: {len(plan.changes):,} owner change(s) planned on {plan.source}; "
              "nothing was written to the CRM.", markup=False)
    if output:
        path = save_plan(plan, output)
        out.print(f"Plan saved to {path} (hash {plan.hash[:12]}).", markup=False)
        out.print(f"Next: review it, then `roe approve {path} --by NAME`.", markup=False)
    else:
        out.print("Save it with -o plan.json to approve and apply it.", markup=False)


def _build(builder, *args, **kwargs):
    from ..plans import PlanInputError

    try:
        with common.progress_bar("Planning", None):
            return builder(*args, **kwargs)
    except PlanInputError as exc:
        _print_input_error(exc)
        raise typer.Exit(exc.exit_code) from None


@app.command("reassign")
def reassign(
    ctx: typer.Context,
    findings: Annotated[str | None, typer.Option(
        "--findings", help="Rule codes whose open findings' suggested owners to plan, e.g. "
        "OWN002,OWN001 (or 'all').")] = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="A CSV with columns object_type, object_id, new_owner (id or e-mail), UTF-8.",
        dir_okay=False)] = None,
    transfer_from: Annotated[str | None, typer.Option(
        "--transfer-from", help="Move this owner's book (id or e-mail) ...")] = None,
    to: Annotated[str | None, typer.Option("--to", help="... to this active owner.")] = None,
    objects: Annotated[str | None, typer.Option(
        "--objects", help="With --transfer-from: which objects, e.g. account,contact "
        "(default account,contact,opportunity).")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help=_SOURCE_HELP)] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Save the plan to this JSON file (to approve and apply it).")] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who builds the plan (default: your OS user name).")] = None,
    show: Annotated[int, typer.Option(
        "--show", help="How many changes to list (0: all).", min=0)] = 50,
) -> None:
    """Plan owner changes (a dry run: nothing is written to the CRM).

    From open findings' suggestions (--findings), from a CSV (--csv), or as a transfer of one
    owner's book to another (--transfer-from A --to B: A's accounts with the contacts and open
    opportunities A owns on them; --objects narrows). Prints the changes with totals by object and
    new owner, and saves the plan with -o. Bad CSV input is refused with every problem listed by
    row (exit 2). A plan that would change nothing says so, and no file is written.

    Example: roe reassign --findings OWN002,OWN001 -o plan.json
    """
    from .. import plans
    from ..shared.errors import UsageError

    modes = [m for m, given in (("--findings", findings is not None), ("--csv", csv_file is not None),
                                ("--transfer-from", transfer_from is not None)) if given]
    if len(modes) != 1:
        raise UsageError(
            "Say what to plan from: " + ("one of --findings, --csv or --transfer-from."
                                         if not modes else f"only one of {', '.join(modes)}."),
            "Example: roe reassign --findings OWN002 -o plan.json",
        )
    if to is not None and transfer_from is None:
        raise UsageError("--to goes with --transfer-from.", "Example: roe reassign --transfer-from "
                         "old@example.com --to new@example.com -o plan.json")
    if objects is not None and transfer_from is None:
        raise UsageError("--objects goes with --transfer-from.", "Drop --objects.")
    engine = common.open_engine(ctx)
    if findings is not None:
        result = _build(plans.build_from_findings, engine, _split(findings), source=source,
                        created_by=by)
    elif csv_file is not None:
        result = _build(plans.build_from_csv, engine, csv_file, source=source, created_by=by)
    else:
        if not to:
            raise UsageError("--transfer-from needs --to.",
                             "Example: roe reassign --transfer-from old@example.com "
                             "--to new@example.com -o plan.json")
        kinds = _split(objects) if objects is not None else list(plans.OBJECT_TYPES)
        result = _build(plans.build_transfer, engine, transfer_from, to, objects=kinds,
                        source=source, created_by=by)
    _finish_plan(result, output, show)


@app.command("approve")
def approve(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Argument(help="The plan (JSON) to approve.", dir_okay=False)],
    by: Annotated[str, typer.Option("--by", help="Who approves (a name or e-mail).")],
    note: Annotated[str | None, typer.Option("--note", help="Why, or a ticket reference.")] = None,
) -> None:
    """Approve a plan: record who approved it, when, and the hash of its changes.

    The approval goes into the plan file and into the mirror. A plan changed after approval is no
    longer approved, and `roe apply` refuses it.

    Example: roe approve plan.json --by vp-sales@example.com --note "Q3 territory cleanup"
    """
    from ..plans import approve_plan, load_plan, save_plan

    plan = load_plan(plan_file)
    engine = common.open_engine(ctx)
    previous = plan.approval
    plan = approve_plan(engine, plan, by, note)  # plans are frozen: approving gives a new one
    approval = plan.approval
    assert approval is not None
    save_plan(plan, plan_file)
    out = common.console
    if previous and previous.hash == plan.hash:
        out.print(f"(It was approved before by {previous.by} at {previous.at}; "
                  "this approval replaces that one.)", markup=False)
    out.print(f"Approved {plan_file}: {len(plan.changes):,} owner change(s) on {plan.source}, "
              f"by {approval.by} at {approval.at} (hash {plan.hash[:12]}).", markup=False)
    out.print(f"Next: `roe apply {plan_file}`.", markup=False)


@app.command("apply")
def apply(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Argument(help="The approved plan (JSON).", dir_okay=False)],
    results: Annotated[Path | None, typer.Option(
        "--results", help="Where to write the results CSV (default: <plan>.results.csv beside "
        "the plan).", dir_okay=False)] = None,
) -> None:
    """Write an approved plan to the CRM, exactly once, skipping records that drifted.

    Refuses an unapproved plan, or one changed after approval. Reads the current owners first and
    leaves every record whose owner is no longer the plan's expected one untouched (drifted).
    Writes in the CRM's batch calls, journals each record in the mirror (so running it again after
    a crash sends nothing twice), writes a results CSV and updates the mirror. On the demo source
    only the mirror changes. Exit 0 all applied, 1 records failed or drifted, 2 the plan was
    refused, 3 the CRM could not be reached or refused us.

    Example: roe apply plan.json --results plan.results.csv
    """
    from connectors import make_connector

    from ..apply import apply_plan, default_results_path, write_results
    from ..db import run_lock
    from ..plans import load_plan, verify_approval

    plan = load_plan(plan_file)
    engine = common.open_engine(ctx)
    verify_approval(engine, plan)  # before anything talks to the CRM
    results_path = results or default_results_path(plan_file)
    if not results_path.parent.exists():
        from ..shared.errors import UsageError

        raise UsageError(f"The folder {results_path.parent} does not exist.",
                         "Create it, or give --results a path in an existing folder.")
    settings = common.connector_settings(ctx, plan.source)
    connector = make_connector(plan.source, settings=settings, engine=engine)
    try:
        with run_lock(engine, f"apply {plan_file.name}"), \
                common.progress_bar(f"Applying {len(plan.changes):,} changes", len(plan.changes)) \
                as advance:
            report = apply_plan(engine, plan, connector, on_progress=advance)
    finally:
        connector.close()
    write_results(report, results_path)
    _print_apply_report(report, results_path)
    if report.crm_error is not None:
        common.print_error(report.crm_error)
    raise typer.Exit(report.exit_code)


def _print_apply_report(report, results_path: Path) -> None:
    from rich.table import Table

    out = common.console
    plan = report.plan
    statuses = ("applied", "drifted", "failed", "sending", "pending")
    table = Table(title=f"apply {plan.source} (plan {plan.hash[:12]})", title_justify="left")
    table.add_column("object")
    for status in statuses:
        table.add_column(status, justify="right")
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
    if plan.source == "demo":
        out.print("Demo source: only the mirror changed.", markup=False)
    if total["drifted"]:
        out.print(f"{total['drifted']:,} record(s) changed in the CRM since the plan was built and "
                  "were left untouched: run `roe sync`, then plan them again.", markup=False)
    if total["failed"]:
        out.print(f"{total['failed']:,} record(s) failed: see the error column of the results.",
                  markup=False)
    if total["sending"] or total["pending"]:
        out.print(f"The apply did not finish: run `roe apply {plan.path}` again; it sends only "
                  "what is missing.", markup=False)
    out.print(f"Results: {results_path}", markup=False)
    if total["applied"]:
        out.print(f"To undo: `roe revert {results_path} -o revert.json`, then approve and apply "
                  "that plan.", markup=False)


@app.command("revert")
def revert(
    ctx: typer.Context,
    results_file: Annotated[Path, typer.Argument(
        help="The results CSV of an apply.", dir_okay=False)],
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Save the reverse plan to this JSON file.")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help=_SOURCE_HELP)] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who builds the plan (default: your OS user name).")] = None,
    show: Annotated[int, typer.Option(
        "--show", help="How many changes to list (0: all).", min=0)] = 50,
) -> None:
    """Plan the undo of an apply, from its results CSV (a dry run, like reassign).

    Every applied record goes back to its previous owner. Records changed again since the apply,
    or whose previous owner is now inactive, are left out and listed. The plan needs its own
    approval before `roe apply`.

    Example: roe revert plan.results.csv -o revert.json && roe approve revert.json --by ana@example.com
    """
    from ..plans import build_revert

    engine = common.open_engine(ctx)
    result = _build(build_revert, engine, results_file, source=source, created_by=by)
    _finish_plan(result, output, show)
