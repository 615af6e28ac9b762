"""``roe demo``: fill the mirror with the synthetic demo org."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options, render


def demo(
    ctx: typer.Context,
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="How many accounts.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same org.")] = 42,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The org's 'now' (ISO date or time, UTC); default today 00:00 UTC."),
    ] = None,
) -> None:
    """Fill the mirror with a realistic synthetic org (source `demo`) that breaks every rule.

    About five contacts an account, open and closed deals, calls, meetings, e-mails and tasks
    over 180 days, handoffs, inactive reps. What it planted is recorded, so `roe audit` can be
    checked against it. No credentials needed. Replaces an earlier demo org.

    Example: roe demo --accounts 5000 --seed 7 && roe audit
    """
    from ..shared.clock import parse_as_of

    ws = options.workspace(ctx)
    engine = ws.open(create=True)  # opened before --as-of is parsed, as always
    when = parse_as_of(as_of) if as_of else None
    counts = ws.load_demo(accounts, seed, when, progress=render.progress_bar)
    render.console.print(
        f"Demo org (seed {seed}) in {ws.display_url(engine)}: "
        f"{counts['owner']:,} owners, {counts['account']:,} accounts, {counts['contact']:,} contacts, "
        f"{counts['opportunity']:,} opportunities, {counts['activity']:,} activities, "
        f"{counts['ownership_change']:,} ownership changes, "
        f"{counts.get('account_team_member', 0):,} account team members; "
        f"{counts['planted']:,} planted conflicts."
    )
