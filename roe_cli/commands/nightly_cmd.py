"""``roe nightly``: the cron job in one command (sync, audit, dated files, retention)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .. import logsetup
from . import options, render
from .options import FailOn

LOG_NAME = "roe-nightly.log"  # in --out, when neither --log-file nor ROE_LOG is set


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def nightly(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Sync only these sources (salesforce, hubspot; repeat "
                     "or comma separate). Default: [nightly] sources in rules.toml, else every "
                     "source whose credentials are set."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The folder for the dated files (must exist).")
    ] = Path("."),
    keep_days: Annotated[
        int, typer.Option("--keep-days", min=0, help="Delete nightly's own dated files older "
                          "than this many days from --out (nothing else).")
    ] = 30,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when open findings reach this severity.")
    ] = FailOn.high,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="The log's step records: text lines or "
                                "JSON lines (one object per step).")
    ] = LogFormat.text,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print the summary even when all went well and "
                           "no one watches (cron mails any output).")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Audit as of this ISO 8601 date or time "
                                 "(default now, UTC); it names the files.")
    ] = None,
) -> None:
    """Sync, audit, write the day's files and delete old ones, holding the mirror's lock.

    Syncs every configured source, then audits, then writes OUT/findings-YYYY-MM-DD.csv (open
    findings) and OUT/changes-YYYY-MM-DD.csv (findings new, reopened and resolved by this run),
    then deletes its own dated files older than --keep-days. A source that fails does not stop
    the others or the audit. Each step is appended to the log (--log-file / ROE_LOG, else
    OUT/roe-nightly.log). Quiet when no one watches and all went well, unless --summary.

    Exit codes: 0 all well; 1 open findings at or above --fail-on; 2 a configuration error
    (rules file, credentials missing); 3 a CRM failed; 4 another roe run holds the mirror.

    Example (crontab): 0 2 * * * cd /srv/roe && ROE_DB=/srv/roe/roe.db roe nightly --out /srv/roe/reports
    """
    from ..shared.clock import parse_as_of
    from ..shared.errors import UsageError

    when = parse_as_of(as_of) if as_of else None
    if not out.is_dir():
        raise UsageError(f"The folder {out} does not exist.",
                         "Create it, or give --out an existing folder.")
    names = [n for value in source or [] for n in options.split_list(value)]
    ws = options.workspace(ctx)
    log_file = ctx.find_root().params.get("log_file")
    with logsetup.nightly_log(Path(log_file) if log_file else out / LOG_NAME, log_format.value):
        report = ws.nightly(sources=names or None, out=out, keep_days=keep_days,
                            fail_on=fail_on.value, as_of=when)
    if summary or report.exit_code != 0 or sys.stdout.isatty():
        render.print_nightly_summary(report)
    raise typer.Exit(report.exit_code)
