"""``roe db``: the mirror's schema."""

from __future__ import annotations

import typer

from . import options, render

db_app = typer.Typer(
    help="Create, upgrade and inspect the mirror's schema (Alembic migrations).\n\n"
    "roe upgrades the schema by itself whenever it opens a database; these commands are for "
    "checking and for upgrading on purpose before a release.\n\nExample: roe --db roe.db db status",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Run every pending migration.

    Example: roe --db postgresql+psycopg://roe@db/roe db upgrade
    """
    url, before, after = options.workspace(ctx).upgrade_schema()
    if before.pending:
        render.console.print(f"Upgraded {url} from {before.current or 'empty'} to {after.current}.")
    else:
        render.console.print(f"Already at the latest schema ({after.current}).")


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the schema revision and any pending migrations (exit 1 when some are pending).

    Example: roe db status
    """
    from ..shared.errors import EXIT_FINDINGS

    url, st = options.workspace(ctx).schema_status()
    render.console.print(f"database: {url}")
    render.console.print(f"current:  {st.current or '(empty)'}")
    render.console.print(f"head:     {st.head}")
    if st.pending:
        render.console.print(f"pending:  {', '.join(st.pending)}  (run `roe db upgrade`)")
        raise typer.Exit(EXIT_FINDINGS)
    render.console.print("up to date")
