"""Reading findings back: filters, the JSON document shape, and waiving one.

The fields of a finding, in this order, are the contract of ``--format json`` (see the spec) and
the columns of ``roe export findings``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection, Engine

from .models import accounts, audit_runs, contacts, findings, opportunities, owners, waivers
from .rules import REGISTRY, rule_codes
from .shared.clock import iso_or_none, utcnow
from .shared.errors import UsageError
from .shared.text import or_list, suggest_end
from .shared.vocab import SEVERITY_RANK, FindingStatus, ObjectType, Source

if TYPE_CHECKING:
    from .rulesfile import RulesConfig

FIELDS = (
    "id", "rule", "name", "severity", "status", "source", "object_type", "object_id",
    "object_name", "account_id", "owner_id", "owner_email", "suggested_owner_id",
    "suggested_owner_email", "related_user_id", "related_user_email", "first_seen", "last_seen",
    "details",
)
STATUSES: tuple[str, ...] = tuple(FindingStatus)


@dataclass
class FindingFilter:
    """Which findings to list. Empty means no restriction."""

    rules: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)  # at least this severity when one is given
    statuses: list[str] = field(default_factory=list)
    owner: str | None = None  # an owner id or e-mail
    source: str | None = None
    run_id: int | None = None  # seen in this run
    new_only: bool = False  # first seen in the latest run (or in run_id)
    resolved_in_run: int | None = None  # resolved by this run (their last_run_id is earlier)

    def validate(self) -> None:
        rule_codes(self.rules)  # a UsageError with a "did you mean" for an unknown code
        bad = [s for s in self.severities if s not in SEVERITY_RANK]
        if bad:
            raise UsageError(f"Unknown severity {', '.join(bad)}.", "Use low, medium or high.")
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise UsageError(f"Unknown status {', '.join(bad)}.", "Use open, waived or resolved.")


def check_source(engine: Engine, source: str | None) -> None:
    """Refuse a ``--source`` that is not a source, or that the mirror holds no data of: a filter
    on it would match nothing, and an empty answer would read as an all-clear."""
    if not source:
        return
    with engine.connect() as conn:
        present = sorted(conn.execute(select(owners.c.source).distinct()).scalars())
    if source in present:
        return
    hint = f"The mirror holds {or_list(present)}." if present else "The mirror holds no CRM data."
    if source not in tuple(Source):
        raise UsageError(f"Unknown source {source!r}{suggest_end(source, list(Source))}",
                         hint)
    raise UsageError(f"The mirror holds no {source} data, so nothing can match --source {source}.",
                     hint)


def check_names(engine: Engine, flt: FindingFilter) -> None:
    """Refuse an owner or source in ``flt`` that the mirror does not know, with a "did you
    mean": a typo must not read as "no findings"."""
    check_source(engine, flt.source)
    if not flt.owner:
        return
    who = flt.owner.strip()
    known_owner = or_(owners.c.id == who, func.lower(owners.c.email) == who.lower())
    with engine.connect() as conn:
        where = [known_owner] + ([owners.c.source == flt.source] if flt.source else [])
        if conn.execute(select(owners.c.id).where(*where).limit(1)).first() is not None:
            return
        # an owner id the findings name but the owners table lacks (a user roe never pulled)
        where = [findings.c.owner_id == who] + ([findings.c.source == flt.source] if flt.source else [])
        if conn.execute(select(findings.c.id).where(*where).limit(1)).first() is not None:
            return
        column = owners.c.email if "@" in who else owners.c.id
        stmt = select(column).where(column.is_not(None)).distinct()
        if flt.source:
            stmt = stmt.where(owners.c.source == flt.source)
        candidates = list(conn.execute(stmt).scalars())
    in_source = f" in {flt.source}" if flt.source else ""
    raise UsageError(f"No owner {who!r}{in_source} in the mirror{suggest_end(who, candidates)}",
                     "Give the owner's e-mail or CRM id as the mirror holds it.")


def latest_run_id(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(audit_runs.c.id)).where(audit_runs.c.status == "done")
        ).scalar()


