"""Display helpers for plans, kept here until the CLI's render module takes them (then deleted)."""

from __future__ import annotations

from collections import Counter

from .model import Change, Plan


def plan_totals(plan: Plan) -> tuple[Counter[str], Counter[str]]:
    """Counts of changes by object type and by new owner (e-mail, else id)."""
    by_object = Counter(str(c.object_type) for c in plan.changes)
    by_owner = Counter(c.new_email or c.new for c in plan.changes)
    return by_object, by_owner


def why_text(change: Change) -> str:
    """A short reason for a change, for tables: ``OWN002 #12``, ``row 3``, ``transfer``."""
    why = change.why or {}
    kind = why.get("kind")
    if kind == "finding":
        return ", ".join(f"{f.get('rule')} #{f.get('id')}" for f in why.get("findings", []))
    if kind == "csv":
        return f"CSV row {why.get('row')}"
    if kind == "transfer":
        return "transfer"
    if kind == "revert":
        return f"revert row {why.get('row')}"
    return str(kind or "")
