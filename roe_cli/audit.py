"""The rule pass: run the enabled rules, store the run and its findings with their history.

A finding's identity is (rule, source, object type, object id, related user). Each run inserts the
findings it sees for the first time, refreshes those it sees again (a resolved one reopens), and
resolves those of the rules it ran that it no longer sees. A finding matched by a live waiver (an
``[[exceptions]]`` entry or ``roe waive``) is stored as ``waived``: reported, never failing a run,
and back to ``open`` once the waiver expires. All of it is set-based SQL in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import FromClause

from .models import audit_runs, findings, owners, waivers
from .rules.context import RuleContext
from .rulesfile import RulesConfig, check_people
from .shared.clock import utcnow
from .shared.errors import UsageError
from .shared.vocab import SEVERITY_RANK, FindingStatus

_tmp = MetaData()
run_findings = Table(
    "roe_run_findings",
    _tmp,
    Column("rule", String(16)),
    Column("severity", String(8)),
    Column("status", String(16)),
    Column("source", String(32)),
    Column("object_type", String(16)),
    Column("object_id", String(64)),
    Column("related_user_id", String(64)),
    Column("account_id", String(64)),
    Column("owner_id", String(64)),
    Column("suggested_owner_id", String(64)),
    Column("details", Text),
    Index("ix_roe_run_findings", "rule", "source", "object_type", "object_id", "related_user_id"),
    prefixes=["TEMPORARY"],
)
_KEY = ("rule", "source", "object_type", "object_id", "related_user_id")
_CARRIED = ("account_id", "owner_id", "suggested_owner_id", "details", "severity", "status")


@dataclass
class RuleOutcome:
    code: str
    name: str
    severity: str
    open: int = 0
    waived: int = 0
    new: int = 0
    reopened: int = 0
    resolved: int = 0
    seconds: float = 0.0


@dataclass
class AuditResult:
    run_id: int
    as_of: datetime
    rules: dict[str, RuleOutcome] = field(default_factory=dict)
    by_owner: dict[str, dict[str, int]] = field(default_factory=dict)
    setup_seconds: float = 0.0  # before the first rule: exceptions, planner statistics
    seconds: float = 0.0  # the whole run, findings stored
    # False for a dry run (--no-store, or an as-of before the latest stored run's): nothing of
    # it was kept, and ``items`` holds the findings it saw (the mirror has no trace of them).
    stored: bool = True
    items: list[dict[str, Any]] | None = None

    def total(self, attr: str) -> int:
        return sum(getattr(r, attr) for r in self.rules.values())

    def summary(self) -> dict[str, Any]:
        """The run's counts, as stored in ``audit_runs.summary`` and printed by ``--format json``."""
        by_severity = {s: 0 for s in SEVERITY_RANK}
        for r in self.rules.values():
            by_severity[r.severity] += r.open
        return {
            "open": self.total("open"),
            "waived": self.total("waived"),
            "new": self.total("new"),
            "reopened": self.total("reopened"),
            "resolved": self.total("resolved"),
            "open_by_severity": by_severity,
            "rules": {
                code: {k: v for k, v in vars(r).items() if k != "code"} for code, r in self.rules.items()
            },
            "by_owner": self.by_owner,
        }

    def failing(self, fail_on: str) -> int:
        """How many open findings are at or above ``fail_on`` (``never``: none)."""
        if fail_on == "never":
            return 0
        floor = SEVERITY_RANK[fail_on]
        return sum(r.open for r in self.rules.values() if SEVERITY_RANK[r.severity] >= floor)


def known_owner_emails(engine: Engine) -> set[str]:
    """The e-mails of the mirror's owners, lower-cased (inactive owners included)."""
    with engine.connect() as conn:
        return {
            e.strip().lower() for (e,) in conn.execute(select(owners.c.email).where(owners.c.email.is_not(None)))
        }


