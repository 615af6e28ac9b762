"""The ``roe`` command line: parse, call one core function, print, pick the exit code.

Only this layer (``cli.py`` and ``roe_cli/commands/``) imports typer and rich. Each command lives
in its own module under ``roe_cli/commands`` and registers itself on :data:`app`.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from .commands import common
from .shared.errors import RoeError


class _RoeGroup(TyperGroup):
    """Turns roe's expected errors into a two-line message and their exit code, no traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RoeError as exc:
            common.print_error(exc)
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

app.callback()(common.global_options)

# Each module registers its commands on `app` when imported.
from .commands import (  # noqa: E402,F401
    audit_cmd,
    db_cmd,
    demo_cmd,
    export_cmd,
    findings_cmd,
    rules_cmd,
    sync_cmd,
    waive_cmd,
    writeback_cmd,
)


def main() -> None:
    """Entry point of the ``roe`` console script."""
    try:
        app()
    except RoeError as exc:  # raised outside a command, e.g. in the global options
        common.print_error(exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
