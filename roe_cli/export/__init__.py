"""Exports: findings, leading indicators (KPIs) and the run history, to CSV, XLSX, Parquet or JSON.

:mod:`.writers` holds the streaming, atomic file writers and the formats (see its docstring for
what each format guarantees); :mod:`.findings`, :mod:`.kpi` (with :mod:`.kpi_counts`, :mod:`.periods`, :mod:`.handoffs`) and :mod:`.runs` each query one export's
rows and hand them to :func:`write_rows`. Times are UTC throughout. This package re-exports the
public API and holds no logic.
"""

from __future__ import annotations

from ..shared.text import excel_safe
from .findings import FINDING_COLUMNS, export_findings
from .kpi import (
    ACTIVITY_KINDS,
    ADDITIVE,
    KPI_COLUMNS,
    PERIODS,
    export_kpi,
    kpi_rows,
    next_period,
    period_label,
    period_start_of,
    period_start_sql,
    referral_values,
)
from .periods import segment_end, segment_start_of, segment_start_sql, segments
from .runs import RUN_OWNER_COLUMNS, RUN_RULE_COLUMNS, export_runs, run_rows
from .writers import (
    BATCH,
    EXTENSIONS,
    FORMATS,
    PARQUET_ROW_GROUP,
    XLSX_MAX_ROWS,
    Column,
    ExportResult,
    format_for,
    write_rows,
)

__all__ = [
    "ACTIVITY_KINDS", "ADDITIVE", "BATCH", "EXTENSIONS", "FINDING_COLUMNS", "FORMATS", "KPI_COLUMNS",
    "PARQUET_ROW_GROUP", "PERIODS", "RUN_OWNER_COLUMNS", "RUN_RULE_COLUMNS", "XLSX_MAX_ROWS",
    "Column", "ExportResult", "excel_safe", "export_findings", "export_kpi", "export_runs",
    "format_for", "kpi_rows", "next_period", "period_label", "period_start_of",
    "period_start_sql", "referral_values", "run_rows", "segment_end", "segment_start_of",
    "segment_start_sql", "segments", "write_rows",
]
