"""The export file writers: rows (dicts) to CSV, XLSX, Parquet or JSON, streamed and atomic.

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

``-o -`` (the path :data:`STDOUT`) streams csv (the default there; no byte-order mark), json or
jsonl to standard output instead of a file; xlsx and parquet are binary and go to files only.

Times are UTC throughout.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..shared.clock import utc_text
from ..shared.errors import UsageError
from ..shared.files import atomic_path
from ..shared.text import excel_safe
from ..shared.vocab import EXPORT_FORMATS

if TYPE_CHECKING:
    import pyarrow as pa
    from openpyxl import Workbook
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

FORMATS = EXPORT_FORMATS
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
STDOUT = "-"  # the output path that means standard output
TEXT_FORMATS = ("csv", "json", "jsonl")  # the formats that can go to standard output
PARQUET_ROW_GROUP = 100_000
XLSX_MAX_ROWS = 1_048_576  # per sheet, header included

Row = dict[str, Any]
Batches = Iterable[list[Row]]
OnBatch = Callable[[int], object]


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
    if str(path) == STDOUT:
        return "csv"
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise UsageError(
        f"Cannot tell the format of {str(path)!r} from its extension.",
        "Name the file .csv, .xlsx, .parquet, .json or .jsonl, or pass --format.",
    )



# ---------------------------------------------------------------------------------------------
# Writers


def _text(value: Any, kind: str) -> str | None:
    """A value as text for CSV and XLSX (None stays None)."""
    if value is None:
        return None
    if kind == "json":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    if kind == "datetime" and isinstance(value, datetime):
        return utc_text(value)
    if kind == "bool":
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _json_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if kind == "json" and isinstance(value, str):
        return json.loads(value)
    return value


def _batches(rows: Iterable[Row], size: int = BATCH) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def _open_text(path: Path | None, *, encoding: str, newline: str) -> Iterator[Any]:
    """``path`` opened for writing text, or standard output (left open) when ``path`` is None."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding=encoding, newline=newline) as fh:
        yield fh


def _write_csv(path: Path | None, columns: list[Column], batches: Batches,
               on_batch: OnBatch) -> int:
    """CSV to ``path``, or to standard output when ``path`` is None."""
    n = 0
    with _open_text(path, encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, dialect="excel")
        writer.writerow([c.name for c in columns])
        for batch in batches:
            for row in batch:
                out: list[str] = []
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


def _write_json(path: Path | None, columns: list[Column], batches: Batches, on_batch: OnBatch,
                lines: bool) -> int:
    """JSON (or JSON lines) to ``path``, or to standard output when ``path`` is None."""
    n = 0
    with _open_text(path, encoding="utf-8", newline="\n") as fh:
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


_XLSX_WIDTHS = {"str": 24, "json": 40, "datetime": 20, "date": 12}


