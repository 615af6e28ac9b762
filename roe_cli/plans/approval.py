"""Approving a plan, and checking an approval before anything is written to the CRM.

Approval (``roe approve``) writes ``{"by", "at", "note", "hash"}`` into the file and the same into
the mirror's ``plans`` table; a re-approval moves the earlier one to the file's
``approval_history`` and every approval stays in the mirror's ``plan_approvals``. Before it
approves, :func:`check_against_mirror` requires each change's ids to agree with the names and
e-mails the plan shows (a plan whose ``new`` id was swapped but whose ``new_email`` was kept is
refused, whatever its hash), and every new owner to be an active user of the mirror. The approver
must not be the plan's author (``created_by``) unless ``self_approve``. :func:`verify_approval` then requires the hash recomputed from the
file, the file's ``hash``, the approval's ``hash`` and the mirror's row to agree, so a plan edited
after approval, or an approval block written by hand, is refused.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from ..models import apply_journal, plan_approvals
from ..models import plans as plans_table
from ..shared.clock import parse_utc_text, utc_text, utcnow
from ..shared.errors import ConfigError, UsageError
from .csvinput import PlanInputError
from .directory import Directory, Owner, load_records
from .model import Approval, Plan
from .seats import seat_problems

_SHOWN_PROBLEMS = 20


def approve_plan(engine: Engine, plan: Plan, by: str, note: str | None = None, *,
                 self_approve: bool = False) -> Plan:
    """Record the approval of ``plan`` in the mirror; return the approved plan (the caller saves it).

    Refuses a plan whose content no longer matches its hash (edited by hand after it was built),
    one approved by its own author (unless ``self_approve``), and one that disagrees with the
    mirror (see :func:`check_against_mirror`).
    """
    by = (by or "").strip()
    if not by:
        raise UsageError("An approval needs the approver's name.", "Pass --by NAME (or an e-mail).")
    author = (plan.created_by or "").strip()
    if author and by.casefold() == author.casefold() and not self_approve:
        raise UsageError(f"{plan.name} was built by {author}; its approval needs a second person.",
                         "Ask someone else to review and approve it (--by THEIR NAME), or pass "
                         "--self-approve when you alone answer for this CRM.")
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
    with engine.connect() as conn:
        check_against_mirror(conn, plan)
    with engine.begin() as conn:
        exists = conn.execute(
            select(plans_table.c.hash).where(plans_table.c.hash == computed)
        ).first()
        if exists:
            conn.execute(update(plans_table).where(plans_table.c.hash == computed).values(**row))
        else:
            conn.execute(plans_table.insert().values(hash=computed, **row))
        conn.execute(plan_approvals.insert().values(plan_hash=computed, approved_by=by,
                                                    approved_at=now, note=note))
    return plan.approved(approval)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def check_against_mirror(conn: Connection, plan: Plan) -> dict[str, Owner]:
    """The plan's owners by id, after checking each change against the mirror.

    Raises :class:`PlanInputError` (exit 2) listing every change whose record is not in the mirror
    or is named otherwise there, whose ``new``/``expected`` ids are not the users the plan's
    e-mails name, or whose new owner is unknown or inactive.
    """
    directory = Directory(conn, plan.source)
    ids: dict[str, list[str]] = defaultdict(list)
    for change in plan.changes:
        if not change.is_seat:
            ids[change.object_type].append(change.object_id)
    records = {t: load_records(conn, plan.source, t, wanted) for t, wanted in ids.items()}
    problems: list[str] = seat_problems(conn, plan.source, plan.changes)
    for n, c in enumerate(plan.changes, 1):
        label = f"change {n} ({c.object_type} {c.object_id})"
        record = None if c.is_seat else records[c.object_type].get(c.object_id)
        if c.is_seat:
            pass  # checked by seat_problems
        elif record is None:
            problems.append(f"{label}: no such {c.object_type} in the mirror")
        elif c.object_name is not None and record.name != c.object_name:
            problems.append(f"{label}: the plan names it {c.object_name!r}, the mirror "
                            f"{record.name!r}")
        new = directory.by_id.get(c.new)
        if new is None:
            problems.append(f"{label}: the new owner {c.new} is not a {plan.source} user in the "
                            "mirror")
        else:
            if not _same(new.email, c.new_email):
                now = new.email or "a user with no e-mail"
                problems.append(f"{label}: the new owner id {c.new} is {now} "
                                f"({new.name or 'no name'}) in the mirror, but the plan shows "
                                f"{c.new_email or 'no e-mail'}")
            if not new.active:
                problems.append(f"{label}: the new owner {new.email or new.id} is inactive")
        if c.expected is not None:
            old = directory.by_id.get(c.expected)
            if old is None and c.expected_email:
                problems.append(f"{label}: the current owner {c.expected} is not a user in the "
                                "mirror")
            elif old is not None and not _same(old.email, c.expected_email):
                problems.append(f"{label}: the current owner id {c.expected} is "
                                f"{old.email or 'a user with no e-mail'} in the mirror, but the "
                                f"plan shows {c.expected_email or 'no e-mail'}")
    if problems:
        shown = problems[:_SHOWN_PROBLEMS]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown):,} more")
        raise PlanInputError(
            f"{plan.name} does not agree with the mirror ({len(problems):,} problem(s)); "
            "it was not approved:", shown,
            "Rebuild the plan with `roe reassign` (after `roe sync` if the CRM changed), review "
            "it, and approve the new plan.")
    wanted_owners = {c.new for c in plan.changes} | {c.expected for c in plan.changes if c.expected}
    return {i: directory.by_id[i] for i in wanted_owners if i in directory.by_id}


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


def plan_recorded(conn: Connection, plan_hash: str) -> bool:
    """True when the mirror holds an approval or an apply (journal rows) of ``plan_hash``."""
    approved = conn.execute(select(plans_table.c.hash).where(
        plans_table.c.hash == plan_hash, plans_table.c.approved_by.is_not(None))).first()
    applied = conn.execute(select(apply_journal.c.id).where(
        apply_journal.c.plan_hash == plan_hash).limit(1)).first()
    return approved is not None or applied is not None
