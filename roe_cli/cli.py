"""The ``roe`` command line: the app, and every command registered on it.

Only this layer (``cli.py`` and ``roe_cli/commands/``) imports typer and rich. Commands live one
module each under ``roe_cli/commands`` as plain functions (or a small sub-app); this module
imports them and registers them, and nothing below imports it (typer's one-file-per-command
pattern). Expected errors (:class:`~roe_cli.shared.errors.RoeError`) become a short message and
their exit code here, in one place.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from .commands import render
from .commands.audit_cmd import audit
from .commands.db_cmd import db_app
from .commands.demo_cmd import demo
from .commands.doctor_cmd import doctor
from .commands.export_cmd import export_app
from .commands.findings_cmd import findings_command
from .commands.options import global_options
from .commands.rules_cmd import rules
from .commands.sync_cmd import sync
from .commands.waive_cmd import waive_command
from .commands.writeback_cmd import apply, approve, reassign, revert
from .shared.errors import RoeError


class _RoeGroup(TyperGroup):
    """Turns roe's expected errors into a two-line message and their exit code, no traceback."""

    # typer declares the parameter as its vendored click's Context; typer.Context is the public name.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except RoeError as exc:
            render.print_error(exc)
            ctx.exit(exc.exit_code)


app = typer.Typer(
    name="roe",
    cls=_RoeGroup,
    help=(
        "roe: Rules of Engagement for the CRM, as code.\n\n"
        "Mirror Salesforce or HubSpot into a local database, check ownership against the rules in "
        "rules.toml, export what it finds, and fix owners in bulk with a plan, an approval and a "
        "journaled apply.\n\n"
        "Example: roe demo && roe audit"
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)

app.callback()(global_options)

# In the order `roe --help` has always listed them (the order of the old module imports).
app.command("audit")(audit)
app.add_typer(db_app, name="db")
app.command("demo")(demo)
app.command("doctor")(doctor)
app.add_typer(export_app, name="export")
app.command("findings")(findings_command)
app.command("rules")(rules)
app.command("sync")(sync)
app.command("waive")(waive_command)
app.command("reassign")(reassign)
app.command("approve")(approve)
app.command("apply")(apply)
app.command("revert")(revert)


def main() -> None:
    """Entry point of the ``roe`` console script."""
    try:
        app()
    except RoeError as exc:  # raised outside a command, e.g. in the global options
        render.print_error(exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
