"""The plan that undoes an apply (``roe revert RESULTS``), built from this mirror's apply journal.

The results CSV only names the apply (its ``plan_hash``) and which of its records to give back
(its ``applied`` rows). The owners come from the journal, never from the CSV: each record goes
back from the owner the journal shows applied to the owner it shows before, so an edited
``expected`` cannot hand a record to someone who never owned it. A CSV without ``plan_hash``, or
naming an apply this mirror's journal does not hold, is refused (exit 2). Rows the journal does not
hold as applied, or whose owners disagree with it, are refused one by one (left out and listed in
``skipped``), as are records changed again since (the mirror no longer holds the applied owner),
whose old owner is inactive or unknown, or that had no owner before. The plan needs its own
approval. Reads the mirror only.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine

from ..models import apply_journal
from ..shared.errors import UsageError
from ..shared.vocab import ApplyStatus
from .csvinput import OBJECT_ALIASES, PlanInputError, cell, header_problems, read_csv_rows
from .directory import Directory, load_records, pick_source
from .model import RESULTS_COLUMNS, SEAT, BuildResult, Change, Plan

_REQUIRED = RESULTS_COLUMNS[:5]  # object_type, object_id, expected, new, status
_OPTIONAL = RESULTS_COLUMNS[5:]  # error, source, plan_hash

JournalKey = tuple[str, str, str]  # plan hash, object type, object id
JournalOwners = tuple[str | None, str | None]  # the owner before, the owner applied


def build_revert(engine: Engine, results_path: str | Path, *, source: str | None = None,
                 created_by: str | None = None) -> BuildResult:
    """The plan that undoes the apply whose results CSV is ``results_path``; see above."""
    path = Path(results_path)
    header, rows = read_csv_rows(path)
    positions, problems = header_problems(header, _REQUIRED, _OPTIONAL)
    if problems:
        raise PlanInputError(f"{path.name} is not a roe results file:", problems,
                             "Give the results CSV that `roe apply` wrote (<plan>.results.csv).")
    sources = {cell(v, positions, "source") for _, v in rows} - {""}
    if len(sources) > 1:
        raise UsageError(f"{path.name} mixes sources ({', '.join(sorted(sources))}).",
                         "Revert each source's results file on its own.")
    applied = [(n, v) for n, v in rows if cell(v, positions, "status") == ApplyStatus.APPLIED]
    with engine.connect() as conn:
        if sources and source and source not in sources:
            raise UsageError(f"{path.name} is from {next(iter(sources))}, not {source}.",
                             "Drop --source, or give the right results file.")
        source = pick_source(conn, source or (next(iter(sources)) if sources else None))
        directory = Directory(conn, source)
        plan_hashes = sorted({cell(v, positions, "plan_hash") for _, v in applied} - {""})
        if any(not cell(v, positions, "plan_hash") for _, v in applied):
            raise UsageError(f"{path.name} has applied rows without a plan_hash, so it names no "
                             "apply; roe reverts only what its apply journal shows.",
                             "Give the results CSV that `roe apply` wrote, unedited.")
        journal = _journal(conn, source, plan_hashes)
        missing = [h for h in plan_hashes if not any(k[0] == h for k in journal)]
        if missing:
            raise UsageError(f"{path.name} names an apply this mirror's journal does not hold "
                             f"(plan {', '.join(h[:12] for h in missing)}).",
                             "Revert against the mirror the plan was applied from (--db / "
                             "ROE_DB), with the results CSV that apply wrote.")
        by_type: dict[str, list[str]] = defaultdict(list)
        for _, values in applied:
            t = OBJECT_ALIASES.get(cell(values, positions, "object_type").lower())
            if t:
                by_type[t].append(cell(values, positions, "object_id"))
        records = {t: load_records(conn, source, t, ids) for t, ids in by_type.items()}
    changes: list[Change] = []
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for number, values in applied:
        object_type = OBJECT_ALIASES.get(cell(values, positions, "object_type").lower())
        object_id = cell(values, positions, "object_id")
        old = cell(values, positions, "expected")
        applied_owner = cell(values, positions, "new")
        plan_hash = cell(values, positions, "plan_hash")
        label = f"row {number}: {object_type or 'record'} {object_id}"
        if cell(values, positions, "object_type") == SEAT:
            skipped.append(f"row {number}: team seat {object_id}: roe revert moves owners only; "
                           "give the seat back in the CRM if needed")
            continue
        if object_type is None or not object_id or not applied_owner:
            skipped.append(f"{label}: not a complete results row")
            continue
        if (object_type, object_id) in seen:
            skipped.append(f"{label}: listed twice; reverted once")
            continue
        seen.add((object_type, object_id))
        owners = journal.get((plan_hash, object_type, object_id))
        if owners is None:
            skipped.append(f"{label}: this mirror's apply journal does not show it applied")
            continue
        if owners != (old or None, applied_owner):
            skipped.append(f"{label}: its owners differ from the apply journal's (the file was "
                           "edited); refused")
            continue
        old, applied_owner = owners[0] or "", owners[1] or ""
        if not old:
            skipped.append(f"{label}: it had no owner before, and an owner cannot be removed")
            continue
        record = records.get(object_type, {}).get(object_id)
        if record is None or record.deleted:
            skipped.append(f"{label}: no longer in the mirror")
            continue
        if record.owner_id != applied_owner:
            now = directory.email(record.owner_id) or record.owner_id
            skipped.append(f"{label}: changed again since the apply (now {now})")
            continue
        owner, problem = directory.find_active(old)
        if owner is None:
            skipped.append(f"{label}: the previous owner {problem}")
            continue
        changes.append(Change(
            object_type=object_type, object_id=object_id, object_name=record.name,
            expected=applied_owner, expected_email=directory.email(applied_owner),
            new=owner.id, new_email=owner.email,
            why={"kind": "revert", "plan": plan_hash, "row": number},
        ))
    origin = {"kind": "revert", "results": path.name, "plans": plan_hashes}
    return BuildResult(Plan.build(source, origin, changes, created_by), skipped=skipped)


def _journal(conn: Connection, source: str,
             plan_hashes: list[str]) -> dict[JournalKey, JournalOwners]:
    """The records this mirror's apply journal shows applied by ``plan_hashes``: their owner
    before and the owner applied."""
    if not plan_hashes:
        return {}
    rows = conn.execute(
        select(apply_journal.c.plan_hash, apply_journal.c.object_type, apply_journal.c.object_id,
               apply_journal.c.expected, apply_journal.c.new).where(
            and_(apply_journal.c.plan_hash.in_(plan_hashes),
                 apply_journal.c.status == ApplyStatus.APPLIED, apply_journal.c.source == source)
        )
    )
    return {(r.plan_hash, r.object_type, r.object_id): (r.expected, r.new) for r in rows}
