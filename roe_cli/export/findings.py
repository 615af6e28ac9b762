"""The findings export: one row per finding, the spec's JSON fields plus two names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from ..findings import FIELDS, FindingFilter, iter_findings
from .writers import Column, ExportResult, OnBatch, Row, write_rows

FINDING_COLUMNS = [
    Column(name, {"id": "int", "first_seen": "datetime", "last_seen": "datetime", "details": "json"}.get(name, "str"))
    for name in (*FIELDS, "owner_name", "account_name")
]
"""The spec's JSON fields, then the owner's and the account's names."""


def _finding_rows(engine: Engine, flt: FindingFilter) -> Iterator[Row]:
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
    on_batch: OnBatch | None = None,
    mode: int | None = None,
) -> ExportResult:
    """Write the findings matching ``flt`` to ``path``: one row per finding, :data:`FINDING_COLUMNS`."""
    flt.validate()
    return write_rows(path, fmt, FINDING_COLUMNS, _finding_rows(engine, flt), sheet="findings",
                      on_batch=on_batch, mode=mode)

