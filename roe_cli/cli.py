"""The ``roe`` command line: the app, and every command registered on it.

Only this layer (``cli.py`` and ``roe_cli/commands/``) imports typer and rich. Commands live one
module each under ``roe_cli/commands`` as plain functions (or a small sub-app); this module
imports them and registers them, and nothing below imports it (typer's one-file-per-command
pattern). Expected errors (:class:`~roe_cli.shared.errors.RoeError`) become a short message and
their exit code here, in one place.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import typer
from typer.core import TyperGroup

from . import logsetup
from .commands import render, runlog
from .commands.account_cmd import account_command
from .commands.audit_cmd import audit
from .commands.db_cmd import db_app
from .commands.demo_cmd import demo
from .commands.doctor_cmd import doctor
from .commands.export_cmd import export_app
from .commands.findings_cmd import findings_command
from .commands.nightly_cmd import nightly
from .commands.options import global_options
from .commands.realign_cmd import realign
from .commands.report_cmd import report_command
from .commands.rules_cmd import rules_app
from .commands.sync_cmd import sync
from .commands.waive_cmd import waive_command
from .commands.whatif_cmd import whatif
from .commands.writeback_cmd import apply, approve, reassign, revert
from .settings import database_url, rules_path
from .shared.errors import EXIT_INTERNAL, EXIT_OK, RoeError, redact

EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer stopped by SIGPIPE


class _RoeGroup(TyperGroup):
    """Logs every run (start, outcome, exit code, time taken, errors) and turns roe's expected
    errors into a two-line message and their exit code; an unexpected error becomes one short
    paragraph (its traceback goes to the log), exit code 70."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        ctx.meta["roe.argv"] = list(args)
        rest = super().parse_args(ctx, args)  # the command's own arguments, after its name
        ctx.meta["roe.command"] = self._command_name(args[max(len(args) - len(rest) - 1, 0):])
        return rest

    def _command_name(self, rest: list[str]) -> str:
        """``export findings`` from ``["export", "findings", "-o", "f.csv"]``."""
        names: list[str] = []
        commands: Mapping[str, Any] = self.commands
        for token in rest:
            if token not in commands:
                break
            names.append(token)
            commands = getattr(commands[token], "commands", None) or {}
        return " ".join(names) or "(no command)"

    # typer declares the parameter as its vendored click's Context; typer.Context is the public name.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        started = time.monotonic()
        command = str(ctx.meta.get("roe.command", "(no command)"))
        verbose = bool(ctx.params.get("verbose"))
        code: int | None = None  # None: stopped by something that is not an exit (a kill)
        try:
            logsetup.setup_logging(verbose, ctx.params.get("log_file"))
            runlog.log.info("start: %s (mirror %s, rules %s)",
                            runlog.command_line(ctx.meta.get("roe.argv", [])),
                            redact(database_url(ctx.params.get("db"))),
                            rules_path(ctx.params.get("rules")))
            result = super().invoke(ctx)
            code = EXIT_OK
            return result
        except RoeError as exc:
            code = exc.exit_code
            runlog.log.error("%s (exit %d): %s", type(exc).__name__, code,
                             " ".join(filter(None, (exc.what, exc.todo))))
            render.print_error(exc)
            ctx.exit(code)
        except typer.Exit as exc:
            code = exc.exit_code
            raise
        except typer.TyperException as exc:  # a bad option or argument of the command
            code = exc.exit_code
            runlog.log.error("usage: %s", exc.format_message())
            raise
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else 1)
            raise
        except BrokenPipeError:  # the reader of stdout went away (`roe export -o - | head`)
            code = EXIT_BROKEN_PIPE
            runlog.log.info("standard output was closed by its reader; stopped writing")
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so that the exit's own flush cannot fail
            ctx.exit(code)
        except (KeyboardInterrupt, typer.Abort):
            code = 130
            runlog.log.warning("interrupted (Ctrl-C)")
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: one paragraph, the traceback in the log
            code = EXIT_INTERNAL
            runlog.internal_error(exc, command, verbose=verbose)
            ctx.exit(code)
        finally:
            elapsed = time.monotonic() - started
            if code is None:
                runlog.log.error("end: roe %s: stopped after %.2fs", command, elapsed)
            else:
                runlog.log.info("end: roe %s: exit %d (%s) after %.2fs", command, code,
                                runlog.meaning(code), elapsed)


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
app.command("account")(account_command)
app.command("audit")(audit)
app.add_typer(db_app, name="db")
app.command("demo")(demo)
app.command("doctor")(doctor)
app.add_typer(export_app, name="export")
app.command("findings")(findings_command)
app.add_typer(rules_app, name="rules")
app.command("sync")(sync)
app.command("waive")(waive_command)
app.command("reassign")(reassign)
app.command("realign")(realign)
app.command("approve")(approve)
app.command("apply")(apply)
app.command("revert")(revert)
app.command("nightly")(nightly)
app.command("whatif")(whatif)
app.command("report")(report_command)


def main() -> None:
    """Entry point of the ``roe`` console script."""
    try:
        app()
    except RoeError as exc:  # raised outside a command, e.g. in the global options
        render.print_error(exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
