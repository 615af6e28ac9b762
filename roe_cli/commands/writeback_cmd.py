"""``roe reassign``, ``roe approve``, ``roe apply``, ``roe revert``: the write-back.

Plan (a dry run that writes nothing), approve (a person signs the plan's hash), apply (an exact,
journaled write to the CRM), revert (the plan that undoes an apply). The work is done in
``roe_cli.plans`` and ``roe_cli.apply`` through the workspace; this module parses, prints and
picks exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import options, render
from .options import PlanByOpt, PlanSourceOpt, ShowOpt

if TYPE_CHECKING:
    pass


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
    team_seats: Annotated[bool, typer.Option(
        "--team-seats", help="With --transfer-from: also move A's account team seats to B "
        "(Salesforce AccountTeamMember rows and team_fields, HubSpot team_properties).")] = False,
    source: PlanSourceOpt = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Save the plan to this JSON file (to approve and apply it); - "
        "writes it to standard output.")] = None,
    by: PlanByOpt = None,
    show: ShowOpt = 50,
    force: options.ForceOpt = False,
) -> None:
    """Plan owner changes (a dry run: nothing is written to the CRM).

    From open findings' suggestions (--findings), from a CSV (--csv), or as a transfer of one
    owner's book to another (--transfer-from A --to B: A's accounts with the contacts and open
    opportunities A owns on them; --objects narrows; --team-seats moves A's account team seats
too). Prints the changes with totals by object and
    new owner, and saves the plan with -o (an existing file only with --force, and never a plan
    that was approved or applied). Bad CSV input is refused with every problem listed by
    row (exit 2). A plan that would change nothing says so, and no file is written.

    Example: roe reassign --findings OWN002,OWN001 -o plan.json

    Example: roe reassign --transfer-from leaver@example.com --to new@example.com --team-seats -o plan.json
    """
    from .. import plans
    from ..shared.errors import UsageError
    from ..shared.vocab import OBJECT_TYPES

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
    if team_seats and transfer_from is None:
        raise UsageError("--team-seats goes with --transfer-from.", "Example: roe reassign "
                         "--transfer-from old@example.com --to new@example.com --team-seats "
                         "-o plan.json")
    ws = options.workspace(ctx)
    ws.open()  # the mirror first, then the inputs are checked and read, as always
    progress = render.progress_bar
    if findings is not None:
        result = ws.writeback.plan(plans.build_from_findings, options.split_list(findings), source=source,
                         created_by=by, progress=progress)
    elif csv_file is not None:
        result = ws.writeback.plan(plans.build_from_csv, csv_file, source=source, created_by=by,
                         progress=progress)
    else:
        if not to:
            raise UsageError("--transfer-from needs --to.",
                             "Example: roe reassign --transfer-from old@example.com "
                             "--to new@example.com -o plan.json")
        kinds = options.split_list(objects) if objects is not None else list(OBJECT_TYPES)
        extra = {"team_seats": True} if team_seats else {}
        result = ws.writeback.plan(plans.build_transfer, transfer_from, to, objects=kinds, source=source,
                         created_by=by, progress=progress, **extra)
    options.finish_plan(ctx, result, output, show, force)


def approve(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Argument(help="The plan (JSON) to approve.", dir_okay=False)],
    by: Annotated[str, typer.Option("--by", help="Who approves (a name or e-mail).")],
    note: Annotated[str | None, typer.Option("--note", help="Why, or a ticket reference.")] = None,
    self_approve: Annotated[bool, typer.Option(
        "--self-approve", help="Allow --by to be the plan's author (when no second person "
        "can review it).")] = False,
    show: ShowOpt = 50,
) -> None:
    """Approve a plan: show what it does, then record who approved it, when, and its hash.

    Prints the changes with record names and owners' names and e-mails, and the totals per new
    owner. Refuses a plan whose ids disagree with the names and e-mails it shows or with the
    mirror, or whose new owners are unknown or inactive (exit 2); --by must differ from the plan's
    author unless --self-approve. The approval goes into the plan file and into the mirror; a
    re-approval keeps the earlier one in the plan's approval_history and the mirror. A plan
    changed after approval is no longer approved, and `roe apply` refuses it.

    Example: roe approve plan.json --by vp-sales@example.com --note "Q3 territory cleanup"
    """
    plan, previous, names = options.workspace(ctx).writeback.approve(plan_file, by, note,
                                                           self_approve=self_approve)
    render.print_approval(plan, plan_file, previous, names, show)


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

    Each apply writes a new results file (plan.results.csv, then plan.results-2.csv, ...);
    an existing --results file is refused. Ctrl-C stops within seconds: what was done is kept
    and written to the results, and `roe apply PLAN` again sends only what is missing (exit 130).

    Example: roe apply plan.json
    """
    report, results_path = options.workspace(ctx).writeback.apply(plan_file, results,
                                                        progress=render.progress_bar)
    render.print_apply_report(report, results_path)
    if report.interrupted:
        render.print_apply_interrupted(report, plan_file, results_path)
    if report.crm_error is not None:
        render.print_error(report.crm_error)
    raise typer.Exit(report.exit_code)


def revert(
    ctx: typer.Context,
    results_file: Annotated[Path, typer.Argument(
        help="The results CSV of an apply.", dir_okay=False)],
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Save the reverse plan to this JSON file (- : standard output).")] = None,
    source: PlanSourceOpt = None,
    by: PlanByOpt = None,
    show: ShowOpt = 50,
    force: options.ForceOpt = False,
) -> None:
    """Plan the undo of an apply, from this mirror's apply journal (a dry run, like reassign).

    The results CSV names the apply (its plan_hash) and the records to give back; their owners
    come from the journal, never from the CSV, and rows the journal does not hold as applied are
    refused. A CSV without plan_hash is refused. Every applied record goes back to its previous
    owner. Records changed again since the apply,
    or whose previous owner is now inactive, are left out and listed. The plan needs its own
    approval before `roe apply`.

    Example: roe revert plan.results.csv -o revert.json && roe approve revert.json --by ana@example.com
    """
    from ..plans import build_revert

    result = options.workspace(ctx).writeback.plan(build_revert, results_file, source=source, created_by=by,
                                         progress=render.progress_bar)
    options.finish_plan(ctx, result, output, show, force)
