"""``roe sync``: pull a CRM into the mirror."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli import app
from . import common


@app.command("sync")
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
    from connectors import make_connector

    from ..db import run_lock
    from ..sync import sync as run_sync

    engine = common.open_engine(ctx)
    settings = common.connector_settings(ctx, source)
    connector = make_connector(source, settings=settings, engine=engine)
    try:
        with run_lock(engine, f"sync {source}"):
            with common.progress_bar(f"Syncing {source}", None) as advance:
                report = run_sync(engine, connector, full=full, on_page=lambda _o, n: advance(n))
    finally:
        connector.close()
    common.print_sync_report(report, connector)
