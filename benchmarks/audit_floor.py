"""The floor for roe's rule pass: the rules as hand-written SQL on the standard ``sqlite3``.

    .venv/bin/python -m benchmarks.audit_floor --db MIRROR [--rules rules.toml] [--as-of T]

Each rule is one ``SELECT`` producing the same finding rows as roe's rule (source, object type,
object id, related user, account, owner, suggested owner and the same JSON details), fetched
fully and counted. The semantics are roe's (see ``/work/shared/design/spec.md`` and
``roe_cli/rules``): live records only; roles from ``[[teams]]`` first, then ``[role_map]``;
territories ordered, as one CASE expression; activity that counts for an account through the
account itself or its live contacts and deals. The small lookups (owner -> role, team members,
territories' default owners) are computed in Python from ``rules.toml`` and passed in as
temporary tables, as roe does. The connection gets roe's own SQLite settings (page cache,
in-memory temp store) and runs ``ANALYZE`` first, as roe's audit does; the queries are written
for the mirror's indexes (range seeks on the composite activity indexes where they fit).

Run alone, it runs the floor and then roe's audit on the same mirror and checks that both find
the same rows for every rule (an error and exit status 1 when they do not). ``python -m
benchmarks`` times both, alternating, each pass in a process of its own.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The pragmas roe's engine sets on every SQLite connection (roe_cli/db.py), so both pay the same.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-262144",
)


from benchmarks.floor_cov import COV_RULES, PINNED_COV, team_role_rows  # noqa: E402
from benchmarks.floor_own import OWN_RULES, ts  # noqa: E402

RULES = {**OWN_RULES, **COV_RULES}
__all__ = ["RULES", "ts", "run_floor", "plan_shapes", "pinned_shapes", "digest", "roe_digests"]


# -- running -----------------------------------------------------------------------------------


@dataclass
class FloorResult:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    setup_seconds: float = 0.0  # ANALYZE and the lookup tables
    total_seconds: float = 0.0  # the whole pass: setup and every rule


def digest(rows: Iterable[tuple]) -> str:
    """A fingerprint of a rule's finding rows, independent of their order."""
    h = hashlib.sha256()
    for row in sorted(tuple("" if v is None else str(v) for v in r) for r in rows):
        h.update("\x1f".join(row).encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def build_lookups(conn: sqlite3.Connection, config) -> None:
    """The owner -> role map, team membership and territories' default owners (as roe does)."""
    conn.execute("CREATE TEMP TABLE f_owner (source TEXT, id TEXT, email TEXT, active INTEGER, "
                 "role TEXT, manager_id TEXT, PRIMARY KEY (source, id))")
    conn.execute("CREATE TEMP TABLE f_member (team TEXT, source TEXT, owner_id TEXT)")
    conn.execute("CREATE INDEX temp.ix_f_member ON f_member (team, source, owner_id)")
    conn.execute("CREATE TEMP TABLE f_terr (source TEXT, ordinal INTEGER, name TEXT, team TEXT, "
                 "default_owner_id TEXT, PRIMARY KEY (source, ordinal))")
    owners = []
    by_email: dict[str, list[tuple[str, str]]] = {}
    for source, oid, email, active, crm_role, manager_id in conn.execute(
        "SELECT source, id, email, active, role, manager_id FROM owners"
    ):
        folded = (email or "").strip().lower() or None
        owners.append((source, oid, folded, 1 if active else 0, config.role_of(email, crm_role), manager_id))
        if folded:
            by_email.setdefault(folded, []).append((source, oid))
    conn.executemany("INSERT INTO f_owner VALUES (?, ?, ?, ?, ?, ?)", owners)
    conn.executemany(
        "INSERT INTO f_member VALUES (?, ?, ?)",
        [(team.name, source, oid) for team in config.teams for email in team.members
         for source, oid in by_email.get(email.lower(), ())],
    )
    sources = sorted({o[0] for o in owners})
    terr_rows = []
    for ordinal, territory in enumerate(config.territories):
        for source in sources:
            default = None
            for src, oid in by_email.get((territory.default_owner or "").lower(), ()):
                if src == source:
                    default = oid
            terr_rows.append((source, ordinal, territory.name, territory.team, default))
    conn.executemany("INSERT INTO f_terr VALUES (?, ?, ?, ?, ?)", terr_rows)
    conn.execute("CREATE TEMP TABLE f_team_role (source TEXT, team_role TEXT, role TEXT, "
                 "PRIMARY KEY (source, team_role))")
    conn.executemany("INSERT INTO f_team_role VALUES (?, ?, ?)", team_role_rows(conn, config))


def rule_sql(code: str, params, config, now: datetime) -> tuple[str, dict]:
    return RULES[code](params, config, now)


def run_floor(path: str | Path, config, now: datetime, only: Iterable[str] | None = None,
              with_digests: bool = False) -> FloorResult:
    """The floor pass on the mirror at ``path``: setup, then every enabled rule, timed."""
    result = FloorResult()
    started = time.perf_counter()
    conn = connect(path)
    try:
        conn.execute("PRAGMA analysis_limit=1000")
        conn.execute("ANALYZE")
        build_lookups(conn, config)
        result.setup_seconds = time.perf_counter() - started
        kept = []
        for rule, params in config.enabled_rules(only):
            t0 = time.perf_counter()
            sql, binds = rule_sql(rule.code, params, config, now)
            rows = conn.execute(sql, binds).fetchall()
            result.seconds[rule.code] = time.perf_counter() - t0
            result.counts[rule.code] = len(rows)
            kept.append((rule.code, rows))
            del rows
        result.total_seconds = time.perf_counter() - started
        if with_digests:
            result.digests = {code: digest(rows) for code, rows in kept}
    finally:
        conn.close()
    return result


def explain(path: str | Path, config, now: datetime, code: str) -> str:
    """The floor's query plan for one rule (``EXPLAIN QUERY PLAN``), as text."""
    conn = connect(path)
    try:
        build_lookups(conn, config)
        params = config.rules[code]
        sql, binds = rule_sql(code, params, config, now)
        return "\n".join(f"{row[0]:>4} {row[1]:>4} {row[3]}"
                         for row in conn.execute("EXPLAIN QUERY PLAN " + sql, binds))
    finally:
        conn.close()


def pinned_shapes() -> dict[str, frozenset[str]]:
    """What each floor query may read each big table by: roe's pinned shapes
    (``roe_cli.rules.plans_check.PINNED``) but for OWN002, which the floor drives from the few
    inactive owners into each table's (source, owner_id) index instead of scanning the tables."""
    from roe_cli.rules.plans_check import PINNED

    out = dict(PINNED)
    out.update(PINNED_COV)  # the floor's own coverage queries (benchmarks/floor_cov.py)
    out["OWN002"] = frozenset({f"{t} SEARCH ix_{t}_source_owner_id"
                               for t in ("accounts", "contacts", "opportunities")}
                              | {"accounts SEARCH PRIMARY KEY"})
    return out


def plan_shapes(conn: sqlite3.Connection, config, now: datetime,
                only: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Per enabled rule, the shape of the floor query's plan on ``conn`` with the statistics it
    has now (tables and how each is read: see ``roe_cli.rules.plans_check.shape_of``). Builds the
    lookup tables if ``conn`` has none yet."""
    from roe_cli.rules.plans_check import aliases_in, shape_of

    if not conn.execute("SELECT 1 FROM temp.sqlite_master WHERE name = 'f_owner'").fetchone():
        build_lookups(conn, config)
    out = {}
    for rule, params in config.enabled_rules(only):
        if rule.code not in RULES:
            continue
        sql, binds = rule_sql(rule.code, params, config, now)
        lines = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, binds)]
        out[rule.code] = shape_of(lines, aliases_in(sql))
    return out


# -- roe's side, for the check -----------------------------------------------------------------


def demo_as_of(path: str | Path) -> datetime | None:
    """The demo org's own "now" (what it was generated against), if the mirror holds one."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT as_of FROM demo_orgs ORDER BY created_at DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        row = None
    finally:
        conn.close()
    return datetime.fromisoformat(row[0]) if row else None


def roe_digests(engine, run_id: int) -> dict[str, str]:
    """Fingerprints of the findings roe's run ``run_id`` stored, per rule (same columns)."""
    from sqlalchemy import select

    from roe_cli.models import findings as f

    rows: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for r in conn.execute(
            select(f.c.rule, f.c.source, f.c.object_type, f.c.object_id, f.c.related_user_id,
                   f.c.account_id, f.c.owner_id, f.c.suggested_owner_id, f.c.details)
            .where(f.c.last_run_id == run_id)
        ):
            rows.setdefault(r[0], []).append(tuple(r[1:]))
    return {code: digest(r) for code, r in rows.items()}


def main(argv: list[str] | None = None) -> int:
    from roe_cli.audit import run_audit
    from roe_cli.db import open_database
    from roe_cli.rulesfile import load_rules
    from roe_cli.settings import database_url
    from roe_cli.shared.clock import parse_as_of, utcnow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the mirror (an SQLite file)")
    parser.add_argument("--rules", default=str(ROOT / "rules.toml"))
    parser.add_argument("--as-of", help="default: the demo org's as-of time, else now")
    parser.add_argument("--explain", metavar="CODE", help="print the floor's plan for one rule and stop")
    args = parser.parse_args(argv)
    config = load_rules(Path(args.rules))
    now = parse_as_of(args.as_of) if args.as_of else (demo_as_of(args.db) or utcnow())
    if args.explain:
        print(explain(args.db, config, now, args.explain.upper()))
        return 0

    floor = run_floor(args.db, config, now, with_digests=True)
    engine = open_database(database_url(args.db))
    roe = run_audit(engine, config, now)
    mine = roe_digests(engine, roe.run_id)
    engine.dispose()

    print(f"as of {now:%Y-%m-%d %H:%M} UTC, {args.db}")
    print(f"{'rule':<8} {'floor rows':>10} {'roe rows':>10} {'floor s':>8} {'roe s':>8}  same rows")
    bad = []
    for code, n in floor.counts.items():
        outcome = roe.rules[code]
        theirs = outcome.open + outcome.waived
        same = floor.digests[code] == mine.get(code, digest([]))
        if n != theirs or not same:
            bad.append(code)
        print(f"{code:<8} {n:>10,} {theirs:>10,} {floor.seconds[code]:>8.3f} {outcome.seconds:>8.3f}  "
              f"{'yes' if same else 'NO'}")
    print(f"{'total':<8} {sum(floor.counts.values()):>10,} {roe.total('open') + roe.total('waived'):>10,} "
          f"{floor.total_seconds:>8.3f} {roe.seconds:>8.3f}")
    if bad:
        print(f"\nERROR: the floor and roe disagree on {', '.join(bad)}: the floor is not the same "
              "rules, so its times mean nothing until that is fixed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
