"""``roe realign``: a plan that hands each account owned outside its territory's team to that
team, balanced; a dry run like ``roe reassign`` (the same plan file for approve and apply)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import options, render
from .options import ForceOpt, PlanByOpt, PlanSourceOpt, ShowOpt

if TYPE_CHECKING:
    pass



class BalanceBy(StrEnum):
    accounts = "accounts"
    pipeline = "pipeline"


def realign(
    ctx: typer.Context,
    rules_file: Annotated[Path | None, typer.Option(
        "--rules", help="The proposed rules file whose territories and teams to realign to "
        "(default: the current one, --rules/ROE_RULES before the command).", dir_okay=False)] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Save the plan to this JSON file (to approve and apply it); - "
        "writes it to standard output.")] = None,
    move_open_deals: Annotated[bool, typer.Option(
        "--move-open-deals", help="Also move accounts with an open opportunity (held otherwise), "
        "with the open opportunities their old owner holds.")] = False,
    balance: Annotated[BalanceBy, typer.Option(
        "--balance", help="Give each account to the member with the fewest accounts, or the "
        "least open pipeline.")] = BalanceBy.accounts,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The time the 90-day activity figures end at (ISO 8601; default now).")] = None,
    source: PlanSourceOpt = None,
    by: PlanByOpt = None,
    show: ShowOpt = 50,
    force: ForceOpt = False,
) -> None:
    """Plan the realignment of accounts with their territories' teams (a dry run).

    Under the proposed rules, every live account whose owner is not in the team of the account's
    territory moves to an active member of that team whose role can own the account's stage
    (HND002 stage_roles, when it maps the stage): the one with the fewest accounts (or the least
    open pipeline with --balance pipeline), counting the moves made so far, ties by e-mail; the
    territory's default_owner first when it is not more loaded than the others. Accounts with an
    open opportunity are held unless --move-open-deals. Contacts and open opportunities of the
    old owner move with the account. Accounts in no territory, or with no eligible member, are
    listed as unassigned. Accounts go in territory order, then by id: the same every time.
    Prints the balance per owner before and after, with the Gini coefficient and the
    largest/smallest ratio. Approve and apply the plan like any other.

    Example: roe realign --rules rules-2027.toml -o realign.json && roe approve realign.json --by vp@example.com
    """
    from .. import plans
    from ..shared.clock import parse_as_of

    when = parse_as_of(as_of) if as_of else None
    ws = options.workspace(ctx)
    result = ws.writeback.plan(plans.build_realign, rules_file or ws.rules_file,
                               move_open_deals=move_open_deals, balance=balance.value,
                               source=source, created_by=by, as_of=when,
                               progress=render.progress_bar)
    assert isinstance(result, plans.RealignResult)

    def balance_and_left_out() -> None:
        render.print_realign_balance(result)
        render.print_realign_left_out(result, show)

    options.finish_plan(ctx, result, output, show, force, preface=balance_and_left_out)
