"""A plan from open findings' suggested owners (``roe reassign --findings``).

Each object gets the suggestion of the findings that flag it; objects whose findings suggest
different owners, whose suggested owner is inactive or unknown, or that are gone from the mirror
are left out and listed. ``expected`` is the mirror's current owner. Reads the mirror only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.engine import Engine

from ..models import audit_runs, findings
from ..rules import REGISTRY, rule_codes
from ..shared.errors import UsageError
from ..shared.vocab import OBJECT_TYPES, FindingStatus
from .directory import Directory, change_to, load_records, pick_source
from .model import BuildResult, Change, Plan


def build_from_findings(engine: Engine, rules: Sequence[str], *, source: str | None = None,
                        created_by: str | None = None) -> BuildResult:
    """A plan from open findings' suggested owners for the rule codes in ``rules`` (or ``all``)."""
    codes = _rule_codes(rules)
    with engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(audit_runs)
                               .where(audit_runs.c.status == "done")).scalar_one()
        if not audited and conn.execute(select(findings.c.id).limit(1)).first() is None:
            raise UsageError("No audit has run on this mirror yet, so there are no findings to "
                             "plan from.", "Run `roe audit` first, then `roe reassign --findings`.")
        query = select(findings).where(
            findings.c.status == FindingStatus.OPEN,
            findings.c.rule.in_(codes),
            findings.c.suggested_owner_id.is_not(None),
            findings.c.suggested_owner_id != "",
        )
        if source:
            query = query.where(findings.c.source == source)
        rows = conn.execute(query.order_by(findings.c.id)).all()
        source = pick_source(conn, source, {r.source for r in rows} if rows else None,
                             "The findings span" if rows else "The mirror holds")
        directory = Directory(conn, source)
        wanted: dict[tuple[str, str], list[Row[Any]]] = {}
        for row in rows:
            wanted.setdefault((row.object_type, row.object_id), []).append(row)
        records = {
            t: load_records(conn, source, t, [i for (tt, i) in wanted if tt == t])
            for t in OBJECT_TYPES
        }
    changes: list[Change] = []
    skipped: list[str] = []
    unchanged = 0
    for (object_type, object_id), flagged in wanted.items():
        label = f"{object_type} {object_id}"
        refs = ", ".join(f"{f.rule} #{f.id}" for f in flagged)
        suggestions = {f.suggested_owner_id for f in flagged}
        if len(suggestions) > 1:
            names = ", ".join(sorted(directory.email(s) or s for s in suggestions))
            skipped.append(f"{label}: the findings {refs} suggest different owners ({names}); "
                                  "decide with --csv")
            continue
        record = records.get(object_type, {}).get(object_id)
        if record is None or record.deleted:
            skipped.append(f"{label} ({refs}): no longer in the mirror")
            continue
        owner, problem = directory.find_active(next(iter(suggestions)))
        if owner is None:
            skipped.append(f"{label} ({refs}): the suggested owner {problem}")
            continue
        if record.owner_id == owner.id:
            unchanged += 1
            continue
        changes.append(change_to(
            object_type, object_id, record, owner, directory,
            {"kind": "finding", "findings": [{"id": f.id, "rule": f.rule} for f in flagged]},
        ))
    plan = Plan.build(source, {"kind": "findings", "rules": codes}, changes, created_by)
    return BuildResult(plan, unchanged, skipped)


def _rule_codes(rules: Sequence[str]) -> list[str]:
    """The rule codes asked for (``all``: every rule that suggests an owner), checked."""
    codes = [c for c in rules if c and c.strip()]
    if not codes:
        raise UsageError("No rule codes given.", "Pass --findings OWN002,OWN001 (or --findings all).")
    if any(c.strip().upper() == "ALL" for c in codes):
        return [c for c, rule in REGISTRY.items() if rule.suggests_owner]
    wanted = rule_codes(codes)
    for code in wanted:
        if not REGISTRY[code].suggests_owner:
            raise UsageError(f"{code} suggests no owner: a person decides who should own those records.",
                             "Put your decisions in a CSV and use --csv FILE.")
    return wanted
