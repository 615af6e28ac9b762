"""End to end: ``roe sync --source hubspot`` against the local HubSpot, then ``roe audit``.

The emulator holds a demo org; the real hubspot-api-client talks to it over HTTP; the audit must
find exactly the planted findings. Later changes made behind roe's back (edits, archiving, an
owner change, more than 10,000 changed records) arrive incrementally; a 429 storm and an
interrupted run end with the same mirror as a calm run.
"""
# The hs_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from roe_cli.db import open_database
from roe_cli.models import (
    accounts,
    contacts,
    opportunities,
    ownership_changes,
    sync_state,
)
from tests.conftest import AS_OF, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator, iso  # noqa: F401
from tests.support.mirror import dump

ENGAGEMENTS = ("calls", "meetings", "emails", "tasks", "notes")
ALL_TYPES = ("companies", "contacts", "deals", *ENGAGEMENTS)


@pytest.fixture
def rules(tmp_path):
    """The shipped rules.toml with a [hubspot] table that does not pace or wait (a test server)."""
    def make(extra: str = "") -> str:
        path = tmp_path / f"rules-{abs(hash(extra))}.toml"
        path.write_text(RULES.read_text() + FAST_SETTINGS_TOML + extra)
        return str(path)

    return make


def sync_cli(roe, rules_path, *args, db=None):
    result = roe("sync", "--source", "hubspot", *args, rules=rules_path, db=db)
    assert result.exit_code == 0, result.output
    return result


def api_calls(output: str) -> int:
    return int(re.search(r"API calls: ([\d,]+)", output).group(1).replace(",", ""))


