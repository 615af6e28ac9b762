"""Ingest: normalized records a second through the sync engine's real ``write_page``.

    .venv/bin/python -m benchmarks.ingest [--accounts 5000] [--seed 42] [--postgres URL]

The demo generator's rows for ``--accounts`` accounts (owners, accounts, account team rows,
contacts, opportunities, activities, ownership history) are cut into pages of 2,000 rows per
object, as a connector yields them, and written twice into fresh mirrors (schema from the migrations):

* roe: ``roe_cli.sync.write_page`` plus ``set_watermark``, one transaction a page, exactly as
  ``sync()`` does for a full pull into an empty mirror;
* raw: plain ``sqlite3`` ``executemany`` of the same rows (values already converted to what SQLite
  stores, outside the timing) into the same tables, one transaction a page.

The ratio roe/raw is the figure; the target is at least half the raw rate. With ``--postgres URL``
(or ``BENCH_POSTGRES_URL``) the same is done into PostgreSQL (raw: the driver's ``executemany``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGE = 2000
# As sync() pulls them: team rows after the accounts (the demo org has account teams).
ORDER = ("owner", "account", "account_team_member", "contact", "opportunity", "activity",
         "ownership_change")
TARGET = 0.5


def pages(accounts: int, seed: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """The demo org's rows as connector-shaped pages: (object type, up to PAGE rows)."""
    from connectors.demo.generator import default_as_of, generate

    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ORDER}
    for chunk in generate(accounts, seed, default_as_of()):
        for object_type, part in chunk.rows.items():
            rows.setdefault(object_type, []).extend(part)
    out = []
    for object_type in ORDER:
        part = rows.get(object_type, [])
        out.extend((object_type, part[i:i + PAGE]) for i in range(0, len(part), PAGE))
    return out


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def roe_write(url: str, work: list[tuple[str, list[dict[str, Any]]]]) -> float:
    from connectors.base import Page
    from roe_cli.db import open_database
    from roe_cli.sync import ObjectReport, set_watermark, write_page

    engine = open_database(url)
    try:
        reports: dict[str, ObjectReport] = {}
        started = time.perf_counter()
        for object_type, rows in work:
            page = Page(object_type=object_type, rows=rows,
                        watermark=max((r["updated_at"] for r in rows if r.get("updated_at")), default=None))
            report = reports.setdefault(object_type, ObjectReport(object_type))
            with engine.begin() as conn:
                write_page(conn, "demo", page, report)
                set_watermark(conn, "demo", object_type, page.watermark, None)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def _statements(work, placeholder: str, convert) -> list[tuple[str, list[tuple]]]:
    from roe_cli.models import ownership_changes
    from roe_cli.sync import SYNC_TABLES

    tables = {**SYNC_TABLES, "ownership_change": ownership_changes}
    out = []
    for object_type, rows in work:
        names = ["source", *rows[0]]
        sql = (f"INSERT INTO {tables[object_type].name} ({', '.join(names)}) "
               f"VALUES ({', '.join([placeholder] * len(names))})")
        out.append((sql, [("demo", *(convert(r[n]) for n in names[1:])) for r in rows]))
    return out


def raw_sqlite(path: Path, work) -> float:
    from roe_cli.db import open_database

    open_database(f"sqlite:///{path}").dispose()  # the same fresh schema, from the migrations
    statements = _statements(work, "?", _sqlite_value)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # roe's own setting (roe_cli/db.py)
        started = time.perf_counter()
        for sql, values in statements:
            conn.execute("BEGIN")
            conn.executemany(sql, values)
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def raw_postgres(url: str, work) -> float:
    from sqlalchemy import create_engine

    statements = _statements(work, "%s", lambda v: v)
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            started = time.perf_counter()
            for sql, values in statements:
                cur.executemany(sql, values)
                raw.commit()
            return time.perf_counter() - started
        finally:
            raw.close()
    finally:
        engine.dispose()


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def measure(accounts: int, seed: int = 42, postgres_url: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    work = pages(accounts, seed)
    generated = time.perf_counter() - started
    records = sum(len(rows) for _, rows in work)
    result: dict[str, Any] = {"accounts": accounts, "records": records, "pages": len(work),
                              "page_size": PAGE, "generate_seconds": round(generated, 2)}
    with tempfile.TemporaryDirectory(prefix="roe-bench-ingest-") as tmp:
        roe_s = roe_write(f"sqlite:///{Path(tmp) / 'roe.db'}", work)
        raw_s = raw_sqlite(Path(tmp) / "raw.db", work)
    result["sqlite"] = _figures(records, roe_s, raw_s)
    if postgres_url:
        _reset_postgres(postgres_url)
        roe_s = roe_write(postgres_url, work)
        _reset_postgres(postgres_url)
        from roe_cli.db import open_database

        open_database(postgres_url).dispose()
        raw_s = raw_postgres(postgres_url, work)
        result["postgresql"] = _figures(records, roe_s, raw_s)
    return result


def _figures(records: int, roe_s: float, raw_s: float) -> dict[str, Any]:
    roe_rate, raw_rate = records / roe_s, records / raw_s
    return {"roe_seconds": round(roe_s, 3), "raw_seconds": round(raw_s, 3),
            "roe_records_per_second": round(roe_rate), "raw_records_per_second": round(raw_rate),
            "ratio": round(roe_rate / raw_rate, 3), "target_ratio": TARGET,
            "met": roe_rate >= TARGET * raw_rate}


def describe(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['records']:,} records ({result['accounts']:,} accounts) in "
             f"{result['pages']:,} pages of up to {result['page_size']:,}"]
    for db in ("sqlite", "postgresql"):
        if db in result:
            f = result[db]
            lines.append(
                f"{db:<10} roe write_page {f['roe_records_per_second']:>9,}/s   raw executemany "
                f"{f['raw_records_per_second']:>9,}/s   ratio {f['ratio']:.2f} (target >= "
                f"{TARGET}): {'met' if f['met'] else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = measure(args.accounts, args.seed, args.postgres)
    for line in describe(result):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
