"""Exports: findings, leading indicators (KPIs) and the run history, to CSV, XLSX, Parquet or JSON.

Every export streams: rows come from the database in batches and go to the file in batches, so
millions of findings never sit in memory (XLSX through openpyxl's write-only mode, Parquet through
one ``pyarrow`` row group per batch). Every export writes a temporary file beside the target and
renames it into place once complete: a crash or a full disk never leaves half a file behind, and a
reader never sees one.

Formats:

* ``csv``: UTF-8 with a byte-order mark (``utf-8-sig``), so Excel opens accented names correctly;
  comma separated, CRLF line ends. Text cells that a spreadsheet would run as a formula (starting
  with ``=``, ``+``, ``-``, ``@``, tab or carriage return) get a leading ``'``: names come from the
  CRM, that is from outside, and a CSV must never run them.
* ``xlsx``: one sheet (more when rows exceed Excel's 1,048,576), header frozen, auto-filter on.
  Text cells are stored as text, never as formulas, so they keep their exact value.
* ``parquet``: typed columns (times as UTC timestamps), for pandas, DuckDB, Spark.
* ``json``: one JSON array of objects; ``jsonl``: one object a line. Nested ``details`` stay objects.

Times are UTC throughout.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Date, Integer, and_, case, cast, func, select
from sqlalchemy.engine import Engine

from ..findings import FIELDS, FindingFilter, iter_findings
from ..models import activities, audit_runs, owners
from ..shared.errors import UsageError

FORMATS = ("csv", "xlsx", "parquet", "json", "jsonl")
EXTENSIONS = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
BATCH = 5000
PARQUET_ROW_GROUP = 100_000
XLSX_MAX_ROWS = 1_048_576  # per sheet, header included
ACTIVITY_KINDS = ("call", "meeting", "email", "task", "note", "event")
PERIODS = ("week", "month", "quarter")

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """One column of an export: its name and kind (str, int, float, bool, datetime, date, json)."""

    name: str
    kind: str = "str"


@dataclass
class ExportResult:
    path: Path
    format: str
    rows: int


def format_for(path: str | Path, fmt: str | None) -> str:
    """The format to write: ``fmt`` when given, else the one the file's extension names."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise UsageError(f"Unknown export format {fmt!r}.", f"Use one of {', '.join(FORMATS)}.")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise UsageError(
        f"Cannot tell the format of {str(path)!r} from its extension.",
        "Name the file .csv, .xlsx, .parquet, .json or .jsonl, or pass --format.",
    )


def excel_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


# ---------------------------------------------------------------------------------------------
# Writers


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def _text(value, kind: str) -> str | None:
    """A value as text for CSV and XLSX (None stays None)."""
    if value is None:
        return None
    if kind == "json":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    if kind == "datetime" and isinstance(value, datetime):
        return _iso(value)
    if kind == "bool":
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _json_value(value, kind: str):
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if kind == "json" and isinstance(value, str):
        return json.loads(value)
    return value


def _batches(rows: Iterable[dict], size: int = BATCH) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_csv(path: Path, columns: list[Column], batches, on_batch) -> int:
    n = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, dialect="excel")
        writer.writerow([c.name for c in columns])
        for batch in batches:
            for row in batch:
                out = []
                for c in columns:
                    value = _text(row.get(c.name), c.kind)
                    if value is None:
                        out.append("")
                    elif c.kind in ("int", "float"):
                        out.append(value)
                    else:
                        out.append(excel_safe(value))
                writer.writerow(out)
            n += len(batch)
            on_batch(len(batch))
    return n


def _write_json(path: Path, columns: list[Column], batches, on_batch, lines: bool) -> int:
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        if not lines:
            fh.write("[")
        for batch in batches:
            for row in batch:
                obj = {c.name: _json_value(row.get(c.name), c.kind) for c in columns}
                text = json.dumps(obj, ensure_ascii=False)
                if lines:
                    fh.write(text + "\n")
                else:
                    fh.write(("\n" if n == 0 else ",\n") + text)
                n += 1
            on_batch(len(batch))
        if not lines:
            fh.write("\n]\n" if n else "]\n")
    return n


