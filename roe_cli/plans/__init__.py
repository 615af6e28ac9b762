"""Plans: proposed owner changes, how they are built, saved, hashed and approved.

The pieces, compute then execute: :mod:`.model` (the frozen plan and its canonical hash),
:mod:`.planfile` (the file format), :mod:`.approval` (approve, verify), and the builders
:mod:`.from_findings`, :mod:`.from_csv`, :mod:`.transfer` and :mod:`.revert`, which read the mirror
through :mod:`.directory` and :mod:`.csvinput`. Building a plan only reads the mirror: it never
calls the CRM and never writes anything. A plan with nothing to change is not written at all.
This package re-exports the public API and holds no logic.
"""

from __future__ import annotations

from ..shared.clock import parse_utc_text, utc_text
from ..shared.text import excel_safe
from ..shared.vocab import OBJECT_TYPES, SOURCES
from .approval import approve_plan, verify_approval
from .csvinput import CSV_COLUMNS, OBJECT_ALIASES, PlanInputError, read_csv_rows
from .directory import normalize_id
from .display import plan_totals, why_text
from .from_csv import build_from_csv
from .from_findings import build_from_findings
from .model import (
    FIELD,
    PLAN_VERSION,
    RESULTS_COLUMNS,
    Approval,
    BuildResult,
    Change,
    Plan,
    canonical_hash,
)
from .planfile import load_plan, save_plan
from .revert import build_revert
from .transfer import build_transfer

__all__ = [
    "CSV_COLUMNS", "FIELD", "OBJECT_ALIASES", "OBJECT_TYPES", "PLAN_VERSION", "RESULTS_COLUMNS",
    "SOURCES", "Approval", "BuildResult", "Change", "Plan", "PlanInputError", "approve_plan",
    "build_from_csv", "build_from_findings", "build_revert", "build_transfer", "canonical_hash",
    "excel_safe", "load_plan", "normalize_id", "parse_utc_text", "plan_totals", "read_csv_rows",
    "save_plan", "utc_text", "verify_approval", "why_text",
]
