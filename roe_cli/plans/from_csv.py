"""A plan from a CSV of decisions (``roe reassign --csv``): ``object_type, object_id, new_owner``.

Owners are given by id or e-mail. Every problem in the file is collected, with its row number, and
raised at once as a :class:`PlanInputError`; nothing is planned unless the whole file is good.
Records that already have the new owner are counted in ``unchanged``; a record listed twice with
the same owner is planned once. Reads the mirror only.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from ..shared.vocab import OBJECT_TYPES
from .csvinput import (
    CSV_COLUMNS,
    EXCEL_NUMBER,
    OBJECT_ALIASES,
    PlanInputError,
    by_row,
    cell,
    count,
    header_problems,
    read_csv_rows,
)
from .directory import Directory, change_to, load_records, normalize_id, pick_source
from .model import BuildResult, Change, Plan

CSV_TODO = ("Fix the file and run the command again. Columns: object_type (account, contact, "
            "opportunity), object_id, new_owner (a user id or e-mail); UTF-8.")

Parsed = tuple[int, str, str, str]  # row, object_type, object_id, new_owner


def build_from_csv(engine: Engine, path: str | Path, *, source: str | None = None,
                   created_by: str | None = None) -> BuildResult:
    """A plan from the CSV at ``path``; see the module docstring."""
    path = Path(path)
    header, rows = read_csv_rows(path)
    positions, problems = header_problems(header, CSV_COLUMNS)
    if any("missing column" in p for p in problems):
        raise PlanInputError(f"{path.name} has {count(problems, 'problem')}:", problems, CSV_TODO)
    if not rows:
        problems.append("the file has a header but no rows")
        raise PlanInputError(f"{path.name} has {count(problems, 'problem')}:", problems, CSV_TODO)
    with engine.connect() as conn:
        source = pick_source(conn, source)
        directory = Directory(conn, source)
        parsed: list[Parsed] = []
        for number, values in rows:
            if len(values) > len(header):
                problems.append(f"row {number}: {len(values)} values, but the header has "
                                f"{len(header)} columns")
                continue
            row, row_problems = _parse_row(source, number, values, positions)
            problems.extend(row_problems)
            parsed.append(row)
        records = {
            t: load_records(conn, source, t, [p[2] for p in parsed if p[1] == t and p[2]])
            for t in OBJECT_TYPES
        }
    changes: list[Change] = []
    skipped: list[str] = []
    unchanged = 0
    first_row: dict[tuple[str, str], tuple[int, str]] = {}
    for number, object_type, object_id, new_owner in parsed:
        owner = None
        if new_owner:
            owner, problem = directory.find_active(new_owner)
            if owner is None:
                problems.append(f"row {number}: new owner {problem}")
        if not object_type or not object_id:
            continue
        record = records[object_type].get(object_id)
        if record is None:
            problems.append(f"row {number}: no {object_type} {object_id!r} in the {source} mirror "
                            "(check the id; run `roe sync` if it is new)")
            continue
        if record.deleted:
            problems.append(f"row {number}: {object_type} {object_id} is deleted in the CRM")
            continue
        if owner is None:
            continue
        earlier = first_row.get((object_type, object_id))
        if earlier is not None:
            if earlier[1] != owner.id:
                problems.append(
                    f"row {number}: {object_type} {object_id} is also on row {earlier[0]} with a "
                    f"different new owner ({directory.email(earlier[1]) or earlier[1]} there, "
                    f"{owner.label} here)")
            else:
                skipped.append(f"row {number}: {object_type} {object_id} repeats row "
                               f"{earlier[0]} (same new owner); planned once")
            continue
        first_row[(object_type, object_id)] = (number, owner.id)
        if record.owner_id == owner.id:
            unchanged += 1
            continue
        changes.append(change_to(object_type, object_id, record, owner, directory,
                                 {"kind": "csv", "row": number}))
    if problems:
        raise PlanInputError(f"{path.name} has {count(problems, 'problem')}; nothing was planned:",
                             by_row(problems), CSV_TODO)
    plan = Plan.build(source, {"kind": "csv", "file": path.name}, changes, created_by)
    return BuildResult(plan, unchanged, skipped)


def _parse_row(source: str, number: int, values: list[str],
               positions: dict[str, int]) -> tuple[Parsed, list[str]]:
    """One row's object type, id and new owner ("" where unusable), and its problems."""
    raw_type = cell(values, positions, "object_type")
    object_id = normalize_id(source, cell(values, positions, "object_id"))
    new_owner = cell(values, positions, "new_owner")
    object_type = OBJECT_ALIASES.get(raw_type.lower())
    problems = []
    if object_type is None:
        problems.append(
            f"row {number}: object_type {raw_type!r} is not one of {', '.join(OBJECT_TYPES)}"
            if raw_type else f"row {number}: object_type is empty")
    if not object_id:
        problems.append(f"row {number}: object_id is empty")
    if not new_owner:
        problems.append(f"row {number}: new_owner is empty")
    for column, value in (("object_id", object_id), ("new_owner", new_owner)):
        if EXCEL_NUMBER.match(value):
            problems.append(
                f"row {number}: {column} {value!r} looks like an id Excel turned into a "
                "number; format the column as Text and export again")
            if column == "object_id":
                object_id = ""
            else:
                new_owner = ""
    return (number, object_type or "", object_id, new_owner), problems