def _write_xlsx(path: Path, columns: list[Column], batches, on_batch, sheet: str) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    widths = {"str": 24, "json": 40, "datetime": 20, "date": 12}
    last_col = get_column_letter(len(columns))
    state = {"ws": None, "rows": 0, "sheets": 0}

    def close_sheet() -> None:
        ws = state["ws"]
        if ws is not None:
            ws.auto_filter.ref = f"A1:{last_col}{state['rows']}"

    def new_sheet():
        close_sheet()
        state["sheets"] += 1
        title = sheet if state["sheets"] == 1 else f"{sheet} ({state['sheets']})"
        ws = wb.create_sheet(title[:31])
        ws.freeze_panes = "A2"
        for i, c in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = widths.get(c.kind, 12)
        ws.append([c.name for c in columns])
        state["ws"], state["rows"] = ws, 1
        return ws

    def cell(ws, value, kind):
        if value is None:
            return None
        if kind in ("int", "float", "bool"):
            return value
        if kind == "datetime" and isinstance(value, datetime):
            c = WriteOnlyCell(ws, value=value)
            c.number_format = "yyyy-mm-dd hh:mm:ss"
            return c
        if kind == "date" and isinstance(value, date):
            c = WriteOnlyCell(ws, value=value)
            c.number_format = "yyyy-mm-dd"
            return c
        text = ILLEGAL_CHARACTERS_RE.sub("", _text(value, kind))
        c = WriteOnlyCell(ws, value=text)
        c.data_type = "s"  # text stays text: never a formula, whatever it starts with
        return c

    ws = new_sheet()
    n = 0
    try:
        for batch in batches:
            for row in batch:
                if state["rows"] >= XLSX_MAX_ROWS:
                    ws = new_sheet()
                ws.append([cell(ws, row.get(c.name), c.kind) for c in columns])
                state["rows"] += 1
                n += 1
            on_batch(len(batch))
    except BaseException:
        # Saving is openpyxl's only public way to close its own temporary sheet files; the
        # half-written result goes to our temporary file, which the caller deletes.
        with contextlib.suppress(Exception):
            wb.save(path)
        raise
    close_sheet()
    wb.save(path)
    return n


def _arrow_schema(columns: list[Column]):
    import pyarrow as pa

    types = {
        "str": pa.string(), "json": pa.string(), "int": pa.int64(), "float": pa.float64(),
        "bool": pa.bool_(), "datetime": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in columns])


def _write_parquet(path: Path, columns: list[Column], batches, on_batch) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(columns)
    n = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            data = {
                c.name: [
                    _text(row.get(c.name), "json") if c.kind == "json" else row.get(c.name)
                    for row in batch
                ]
                for c in columns
            }
            pending.append(pa.RecordBatch.from_pydict(data, schema=schema))
            pending_rows += len(batch)
            if pending_rows >= PARQUET_ROW_GROUP:  # row groups of a useful size, memory bounded
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending, pending_rows = [], 0
            n += len(batch)
            on_batch(len(batch))
        if pending or n == 0:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
    return n


