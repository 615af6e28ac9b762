"""Options and choices that commands share (``Annotated`` aliases), and the global options.

No command module imports another; what two commands share lives here. The global options
build the :class:`~roe_cli.workspace.Workspace` that every command works on.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..shared.vocab import ExportFormat, Severity
from ..workspace import Workspace
from . import render

if TYPE_CHECKING:
    from ..findings import FindingFilter
    from ..plans import BuildResult


class Format(StrEnum):
    table = "table"
    json = "json"


class FailOn(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    never = "never"


class RunsBy(StrEnum):
    rule = "rule"
    owner = "owner"


def split_codes(value: str | None) -> list[str] | None:
    """Comma-separated rule codes, upper-cased; None when none are given."""
    if not value:
        return None
    return [c.strip().upper() for c in value.split(",") if c.strip()]


def split_list(value: str | None) -> list[str]:
    """Comma-separated values, stripped, empty ones dropped."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# The finding filters, shared by `roe findings` and `roe export findings`.
RuleOpt = Annotated[
    str | None, typer.Option("--rule", help="Only these rule codes, comma separated (e.g. OWN001,HND003).")
]
SeverityOpt = Annotated[
    Severity | None, typer.Option("--severity", help="Only findings of at least this severity.")
]
OwnerOpt = Annotated[
    str | None, typer.Option("--owner", help="Only findings on records owned by this owner (CRM id or e-mail).")
]
StatusOpt = Annotated[
    str, typer.Option("--status", help="Statuses to include, comma separated: open, waived, resolved.")
]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Only this source (salesforce, hubspot, demo).")]
NewOpt = Annotated[bool, typer.Option("--new", help="Only findings first seen in the latest audit run.")]
DEFAULT_STATUS = "open,waived"

# Exports.
OutputOpt = Annotated[Path, typer.Option(
    "--output", "-o", help="The file to write (replaced atomically); - writes csv (the default "
    "there), json or jsonl to standard output.")]
ExportFormatOpt = Annotated[
    ExportFormat | None,
    typer.Option(
        "--format",
        help=(
            "csv (UTF-8 with BOM, opens in Excel with accents intact; cells a spreadsheet would run "
            "as a formula get a leading '), xlsx, parquet, json (an array) or jsonl (one object a "
            "line). Default: from the file's extension."
        ),
    ),
]

# Plans.
PlanSourceOpt = Annotated[
    str | None,
    typer.Option("--source", "-s", help="salesforce, hubspot or demo (default: the only source in the mirror)."),
]
PlanByOpt = Annotated[str | None, typer.Option("--by", help="Who builds the plan (default: your OS user name).")]
ShowOpt = Annotated[int, typer.Option("--show", help="How many changes to list (0: all).", min=0)]


def finding_filter(rule: str | None, severity: Severity | None, owner: str | None, status: str,
                   source: str | None, new: bool) -> FindingFilter:
    """The :class:`~roe_cli.findings.FindingFilter` the options describe (validated)."""
    from ..findings import FindingFilter

    flt = FindingFilter(
        rules=split_codes(rule) or [],
        severities=[severity.value] if severity else [],
        statuses=[s.strip().lower() for s in status.split(",") if s.strip()],
        owner=owner.strip() if owner and owner.strip() else None,
        source=source.strip() if source and source.strip() else None,
        new_only=new,
    )
    flt.validate()
    return flt


def version_text() -> str:
    """``roe X.Y.Z``: the installed package's version (the source tree's when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    try:
        return f"roe {version('roe')}"
    except PackageNotFoundError:
        return f"roe {__version__}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


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
    version: Annotated[bool, typer.Option(
        "--version", help="Print roe's version and exit.", is_eager=True,
        callback=_print_version)] = False,
) -> None:
    """Options that every command takes, before the command name (the log is set up from
    ``--log-file`` and ``-v`` by the app itself, before this runs)."""
    from ..settings import database_url

    render.set_widths()
    if db is not None:
        database_url(db)  # `--db ''` is refused here, before any command runs
    ctx.obj = Workspace(db=db, rules=rules)


def workspace(ctx: typer.Context) -> Workspace:
    """The workspace the global options describe."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Workspace) else Workspace()


ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace an existing -o file (never a plan that was approved or applied).")]


def finish_plan(ctx: typer.Context, result: BuildResult, output: str | None, show: int,
                force: bool, *, preface: Callable[[], None] | None = None) -> None:
    """Print a built plan (after ``preface``, when given); save it when ``-o`` was given and it
    changes something. ``-o -`` writes the plan's JSON to stdout, and everything else to stderr."""
    from ..plans import plan_text

    to_stdout = output == "-"
    with render.messages_to_stderr(to_stdout):
        if preface is not None:
            preface()
        render.print_plan(result, show, saving=bool(output))
        if result.empty:
            return
        if to_stdout:
            typer.echo(plan_text(result.plan), nl=False)
            render.print_plan_written_to_stdout(result.plan)
            return
        ws = workspace(ctx)
        path = ws.writeback.save_plan(result.plan, output, force=force) if output else None
        render.print_plan_saved(result.plan, path)
