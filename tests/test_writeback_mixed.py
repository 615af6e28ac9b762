"""Salesforce write-back at the minimum of calls (issue 14): an sObject Collections call takes 200
records of any mix of types, so an apply of N changes takes ceil(N/200) write calls, and reads
the current owners with one query per type in each window. The journal stays exact per record,
and a transfer's contacts and deals never share a call with their own account.

Everything runs through the CLI against the local Salesforce emulator (real simple-salesforce over
HTTPS); the calls are counted in the emulator's request log.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import func, select

from roe_cli import plans
from roe_cli.models import accounts, contacts, opportunities, owners
from tests.conftest import RULES
from tests.emulators.hubspot import hs_emulator  # noqa: F401
from tests.emulators.salesforce import start_emulator
from tests.support.writeback import read_results

AS_OF = datetime(2026, 11, 1)
SF_TYPES = {"account": "Account", "contact": "Contact", "opportunity": "Opportunity"}
TYPE_OF = {v: k for k, v in SF_TYPES.items()}
TABLES = {"account": accounts, "contact": contacts, "opportunity": opportunities}
RULES_ARG = str(RULES)


@pytest.fixture
def sf(roe, monkeypatch):
    """A Salesforce emulator with a 150-account demo org, synced into the mirror."""
    emulator = start_emulator(accounts=150, seed=7, as_of=AS_OF)
    try:
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        result = roe("sync", "--source", "salesforce", rules=RULES_ARG)
        assert result.exit_code == 0, result.output
        emulator.clear_log()
        yield emulator
    finally:
        emulator.stop()


def _csv_plan(roe, engine, tmp_path, wanted: dict[str, int]) -> plans.Plan:
    """Plan (from a CSV), save and approve ``wanted[type]`` owner changes of each type, each
    record to another active owner."""
    rows = []
    with engine.connect() as conn:
        active = sorted(conn.execute(select(owners.c.id).where(
            owners.c.source == "salesforce", owners.c.active.is_(True))).scalars())
        for object_type, n in wanted.items():
            table = TABLES[object_type]
            found = conn.execute(select(table.c.id, table.c.owner_id).where(
                table.c.source == "salesforce", table.c.deleted.is_(False))
                .order_by(table.c.id).limit(n)).all()
            assert len(found) == n, f"the org has only {len(found)} {object_type} records"
            for k, (record_id, owner) in enumerate(found):
                new = next(a for a in active[k % len(active):] + active if a != owner)
                rows.append((object_type, record_id, new))
    path = tmp_path / "changes.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(plans.CSV_COLUMNS)
        out.writerows(reversed(rows))  # opportunities first: the apply puts accounts first itself
    plan_path = tmp_path / "plan.json"
    result = roe("reassign", "--csv", str(path), "--source", "salesforce", "-o", str(plan_path),
                 rules=RULES_ARG)
    assert result.exit_code == 0, result.output
    result = roe("approve", str(plan_path), "--by", "vp@example.com", rules=RULES_ARG)
    assert result.exit_code == 0, result.output
    plan = plans.load_plan(plan_path)
    assert Counter(c.object_type for c in plan.changes) == wanted
    return plan


def _bodies(emulator) -> list[list[dict]]:
    return [json.loads(w.body)["records"] for w in emulator.writes()]


def _owner_reads(emulator) -> list[str]:
    return [r.sobject for r in emulator.requests if r.soql and r.soql.startswith("SELECT Id, OwnerId")]


def test_an_apply_of_n_changes_over_three_types_takes_ceil_n_over_200_write_calls(
        roe, engine, sf, tmp_path):
    wanted = {"account": 130, "contact": 190, "opportunity": 130}  # 450 changes
    plan = _csv_plan(roe, engine, tmp_path, wanted)
    sf.clear_log()

    result = roe("apply", str(tmp_path / "plan.json"), rules=RULES_ARG)
    assert result.exit_code == 0, result.output

    n = len(plan.changes)
    bodies = _bodies(sf)
    assert len(bodies) == math.ceil(n / 200) == 3  # not one call per type and 200
    assert [len(b) for b in bodies] == [200, 200, 50]
    order = [TYPE_OF[r["attributes"]["type"]] for b in bodies for r in b]
    # Accounts first, then contacts, then opportunities, across the calls: at most 3 chunks a call.
    assert order == sorted(order, key=list(SF_TYPES).index)
    assert Counter(order) == wanted
    # Drift reads: one query per type in each window of 200 (the plan's ids are fewer than
    # read_batch_size per type and window): window 1 = accounts + contacts, window 2 = contacts +
    # opportunities, window 3 = opportunities.
    windows = [order[i:i + 200] for i in range(0, n, 200)]
    assert len(_owner_reads(sf)) == sum(len(set(w)) for w in windows) == 5
    statuses = Counter(r["status"] for r in read_results(tmp_path / "plan.results.csv"))
    assert statuses == {"applied": n}
    assert all(sf.org.owner_of(c.object_type, c.object_id) == c.new for c in plan.changes)


def test_a_mixed_window_journals_each_record_drifted_failed_or_applied(roe, engine, sf, tmp_path):
    wanted = {"account": 20, "contact": 30, "opportunity": 20}
    plan = _csv_plan(roe, engine, tmp_path, wanted)
    by_type = {t: [c for c in plan.changes if c.object_type == t] for t in wanted}
    refused = by_type["account"][3]
    drifted = by_type["contact"][5]
    deleted = by_type["opportunity"][7]
    inactive = next(u["Id"] for u in sf.org.records["User"].values() if not u["IsActive"])
    sf.org.refuse_updates(refused.object_id)  # fails in the write call itself
    sf.org.set_owner("contact", drifted.object_id, inactive)  # changed behind roe's back
    sf.org.delete("opportunity", deleted.object_id)
    sf.clear_log()

    result = roe("apply", str(tmp_path / "plan.json"), rules=RULES_ARG)
    assert result.exit_code == 1, result.output

    (body,) = _bodies(sf)  # one call for the three types
    sent = {r["id"] for r in body}
    assert sent == {c.object_id for c in plan.changes} - {drifted.object_id, deleted.object_id}
    assert len(_owner_reads(sf)) == 3  # one query per type
    rows = {(r["object_type"], r["object_id"]): r for r in read_results(tmp_path / "plan.results.csv")}
    assert rows[refused.key]["status"] == "failed" and "UNABLE_TO_LOCK_ROW" in rows[refused.key]["error"]
    assert rows[drifted.key]["status"] == "drifted" and inactive in rows[drifted.key]["error"]
    assert rows[deleted.key]["status"] == "failed" and "not found" in rows[deleted.key]["error"]
    others = set(rows) - {refused.key, drifted.key, deleted.key}
    assert {rows[k]["status"] for k in others} == {"applied"} and len(others) == len(plan.changes) - 3
    assert sf.org.owner_of("contact", drifted.object_id) == inactive
    assert sf.org.owner_of("account", refused.object_id) == refused.expected
    # The mirror follows the CRM exactly: applied records have their new owner, the others not.
    with engine.connect() as conn:
        for key, row in rows.items():
            table = TABLES[key[0]]
            mirror = conn.execute(select(table.c.owner_id).where(
                table.c.source == "salesforce", table.c.id == key[1])).scalar()
            assert (mirror == row["new"]) == (row["status"] == "applied"), key

    sf.clear_log()  # a re-run sends nothing again: every record is settled in the journal
    assert roe("apply", str(tmp_path / "plan.json"), rules=RULES_ARG).exit_code == 1
    assert sf.writes() == []


def test_a_transfer_whose_account_fails_in_its_write_call_holds_its_children_unwritten(
        roe, engine, sf, tmp_path):
    with engine.connect() as conn:  # the active owner with the most open deals in their book
        opp, acct = opportunities, accounts
        old = conn.execute(
            select(acct.c.owner_id)
            .join(opp, (opp.c.source == acct.c.source) & (opp.c.account_id == acct.c.id)
                  & (opp.c.owner_id == acct.c.owner_id))
            .join(owners, (owners.c.id == acct.c.owner_id) & (owners.c.source == acct.c.source))
            .where(acct.c.source == "salesforce", acct.c.deleted.is_(False),
                   opp.c.deleted.is_(False), opp.c.is_closed.is_(False), owners.c.active.is_(True))
            .group_by(acct.c.owner_id)
            .order_by(func.count().desc(), acct.c.owner_id)).scalars().first()
        new = conn.execute(select(owners.c.id).where(
            owners.c.source == "salesforce", owners.c.active.is_(True), owners.c.id != old)
            .order_by(owners.c.id)).scalars().first()
    path = tmp_path / "plan.json"
    result = roe("reassign", "--transfer-from", old, "--to", new, "--source", "salesforce",
                 "-o", str(path), rules=RULES_ARG)
    assert result.exit_code == 0, result.output
    assert roe("approve", str(path), "--by", "vp@example.com", rules=RULES_ARG).exit_code == 0
    plan = plans.load_plan(path)
    assert {c.object_type for c in plan.changes} == set(SF_TYPES), Counter(c.object_type for c in plan.changes)
    children_of: dict[str, list] = {}
    for c in plan.changes:
        if c.object_type != "account":
            children_of.setdefault(c.why["account_id"], []).append(c)
    failing = next(a for a in plan.changes if a.object_type == "account" and children_of.get(a.object_id))
    held = {c.key for c in children_of[failing.object_id]}
    sf.org.refuse_updates(failing.object_id)  # passes the drift read, fails in the write call
    sf.clear_log()

    result = roe("apply", str(path), rules=RULES_ARG)
    assert result.exit_code == 1, result.output

    bodies = _bodies(sf)
    written = [(TYPE_OF[r["attributes"]["type"]], r["id"]) for b in bodies for r in b]
    assert not held & set(written)  # never sent: no account split from its contacts and deals
    assert Counter(written) == Counter(c.key for c in plan.changes if c.key not in held)
    # The accounts' call, then the children's (contacts and deals together): 2 calls for this
    # plan of fewer than 200 changes, not one per type.
    assert len(plan.changes) <= 200 and len(bodies) == 2
    assert {t for t, _ in written[:len(bodies[0])]} == {"account"}
    rows = {(r["object_type"], r["object_id"]): r for r in read_results(tmp_path / "plan.results.csv")}
    assert rows[failing.key]["status"] == "failed"
    assert all(rows[k]["status"] == "held" and failing.object_id in rows[k]["error"] for k in held)
    for key in held:
        assert sf.org.owner_of(key[0], key[1]) == old
    assert {rows[c.key]["status"] for c in plan.changes if c.key not in held | {failing.key}} \
        == {"applied"}


def test_hubspot_writes_a_mixed_list_one_type_a_call_with_results_in_order(hs_emulator):  # noqa: F811
    from connectors.base import OwnerChange
    from connectors.hubspot import HubSpotSettings, connect
    from tests.emulators.hubspot import FAST_SETTINGS

    hs_emulator.load_demo(10, 3, AS_OF)
    active = [o["id"] for o in hs_emulator.owners.values() if not o["archived"]]
    hs_types = {"account": "companies", "contact": "contacts", "opportunity": "deals"}
    changes = [OwnerChange(t, hs_emulator.live(hs_types[t])[n].id, active[n % len(active)])
               for n, t in enumerate(("contact", "account", "opportunity", "account", "contact"))]
    results = connect(settings=HubSpotSettings(**FAST_SETTINGS)).update_owners(None, changes)
    assert [(r.object_type, r.object_id, r.ok) for r in results] == \
        [(c.object_type, c.object_id, True) for c in changes]
    for c in changes:
        assert hs_emulator.records[hs_types[c.object_type]][c.object_id].props["hubspot_owner_id"] \
            == c.new_owner_id
    assert len(hs_emulator.writes()) == 3  # HubSpot's batch update takes one type a call
