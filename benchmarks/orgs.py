"""The bench's mirrors: demo orgs at any size, built fast, and the skewed org.

* :func:`build_org` - up to :data:`TILE` accounts the demo org itself (``load_demo_org``, the
  generator's rows written in bulk); above that, a demo org of ``accounts / k`` accounts copied
  ``k`` times inside SQLite (``INSERT ... SELECT`` with every record id suffixed ``~t<i>`` and
  every domain prefixed ``t<i>-``), so the org has exactly the demo's ratios and distributions
  (the demo's roster of owners is fixed, so a real demo org of that size has the same owners)
  at a fraction of the cost: the generator is pure Python and costs about a second per 1,000
  accounts, the copies cost seconds per 100,000.
* :func:`skew` - a copy of an org with the issue's skew: one account with 50,000 contacts (moved
  from other accounts), one owner with half the activities, one domain on 5,000 accounts, and
  most of the activity on one day.

A tiled org's planted cases (``demo_planted``) are those of the first tile only: the bench
compares roe with its floor, not with the plan.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import time
from pathlib import Path

TILE = 100_000
ID_SKIP = ("owner", "user", "manager")
TILED = ("accounts", "contacts", "opportunities", "activities", "ownership_changes",
         "account_team_members")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _is_record_id(column: str) -> bool:
    return (column == "id" or column.endswith("_id")) and not any(s in column for s in ID_SKIP)


def tile_sql(conn: sqlite3.Connection, table: str, i: int, last_rowid: int | None = None) -> str:
    """``INSERT ... SELECT`` copying the first tile of ``table`` as tile ``i``. With
    ``last_rowid`` (the table's largest rowid before any copy) the first tile is read as a rowid
    range, not found by scanning every copy made so far (which made tiling quadratic in copies)."""
    columns = [c for c in _columns(conn, table) if not (table == "ownership_changes" and c == "id")]
    exprs = []
    for c in columns:
        if _is_record_id(c):
            exprs.append(f"{c} || '~t{i}'")
        elif c in ("domain", "email_domain"):
            exprs.append(f"'t{i}-' || {c}")
        else:
            exprs.append(c)
    where = "source = 'demo'"
    if last_rowid is not None:
        where = f"rowid <= {int(last_rowid)} AND +{where}"  # ``+``: the range, not an index
    if "id" in columns and table != "ownership_changes":
        where += " AND id NOT LIKE '%~t%'"
    elif table == "ownership_changes":
        where += " AND object_id NOT LIKE '%~t%'"
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(exprs)} FROM {table} WHERE {where}")


def _bulk_mode(conn: sqlite3.Connection) -> None:
    """A throwaway bench file written in bulk: out of WAL into a rollback journal (which keeps only
    the few pages a bulk write changes), no fsync, a 256 MiB page cache."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")


def _drop_indexes(conn: sqlite3.Connection, tables: list[str]) -> list[tuple[str, str]]:
    """Drop the secondary indexes of ``tables`` for a bulk write; returns (name, sql) of each, to
    build once after."""
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND tbl_name IN "
        f"({', '.join('?' * len(tables))})", tables).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    return indexes


def tile(db: Path, copies: int, total_accounts: int) -> float:
    """Copy the demo org in ``db`` until it holds ``copies`` tiles; returns the seconds taken.
    Secondary indexes of the copied tables are dropped for the copy and rebuilt once after."""
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        # One big transaction: a rollback journal keeps only the few pages it changes (the copies
        # go to new pages), where WAL would write the whole copied org twice.
        _bulk_mode(conn)
        conn.execute("PRAGMA temp_store=MEMORY")
        tables = [t for t in TILED if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (t,)).fetchone()]
        conn.execute("BEGIN")
        indexes = _drop_indexes(conn, tables)
        last = {t: conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0] for t in tables}
        statements = {t: [tile_sql(conn, t, i, last[t]) for i in range(2, copies + 1)] for t in tables}
        for t in tables:
            for sql in statements[t]:
                conn.execute(sql)
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("UPDATE demo_orgs SET accounts = ?, loaded_accounts = ? WHERE source = 'demo'",
                     (total_accounts, total_accounts))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # roe's mode (roe_cli/db.py)
    finally:
        conn.close()
    return time.perf_counter() - started


def tiles_for(accounts: int) -> tuple[int, int]:
    """(accounts per tile, tiles) for an org of ``accounts``: whole demo orgs up to TILE."""
    copies = max(1, math.ceil(accounts / TILE))
    return accounts // copies, copies


def skew(src: Path, dst: Path) -> dict[str, int | float]:
    """Copy the mirror ``src`` to ``dst`` and skew it (see the module docstring); returns what
    was moved. Only live rows of source ``demo`` are touched; ids stay unique."""
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    if Path(f"{src}-wal").exists():
        shutil.copyfile(f"{src}-wal", f"{dst}-wal")
    conn = sqlite3.connect(dst, isolation_level=None)
    try:
        _bulk_mode(conn)
        conn.execute("BEGIN")
        # Millions of rows change indexed columns: drop the secondary indexes and build them once.
        indexes = _drop_indexes(conn, ["accounts", "contacts", "activities"])
        big = conn.execute("SELECT id, owner_id FROM accounts WHERE source='demo' AND deleted=0 "
                           "ORDER BY id LIMIT 1").fetchone()
        moved = conn.execute(
            "UPDATE contacts SET account_id = ? WHERE source='demo' AND rowid IN (SELECT rowid FROM "
            "contacts WHERE source='demo' AND deleted=0 AND account_id != ? ORDER BY id LIMIT 50000)",
            (big[0], big[0])).rowcount
        busy = conn.execute("SELECT owner_id FROM activities WHERE source='demo' GROUP BY owner_id "
                            "ORDER BY count(*) DESC, owner_id LIMIT 1").fetchone()[0]
        total_acts = conn.execute("SELECT count(*) FROM activities WHERE source='demo'").fetchone()[0]
        half = conn.execute(
            "UPDATE activities SET owner_id = ? WHERE source='demo' AND rowid IN (SELECT rowid FROM "
            "activities WHERE source='demo' ORDER BY id LIMIT ?)", (busy, total_acts // 2)).rowcount
        domain = conn.execute(
            "UPDATE accounts SET domain = 'shared-by-many.example', website = "
            "'https://shared-by-many.example' WHERE source='demo' AND rowid IN (SELECT rowid FROM "
            "accounts WHERE source='demo' AND deleted=0 ORDER BY id DESC LIMIT 5000)").rowcount
        # Most activity on one day: the busiest day of the org gets 60% of all activities.
        day = conn.execute("SELECT date(occurred_at) d FROM activities WHERE source='demo' "
                           "GROUP BY d ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        oneday = conn.execute(
            "UPDATE activities SET occurred_at = ? || substr(occurred_at, 11) WHERE source='demo' "
            "AND rowid IN (SELECT rowid FROM activities WHERE source='demo' ORDER BY rowid "
            "LIMIT ?)", (day, int(total_acts * 0.6))).rowcount
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return {"big_account_contacts_moved": moved, "owner_activities_moved": half,
            "accounts_on_one_domain": domain, "activities_on_one_day": oneday,
            "activities": total_acts, "seconds": time.perf_counter() - started}