def _target_mode(path: Path) -> int:
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_rows(
    path: str | Path,
    fmt: str,
    columns: list[Column],
    rows: Iterable[dict],
    *,
    sheet: str = "data",
    on_batch: Callable[[int], object] | None = None,
) -> ExportResult:
    """Write ``rows`` (dicts keyed by column name) to ``path`` in ``fmt``, atomically.

    The file is written beside ``path`` under a temporary name, flushed to disk, and renamed onto
    ``path`` only when complete; on any error the temporary file is removed and ``path`` is left
    as it was. Returns how many rows were written.
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder.", "Give a file name, e.g. -o findings.csv.")
    if target.exists() and not target.is_file():
        # the file is renamed into place: that would replace a device or a pipe, not write to it
        raise UsageError(f"{target} is not a regular file.", "Give a file name, e.g. -o findings.csv.")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"The folder {folder} does not exist.", "Create it first or write elsewhere.")
    advance = on_batch or (lambda n: None)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"Cannot write to {folder}: {exc.strerror}.", "Choose a writable folder.") from None
    os.close(fd)
    tmp = Path(tmp_name)
    batches = _batches(rows)
    try:
        if fmt == "csv":
            n = _write_csv(tmp, columns, batches, advance)
        elif fmt in ("json", "jsonl"):
            n = _write_json(tmp, columns, batches, advance, lines=fmt == "jsonl")
        elif fmt == "xlsx":
            n = _write_xlsx(tmp, columns, batches, advance, sheet)
        elif fmt == "parquet":
            n = _write_parquet(tmp, columns, batches, advance)
        else:
            raise UsageError(f"Unknown export format {fmt!r}.", f"Use one of {', '.join(FORMATS)}.")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, _target_mode(target))
        os.replace(tmp, target)
    except OSError as exc:  # a full disk, a lost mount, no permission
        tmp.unlink(missing_ok=True)
        raise UsageError(
            f"Could not write {target}: {exc.strerror or exc}.",
            f"Check the free space and permissions of {folder}; {target.name} was left as it was.",
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(path=target, format=fmt, rows=n)


# ---------------------------------------------------------------------------------------------
# Findings

FINDING_COLUMNS = [
    Column(name, {"id": "int", "first_seen": "datetime", "last_seen": "datetime", "details": "json"}.get(name, "str"))
    for name in (*FIELDS, "owner_name", "account_name")
]
"""The spec's JSON fields, then the owner's and the account's names."""


def _finding_rows(engine: Engine, flt: FindingFilter) -> Iterator[dict]:
    for item in iter_findings(engine, flt):
        for key in ("first_seen", "last_seen"):
            if item[key]:
                item[key] = datetime.fromisoformat(item[key].removesuffix("Z"))
        yield item


def export_findings(
    engine: Engine,
    flt: FindingFilter,
    path: str | Path,
    fmt: str,
    on_batch: Callable[[int], object] | None = None,
) -> ExportResult:
    """Write the findings matching ``flt`` to ``path``: one row per finding, :data:`FINDING_COLUMNS`."""
    flt.validate()
    return write_rows(path, fmt, FINDING_COLUMNS, _finding_rows(engine, flt), sheet="findings",
                      on_batch=on_batch)


# ---------------------------------------------------------------------------------------------
# Leading indicators: activities per owner per period


def period_start_of(day: date, period: str) -> date:
    """The first day of the ISO week (Monday), month or quarter that ``day`` falls in."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def next_period(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    months = 1 if period == "month" else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def period_label(start: date, period: str) -> str:
    """``2026-W44``, ``2026-11`` or ``2026-Q4``."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start:%Y-%m}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def period_start_sql(column, period: str, dialect: str):
    """SQL for the first day of ``column``'s ISO week, month or quarter (UTC), as a date."""
    if period not in PERIODS:
        raise UsageError(f"Unknown period {period!r}.", "Use week, month or quarter.")
    if dialect == "sqlite":
        if period == "week":  # the coming Sunday (or today, on a Sunday), then back to its Monday
            return func.date(column, "weekday 0", "-6 days", type_=Date)
        if period == "month":
            return func.date(column, "start of month", type_=Date)
        back = (cast(func.strftime("%m", column), Integer) - 1) % 3
        return func.date(column, "start of month", func.printf("-%d months", back), type_=Date)
    if dialect == "postgresql":
        return cast(func.date_trunc(period, column), Date)
    raise UsageError(
        f"The KPI export does not support {dialect} databases yet.",
        "Use a SQLite or PostgreSQL mirror.",
    )


