"""HubSpot API calls of a sync, against the minimum: ``python benchmarks/hubspot_calls.py``.

Loads a demo org into the local HubSpot emulator (``tests/emulators/hubspot.py``), syncs it into a
fresh SQLite mirror through the real hubspot-api-client, and prints:

* a full sync's calls per HubSpot object against the floor of one call per 100 records per
  object (what a list API costs; searches return 200 a page, association reads 1,000);
* an incremental sync with nothing changed (target: one search per object plus the archived-record
  listing, whose pages hold 100 records: one call per 100 archived records of each object, at
  least one), and without the archived-record check (one search per object);
* an incremental sync after a few hundred edits;
* the cost of detecting archived records as a function of how many there are: the companies'
  calls of an incremental sync after archiving 0, 100, 500 and 1,000 more companies (the
  archived listing pages 100 records a call, so the minimum is one call plus one per 100).

Options: ``--accounts N`` (default 2,000: about 10,000 contacts and 40,000 activities),
``--seed S``, ``--json FILE`` (the figures, for ``python -m benchmarks``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.hubspot import connect  # noqa: E402
from roe_cli.db import open_database  # noqa: E402
from roe_cli.sync import sync  # noqa: E402
from tests.emulators.hubspot import FAST_SETTINGS, HubSpotEmulator  # noqa: E402

TYPES = ("companies", "contacts", "deals", "calls", "meetings", "emails", "tasks", "notes")


def endpoint(path: str) -> str:
    """A request path as the HubSpot object it reads: owners, companies, ..."""
    parts = [p for p in path.split("/") if p]
    if parts[:3] == ["crm", "v3", "owners"]:
        return "owners"
    if parts[:3] == ["crm", "v4", "associations"]:
        return parts[3]
    return parts[3]


def run(emulator: HubSpotEmulator, url: str, full: bool, **settings) -> tuple[object, Counter, float]:
    emulator.clear_log()
    connector = connect(settings={**FAST_SETTINGS, **settings})
    engine = open_database(url)
    started = time.perf_counter()
    try:
        report = sync(engine, connector, full=full)
    finally:
        connector.close()
        engine.dispose()
    elapsed = time.perf_counter() - started
    return report, Counter(endpoint(r.path) for r in emulator.calls()), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures: dict = {"accounts": args.accounts}

    emulator = HubSpotEmulator().start()
    os.environ["HUBSPOT_ACCESS_TOKEN"] = emulator.token
    os.environ["HUBSPOT_BASE_URL"] = emulator.url
    emulator.load_demo(args.accounts, args.seed)
    live = {t: len(emulator.live(t)) for t in TYPES}
    live["owners"] = len(emulator.owners)
    total = sum(live.values())

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'mirror.db'}"
        report, calls, elapsed = run(emulator, url, full=True)
        print(f"Full sync of {total:,} records ({args.accounts:,} accounts), "
              f"{elapsed:.1f} s against the local emulator")
        print(f"{'object':<10} {'records':>8} {'calls':>6} {'minimum':>8}   (minimum: one call per "
              "100 records per object)")
        minimum_total = 0
        for name in ("owners", *TYPES):
            minimum = max(1, math.ceil(live[name] / 100))
            minimum_total += minimum
            print(f"{name:<10} {live[name]:>8,} {calls[name]:>6,} {minimum:>8,}")
        figures["full"] = {"records": total, "calls": report.api_calls, "minimum": minimum_total,
                           "per_object": {n: {"records": live[n], "calls": calls[n],
                                              "minimum": max(1, math.ceil(live[n] / 100))}
                                          for n in ("owners", *TYPES)}}
        print(f"{'total':<10} {total:>8,} {report.api_calls:>6,} {minimum_total:>8,}   "
              f"= {report.api_calls / minimum_total:.0%} of the minimum, "
              f"{total / report.api_calls:,.0f} records a call")
        print("  (owners: one call for active and one for archived owners; deals and activities "
              "include their association reads, companies their owner-history reads)")

        report, calls, _ = run(emulator, url, full=False)
        # The archived-record listing is a plain list call (archived=true), at most 100 records a
        # page and no filter by time: each object's listing costs one call per 100 archived
        # records (at least one), on top of its one search.
        archived = {t: sum(1 for r in emulator.records[t].values() if r.archived) for t in TYPES}
        listing = {t: max(1, math.ceil(n / 100)) for t, n in archived.items()}
        target = 2 + len(TYPES) + sum(listing.values())
        print(f"\nIncremental sync, nothing changed: {report.api_calls} calls "
              f"({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))}); minimum {target}")
        print(f"  = owners (active, archived) 2 + one search per object {len(TYPES)} + the archived "
              f"listings' pages {sum(listing.values())} (archived records: "
              f"{', '.join(f'{t} {n}' for t, n in archived.items())}; 100 a page)")
        print(f"  records re-read in the sync engine's overlap: "
              f"{sum(o.read for o in report.objects.values()) - report.objects['owner'].read} "
              "(owners are always read whole)")
        figures["incremental_unchanged"] = {"calls": report.api_calls, "by_endpoint": dict(calls),
                                            "target": target, "archived": archived,
                                            "archived_listing_pages": listing}
        report, calls, _ = run(emulator, url, full=False, detect_archived=False)
        figures["incremental_unchanged_no_archived_check"] = {"calls": report.api_calls,
                                                              "target": 2 + len(TYPES)}
        print(f"  with detect_archived = false: {report.api_calls} calls "
              "(owners 2 + one search per object)")

        companies = emulator.live("companies")[:100]
        contacts = emulator.live("contacts")[:300]
        for record in companies:
            emulator.update("companies", record.id, industry="Robotics")
        for record in contacts:
            emulator.update("contacts", record.id, jobtitle="Head of Robotics")
        report, calls, _ = run(emulator, url, full=False)
        print(f"\nIncremental sync after editing 100 companies and 300 contacts: "
              f"{report.api_calls} calls, read "
              f"{report.objects['account'].read} accounts and {report.objects['contact'].read} "
              "contacts")
        figures["incremental_after_edits"] = {"calls": report.api_calls}

        print("\nArchived-record detection: companies' calls of an incremental sync by how many "
              "companies are archived (minimum: 1 search + 1 listing call per 100 archived)")
        figures["archived_detection"] = []
        live_companies = [r.id for r in emulator.live("companies")]
        done = 0
        for archived in (0, 100, 500, 1000):
            archived = min(archived, len(live_companies))
            for rid in live_companies[done:archived]:
                emulator.archive("companies", rid)
            done = max(done, archived)
            total_archived = sum(1 for r in emulator.records["companies"].values() if r.archived)
            if figures["archived_detection"] and figures["archived_detection"][-1]["archived"] == total_archived:
                continue  # a small org: no more companies to archive
            run(emulator, url, full=False)  # takes up what changed; the next run lists them again
            _, calls, _ = run(emulator, url, full=False)
            minimum = 1 + max(1, math.ceil(total_archived / 100))
            figures["archived_detection"].append(
                {"archived": total_archived, "company_calls": calls["companies"], "minimum": minimum})
            print(f"  {total_archived:>6,} archived: {calls['companies']:>3} calls (minimum {minimum})")
    emulator.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
