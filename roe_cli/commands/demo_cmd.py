"""``roe demo``: fill the mirror with the synthetic demo org."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli import app
from . import common


@app.command("demo")
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
    from ..db import run_lock
    from ..demo import load_demo_org
    from ..shared.clock import parse_as_of

    engine = common.open_engine(ctx)
    when = parse_as_of(as_of) if as_of else None
    with run_lock(engine, "demo"), common.progress_bar("Generating the demo org", accounts) as advance:
        counts = load_demo_org(engine, accounts, seed, when, on_chunk=advance)
    common.console.print(
        f"Demo org (seed {seed}) in {engine.url.render_as_string(hide_password=True)}: "
        f"{counts['owner']:,} owners, {counts['account']:,} accounts, {counts['contact']:,} contacts, "
        f"{counts['opportunity']:,} opportunities, {counts['activity']:,} activities, "
        f"{counts['ownership_change']:,} ownership changes; {counts['planted']:,} planted conflicts."
    )