KPI_COLUMNS = [
    Column("period"), Column("period_start", "date"), Column("source"), Column("owner_id"),
    Column("owner_email"), Column("owner_name"), Column("role"), Column("crm_role"),
    Column("team"), Column("active", "bool"), Column("activities", "int"),
    *(Column(kind, "int") for kind in ACTIVITY_KINDS), Column("other", "int"),
]
"""One row per owner and period: ``activities`` in all, then by kind (``other``: any other kind)."""


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def kpi_counts(
    engine: Engine,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
):
    """Live activities per (source, owner, period start), counted by kind in one GROUP BY.

    ``since`` and ``until`` are inclusive days (UTC). Activities without an owner or a time do not
    count. Returns the result rows (``source, owner_id, period_start, activities, <kinds>``).
    """
    a = activities
    start = period_start_sql(a.c.occurred_at, period, engine.dialect.name).label("period_start")
    kinds = [
        func.sum(case((a.c.kind == kind, 1), else_=0)).label(kind) for kind in ACTIVITY_KINDS
    ]
    stmt = (
        select(a.c.source, a.c.owner_id, start, func.count().label("activities"), *kinds)
        .where(a.c.deleted.is_(False), a.c.owner_id.is_not(None), a.c.occurred_at.is_not(None))
        .group_by(a.c.source, a.c.owner_id, start)
    )
    if since:
        stmt = stmt.where(a.c.occurred_at >= _day_start(since))
    if until:
        stmt = stmt.where(a.c.occurred_at < _day_start(until + timedelta(days=1)))
    if source:
        stmt = stmt.where(a.c.source == source)
    with engine.connect() as conn:
        return conn.execute(stmt).all()


def _activity_span(engine: Engine, since, until, source) -> tuple[date | None, date | None]:
    a = activities
    cond = [a.c.deleted.is_(False), a.c.owner_id.is_not(None), a.c.occurred_at.is_not(None)]
    if since:
        cond.append(a.c.occurred_at >= _day_start(since))
    if until:
        cond.append(a.c.occurred_at < _day_start(until + timedelta(days=1)))
    if source:
        cond.append(a.c.source == source)
    with engine.connect() as conn:
        first, last = conn.execute(
            select(func.min(a.c.occurred_at), func.max(a.c.occurred_at)).where(and_(*cond))
        ).one()
    return since or _as_date(first), until or _as_date(last)


def _as_date(value):
    return value.date() if isinstance(value, datetime) else value


