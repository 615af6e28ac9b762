"""``roe doctor``: one line per check, each PASS, WARN or FAIL with its fix."""

from __future__ import annotations

import typer

from . import options, render


def doctor(ctx: typer.Context) -> None:
    """Check everything a nightly run needs, one line per check, each with its fix.

    Python and SQLite; the rules file; the people it names against the mirror; the mirror (it is
    never created), its migrations, its file mode and its run lock; credentials for each source
    (never shown); one cheap call to each CRM that has them, and its API usage today; free disk
    space next to the mirror. Exit 0 when nothing fails (warnings included), 2 when a
    configuration check fails, 3 when a CRM check fails.

    Example: roe --db /srv/roe/roe.db --rules /srv/roe/rules.toml doctor
    """
    from ..doctor import exit_code

    checks = options.workspace(ctx).doctor()
    render.print_doctor(checks)
    code = exit_code(checks)
    if code:
        raise typer.Exit(code)
