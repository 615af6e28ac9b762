"""The log: where roe writes it and how each line looks.

Every line goes through :func:`~roe_cli.shared.errors.redact` (no token or password) and
:func:`~roe_cli.shared.text.visible` (no control character a terminal running ``tail -f`` would
obey). Log files are appended to and created readable by their owner only: they name people and
deals. ``roe nightly`` may switch the file's lines to JSON for the length of its run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .shared.clock import utc_text
from .shared.errors import UsageError, redact
from .shared.text import visible

LOG_LINE = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


class _RedactingFormatter(logging.Formatter):
    """Log lines without secrets, and without control characters a terminal (``tail -f``) obeys."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(redact(super().format(record)), lines=True)


class _QuietRunRecords(logging.Filter):
    """Keeps the run's own records (``roe.run``: start, outcome, errors already printed) off
    stderr unless -v: the error printer has said it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("roe.run")


def setup_logging(verbose: bool, log_file: str | None) -> None:
    """Warnings to stderr (info with -v); everything at info level to ``--log-file`` if given.

    The log file is appended to, created readable by its owner only (it names people and
    deals). A log file that cannot be opened is a usage error, before the command runs.
    """
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if isinstance(old, logging.FileHandler):
            old.close()
    root.setLevel(logging.INFO if (verbose or log_file) else logging.WARNING)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.INFO if verbose else logging.WARNING)
    stderr.setFormatter(_RedactingFormatter("roe: %(levelname)s %(message)s"))
    if not verbose:
        stderr.addFilter(_QuietRunRecords())
    root.addHandler(stderr)
    if log_file:
        try:
            os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot open the log file {log_file}: {exc.strerror or exc}.",
                             "Give --log-file (or ROE_LOG) a file in an existing folder you "
                             "can write to.") from exc
        handler.setFormatter(_RedactingFormatter(LOG_LINE))
        root.addHandler(handler)
    for noisy in ("urllib3", "alembic", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _JsonLogFormatter(logging.Formatter):
    """One JSON object a line: a step record of `roe nightly` as it is, any other log line as
    its time, level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        obj = getattr(record, "nightly", None)
        if not isinstance(obj, dict):
            obj = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        when = utc_text(datetime.fromtimestamp(record.created, UTC))
        return redact(json.dumps({"time": when, **obj}, ensure_ascii=False))


@contextlib.contextmanager
def nightly_log(path: Path, fmt: str) -> Iterator[None]:
    """Log the block to ``--log-file`` when it is set, else to ``path`` (created 0600), in
    ``fmt``: ``text`` lines or ``json`` lines."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, logging.FileHandler)), None)
    added = handler is None
    if handler is None:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handler = logging.FileHandler(path, encoding="utf-8")
        root.addHandler(handler)
        root.setLevel(min(root.level, logging.INFO))
    formatter = handler.formatter
    handler.setFormatter(_JsonLogFormatter() if fmt == "json" else _RedactingFormatter(LOG_LINE))
    try:
        yield
    finally:
        handler.setFormatter(formatter)
        if added:
            root.removeHandler(handler)
            handler.close()


def area_log(area: str) -> logging.Logger:
    """The logger of one part of roe's work (``roe.sync``, ``roe.apply``...)."""
    return logging.getLogger(f"roe.{area}")


def os_user() -> str:
    """Who runs roe, as the operating system knows them (for approve and apply log lines)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is fine
        return "unknown"


def counts_text(counts: Any) -> str:
    """``applied=3 drifted=1`` from a mapping of counts."""
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "none"
