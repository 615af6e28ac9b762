"""The feedback loop: each finished audit run's counts, per rule or per owner, oldest first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..models import audit_runs
from ..shared.errors import UsageError
from .writers import Column, ExportResult, Row, write_rows

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


def run_rows(engine: Engine, by: str = "rule") -> Iterator[Row]:
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
