"""What every command shares: global options, opening the mirror, printing, progress bars."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..settings import database_url, rules_path
from ..shared.errors import RoeError, redact

console = Console(highlight=False, soft_wrap=True)  # plain lines never wrap mid-path
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _set_widths() -> None:
    """Per invocation: the terminal's width, else ``COLUMNS``, else 160 (rich's 80 columns
    wrap tables and messages in cron logs and pipes)."""
    for con, stream in ((console, sys.stdout), (err_console, sys.stderr)):
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit():
            con.width = int(columns)
        elif not stream.isatty():
            con.width = 160


@dataclass
class State:
    db: str | None = None
    rules: str | None = None

    @property
    def db_url(self) -> str:
        return database_url(self.db)

    @property
    def rules_file(self) -> Path:
        return rules_path(self.rules)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(verbose: bool, log_file: str | None) -> None:
    """Warnings to stderr (info with -v); everything at info level to ``--log-file`` if given."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO if (verbose or log_file) else logging.WARNING)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.INFO if verbose else logging.WARNING)
    stderr.setFormatter(_RedactingFormatter("roe: %(levelname)s %(message)s"))
    root.addHandler(stderr)
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(handler)
    for noisy in ("urllib3", "alembic", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def global_options(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="ROE_DB",
            help="The mirror: a file path or an SQLAlchemy URL (default roe.db).",
            show_envvar=True,
        ),
    ] = None,
    rules: Annotated[
        str | None,
        typer.Option(
            "--rules",
            envvar="ROE_RULES",
            help="The rules file (default rules.toml).",
            show_envvar=True,
        ),
    ] = None,
    log_file: Annotated[
        str | None,
        typer.Option("--log-file", envvar="ROE_LOG", help="Append a log of the run to this file."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
) -> None:
    """Options that every command takes, before the command name."""
    setup_logging(verbose, log_file)
    _set_widths()
    ctx.obj = State(db=db, rules=rules)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def open_engine(ctx: typer.Context, *, migrate: bool = True):
    """Open the mirror named by --db / ROE_DB, running migrations on the way."""
    from ..db import open_database

    return open_database(state(ctx).db_url, migrate=migrate)


def print_error(exc: RoeError) -> None:
    """``Error: what`` and an indented ``todo``, as literal text: messages quote files and CRM
    values, where ``[teams]`` or ``:100:`` must not turn into markup or emoji."""
    from rich.text import Text

    err_console.print(Text.assemble(("Error:", "bold red"), " ", exc.what), soft_wrap=True)
    if exc.todo:
        err_console.print(Text("  " + exc.todo), soft_wrap=True)


def interactive() -> bool:
    """True when a person is watching: progress bars then, silence in cron and CI."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator:
    """A rich progress bar on stderr when interactive; a no-op ``advance`` otherwise."""
    if not interactive():
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def load_config(ctx: typer.Context):
    """The rules file named by --rules / ROE_RULES, validated."""
    from ..rulesfile import load_rules

    return load_rules(state(ctx).rules_file)


def connector_settings(ctx: typer.Context, source: str):
    """The ``[salesforce]`` / ``[hubspot]`` table of the rules file, or None for the demo."""
    if source == "demo":
        return None
    path = state(ctx).rules_file
    if not path.exists():
        return None  # every connector setting has a default
    return getattr(load_config(ctx), source, None)


def print_sync_report(report, connector) -> None:
    from rich.table import Table

    table = Table(title=f"sync {report.source}{' (full)' if report.full else ''}")
    for col in ("object", "read", "inserted", "updated", "deleted", "owner changes"):
        table.add_column(col, justify="right" if col != "object" else "left")
    for obj in report.objects.values():
        table.add_row(obj.object_type, f"{obj.read:,}", f"{obj.inserted:,}", f"{obj.updated:,}",
                      f"{obj.deleted:,}", f"{obj.owner_changes:,}")
    console.print(table)
    line = f"API calls: {report.api_calls:,}"
    usage = getattr(connector, "api_usage_text", None)
    if callable(usage) and usage():
        line += f"; org API usage: {usage()}"
    console.print(line)
    for note in report.notes:
        console.print(note)