def _query(engine: Engine | None, flt: FindingFilter) -> Select[Any]:
    """The SELECT behind :func:`iter_findings` and :func:`count_findings`."""
    flt.validate()
    f = findings
    owner = owners.alias("owner")
    suggested = owners.alias("suggested")
    related = owners.alias("related")
    acc = accounts.alias("acc")
    obj_acc, obj_con, obj_opp = accounts.alias("obj_acc"), contacts.alias("obj_con"), opportunities.alias("obj_opp")
    object_name = case(
        (f.c.object_type == ObjectType.ACCOUNT, obj_acc.c.name),
        (f.c.object_type == ObjectType.CONTACT, obj_con.c.name),
        (f.c.object_type == ObjectType.OPPORTUNITY, obj_opp.c.name),
    )
    severity_rank = case(*((f.c.severity == s, r) for s, r in SEVERITY_RANK.items()), else_=0)

    def on(alias: FromClause, id_col: ColumnElement[Any]) -> ColumnElement[bool]:
        return and_(alias.c.source == f.c.source, alias.c.id == id_col)

    stmt = (
        select(
            f.c.id, f.c.rule, f.c.severity, f.c.status, f.c.source, f.c.object_type, f.c.object_id,
            object_name.label("object_name"), f.c.account_id, f.c.owner_id,
            owner.c.email.label("owner_email"), owner.c.name.label("owner_name"),
            f.c.suggested_owner_id, suggested.c.email.label("suggested_owner_email"),
            f.c.related_user_id, related.c.email.label("related_user_email"),
            acc.c.name.label("account_name"), f.c.first_seen, f.c.last_seen, f.c.details,
        )
        .select_from(f)
        .outerjoin(owner, on(owner, f.c.owner_id))
        .outerjoin(suggested, on(suggested, f.c.suggested_owner_id))
        .outerjoin(related, on(related, f.c.related_user_id))
        .outerjoin(acc, on(acc, f.c.account_id))
        .outerjoin(obj_acc, and_(f.c.object_type == ObjectType.ACCOUNT, on(obj_acc, f.c.object_id)))
        .outerjoin(obj_con, and_(f.c.object_type == ObjectType.CONTACT, on(obj_con, f.c.object_id)))
        .outerjoin(obj_opp, and_(f.c.object_type == ObjectType.OPPORTUNITY, on(obj_opp, f.c.object_id)))
        .order_by(severity_rank.desc(), f.c.rule, f.c.source, f.c.object_type, f.c.object_id, f.c.related_user_id)
    )
    if flt.rules:
        stmt = stmt.where(f.c.rule.in_(rule_codes(flt.rules)))
    if flt.severities:
        floor = min(SEVERITY_RANK[s] for s in flt.severities)
        stmt = stmt.where(severity_rank >= floor)
    if flt.statuses:
        stmt = stmt.where(f.c.status.in_(flt.statuses))
    if flt.source:
        stmt = stmt.where(f.c.source == flt.source)
    if flt.owner:
        who = flt.owner.strip()
        stmt = stmt.where(or_(f.c.owner_id == who, func.lower(owner.c.email) == who.lower()))
    if flt.resolved_in_run is not None:
        stmt = stmt.where(f.c.resolved_run_id == flt.resolved_in_run)
    run_id = flt.run_id
    if flt.new_only and run_id is None and engine is not None:
        run_id = latest_run_id(engine)
    if run_id is not None:
        stmt = stmt.where(f.c.last_run_id == run_id)
        if flt.new_only:
            stmt = stmt.where(f.c.first_run_id == run_id)
    return stmt


def count_findings(engine: Engine, flt: FindingFilter) -> int:
    """How many findings :func:`iter_findings` would yield for ``flt``."""
    stmt = _query(engine, flt).order_by(None)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def iter_findings(engine: Engine | Connection, flt: FindingFilter) -> Iterator[dict[str, Any]]:
    """Findings matching ``flt``, as dicts with :data:`FIELDS` (plus ``owner_name`` and
    ``account_name`` for exports), most severe first. Streams: fine for millions of rows.
    Given a connection (a run not yet committed, ``flt.run_id`` set), reads through it."""
    if isinstance(engine, Connection):
        assert flt.run_id is not None, "a connection reads one run's findings"
        stmt = _query(None, flt)
        opened: contextlib.AbstractContextManager[Connection] = contextlib.nullcontext(engine)
    else:
        stmt = _query(engine, flt)
        opened = engine.connect()
    with opened as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
        for row in result.mappings():
            item = {
                "id": row["id"],
                "rule": row["rule"],
                "name": REGISTRY[row["rule"]].name if row["rule"] in REGISTRY else row["rule"],
                "severity": row["severity"],
                "status": row["status"],
                "source": row["source"],
                "object_type": row["object_type"],
                "object_id": row["object_id"],
                "object_name": row["object_name"],
                "account_id": row["account_id"],
                "owner_id": row["owner_id"],
                "owner_email": row["owner_email"],
                "suggested_owner_id": row["suggested_owner_id"],
                "suggested_owner_email": row["suggested_owner_email"],
                "related_user_id": row["related_user_id"] or None,
                "related_user_email": row["related_user_email"] if row["related_user_id"] else None,
                "first_seen": iso_or_none(row["first_seen"]),
                "last_seen": iso_or_none(row["last_seen"]),
                "details": json.loads(row["details"]) if row["details"] else {},
                "owner_name": row["owner_name"],
                "account_name": row["account_name"],
            }
            yield item


