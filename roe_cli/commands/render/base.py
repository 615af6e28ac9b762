"""The consoles, the one error printer, progress bars, and how data reaches the terminal.

Commands compute, then hand their result here. Text that comes from files or the CRM (paths,
names, e-mails, problems) is printed literally, never as rich markup: ``[teams]`` or ``:100:``
must not turn into a style tag or an emoji. And it is printed visibly: a control character in it
(ESC, BEL, CR, a bidi override) shows as an escape such as ``\x1b`` (:func:`cell`, :func:`literal`,
the error printer and the log all pass data through ``shared.text.visible``), so an account
named ``Evil\x1b[2J`` cannot clear the screen.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from ...progress import Advance, ignore_advance
from ...shared.errors import RoeError
from ...shared.text import visible, visible_json

if TYPE_CHECKING:

    pass

class _VisibleConsole(Console):
    """A console that shows control characters in any plain string it renders (printed lines,
    table cells, titles) as escapes; ``Text`` objects are built with :func:`cell`."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text, lines=True), **kwargs)


console = _VisibleConsole(highlight=False, soft_wrap=True)  # plain lines never wrap mid-path
err_console = _VisibleConsole(stderr=True, highlight=False, soft_wrap=True)

SEVERITY_COLORS = {"high": "red", "medium": "yellow", "low": "cyan"}
STATUS_STYLES = {"open": "bold", "waived": "dim", "resolved": "green"}


# -- set-up --------------------------------------------------------------------------------------


def set_widths() -> None:
    """Per invocation: the terminal's width, else ``COLUMNS``, else 160 (rich's 80 columns
    wrap tables and messages in cron logs and pipes)."""
    for con, stream in ((console, sys.stdout), (err_console, sys.stderr)):
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit():
            con.width = int(columns)
        elif not stream.isatty():
            con.width = 160


# -- errors and progress -------------------------------------------------------------------------


def print_error(exc: RoeError) -> None:
    """``Error: what``, the problems of a plan's input one a line, and an indented ``todo``.

    All literal text: messages quote files and CRM values. A rules file's problems are part of
    its ``what`` already; a plan input error lists them apart.
    """
    from ...plans import PlanInputError

    err_console.print(Text.assemble(("Error:", "bold red"), " ", visible(exc.what, lines=True)),
                      soft_wrap=True)
    if isinstance(exc, PlanInputError):
        for problem in exc.problems:
            err_console.print(Text(f"  {visible(problem, lines=True)}"), soft_wrap=True)
    if exc.todo:
        err_console.print(Text("  " + visible(exc.todo, lines=True)), soft_wrap=True)


def interactive() -> bool:
    """True when a person is watching: progress bars then, silence in cron and CI."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Advance]:
    """A rich progress bar on stderr when interactive; a no-op ``advance`` otherwise.

    It is a :data:`roe_cli.workspace.Progress`, so the workspace can drive it.
    """
    if not interactive():
        yield ignore_advance
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

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance


def literal(text: str, *, err: bool = False) -> None:
    """One line on stdout (stderr with ``err``), as given: no markup, control characters shown
    as escapes."""
    (err_console if err else console).print(visible(text, lines=True), markup=False,
                                            highlight=False)


def cell(value: object, style: str = "") -> Text:
    """A table cell for a value from data (a CRM name, an e-mail, an id, a file's text): literal
    text, control characters shown as escapes."""
    return Text(visible(value), style=style)


def print_json_document(text: str) -> None:
    """A JSON document on stdout as it is (no pretty colours), safe for a terminal."""
    sys.stdout.write(visible_json(text) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def messages_to_stderr(when: bool = True) -> Iterator[None]:
    """While active (and ``when``), what the printers here would write to stdout goes to stderr:
    stdout carries data (``-o -``) and must hold nothing else."""
    global console
    if not when:
        yield
        return
    saved, console = console, err_console
    try:
        yield
    finally:
        console = saved


def print_json(text: str) -> None:
    """Pretty JSON on stdout, coloured on a terminal (``roe rules --format json``)."""
    console.print_json(visible_json(text))
