"""Write-back against the local Salesforce and HubSpot emulators, through the real client libraries.

Each test syncs a small demo org from the emulator into the mirror, plans a transfer, approves it
and applies it, and reads the emulator's request log: a dry run makes no write call, apply writes
exactly the approved changes, a record changed after planning is drifted and untouched, an apply
killed after its first batch and run again writes each record once, a tampered plan is refused.
"""
# The emulator fixtures arrive as arguments named like their imports:
# ruff: noqa: F811

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import func, select

from roe_cli import plans
from roe_cli.models import accounts, owners
from tests.conftest import RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401
from tests.emulators.salesforce import start_emulator
from tests.support.writeback import Killed, read_results

AS_OF = datetime(2026, 11, 1)
SF_TYPES = {"account": "Account", "contact": "Contact", "opportunity": "Opportunity"}
HS_TYPES = {"account": "companies", "contact": "contacts", "opportunity": "deals"}
HS_OWNER = "hubspot_owner_id"


class Crm:
    """One emulator behind a common face: owners, changes behind roe's back, the write log."""

    def __init__(self, source, emulator, rules):
        self.source = source
        self.emulator = emulator
        self.rules = rules

    def owner(self, object_type, object_id):
        if self.source == "salesforce":
            return self.emulator.org.owner_of(SF_TYPES[object_type], object_id)
        record = self.emulator.records[HS_TYPES[object_type]][object_id]
        return record.props.get(HS_OWNER)

    def set_owner(self, object_type, object_id, owner_id):
        if self.source == "salesforce":
            self.emulator.org.set_owner(SF_TYPES[object_type], object_id, owner_id)
        else:
            self.emulator.set_owner(HS_TYPES[object_type], object_id, owner_id)

    def all_owners(self) -> dict:
        """``{(object_type, id): owner}`` for every record the CRM holds."""
        out = {}
        for object_type in SF_TYPES:
            if self.source == "salesforce":
                for rid, rec in self.emulator.org.records[SF_TYPES[object_type]].items():
                    out[(object_type, rid)] = rec.get("OwnerId")
            else:
                for rid, rec in self.emulator.records[HS_TYPES[object_type]].items():
                    out[(object_type, rid)] = rec.props.get(HS_OWNER)
        return out

    def requests(self):
        return list(self.emulator.requests)

    def writes(self):
        return self.emulator.writes()

    def written(self) -> list[tuple[str, str, str]]:
        """``(object_type, id, new owner)`` of every record in every write call the CRM carried out
        (refused calls, answered 4xx or 5xx, wrote nothing), in order."""
        out = []
        for request in self.writes():
            if not 200 <= request.status < 300:
                continue
            if self.source == "salesforce":
                body = json.loads(request.body)
                for record in body["records"]:
                    object_type = {v: k for k, v in SF_TYPES.items()}[record["attributes"]["type"]]
                    out.append((object_type, record["id"], record["OwnerId"]))
            else:
                hs_type = request.path.split("/")[-3]
                object_type = {v: k for k, v in HS_TYPES.items()}[hs_type]
                for item in request.body["inputs"]:
                    out.append((object_type, item["id"], item["properties"][HS_OWNER]))
        return out

    def clear_log(self):
        self.emulator.clear_log()


@pytest.fixture(params=["salesforce", "hubspot"])
def crm(request, tmp_path, roe, monkeypatch):
    """A synced mirror of a small demo org in the emulator of each CRM."""
    if request.param == "salesforce":
        emulator = start_emulator(accounts=40, seed=5, as_of=AS_OF)
        request.addfinalizer(emulator.stop)
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        rules = str(RULES)
    else:
        emulator = request.getfixturevalue("hs_emulator")
        emulator.load_demo(accounts=40, seed=5, as_of=AS_OF)
        path = tmp_path / "rules-hubspot.toml"
        path.write_text(RULES.read_text() + FAST_SETTINGS_TOML)
        rules = str(path)
    result = roe("sync", "--source", request.param, rules=rules)
    assert result.exit_code == 0, result.output
    emulator.clear_log()
    return Crm(request.param, emulator, rules)


