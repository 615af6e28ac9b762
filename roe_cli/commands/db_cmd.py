"""``roe db``: the mirror's schema."""

from __future__ import annotations

import typer

from ..cli import app
from . import common

db_app = typer.Typer(
    help="Create, upgrade and inspect the mirror's schema (Alembic migrations).\n\n"
    "roe upgrades the schema by itself whenever it opens a database; these commands are for "
    "checking and for upgrading on purpose before a release.\n\nExample: roe --db roe.db db status",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Run every pending migration.

    Example: roe --db postgresql+psycopg://roe@db/roe db upgrade
    """
    from .. import db

    engine = common.open_engine(ctx, migrate=False)
    before = db.status(engine)
    after = db.upgrade(engine)
    if before.pending:
        common.console.print(f"Upgraded {engine.url.render_as_string(hide_password=True)} "
                             f"from {before.current or 'empty'} to {after.current}.")
    else:
        common.console.print(f"Already at the latest schema ({after.current}).")


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the schema revision and any pending migrations (exit 1 when some are pending).

    Example: roe db status
    """
    from .. import db

    engine = common.open_engine(ctx, migrate=False)
    st = db.status(engine)
    common.console.print(f"database: {engine.url.render_as_string(hide_password=True)}")
    common.console.print(f"current:  {st.current or '(empty)'}")
    common.console.print(f"head:     {st.head}")
    if st.pending:
        common.console.print(f"pending:  {', '.join(st.pending)}  (run `roe db upgrade`)")
        raise typer.Exit(1)
    common.console.print("up to date")