def document(run_id: int | None, as_of: datetime | None, summary: dict[str, Any],
             items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ``--format json`` document of ``audit`` and ``findings``."""
    return {
        "run_id": run_id,
        "as_of": iso_or_none(as_of),
        "summary": summary,
        "findings": [{k: item[k] for k in (*FIELDS, "team") if k in item} for item in items],
    }


def waive(
    engine: Engine, finding_id: int, reason: str, approved_by: str, until: date | None
) -> dict[str, Any]:
    """Waive one finding until ``until`` (inclusive; None: no end). Returns the waiver."""
    if not reason.strip():
        raise UsageError("A waiver needs a reason.", "Pass --reason '...' saying why the finding is accepted.")
    if not approved_by.strip():
        raise UsageError("A waiver needs an approver.", "Pass --by with who approved it.")
    now = utcnow()
    if until is not None and until < now.date():
        raise UsageError(f"The waiver would already have expired ({until}).", "Give --until today or later.")
    with engine.begin() as conn:
        row = conn.execute(select(findings).where(findings.c.id == finding_id)).mappings().first()
        if row is None:
            raise UsageError(f"No finding with id {finding_id}.", "List them with `roe findings`.")
        values = {
            "rule": row["rule"], "source": row["source"], "object_type": row["object_type"],
            "object_id": row["object_id"], "related_user_id": row["related_user_id"] or "",
            "reason": reason.strip(), "approved_by": approved_by.strip(), "expires": until,
            "created_at": now, "origin": "cli",
        }
        conn.execute(waivers.insert().values(**values))
        if row["status"] == FindingStatus.OPEN:
            conn.execute(findings.update().where(findings.c.id == finding_id)
                         .values(status=FindingStatus.WAIVED))
    status = FindingStatus.WAIVED.value if row["status"] == FindingStatus.OPEN else row["status"]
    return {**values, "finding_id": finding_id, "finding_status": status}


def run_summary(engine: Engine, run_id: int | None) -> tuple[datetime | None, dict[str, Any]]:
    """The stored as-of time and summary of a run (the latest when ``run_id`` is None)."""
    with engine.connect() as conn:
        stmt = select(audit_runs.c.id, audit_runs.c.as_of, audit_runs.c.summary).where(audit_runs.c.status == "done")
        stmt = stmt.where(audit_runs.c.id == run_id) if run_id else stmt.order_by(audit_runs.c.id.desc())
        row = conn.execute(stmt.limit(1)).first()
    if row is None:
        return None, {}
    return row.as_of, json.loads(row.summary or "{}")


__all__ = ["FIELDS", "FindingFilter", "check_names", "check_source", "count_findings", "document", "iter_findings", "latest_run_id", "run_summary", "waive"]


TEAM_RULES = ("COV001", "COV002", "COV003")  # findings that carry their account's team


def with_teams(engine: Engine, config: RulesConfig, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` as a list, each finding of a coverage rule with ``team``: its account's members
    as the rules see them (the owner first, then the live team rows by user id), each
    ``{user_id, email, team_role, role}`` (``role``: the team role through ``[role_map]``, else the
    user's own roe role). One query for all of them, by chunks of account ids."""
    from .models import account_team_members as t

    out = list(items)
    wanted = sorted({(i["source"], i["account_id"]) for i in out
                     if i["rule"] in TEAM_RULES and i["account_id"]})
    if not wanted:
        return out
    teams: dict[tuple[str, str], list[dict[str, Any]]] = {}
    a, o = accounts.alias("team_acc"), owners.alias("team_user")
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            sources, ids = {s for s, _ in part}, [i for _, i in part]
            owner_rows = (
                select(a.c.source, a.c.id, literal(0).label("k"), a.c.owner_id, literal(None).label("tr"), o.c.email, o.c.role)
                .outerjoin(o, and_(o.c.source == a.c.source, o.c.id == a.c.owner_id))
                .where(a.c.source.in_(sources), a.c.id.in_(ids), a.c.owner_id.is_not(None))
            )
            team_rows = (
                select(t.c.source, t.c.account_id, literal(1), t.c.user_id, t.c.team_role, o.c.email, o.c.role)
                .outerjoin(o, and_(o.c.source == t.c.source, o.c.id == t.c.user_id))
                .where(t.c.source.in_(sources), t.c.account_id.in_(ids), t.c.deleted.is_(False))
            )
            for source, aid, _k, user, team_role, email, crm_role in conn.execute(
                    union_all(owner_rows, team_rows).order_by(literal_column("k"), literal_column("owner_id"))):
                role = (config.role_of(None, team_role) if team_role else None) or config.role_of(email, crm_role)
                teams.setdefault((source, aid), []).append(
                    {"user_id": user, "email": email, "team_role": team_role, "role": role})
    for item in out:
        if item["rule"] in TEAM_RULES:
            item["team"] = teams.get((item["source"], item["account_id"]), [])
    return out