def run_audit(
    engine: Engine,
    config: RulesConfig,
    as_of: datetime | None = None,
    only: Iterable[str] | None = None,
    *,
    store: bool = True,
) -> AuditResult:
    """Run the enabled rules (or ``only`` those codes) against the mirror as of ``as_of``.

    Without ``store`` the run is rolled back at the end: the result (with its findings in
    ``items``) is all that is left of it."""
    emails = known_owner_emails(engine)
    if emails:
        check_people(config, emails)
    now = as_of or utcnow()
    selected = config.enabled_rules(only)
    started = time.perf_counter()
    with engine.connect() as conn, conn.begin() as transaction:
        key = conn.execute(
            insert(audit_runs).values(
                started_at=utcnow(), as_of=now, rules_hash=config.sha256,
                rules=",".join(rule.code for rule, _ in selected), status="running",
            )
        ).inserted_primary_key
        assert key is not None  # an INSERT always has one
        run_id: int = key[0]
        _sync_exceptions(conn, config)
        _refresh_statistics(conn)
        ctx = RuleContext(conn=conn, now=now, config=config)
        run_findings.create(conn)
        result = AuditResult(run_id=run_id, as_of=now, setup_seconds=time.perf_counter() - started)
        for rule, params in selected:
            t0 = time.perf_counter()  # a rule's time includes the lookup tables it is first to need
            queries = rule.query(ctx, params)
            for q in queries if isinstance(queries, list) else [queries]:
                sub = q.subquery()
                conn.execute(
                    insert(run_findings).from_select(
                        ["rule", "severity", "status", "source", "object_type", "object_id",
                         "related_user_id", "account_id", "owner_id", "suggested_owner_id", "details"],
                        select(
                            literal(rule.code), literal(params.severity),
                            literal(FindingStatus.OPEN.value),
                            sub.c.source, sub.c.object_type, sub.c.object_id,
                            func.coalesce(sub.c.related_user_id, ""), sub.c.account_id,
                            sub.c.owner_id, sub.c.suggested_owner_id, sub.c.details,
                        ),
                    )
                )
            result.rules[rule.code] = RuleOutcome(
                rule.code, rule.name, params.severity, seconds=time.perf_counter() - t0
            )
        _apply_waivers(conn, now)
        _merge(conn, run_id, now, result, [rule.code for rule, _ in selected])
        result.by_owner = _by_owner(conn, run_id)
        result.seconds = time.perf_counter() - started
        conn.execute(
            update(audit_runs)
            .where(audit_runs.c.id == run_id)
            .values(finished_at=utcnow(), status="done", summary=json.dumps(result.summary()))
        )
        run_findings.drop(conn)
        ctx.drop_tables()
        if not store:
            from .findings import FindingFilter, iter_findings

            result.items = list(iter_findings(conn, FindingFilter(run_id=run_id)))
            result.stored = False
            transaction.rollback()
    return result


EARLIEST_AS_OF = datetime(2000, 1, 1)
AS_OF_AHEAD = timedelta(days=1)


def check_as_of(as_of: datetime) -> None:
    """Refuse an as-of no CRM data can belong to: before 2000, or more than a day from now."""
    latest = utcnow() + AS_OF_AHEAD
    if as_of < EARLIEST_AS_OF or as_of > latest:
        raise UsageError(
            f"--as-of {as_of.isoformat(sep=' ')} is outside the range roe audits "
            f"(2000-01-01 to a day from now, {latest:%Y-%m-%d %H:%M} UTC).",
            "Give a date or time in that range, e.g. --as-of 2026-03-31, or leave --as-of out "
            "to audit as of now.",
        )


def latest_stored_as_of(engine: Engine) -> datetime | None:
    """The as-of time of the latest finished audit run, if any."""
    with engine.connect() as conn:
        return conn.execute(
            select(audit_runs.c.as_of).where(audit_runs.c.status == "done")
            .order_by(audit_runs.c.id.desc()).limit(1)
        ).scalar()


def _refresh_statistics(conn: Connection) -> None:
    """Give the planner fresh table statistics (sampled, so it costs little even on big mirrors).
    Without them, right after a big sync or `roe demo`, SQLite and PostgreSQL both may scan
    activities instead of seeking the indexes the rules are built on."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
    elif conn.dialect.name == "postgresql":
        for table in ("owners", "accounts", "contacts", "opportunities", "activities", "ownership_changes"):
            conn.exec_driver_sql(f"ANALYZE {table}")


def _sync_exceptions(conn: Connection, config: RulesConfig) -> None:
    """Mirror the rules file's ``[[exceptions]]`` into the waivers table (origin ``rules.toml``)."""
    conn.execute(delete(waivers).where(waivers.c.origin == "rules.toml"))
    rows = [
        {
            "rule": e.rule, "source": None, "object_type": e.object_type, "object_id": e.object_id,
            "related_user_id": None, "reason": e.reason, "approved_by": e.approved_by,
            "expires": e.expires, "created_at": utcnow(), "origin": "rules.toml",
        }
        for e in config.exceptions
    ]
    if rows:
        conn.execute(insert(waivers), rows)


