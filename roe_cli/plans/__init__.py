"""Plans: proposed owner changes, how they are built, saved, hashed and approved.

The pieces, compute then execute: :mod:`.model` (the frozen plan and its canonical hash),
:mod:`.planfile` (the file format), :mod:`.approval` (approve, verify), and the builders
:mod:`.from_findings`, :mod:`.from_csv`, :mod:`.transfer`, :mod:`.realign` and :mod:`.revert`, which read the mirror
through :mod:`.directory` and :mod:`.csvinput`. Building a plan only reads the mirror: it never
calls the CRM and never writes anything. A plan with nothing to change is not written at all.
This package re-exports the public API and holds no logic.
"""

from __future__ import annotations

from .approval import approve_plan, check_against_mirror, plan_recorded, verify_approval
from .csvinput import CSV_COLUMNS, OBJECT_ALIASES, PlanInputError, read_csv_rows
from .directory import normalize_id, owner_names
from .from_csv import build_from_csv
from .from_findings import build_from_findings
from .model import (
    FIELD,
    PLAN_VERSION,
    RESULTS_COLUMNS,
    SEAT,
    SEAT_FIELD,
    Approval,
    BuildResult,
    Change,
    Plan,
    canonical_hash,
)
from .planfile import load_plan, plan_text, save_new_plan, save_plan
from .realign import RealignResult, build_realign
from .revert import build_revert
from .transfer import build_transfer

__all__ = [
    "CSV_COLUMNS", "FIELD", "OBJECT_ALIASES", "PLAN_VERSION", "RESULTS_COLUMNS", "SEAT", "SEAT_FIELD",
    "Approval", "BuildResult", "RealignResult", "build_realign", "Change", "Plan", "PlanInputError", "approve_plan",
    "build_from_csv", "build_from_findings", "build_revert", "build_transfer", "canonical_hash",
    "check_against_mirror", "load_plan", "normalize_id", "owner_names", "plan_recorded",
    "plan_text", "read_csv_rows", "save_new_plan", "save_plan", "verify_approval",
]
