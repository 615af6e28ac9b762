"""The run's own log records and the internal-error paragraph.

Every command logs, on the ``roe.run`` logger, its start (the command line, passwords hidden),
its outcome with the exit code and how long it took, and every error: an expected one
(:class:`~roe_cli.shared.errors.RoeError`) with its message, an unexpected one with its
traceback. The workspace logs each run's counts on ``roe.<area>``. An unexpected error prints
one short paragraph, not a traceback (unless ``-v`` or ``ROE_DEBUG=1``); the traceback goes to the
log file, or, when there is none, to a private file of its own in the temporary folder.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text

from ..shared.errors import (
    EXIT_CRM,
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    redact,
)
from . import render

log = logging.getLogger("roe.run")

EXIT_MEANINGS = {
    EXIT_OK: "done",
    EXIT_FINDINGS: "findings at or above --fail-on, or records that failed or drifted",
    EXIT_USAGE: "usage or configuration error",
    EXIT_CRM: "the CRM could not be reached or refused us",
    EXIT_LOCKED: "another run holds the mirror",
    EXIT_INTERNAL: "internal error",
    130: "interrupted",
    141: "standard output closed by its reader",
}

def command_line(argv: list[str]) -> str:
    """The command line as typed (shell-quoted), with URL passwords and secrets hidden."""
    return redact(shlex.join(["roe", *argv]))  # redact hides URL passwords too


def meaning(code: int) -> str:
    return EXIT_MEANINGS.get(code, "failed")


def debug_requested() -> bool:
    return os.environ.get("ROE_DEBUG", "").strip().lower() in ("1", "true", "yes")


def _log_files() -> list[Path]:
    return [Path(h.baseFilename) for h in logging.getLogger().handlers
            if isinstance(h, logging.FileHandler)]


def _crash_file(text: str) -> Path | None:
    """Write ``text`` to a new private file in the temporary folder; None when that fails."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(tempfile.gettempdir()) / f"roe-error-{stamp}-{os.getpid()}.log"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        return None
    return path


def internal_error(exc: BaseException, command: str, *, verbose: bool) -> None:
    """Log ``exc`` with its traceback and print the short paragraph about it.

    With ``-v`` the traceback is on stderr through the log already; with ``ROE_DEBUG=1`` it is
    printed there as well. Never any locals: no token can leak through a frame.
    """
    what = redact(f"{type(exc).__name__}: {exc}")
    log.error("internal error in roe %s: %s", command, what, exc_info=exc)
    files = _log_files()
    if files:
        where = f"The details (with the traceback) are in the log file {files[0]}."
    else:
        tb = "".join(traceback.format_exception(exc))
        crash = _crash_file(redact(f"roe {command}: internal error\n{tb}"))
        where = (f"The details (with the traceback) are in {crash}." if crash else
                 "Run it again with --log-file roe.log to keep the details.")
    if debug_requested() and not verbose:
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    render.err_console.print(Text.assemble(
        ("Error:", "bold red"),
        f" roe {command} stopped on an internal error ({what}). This is a bug in roe, not a "
        f"problem with your data or settings; nothing after the error was done. {where} "
        "Please report it to the roe maintainers with that file and the command you ran (the "
        "file holds no password or token). -v or ROE_DEBUG=1 shows the traceback here.",
    ), soft_wrap=True)
