"""HubSpot API calls of a sync, against the minimum: ``python benchmarks/hubspot_calls.py``.

Loads a demo org into the local HubSpot emulator (``tests/emulators/hubspot.py``), syncs it into a
fresh SQLite mirror through the real hubspot-api-client, and prints:

* a full sync's calls per HubSpot object against the floor of one call per 100 records per
  object (what a list API costs; searches return 200 a page, association reads 1,000);
* an incremental sync with nothing changed (target: one call per object), with and without the
  archived-record check;
* an incremental sync after a few hundred edits.

Options: ``--accounts N`` (default 2,000: about 10,000 contacts and 40,000 activities),
``--seed S``.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()

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
        print(f"{'total':<10} {total:>8,} {report.api_calls:>6,} {minimum_total:>8,}   "
              f"= {report.api_calls / minimum_total:.0%} of the minimum, "
              f"{total / report.api_calls:,.0f} records a call")
        print("  (owners: one call for active and one for archived owners; deals and activities "
              "include their association reads, companies their owner-history reads)")

        report, calls, _ = run(emulator, url, full=False)
        print(f"\nIncremental sync, nothing changed: {report.api_calls} calls "
              f"({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})")
        print("  = owners (active, archived) + per object one search and one archived-record "
              "listing")
        report, calls, _ = run(emulator, url, full=False, detect_archived=False)
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
    emulator.stop()


if __name__ == "__main__":
    main()