def report_table(output: str) -> dict[str, list[int]]:
    """The sync report: object -> [read, inserted, updated, deleted, owner changes]."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = [int(c.replace(",", "")) for c in cells[1:]]
    return rows


# ---- the audit ------------------------------------------------------------------------------------


def test_sync_then_audit_finds_exactly_the_planted_findings(hs_emulator, roe, rules):
    planted = hs_emulator.load_demo(120, seed=7, as_of=AS_OF)
    rules_path = rules()
    result = sync_cli(roe, rules_path)
    for word in ("owner", "account", "contact", "opportunity", "activity", "ownership_change",
                 "read", "inserted", "updated", "deleted", "API calls:"):
        assert word in result.stdout
    assert api_calls(result.stdout) == len(hs_emulator.calls())
    assert f"org API usage: {len(hs_emulator.calls()):,} of 250,000 calls today" in result.stdout
    audit = roe("audit", "--as-of", AS_OF.isoformat(), "--format", "json", "--fail-on", "never",
                rules=rules_path)
    assert audit.exit_code == 0, audit.output
    findings = json.loads(audit.stdout)["findings"]
    found = {(f["rule"], f["object_type"], f["object_id"], f["related_user_id"] or "")
             for f in findings}
    assert found == planted
    assert {f["source"] for f in findings} == {"hubspot"}
    assert {rule for rule, *_ in planted} >= {"OWN001", "OWN002", "OWN003", "OWN004", "OWN005",
                                              "OWN006", "HND001", "HND002", "HND003"}
    assert hs_emulator.writes() == []


# ---- incremental ----------------------------------------------------------------------------------


def test_incremental_sync_picks_up_changes_made_in_hubspot(hs_emulator, roe, rules, engine):
    hs_emulator.load_demo(60, seed=5, as_of=AS_OF)
    rules_path = rules()
    sync_cli(roe, rules_path)

    companies = hs_emulator.live("companies")
    edited, moved = companies[3], companies[4]
    gone_contact = hs_emulator.live("contacts")[10]
    gone_call = hs_emulator.live("calls")[0]
    old_owner = moved.props["hubspot_owner_id"]
    new_owner = next(o["id"] for o in hs_emulator.owners.values()
                     if not o["archived"] and o["id"] != old_owner)
    hs_emulator.update("companies", edited.id, country="PT", numberofemployees="4321")
    hs_emulator.set_owner("companies", moved.id, new_owner)
    hs_emulator.archive("contacts", gone_contact.id)
    hs_emulator.archive("calls", gone_call.id)
    deal = hs_emulator.add("deals", {"dealname": "Upsell", "dealstage": "qualification",
                                     "hs_is_closed": "false", "hs_is_closed_won": "false",
                                     "hubspot_owner_id": new_owner, "amount": "5000"},
                           assoc={"companies": [moved.id]})
    hs_emulator.clear_log()

    result = sync_cli(roe, rules_path)
    with engine.connect() as conn:
        acc = {r.id: r for r in conn.execute(select(accounts))}
        assert (acc[edited.id].country, acc[edited.id].employees) == ("PT", 4321)
        assert acc[moved.id].owner_id == new_owner
        assert conn.execute(select(contacts.c.deleted).where(
            contacts.c.id == gone_contact.id)).scalar_one() is True
        opp = conn.execute(select(opportunities).where(opportunities.c.id == deal)).one()
        assert (opp.account_id, opp.owner_id, opp.is_closed, opp.amount) == (
            moved.id, new_owner, False, 5000.0)
        history = conn.execute(select(ownership_changes).where(
            ownership_changes.c.object_id == moved.id)).all()
    assert {(h.origin, h.old_owner_id, h.new_owner_id) for h in history} >= {
        ("crm-history", old_owner, new_owner), ("observed", old_owner, new_owner)}

    table = report_table(result.stdout)
    assert table["account"][:4] == [2, 0, 2, 0]  # read, inserted, updated, deleted
    assert table["contact"][:4] == [0, 0, 0, 1]
    assert table["opportunity"][:4] == [1, 1, 0, 0]
    assert table["activity"][:4] == [0, 0, 0, 1]
    assert table["account"][4] == 1  # the owner change, observed
    assert hs_emulator.writes() == []
    # One search per object type, and one archived listing each (nothing else needed).
    searches = hs_emulator.calls("POST", "/search")
    assert sorted(r.path.split("/")[4] for r in searches) == sorted(ALL_TYPES)
    assert len(hs_emulator.calls("GET", "/crm/v3/objects/")) == len(ALL_TYPES)


def test_an_incremental_sync_with_nothing_changed_costs_one_call_per_listing(
        hs_emulator, roe, rules):
    hs_emulator.load_demo(40, seed=3, as_of=AS_OF)
    rules_path = rules()
    sync_cli(roe, rules_path)
    hs_emulator.clear_log()
    result = sync_cli(roe, rules_path)
    # owners (active, archived) + one search and one archived listing per object type
    assert api_calls(result.stdout) == 2 + 2 * len(ALL_TYPES) == len(hs_emulator.calls())
    quiet = rules("detect_archived = false\n")
    hs_emulator.clear_log()
    result = sync_cli(roe, quiet)
    assert api_calls(result.stdout) == 2 + len(ALL_TYPES)


def test_full_sync_calls_stay_at_the_minimum(hs_emulator, roe, rules):
    """One call per 100 records per object is the floor of a list API; search pages hold 200."""
    hs_emulator.load_demo(120, seed=9, as_of=AS_OF)
    result = sync_cli(roe, rules(), "--full")
    owners = len(hs_emulator.owners)
    minimum = math.ceil(owners / 100) + sum(
        max(1, math.ceil(len(hs_emulator.live(t)) / 100)) for t in ALL_TYPES)
    calls = api_calls(result.stdout)
    assert calls <= minimum + 2, (calls, minimum)


def test_more_than_10000_changed_records_arrive_incrementally(hs_emulator, roe, rules, engine):
    hs_emulator.load_demo(10, seed=1, as_of=AS_OF)
    company = hs_emulator.live("companies")[0].id
    start = datetime(2026, 10, 20)
    new = [hs_emulator.add("contacts", {"email": f"c{i}@bulk.example", "jobtitle": "Buyer",
                                        "associatedcompanyid": company},
                           at=iso(start + timedelta(milliseconds=i)))
           for i in range(10_500)]
    rules_path = rules()
    sync_cli(roe, rules_path)  # the first sync pages past 10,000 results as well
    with engine.connect() as conn:
        assert conn.execute(select(contacts.c.id).where(
            contacts.c.email.like("%@bulk.example"))).scalars().all().__len__() == 10_500

    # A bulk update: every record modified in the same millisecond.
    hs_emulator.clear_log()
    hs_emulator.update_many("contacts", new, at=hs_emulator.now(), jobtitle="Chief Buyer")
    sync_cli(roe, rules_path)
    with engine.connect() as conn:
        titles = conn.execute(select(contacts.c.title).where(
            contacts.c.email.like("%@bulk.example"))).scalars().all()
    assert len(titles) == 10_500 and set(titles) == {"Chief Buyer"}
    searches = hs_emulator.calls("POST", "/crm/v3/objects/contacts/search")
    assert all(r.status == 200 for r in searches)  # never past the 10,000 cap
    # 53 pages of 200, the page that found the bulk update, and the one that found its end
    assert len(searches) <= math.ceil(10_500 / 200) + 3


# ---- resilience -----------------------------------------------------------------------------------


def test_a_429_storm_ends_with_the_same_mirror_as_a_calm_run(hs_emulator, roe, rules, tmp_path):
    hs_emulator.load_demo(50, seed=4, as_of=AS_OF)
    calm, stormy = f"sqlite:///{tmp_path / 'calm.db'}", f"sqlite:///{tmp_path / 'storm.db'}"
    rules_path = rules()
    sync_cli(roe, rules_path, db=calm)
    calm_calls = len(hs_emulator.calls())
    hs_emulator.clear_log()
    hs_emulator.refuse_every(3, status=429, retry_after="0")
    result = sync_cli(roe, rules_path, db=stormy)
    refused = [r for r in hs_emulator.calls() if r.status == 429]
    assert len(refused) >= calm_calls // 3
    refused_kinds = {r.path.rsplit("/", 2)[-1] for r in refused}
    assert {"search", "read"} <= refused_kinds  # POSTs (searches, batch reads) are retried too
    assert api_calls(result.stdout) == calm_calls + len(refused)
    assert dump(stormy) == dump(calm)


def test_an_interrupted_sync_resumes_to_the_same_mirror(hs_emulator, roe, rules, tmp_path):
    hs_emulator.load_demo(50, seed=4, as_of=AS_OF)
    reference, broken = f"sqlite:///{tmp_path / 'ref.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    rules_path = rules("max_retries = 1\n")
    sync_cli(roe, rules_path, db=reference)

    hs_emulator.fail_next(1000, status=502, path="/crm/v3/objects/emails/search")
    result = roe("sync", "--source", "hubspot", rules=rules_path, db=broken)
    assert result.exit_code == 3
    assert "kept failing" in result.stderr and "status.hubspot.com" in result.stderr and "Traceback" not in result.output
    engine = open_database(broken)
    with engine.connect() as conn:
        marks = {o: w for o, w in conn.execute(select(sync_state.c.object, sync_state.c.watermark))}
    engine.dispose()
    assert marks["account"] is not None and marks.get("activity") is None

    hs_emulator.clear_faults()
    sync_cli(roe, rules_path, db=broken)
    assert dump(broken) == dump(reference)


def test_hubspot_that_keeps_refusing_ends_the_run_with_exit_code_3(hs_emulator, roe, rules):
    hs_emulator.load_demo(5, seed=1, as_of=AS_OF)
    hs_emulator.fail_next(1000, status=429, retry_after="0")
    result = roe("sync", "--source", "hubspot", rules=rules("max_retries = 2\n"))
    assert result.exit_code == 3
    assert "HubSpot kept refusing" in result.stderr
    assert len(hs_emulator.calls()) == 3


def test_a_refused_token_is_never_printed_or_logged(hs_emulator, roe, rules, tmp_path,
                                                    monkeypatch):
    bad = "pat-eu1-0badc0de-1111-2222-3333-444455556666"
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", bad)
    log = tmp_path / "roe.log"
    result = roe("--verbose", "--log-file", str(log), "sync", "--source", "hubspot",
                 rules=rules())
    assert result.exit_code == 3
    assert "401" in result.stderr and "HUBSPOT_ACCESS_TOKEN" in result.stderr
    assert hs_emulator.calls()[0].status == 401  # the emulator echoed the token back
    for text in (result.output, log.read_text()):
        assert bad not in text and "0badc0de" not in text


def test_full_sync_reconciles_what_incremental_cannot_see(hs_emulator, roe, rules, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules_path = rules("detect_archived = false\n")
    sync_cli(roe, rules_path)
    company = hs_emulator.live("companies")[5]
    hs_emulator.archive("companies", company.id)
    # An association change does not modify the deal in HubSpot: only a full sync sees it.
    deal = hs_emulator.live("deals")[0]
    target = hs_emulator.live("companies")[9].id
    deal.assoc["companies"] = [target]

    sync_cli(roe, rules_path)
    with engine.connect() as conn:
        assert not conn.execute(select(accounts.c.deleted).where(
            accounts.c.id == company.id)).scalar_one()
        assert conn.execute(select(opportunities.c.account_id).where(
            opportunities.c.id == deal.id)).scalar_one() != target

    result = sync_cli(roe, rules_path, "--full")
    assert "(full)" in result.stdout
    with engine.connect() as conn:
        assert conn.execute(select(accounts.c.deleted).where(
            accounts.c.id == company.id)).scalar_one()
        assert conn.execute(select(opportunities.c.account_id).where(
            opportunities.c.id == deal.id)).scalar_one() == target