def kpi_rows(
    engine: Engine,
    config=None,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> list[dict]:
    """The leading indicators: one row per owner and period, in :data:`KPI_COLUMNS`.

    Counts come from :func:`kpi_counts`. Every active owner gets a row for every period of the
    span (``since``..``until``, by default the first to the last activity), zeros included: a rep
    with no activity in a week is the signal this report exists for. Inactive owners appear only
    where they have activities. ``role`` is the roe role (``[[teams]]``, then ``[role_map]`` of
    ``config``), ``crm_role`` the CRM's own.
    """
    if since and until and since > until:
        raise UsageError(f"--since {since} is after --until {until}.", "Swap them.")
    counts = {(r.source, r.owner_id, r.period_start): r for r in kpi_counts(engine, period, since, until, source)}
    first, last = _activity_span(engine, since, until, source)
    periods: list[date] = []
    if first and last:
        p = period_start_of(first, period)
        while p <= last:
            periods.append(p)
            p = next_period(p, period)
    stmt = select(owners)
    if source:
        stmt = stmt.where(owners.c.source == source)
    with engine.connect() as conn:
        people = {(o.source, o.id): o for o in conn.execute(stmt)}
    keys = {(s, o) for s, o, _ in counts} | {k for k, o in people.items() if o.active}

    def sort_key(key):
        o = people.get(key)
        return ((o.email or "").lower() if o else "~", key[0], key[1])

    out: list[dict] = []
    for key in sorted(keys, key=sort_key):
        o = people.get(key)
        active = bool(o.active) if o else None
        for start in periods:
            r = counts.get((*key, start))
            if r is None and not active:
                continue
            row = {
                "period": period_label(start, period),
                "period_start": start,
                "source": key[0],
                "owner_id": key[1],
                "owner_email": o.email if o else None,
                "owner_name": o.name if o else None,
                "role": config.role_of(o.email, o.role) if (o and config) else None,
                "crm_role": o.role if o else None,
                "team": o.team if o else None,
                "active": active,
                "activities": r.activities if r else 0,
            }
            known = 0
            for kind in ACTIVITY_KINDS:
                row[kind] = int(getattr(r, kind) or 0) if r else 0
                known += row[kind]
            row["other"] = row["activities"] - known
            out.append(row)
    return out


def export_kpi(
    engine: Engine,
    path: str | Path,
    fmt: str,
    *,
    config=None,
    period: str = "week",
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
) -> ExportResult:
    """Write :func:`kpi_rows` to ``path``."""
    rows = kpi_rows(engine, config, period, since, until, source)
    return write_rows(path, fmt, KPI_COLUMNS, rows, sheet=f"activity per {period}")


# ---------------------------------------------------------------------------------------------
# The feedback loop: findings per run


RUN_RULE_COLUMNS = [
    Column("run_id", "int"), Column("as_of", "datetime"), Column("finished_at", "datetime"),
    Column("rule"), Column("name"), Column("severity"), Column("open", "int"),
    Column("waived", "int"), Column("new", "int"), Column("reopened", "int"),
    Column("resolved", "int"),
]
RUN_OWNER_COLUMNS = [
    Column("run_id", "int"), Column("as_of", "datetime"), Column("finished_at", "datetime"),
    Column("owner"), Column("open", "int"), Column("waived", "int"), Column("new", "int"),
]


def run_rows(engine: Engine, by: str = "rule") -> Iterator[dict]:
    """Each finished audit run's counts, per rule (``by="rule"``) or per owner, oldest run first."""
    if by not in ("rule", "owner"):
        raise UsageError(f"Cannot group runs by {by!r}.", "Use --by rule or --by owner.")
    stmt = (
        select(audit_runs.c.id, audit_runs.c.as_of, audit_runs.c.finished_at, audit_runs.c.summary)
        .where(audit_runs.c.status == "done")
        .order_by(audit_runs.c.id)
    )
    with engine.connect() as conn:
        for run in conn.execution_options(stream_results=True, yield_per=500).execute(stmt):
            summary = json.loads(run.summary or "{}")
            base = {"run_id": run.id, "as_of": run.as_of, "finished_at": run.finished_at}
            if by == "rule":
                for code, r in summary.get("rules", {}).items():
                    yield {**base, "rule": code, **{k: r.get(k) for k in
                           ("name", "severity", "open", "waived", "new", "reopened", "resolved")}}
            else:
                for owner, r in summary.get("by_owner", {}).items():
                    yield {**base, "owner": owner, "open": r.get("open", 0),
                           "waived": r.get("waived", 0), "new": r.get("new", 0)}


def export_runs(engine: Engine, path: str | Path, fmt: str, by: str = "rule") -> ExportResult:
    """Write :func:`run_rows` to ``path``."""
    columns = RUN_RULE_COLUMNS if by == "rule" else RUN_OWNER_COLUMNS
    return write_rows(path, fmt, columns, run_rows(engine, by), sheet=f"runs by {by}")


__all__ = [
    "EXTENSIONS", "FINDING_COLUMNS", "FORMATS", "KPI_COLUMNS", "Column", "ExportResult",
    "excel_safe", "export_findings", "export_kpi", "export_runs", "format_for", "kpi_counts",
    "kpi_rows", "period_label", "period_start_of", "period_start_sql", "run_rows", "write_rows",
]
