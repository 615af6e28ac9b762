"""``roe whatif``: rehearse a rules change: the findings it would add and remove, nothing stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import options, render
from .options import Format


def whatif(
    ctx: typer.Context,
    proposed: Annotated[Path, typer.Option(
        "--rules", help="The proposed rules file, compared with the current one.")],
    current: Annotated[Path | None, typer.Option(
        "--current", help="The current rules file (default: roe's --rules / ROE_RULES, else "
                          "rules.toml).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Compare as of this ISO 8601 date or time (UTC unless it has an "
                        "offset; default now).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Also write the findings that appear and disappear, with a "
                               "`change` column, to this file (.csv, .xlsx, .json, .jsonl, "
                               ".parquet; - for CSV on standard output).")] = None,
) -> None:
    """Run the current and the proposed rules on the mirror and show, per rule and per owner,
    the findings that would appear, disappear and stay. Nothing is stored: no run, no findings
    history, no waiver change.

    A finding is the same finding in both when its rule, object and related user are the same,
    as in the audit history. The same file twice shows no change. Exit code 0 (2 for a bad
    rules file or option).

    Example: roe whatif --rules rules-next.toml --format json > whatif.json
    """
    from ..export.writers import STDOUT
    from ..shared.clock import parse_as_of
    from ..whatif import write_delta

    when = parse_as_of(as_of) if as_of else None
    result = options.workspace(ctx).whatif(proposed, current, when)
    to_stdout = output is not None and str(output) == STDOUT
    with render.messages_to_stderr(to_stdout):
        if output is not None:
            written = write_delta(result, output)
        if fmt is Format.json and not to_stdout:
            render.print_json_document(json.dumps(result.document(), indent=2,
                                                  ensure_ascii=False))
        else:
            render.print_whatif(result)
        if output is not None:
            where = "standard output" if to_stdout else str(written.path)
            render.literal(f"Wrote {written.rows:,} changed finding(s) to {where} "
                           f"({written.format}).", err=fmt is Format.json or to_stdout)
