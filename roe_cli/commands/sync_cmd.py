"""``roe sync``: pull a CRM into the mirror."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options, render


def sync(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Option("--source", "-s", help="salesforce, hubspot or demo.")
    ] = "salesforce",
    full: Annotated[
        bool,
        typer.Option("--full", help="Re-read everything and mark what the CRM no longer has as deleted."),
    ] = False,
) -> None:
    """Pull owners, accounts, contacts, opportunities, activities and owner history into the mirror.

    Incremental by default: only what changed since the last run (per object, with a small
    overlap). Each page is committed on its own, so an interrupted sync resumes where it stopped.
    Credentials come from the environment only (see the README).

    Example: SALESFORCE_INSTANCE_URL=https://acme.my.salesforce.com SALESFORCE_ACCESS_TOKEN=... roe sync --source salesforce
    """
    report, api_usage = options.workspace(ctx).sync(source, full=full, progress=render.progress_bar)
    render.print_sync_report(report, api_usage)