@pytest.fixture
def book(engine, crm):
    """The transfer to plan: the active owner with the most accounts, to another active owner."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(accounts.c.owner_id, func.count()).join(
                owners, (owners.c.id == accounts.c.owner_id) & (owners.c.source == accounts.c.source))
            .where(accounts.c.source == crm.source, accounts.c.deleted.is_(False),
                   owners.c.active.is_(True))
            .group_by(accounts.c.owner_id).order_by(func.count().desc(), accounts.c.owner_id)
        ).all()
        others = conn.execute(select(owners.c.id).where(
            owners.c.source == crm.source, owners.c.active.is_(True),
            owners.c.id != rows[0][0]).order_by(owners.c.id)).scalars().all()
    return rows[0][0], others[0]


def plan_transfer(roe, crm, book, path):
    old, new = book
    result = roe("reassign", "--transfer-from", old, "--to", new, "--source", crm.source,
                 "-o", str(path), rules=crm.rules)
    assert result.exit_code == 0, result.output
    plan = plans.load_plan(path)
    assert plan.source == crm.source and len(plan.changes) >= 5
    return plan


def approve(roe, crm, path):
    result = roe("approve", str(path), "--by", "vp@example.com", rules=crm.rules)
    assert result.exit_code == 0, result.output


def test_dry_run_and_approval_make_no_crm_call(roe, crm, book, tmp_path):
    path = tmp_path / "plan.json"
    plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    assert crm.requests() == []  # reassign and approve read the mirror only: not one HTTP call


def test_apply_writes_exactly_the_approved_changes(roe, crm, book, tmp_path):
    path = tmp_path / "plan.json"
    plan = plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    before = crm.all_owners()

    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 0, result.output

    after = crm.all_owners()
    changed = {key: after[key] for key in after if after[key] != before.get(key)}
    assert changed == {c.key: c.new for c in plan.changes}
    assert sorted(crm.written()) == sorted((c.object_type, c.object_id, c.new) for c in plan.changes)
    if crm.source == "salesforce":
        # 200 records of any types a call, but a transfer's contacts and deals never share a
        # call with their own account: the accounts' call, then their children's.
        assert len(plan.changes) <= 200
        first, second = crm.writes()
        assert {r["id"] for r in json.loads(first.body)["records"]} == \
            {c.object_id for c in plan.changes if c.object_type == "account"}
        assert {r["id"] for r in json.loads(second.body)["records"]} == \
            {c.object_id for c in plan.changes if c.object_type != "account"}
    else:  # HubSpot's batch update takes 100 records of one type a call
        types = Counter(c.object_type for c in plan.changes)
        assert len(crm.writes()) == sum(-(-n // 100) for n in types.values())  # one call a batch
    rows = read_results(tmp_path / "plan.results.csv")
    assert {r["status"] for r in rows} == {"applied"} and len(rows) == len(plan.changes)
    assert crm.emulator.token not in (tmp_path / "plan.results.csv").read_text()
    assert crm.emulator.token not in path.read_text()

    crm.clear_log()  # a second apply sends nothing and reads nothing
    assert roe("apply", str(path), rules=crm.rules).exit_code == 0
    assert crm.requests() == []


def test_a_record_changed_after_planning_is_drifted_and_untouched(roe, crm, book, tmp_path, engine):
    path = tmp_path / "plan.json"
    plan = plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    drifted = next(c for c in plan.changes if c.object_type == "account")
    with engine.connect() as conn:
        third = conn.execute(select(owners.c.id).where(
            owners.c.source == crm.source, owners.c.active.is_(True),
            owners.c.id.not_in([drifted.expected, drifted.new])).order_by(owners.c.id)).scalars().first()
    crm.set_owner("account", drifted.object_id, third)  # someone else reassigned it meanwhile

    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 1, result.output
    assert crm.owner("account", drifted.object_id) == third
    assert drifted.key not in {(t, rid) for t, rid, _ in crm.written()}
    rows = {(r["object_type"], r["object_id"]): r for r in read_results(tmp_path / "plan.results.csv")}
    assert rows[drifted.key]["status"] == "drifted"
    assert third in rows[drifted.key]["error"]
    # The drifted account's contacts and deals that were to follow it are held back with it.
    children = {c.key for c in plan.changes
                if c.object_type != "account" and c.why.get("account_id") == drifted.object_id}
    assert children and all(rows[k]["status"] == "held" and drifted.object_id in rows[k]["error"]
                            for k in children)
    assert not children & {(t, rid) for t, rid, _ in crm.written()}
    assert sum(r["status"] == "applied" for r in rows.values()) == \
        len(plan.changes) - 1 - len(children)


def test_an_apply_killed_after_its_first_batch_writes_each_record_once(roe, crm, book, tmp_path,
                                                                       monkeypatch):
    path = tmp_path / "plan.json"
    plan = plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    connector_class = _connector_class(crm.source)
    monkeypatch.setattr(connector_class, "write_batch_size", 3)  # several batches on a small org
    original = connector_class.update_owners
    calls = []

    def dies_after_the_first_batch(self, object_type, changes):
        result = original(self, object_type, changes)
        calls.append(len(changes))
        if len(calls) == 1:
            raise Killed()  # the CRM took the batch; roe died before journaling the outcome
        return result

    monkeypatch.setattr(connector_class, "update_owners", dies_after_the_first_batch)
    with pytest.raises(Killed):
        roe("apply", str(path), rules=crm.rules)
    assert len(crm.writes()) == 1

    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 0, result.output
    assert "confirmed in the CRM and not sent again" in result.stdout
    written = [(t, rid) for t, rid, _ in crm.written()]
    assert Counter(written) == Counter(c.key for c in plan.changes)  # each record exactly once
    assert all(crm.owner(c.object_type, c.object_id) == c.new for c in plan.changes)
    assert {r["status"] for r in read_results(tmp_path / "plan.results.csv")} == {"applied"}


def test_a_tampered_plan_is_refused_before_any_crm_call(roe, crm, book, tmp_path):
    path = tmp_path / "plan.json"
    plan = plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    data = json.loads(path.read_text())
    data["changes"][0]["new"] = data["changes"][0]["expected"]  # quietly undo one change ...
    data["changes"][1]["new"] = plan.changes[0].expected
    path.write_text(json.dumps(data))
    before = crm.all_owners()
    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 2 and "changed after it was approved" in result.stderr
    assert crm.requests() == [] and crm.all_owners() == before


def test_records_the_crm_refuses_are_failed_and_reported(roe, crm, book, tmp_path):
    path = tmp_path / "plan.json"
    plan = plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    refused = plan.changes[-1]
    if crm.source == "salesforce":
        crm.emulator.org.refuse_updates(refused.object_id)
    else:
        crm.emulator.archive(HS_TYPES[refused.object_type], refused.object_id)
    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 1, result.output
    rows = {(r["object_type"], r["object_id"]): r for r in read_results(tmp_path / "plan.results.csv")}
    assert rows[refused.key]["status"] == "failed" and rows[refused.key]["error"]
    assert sum(r["status"] == "applied" for r in rows.values()) == len(plan.changes) - 1


def _connector_class(source):
    if source == "salesforce":
        from connectors.salesforce.connector import SalesforceConnector

        return SalesforceConnector
    from connectors.hubspot.connector import HubSpotConnector

    return HubSpotConnector


def test_a_crm_refusal_stops_the_apply_with_exit_3_and_a_rerun_finishes(roe, crm, book, tmp_path,
                                                                       monkeypatch):
    path = tmp_path / "plan.json"
    plan = plan_transfer(roe, crm, book, path)
    approve(roe, crm, path)
    monkeypatch.setattr(_connector_class(crm.source), "write_batch_size", 3)
    if crm.source == "salesforce":
        crm.emulator.fail(status=403, method="PATCH", body=[
            {"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])
    else:
        crm.emulator.fail_next(1, 403, path="/batch/update")
    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 3, result.output
    assert "did not finish" in result.stdout and crm.emulator.token not in result.output
    statuses = Counter(r["status"] for r in read_results(tmp_path / "plan.results.csv"))
    assert statuses == {"sending": 3, "pending": len(plan.changes) - 3}

    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 0, result.output
    assert all(crm.owner(c.object_type, c.object_id) == c.new for c in plan.changes)
    assert Counter((t, rid) for t, rid, _ in crm.written()) == Counter(c.key for c in plan.changes)


def test_audit_findings_to_applied_owners(roe, crm, tmp_path):
    """The whole loop on a CRM: audit, plan from the suggestions, approve, apply, audit again."""
    result = roe("audit", "--fail-on", "never", "--as-of", "2026-11-01", rules=crm.rules)
    assert result.exit_code == 0, result.output
    path = tmp_path / "plan.json"
    result = roe("reassign", "--findings", "OWN001,OWN006", "--source", crm.source, "-o", str(path),
                 rules=crm.rules)
    assert result.exit_code == 0, result.output
    if not path.exists():
        pytest.skip("this demo org has no OWN001/OWN006 finding with a suggestion")
    plan = plans.load_plan(path)
    approve(roe, crm, path)
    result = roe("apply", str(path), rules=crm.rules)
    assert result.exit_code == 0, result.output
    assert all(crm.owner(c.object_type, c.object_id) == c.new for c in plan.changes)

    result = roe("audit", "--fail-on", "never", "--as-of", "2026-11-01", "--format", "json",
                 rules=crm.rules)
    still_open = {(f["object_type"], f["object_id"]) for f in json.loads(result.stdout)["findings"]
                  if f["rule"] in ("OWN001", "OWN006") and f["status"] == "open"}
    assert not still_open & {c.key for c in plan.changes}