class _XlsxSheets:
    """The sheets of a write-only workbook: a new one each time a sheet reaches Excel's limit."""

    def __init__(self, wb: Workbook, columns: list[Column], title: str) -> None:
        from openpyxl.utils import get_column_letter

        self.wb = wb
        self.columns = columns
        self.title = title
        self.last_col = get_column_letter(len(columns))
        self.ws: WriteOnlyWorksheet | None = None
        self.rows = 0  # rows in the current sheet, header included
        self.sheets = 0

    def close(self) -> None:
        if self.ws is not None:
            self.ws.auto_filter.ref = f"A1:{self.last_col}{self.rows}"

    def new(self) -> WriteOnlyWorksheet:
        from openpyxl.utils import get_column_letter

        self.close()
        self.sheets += 1
        title = self.title if self.sheets == 1 else f"{self.title} ({self.sheets})"
        ws = self.wb.create_sheet(title[:31])
        ws.freeze_panes = "A2"
        for i, c in enumerate(self.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = _XLSX_WIDTHS.get(c.kind, 12)
        ws.append([c.name for c in self.columns])
        self.ws, self.rows = ws, 1
        return ws


def _xlsx_cell(ws: WriteOnlyWorksheet, value: Any, kind: str) -> Any:
    """A value as openpyxl should store it: numbers as numbers, times formatted, text as text."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

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
    text = ILLEGAL_CHARACTERS_RE.sub("", _text(value, kind) or "")
    c = WriteOnlyCell(ws, value=text)
    c.data_type = "s"  # text stays text: never a formula, whatever it starts with
    return c


def _write_xlsx(path: Path, columns: list[Column], batches: Batches, on_batch: OnBatch,
                sheet: str) -> int:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    sheets = _XlsxSheets(wb, columns, sheet)
    ws = sheets.new()
    n = 0
    try:
        for batch in batches:
            for row in batch:
                if sheets.rows >= XLSX_MAX_ROWS:
                    ws = sheets.new()
                ws.append([_xlsx_cell(ws, row.get(c.name), c.kind) for c in columns])
                sheets.rows += 1
                n += 1
            on_batch(len(batch))
    except BaseException:
        # Saving is openpyxl's only public way to close its own temporary sheet files; the
        # half-written result goes to our temporary file, which the caller deletes.
        with contextlib.suppress(Exception):
            wb.save(path)
        raise
    sheets.close()
    wb.save(path)
    return n


def _arrow_schema(columns: list[Column]) -> pa.Schema:
    import pyarrow as pa

    types = {
        "str": pa.string(), "json": pa.string(), "int": pa.int64(), "float": pa.float64(),
        "bool": pa.bool_(), "datetime": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in columns])


def _write_parquet(path: Path, columns: list[Column], batches: Batches, on_batch: OnBatch) -> int:
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


def write_rows(
    path: str | Path,
    fmt: str,
    columns: list[Column],
    rows: Iterable[Row],
    *,
    sheet: str = "data",
    on_batch: OnBatch | None = None,
    mode: int | None = None,
) -> ExportResult:
    """Write ``rows`` (dicts keyed by column name) to ``path`` in ``fmt``, atomically.

    The file is written beside ``path`` under a temporary name, flushed to disk, and renamed onto
    ``path`` only when complete; on any error the temporary file is removed and ``path`` is left
    as it was. Returns how many rows were written. ``mode`` sets the file's permission bits
    (see :func:`~roe_cli.shared.files.atomic_path`).
    """
    advance: OnBatch = on_batch or (lambda n: None)
    if str(path) == STDOUT:
        return _write_stdout(fmt, columns, _batches(rows), advance)
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder.", "Give a file name, e.g. -o findings.csv.")
    if target.exists() and not target.is_file():
        # the file is renamed into place: that would replace a device or a pipe, not write to it
        raise UsageError(f"{target} is not a regular file.", "Give a file name, e.g. -o findings.csv.")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"The folder {folder} does not exist.", "Create it first or write elsewhere.")
    batches = _batches(rows)
    try:
        with atomic_path(target, mode=mode) as tmp:
            if fmt == "csv":
                n = _write_csv(tmp, columns, batches, advance)
            elif fmt in ("json", "jsonl"):
                n = _write_json(tmp, columns, batches, advance, lines=fmt == "jsonl")
            elif fmt == "xlsx":
                n = _write_xlsx(tmp, columns, batches, advance, sheet)
            elif fmt == "parquet":
                n = _write_parquet(tmp, columns, batches, advance)
            else:
                raise UsageError(f"Unknown export format {fmt!r}.",
                                 f"Use one of {', '.join(FORMATS)}.")
    except OSError as exc:  # a full disk, a lost mount, no permission
        raise UsageError(
            f"Could not write {target}: {exc.strerror or exc}.",
            f"Check the free space and permissions of {folder}; {target.name} was left as it was.",
        ) from None
    return ExportResult(path=target, format=fmt, rows=n)



def _write_stdout(fmt: str, columns: list[Column], batches: Batches,
                  advance: OnBatch) -> ExportResult:
    """Stream the rows to standard output (``-o -``): csv, json or jsonl only."""
    if fmt not in TEXT_FORMATS:
        raise UsageError(f"{fmt} is a binary format and cannot go to standard output.",
                         f"Write it to a file (-o export.{fmt}), or pass --format csv, json or "
                         "jsonl with -o -.")
    if fmt == "csv":
        n = _write_csv(None, columns, batches, advance)
    else:
        n = _write_json(None, columns, batches, advance, lines=fmt == "jsonl")
    return ExportResult(path=Path(STDOUT), format=fmt, rows=n)
