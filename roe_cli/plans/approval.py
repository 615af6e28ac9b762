"""Approving a plan, and checking an approval before anything is written to the CRM.

Approval (``roe approve``) writes ``{"by", "at", "note", "hash"}`` into the file and the same into
the mirror's ``plans`` table. :func:`verify_approval` then requires the hash recomputed from the
file, the file's ``hash``, the approval's ``hash`` and the mirror's row to agree, so a plan edited
after approval, or an approval block written by hand, is refused.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from ..models import plans as plans_table
from ..shared.clock import parse_utc_text, utc_text, utcnow
from ..shared.errors import ConfigError, UsageError
from .model import Approval, Plan


def approve_plan(engine: Engine, plan: Plan, by: str, note: str | None = None) -> Plan:
    """Record the approval of ``plan`` in the mirror; return the approved plan (the caller saves it).

    Refuses a plan whose content no longer matches its hash (edited by hand after it was built).
    """
    by = (by or "").strip()
    if not by:
        raise UsageError("An approval needs the approver's name.", "Pass --by NAME (or an e-mail).")
    computed = plan.compute_hash()
    if computed != plan.hash:
        raise ConfigError(
            f"{plan.name} was edited after roe built it: its changes no longer match its hash.",
            "Rebuild the plan with `roe reassign` (use --csv for a hand-picked list) and approve that.",
        )
    if not plan.changes:
        raise UsageError(f"{plan.name} changes nothing.", "There is nothing to approve.")
    now = utcnow().replace(microsecond=0)
    approval = Approval(by=by, at=utc_text(now), note=note, hash=computed)
    row = {
        "source": plan.source,
        "created_at": parse_utc_text(plan.created_at),
        "changes": len(plan.changes),
        "approved_by": by,
        "approved_at": now,
        "note": note,
    }
    with engine.begin() as conn:
        exists = conn.execute(
            select(plans_table.c.hash).where(plans_table.c.hash == computed)
        ).first()
        if exists:
            conn.execute(update(plans_table).where(plans_table.c.hash == computed).values(**row))
        else:
            conn.execute(plans_table.insert().values(hash=computed, **row))
    return plan.approved(approval)


def verify_approval(engine: Engine, plan: Plan) -> None:
    """Raise :class:`ConfigError` unless ``plan`` is approved, unchanged, and approved in this mirror."""
    computed = plan.compute_hash()
    rebuild = "Rebuild the plan with `roe reassign`, review it, and approve the new plan."
    if computed != plan.hash or (plan.approval and plan.approval.hash != computed):
        if plan.approval:
            raise ConfigError(f"{plan.name} was changed after it was approved.", rebuild)
        raise ConfigError(
            f"{plan.name} was edited after roe built it: its changes no longer match its hash.",
            rebuild,
        )
    if not plan.approval:
        raise ConfigError(f"{plan.name} is not approved.",
                          f"Review it, then run `roe approve {plan.name} --by NAME`.")
    with engine.connect() as conn:
        row = conn.execute(select(plans_table).where(plans_table.c.hash == computed)).first()
    recorded = (
        row is not None
        and row.approved_by is not None
        and row.approved_by == plan.approval.by
        and row.approved_at is not None
        and utc_text(row.approved_at) == plan.approval.at
    )
    if row is None or not recorded:
        raise ConfigError(
            f"The approval in {plan.name} is not recorded in this mirror.",
            f"Approve it with `roe approve {plan.name} --by NAME` against the mirror you apply "
            "from (--db / ROE_DB).",
        )
    if row.source is not None and row.source != plan.source:  # pragma: no cover - hash covers it
        raise ConfigError(f"The approval in {plan.name} is for another source.", rebuild)
