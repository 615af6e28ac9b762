"""``roe sync``: pull a CRM into the mirror."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options, render


def sync(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Option("--source", "-s", help="salesforce or hubspot (the demo org comes from `roe demo`).")
    ] = "salesforce",
    full: Annotated[
        bool,
        typer.Option("--full", help="Re-read everything and mark what the CRM no longer has as deleted."),
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option("--allow-mass-delete",
                     help="With --full: mark deleted whatever the CRM did not return, even more than "
                          "[sync] max_delete_share (default 10%) of an object, or all of it."),
    ] = False,
) -> None:
    """Pull owners, accounts, contacts, opportunities, activities and owner history into the mirror.

    Incremental by default: only what changed since the last run (per object, with a small
    overlap). Each page is committed on its own, so an interrupted sync resumes where it stopped.
    Credentials come from the environment only (see the README). A full sync that would mark more
    than [sync] max_delete_share of an object's records deleted (or gets nothing back) keeps them
    and exits 3, unless --allow-mass-delete.

    Example: SALESFORCE_INSTANCE_URL=https://acme.my.salesforce.com SALESFORCE_ACCESS_TOKEN=... roe sync --source salesforce
    """
    report, api_usage = options.workspace(ctx).sync(
        source, full=full, allow_mass_delete=allow_mass_delete, progress=render.progress_bar)
    render.print_sync_report(report, api_usage)
