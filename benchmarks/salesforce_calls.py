"""API calls of the Salesforce connector against the minimum, on the local emulator.

    .venv/bin/python benchmarks/salesforce_calls.py [--accounts 2000] [--seed 42]

Prints, per sObject, the records a full sync reads and the calls it makes, against the minimum of
one call per 2,000 records (the REST query API's page): once on the REST API alone, once with the
default Bulk API 2.0 threshold. The org gets account team rows (``AccountTeamMember``, one per
six accounts), pulled by a query of their own. Then the calls of an incremental sync with nothing changed (target:
one per sObject) and after a handful of edits. ``--json FILE`` also writes the figures (for
``python -m benchmarks``). The real simple-salesforce talks HTTPS to the
emulator, so every number is a real HTTP call.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.salesforce import connect  # noqa: E402
from connectors.salesforce.settings import SalesforceSettings  # noqa: E402
from roe_cli.db import open_database  # noqa: E402
from roe_cli.sync import sync  # noqa: E402
from tests.emulators.salesforce import SalesforceEmulator, SalesforceOrg  # noqa: E402

SOBJECTS = ("User", "Account", "AccountTeamMember", "Contact", "Opportunity", "Event", "Task",
            "AccountHistory")
TEAM_EVERY = 6  # one AccountTeamMember row per this many accounts (about the demo org's share)


def seed_team_rows(org: SalesforceOrg) -> int:
    """Account team rows on every TEAM_EVERY-th account (the emulator's demo org has none): a
    user other than the owner, with a role, as old as the account."""
    users = sorted(org.records["User"])
    n = 0
    for i, account in enumerate(sorted(org.records["Account"].values(), key=lambda a: a["Id"])):
        if i % TEAM_EVERY or account.get("IsDeleted"):
            continue
        user = next(u for u in users[i % len(users):] + users if u != account["OwnerId"])
        when = account["CreatedDate"]
        org.insert("AccountTeamMember", {"AccountId": account["Id"], "UserId": user,
                                         "TeamMemberRole": "Customer Success Manager",
                                         "AccountAccessLevel": "Read", "CreatedDate": when,
                                         "LastModifiedDate": when, "SystemModstamp": when})
        n += 1
    return n


def records_read(org: SalesforceOrg) -> dict[str, int]:
    counts = {s: org.count(s) for s in SOBJECTS}
    counts["AccountHistory"] = sum(1 for r in org.records["AccountHistory"].values() if r["Field"] == "Owner")
    return counts


def run(emulator: SalesforceEmulator, engine, *, full: bool, **settings) -> tuple[dict[str, int], float, object]:
    emulator.clear_log()
    connector = connect(settings=SalesforceSettings(bulk_poll_seconds=0.05, **settings))
    started = time.monotonic()
    report = sync(engine, connector, full=full)
    elapsed = time.monotonic() - started
    connector.close()
    return dict(emulator.calls_by_sobject()), elapsed, report


def table(title: str, rows: list[tuple], header: tuple) -> None:
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  " + "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths, strict=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    started = time.monotonic()
    org = SalesforceOrg.from_demo(args.accounts, args.seed, datetime(2026, 11, 1))
    seed_team_rows(org)
    emulator = SalesforceEmulator(org).start()
    os.environ.update(emulator.env())
    counts = records_read(org)
    print(f"Emulator org: {args.accounts:,} accounts, {sum(counts.values()):,} records to read "
          f"(built in {time.monotonic() - started:.1f}s)")
    minimum = {s: max(1, math.ceil(n / 2000)) for s, n in counts.items()}
    folder = Path(tempfile.mkdtemp(prefix="roe-sf-bench-"))
    try:
        rest_engine = open_database(f"sqlite:///{folder / 'rest.db'}")
        rest, rest_time, _ = run(emulator, rest_engine, full=True, bulk_threshold=10**9)
        bulk_engine = open_database(f"sqlite:///{folder / 'bulk.db'}")
        default = SalesforceSettings()
        bulk, bulk_time, _ = run(emulator, bulk_engine, full=True)
        table(
            f"Full sync: calls per sObject (REST only: {rest_time:.1f}s; with Bulk API 2.0 above "
            f"{default.bulk_threshold:,} records: {bulk_time:.1f}s)",
            [(s, f"{counts[s]:,}", minimum[s], rest.get(s, 0), bulk.get(s, 0)) for s in SOBJECTS]
            + [("total", f"{sum(counts.values()):,}", sum(minimum.values()), sum(rest.values()),
                sum(bulk.values()))],
            ("sObject", "records", "minimum", "REST", "REST+Bulk"),
        )

        quiet, quiet_time, _ = run(emulator, rest_engine, full=False)
        for n, account in enumerate(list(org.records["Account"].values())[:25]):
            org.update("Account", account["Id"], Name=f"{account['Name']} ({n})")
        for contact in list(org.records["Contact"].values())[:25]:
            org.delete("Contact", contact["Id"])
        changed, changed_time, report = run(emulator, rest_engine, full=False)
        table(
            f"Incremental sync: calls per sObject (nothing changed: {quiet_time:.2f}s; after 25 "
            f"account edits and 25 contact deletes: {changed_time:.2f}s)",
            [(s, 1, quiet.get(s, 0), changed.get(s, 0)) for s in SOBJECTS]
            + [("total", len(SOBJECTS), sum(quiet.values()), sum(changed.values()))],
            ("sObject", "target", "unchanged", "after edits"),
        )
        print(f"\n  after edits, accounts read {report.objects['account'].read} "
              f"(25 edited + the engine's 5-minute overlap), contacts deleted {report.objects['contact'].deleted}")
        print(f"  org API usage after the runs: {org.api_used:,} of {org.api_limit:,}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "accounts": args.accounts, "records": counts, "minimum": minimum,
                "full_rest": rest, "full_rest_bulk": bulk,
                "full_calls": {"rest": sum(rest.values()), "rest_bulk": sum(bulk.values()),
                               "minimum": sum(minimum.values())},
                "incremental_unchanged": {"calls": sum(quiet.values()), "by_sobject": quiet,
                                          "target": len(SOBJECTS)},
                "incremental_after_edits": {"calls": sum(changed.values()), "by_sobject": changed},
            }))
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
