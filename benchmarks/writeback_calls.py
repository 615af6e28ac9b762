"""How many CRM calls a 1,000-change write-back takes, against the minimum.

For Salesforce and HubSpot (the local emulators of ``tests/emulators``, through the real client
libraries): sync a demo org of 250 accounts (owners, accounts, contacts), plan 1,000 owner changes
from a CSV (200 accounts and 800 contacts, each to another active owner), approve the plan and
apply it, then count the calls in the emulator's request log.

The minimum is the number of batch write calls the CRM needs: Salesforce sObject Collections take
200 records a call (200 accounts + 800 contacts: 1 + 4 = 5), HubSpot batch update 100 (2 + 8 = 10).
Drift reads (reading the current owners before writing) come on top: one query of up to 200 ids on
Salesforce, one batch read of 100 on HubSpot, per write batch.

Run from the repository: ``.venv/bin/python benchmarks/writeback_calls.py``
"""

from __future__ import annotations

import csv
import math
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from roe_cli import plans  # noqa: E402
from roe_cli.apply import apply_plan  # noqa: E402
from roe_cli.db import open_database  # noqa: E402
from roe_cli.models import accounts, contacts, owners  # noqa: E402
from roe_cli.sources import make_connector  # noqa: E402
from roe_cli.sync import sync  # noqa: E402

AS_OF = datetime(2026, 11, 1)
ORG_ACCOUNTS = 250  # the demo org; some of its records are deleted
ACCOUNTS, CONTACTS = 200, 800  # the plan
BATCH = {"salesforce": 200, "hubspot": 100}
FAST_HUBSPOT = {"requests_per_10s": 1_000_000, "searches_per_second": 1_000_000,
                "backoff_seconds": 0.0, "max_wait_seconds": 1.0, "timeout_seconds": 10}


def start(source: str):
    """The emulator for ``source`` holding a demo org, with the environment pointing at it."""
    if source == "salesforce":
        from tests.emulators.salesforce import start_emulator

        emulator = start_emulator(accounts=ORG_ACCOUNTS, seed=11, as_of=AS_OF)
        os.environ.update(emulator.env())
        return emulator, None
    from tests.emulators.hubspot import HubSpotEmulator

    emulator = HubSpotEmulator().start()
    emulator.load_demo(accounts=ORG_ACCOUNTS, seed=11, as_of=AS_OF)
    os.environ.update({"HUBSPOT_ACCESS_TOKEN": emulator.token, "HUBSPOT_BASE_URL": emulator.url})
    return emulator, FAST_HUBSPOT


def write_csv(engine, source: str, path: Path) -> int:
    """A CSV moving 200 accounts and 800 contacts, each to another active owner."""
    with engine.connect() as conn:
        active = sorted(conn.execute(select(owners.c.id).where(
            owners.c.source == source, owners.c.active.is_(True))).scalars())
        rows = [("account", i, o) for i, o in conn.execute(
            select(accounts.c.id, accounts.c.owner_id).where(
                accounts.c.source == source, accounts.c.deleted.is_(False))
            .order_by(accounts.c.id).limit(ACCOUNTS))]
        rows += [("contact", i, o) for i, o in conn.execute(
            select(contacts.c.id, contacts.c.owner_id).where(
                contacts.c.source == source, contacts.c.deleted.is_(False))
            .order_by(contacts.c.id).limit(CONTACTS))]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(plans.CSV_COLUMNS)
        for n, (object_type, object_id, owner) in enumerate(rows):
            new = active[n % len(active)]
            if new == owner:
                new = active[(n + 1) % len(active)]
            out.writerow((object_type, object_id, new))
    return len(rows)


def measure(source: str, folder: Path) -> dict:
    emulator, settings = start(source)
    try:
        engine = open_database(f"sqlite:///{folder / f'{source}.db'}")
        connector = make_connector(source, settings=settings, engine=engine)
        sync(engine, connector, objects=("owner", "account", "contact"))
        connector.close()

        emulator.clear_log()
        rows = write_csv(engine, source, folder / f"{source}.csv")
        result = plans.build_from_csv(engine, folder / f"{source}.csv", source=source)
        plan = result.plan
        path = plans.save_plan(plan, folder / f"{source}.plan.json")
        plan = plans.approve_plan(engine, plan, "benchmark")
        plans.save_plan(plan, path)
        dry_run_calls = len(emulator.requests)

        connector = make_connector(source, settings=settings, engine=engine)
        began = time.perf_counter()
        report = apply_plan(engine, plans.load_plan(path), connector)
        seconds = time.perf_counter() - began
        connector.close()
        counts = report.counts()
        writes = len(emulator.writes())
        total = len(emulator.requests) - dry_run_calls
        by_type: dict[str, int] = {}
        for change in plan.changes:
            by_type[change.object_type] = by_type.get(change.object_type, 0) + 1
        minimum = sum(math.ceil(n / BATCH[source]) for n in by_type.values())
        engine.dispose()
        return {"source": source, "changes": len(plan.changes), "csv_rows": rows,
                "applied": counts["applied"], "writes": writes, "minimum": minimum,
                "reads": total - writes, "total": total, "dry_run": dry_run_calls,
                "report_reads": report.read_calls, "report_writes": report.write_calls,
                "seconds": seconds}
    finally:
        emulator.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="roe-bench-") as tmp:
        results = [measure(source, Path(tmp)) for source in ("salesforce", "hubspot")]
    print(f"{'CRM':<11} {'changes':>7} {'applied':>7} {'dry run':>7} {'writes':>6} {'minimum':>7} "
          f"{'drift reads':>11} {'all calls':>9} {'apply s':>7}")
    for r in results:
        print(f"{r['source']:<11} {r['changes']:>7,} {r['applied']:>7,} {r['dry_run']:>7} "
              f"{r['writes']:>6} {r['minimum']:>7} {r['reads']:>11} {r['total']:>9} "
              f"{r['seconds']:>7.2f}")
        assert r["writes"] == r["report_writes"] and r["reads"] == r["report_reads"], r
    print("\ndry run: calls made while building and approving the plan (always 0: both read the "
          "mirror only).\nwrites: batch write calls; minimum: the CRM's batch size allows no fewer."
          "\ndrift reads: calls reading the current owners just before each write batch.")


if __name__ == "__main__":
    main()