def _apply_waivers(conn: Connection, now: datetime) -> None:
    r, w = run_findings, waivers
    live = exists().where(
        w.c.rule == r.c.rule,
        w.c.object_type == r.c.object_type,
        w.c.object_id == r.c.object_id,
        or_(w.c.source.is_(None), w.c.source == r.c.source),
        or_(w.c.related_user_id.is_(None), w.c.related_user_id == r.c.related_user_id),
        or_(w.c.expires.is_(None), w.c.expires >= now.date()),
    )
    conn.execute(update(r).where(live).values(status=FindingStatus.WAIVED.value))


def _same(f: FromClause, r: FromClause) -> Any:
    return and_(*(f.c[k] == r.c[k] for k in _KEY))


def _merge(conn: Connection, run_id: int, now: datetime, result: AuditResult, codes: list[str]) -> None:
    f, r = findings, run_findings
    prior = f.alias("prior")
    # Counts per rule before the merge changes anything.
    status_counts = conn.execute(
        select(r.c.rule, r.c.status, func.count()).group_by(r.c.rule, r.c.status)
    ).all()
    for code, status, n in status_counts:
        setattr(result.rules[code], status, n)
    for code, n in conn.execute(
        select(r.c.rule, func.count()).where(~exists().where(_same(prior, r))).group_by(r.c.rule)
    ):
        result.rules[code].new = n
    for code, n in conn.execute(
        select(r.c.rule, func.count())
        .where(exists().where(_same(prior, r), prior.c.status == FindingStatus.RESOLVED.value))
        .group_by(r.c.rule)
    ):
        result.rules[code].reopened = n

    # Seen again: refresh (and reopen).
    conn.execute(
        update(f)
        .where(_same(f, r))
        .values(
            last_seen=now, last_run_id=run_id, resolved_at=None, resolved_run_id=None,
            **{k: r.c[k] for k in _CARRIED},
        )
    )
    # Seen for the first time.
    conn.execute(
        insert(f).from_select(
            [*_KEY, *_CARRIED, "first_seen", "last_seen", "first_run_id", "last_run_id"],
            select(
                *(r.c[k] for k in _KEY), *(r.c[k] for k in _CARRIED),
                literal(now, f.c.first_seen.type), literal(now, f.c.last_seen.type),
                literal(run_id), literal(run_id),
            ).where(~exists().where(_same(f, r))),
        )
    )
    # Not seen again: resolved.
    if codes:
        resolved = conn.execute(
            select(f.c.rule, func.count())
            .where(f.c.status != FindingStatus.RESOLVED.value, f.c.rule.in_(codes), ~exists().where(_same(f, r)))
            .group_by(f.c.rule)
        ).all()
        for code, n in resolved:
            result.rules[code].resolved = n
        conn.execute(
            update(f)
            .where(f.c.status != FindingStatus.RESOLVED.value, f.c.rule.in_(codes), ~exists().where(_same(f, r)))
            .values(status=FindingStatus.RESOLVED.value, resolved_at=now, resolved_run_id=run_id)
        )


def _by_owner(conn: Connection, run_id: int) -> dict[str, dict[str, int]]:
    """Open, waived and new counts per owner e-mail (or id) in this run."""
    f, o = findings, owners
    who = func.coalesce(o.c.email, f.c.owner_id, "(no owner)").label("who")
    rows = conn.execute(
        select(who, f.c.status, f.c.first_run_id, func.count())
        .select_from(f)
        .outerjoin(o, and_(o.c.source == f.c.source, o.c.id == f.c.owner_id))
        .where(f.c.last_run_id == run_id)
        .group_by(who, f.c.status, f.c.first_run_id)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for owner, status, first_run_id, n in rows:
        entry = out.setdefault(owner, {"open": 0, "waived": 0, "new": 0})
        entry[status] = entry.get(status, 0) + n
        if first_run_id == run_id:
            entry["new"] += n
    return dict(sorted(out.items()))
