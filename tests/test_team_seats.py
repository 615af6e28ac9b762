"""``roe reassign --transfer-from A --to B --team-seats``: a leaver's account team seats move to B
through the same plan, approve and apply (issue 13, last bullet).

Salesforce: AccountTeamMember rows (UserId is set on create only, so a move adds B's row and then
deletes A's) and ``team_fields`` lookups (a PATCH of the account); HubSpot: ``team_properties``
(a companies batch update); the demo org: the mirror itself. Everything runs through the CLI,
against the emulators (real clients over HTTP) and real SQLite mirrors; calls are counted in the
emulators' request logs.
"""
# The emulator fixtures arrive as arguments named like their imports:
# ruff: noqa: F811

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from roe_cli import plans
from roe_cli.models import account_team_members as atm
from roe_cli.models import accounts, owners
from roe_cli.plans.planfile import plan_text
from roe_cli.shared.errors import ConfigError
from tests.conftest import RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401
from tests.emulators.salesforce import SalesforceEmulator, start_emulator
from tests.support.writeback import read_results

AS_OF = datetime(2026, 11, 1)
OLD_PLAN = Path(__file__).parent / "support" / "plan_before_team_seats.json"


def seats_of(engine, source: str, user: str) -> set[tuple[str, str | None, str]]:
    """The live seats of ``user`` in the mirror: (account, team role, origin)."""
    with engine.connect() as conn:
        return {(r.account_id, r.team_role, r.origin) for r in conn.execute(
            select(atm).where(atm.c.source == source, atm.c.user_id == user,
                              atm.c.deleted.is_(False)))}


def plan_and_approve(roe, tmp_path: Path, rules: str, a: str, b: str, *, seats: bool = True,
                     source: str = "salesforce", name: str = "plan.json") -> plans.Plan:
    path = tmp_path / name
    args = ["reassign", "--transfer-from", a, "--to", b, "--source", source, "-o", str(path)]
    result = roe(*args, *(["--team-seats"] if seats else []), rules=rules)
    assert result.exit_code == 0, result.output
    result = roe("approve", str(path), "--by", "vp@example.com", rules=rules)
    assert result.exit_code == 0, result.output
    return plans.load_plan(path)


def apply(roe, plan: plans.Plan, rules: str, results: Path):
    return roe("apply", str(plan.path), "--results", str(results), rules=rules)


# ---- Salesforce ---------------------------------------------------------------------------------


@dataclass
class SfTeams:
    emulator: SalesforceEmulator
    rules: str
    a: str  # the leaver
    b: str  # who takes the seats
    member_accounts: list[str]  # accounts where A has an AccountTeamMember row
    csm_accounts: list[str]  # accounts whose CSM__c is A
    shared: str  # an account where A and B both have a row: A's seat stays (B is there)


@pytest.fixture
def sf_teams(roe, monkeypatch, tmp_path) -> SfTeams:
    emulator = start_emulator(accounts=60, seed=3, as_of=AS_OF)
    try:
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        org = emulator.org
        users = sorted(u for u, r in org.records["User"].items() if r["IsActive"])
        owned = Counter(r["OwnerId"] for r in org.records["Account"].values() if not r["IsDeleted"])
        a = max(users, key=lambda u: (owned[u], u))  # a leaver with a book
        b = next(u for u in users if u != a)
        free = sorted(i for i, r in org.records["Account"].items()
                      if not r["IsDeleted"] and r["OwnerId"] not in (a, b))
        roles = ["Account Manager", "Sales Engineer", "Executive Sponsor"]
        for n, account in enumerate(free[:5]):
            org.create("AccountTeamMember", AccountId=account, UserId=a,
                       TeamMemberRole=roles[n % 3], AccountAccessLevel="Edit",
                       OpportunityAccessLevel="Read", CaseAccessLevel="Read")
        for account in free[5:8]:
            org.update("Account", account, CSM__c=a)
        org.create("AccountTeamMember", AccountId=free[8], UserId=a, TeamMemberRole="Sales Engineer",
                   AccountAccessLevel="Read")
        org.create("AccountTeamMember", AccountId=free[8], UserId=b, TeamMemberRole="Account Manager",
                   AccountAccessLevel="Read")
        rules = tmp_path / "rules.toml"
        rules.write_text(RULES.read_text() + '\n[salesforce]\nteam_fields = { CSM = "CSM__c" }\n')
        result = roe("sync", "--source", "salesforce", rules=str(rules))
        assert result.exit_code == 0, result.output
        emulator.clear_log()
        yield SfTeams(emulator, str(rules), a, b, free[:5], free[5:8], free[8])
    finally:
        emulator.stop()


def live_rows(org, account: str) -> dict[str, dict]:
    """The live AccountTeamMember rows of ``account`` in the emulator, by user."""
    rows = [r for r in org.records["AccountTeamMember"].values()
            if r["AccountId"] == account and not r["IsDeleted"]]
    by_user = {r["UserId"]: r for r in rows}
    assert len(by_user) == len(rows), f"a user holds two seats on {account}"
    return by_user


def composite_calls(emulator, method: str) -> list:
    return [r for r in emulator.calls(method) if r.path.rstrip("/").endswith("composite/sobjects")]


def test_a_transfer_plans_team_seats_only_with_team_seats_and_says_which_seat_stays(
    sf_teams, roe, tmp_path
):
    t = sf_teams
    without = plan_and_approve(roe, tmp_path, t.rules, t.a, t.b, seats=False, name="owners.json")
    assert not [c for c in without.changes if c.object_type == plans.SEAT]
    assert "team_seats" not in without.origin

    path = tmp_path / "seats.json"
    result = roe("reassign", "--transfer-from", t.a, "--to", t.b, "--source", "salesforce",
                 "--team-seats", "-o", str(path), rules=t.rules)
    assert result.exit_code == 0, result.output
    plan = plans.load_plan(path)
    seats = [c for c in plan.changes if c.object_type == plans.SEAT]
    # five AccountTeamMember rows and three CSM__c lookups; the shared account's seat stays
    assert sorted(c.why["account_id"] for c in seats) == sorted(t.member_accounts + t.csm_accounts)
    assert all(c.field == "team_seat" and c.expected == t.a and c.new == t.b for c in seats)
    csm = [c for c in seats if c.why["origin"] == "CSM__c"]
    assert sorted(c.object_id for c in csm) == sorted(f"{x}/CSM__c" for x in t.csm_accounts)
    assert plan.origin["team_seats"] is True
    # the owner changes are the same records as without --team-seats
    assert [c.key for c in plan.changes if c.object_type != plans.SEAT] == \
        [c.key for c in without.changes]
    assert "Left out of the plan (1)" in result.output
    assert t.shared in result.output and "is already on its team" in result.output
    assert "and 8 team seat move(s) planned" in result.output


def test_salesforce_seats_move_on_apply_with_the_minimum_of_calls(sf_teams, roe, tmp_path, engine):
    t = sf_teams
    org = t.emulator.org
    before = {x: live_rows(org, x)[t.a] for x in t.member_accounts}
    plan = plan_and_approve(roe, tmp_path, t.rules, t.a, t.b)
    t.emulator.clear_log()
    result = apply(roe, plan, t.rules, tmp_path / "results.csv")
    assert result.exit_code == 0, [(r["status"], r["error"]) for r in read_results(tmp_path / "results.csv")
                                    if r["status"] != "applied"]
    # seats: one query per kind, one PATCH for the lookups, one POST and one DELETE for the rows
    seat_queries = [r for r in t.emulator.calls("GET") if r.soql and (
        "FROM AccountTeamMember" in r.soql or "CSM__c FROM Account" in r.soql)]
    assert len(seat_queries) == 2
    assert len(composite_calls(t.emulator, "POST")) == 1
    assert len(composite_calls(t.emulator, "DELETE")) == 1
    assert len([r for r in composite_calls(t.emulator, "PATCH") if "CSM__c" in r.body]) == 1

    for account in t.member_accounts:  # B's row replaced A's: same role and access levels
        rows = live_rows(org, account)
        assert t.a not in rows and t.b in rows
        for name in ("TeamMemberRole", "AccountAccessLevel", "OpportunityAccessLevel",
                     "CaseAccessLevel"):
            assert rows[t.b][name] == before[account][name]
    for account in t.csm_accounts:
        assert org.records["Account"][account]["CSM__c"] == t.b
    assert set(live_rows(org, t.shared)) == {t.a, t.b}  # left as planned

    # the mirror follows at once: B holds the seats, A only the one left out
    assert seats_of(engine, "salesforce", t.a) == {(t.shared, "Sales Engineer", "AccountTeamMember")}
    assert {s[0] for s in seats_of(engine, "salesforce", t.b)} == \
        set(t.member_accounts + t.csm_accounts + [t.shared])
    # the next sync agrees with what apply wrote into the mirror
    assert roe("sync", "--source", "salesforce", rules=t.rules).exit_code == 0
    assert {s[0] for s in seats_of(engine, "salesforce", t.b)} == \
        set(t.member_accounts + t.csm_accounts + [t.shared])

    rows = [r for r in read_results(tmp_path / "results.csv")
            if r["object_type"] == "account_team_member"]
    assert len(rows) == 8 and {r["status"] for r in rows} == {"applied"}


def test_a_seat_changed_in_salesforce_after_approval_is_drifted_and_not_written(
    sf_teams, roe, tmp_path
):
    t = sf_teams
    org = t.emulator.org
    plan = plan_and_approve(roe, tmp_path, t.rules, t.a, t.b)
    gone = live_rows(org, t.member_accounts[0])[t.a]["Id"]
    org.delete("AccountTeamMember", gone)  # removed from the team meanwhile
    other = sorted(u for u, r in org.records["User"].items() if r["IsActive"])[2]
    org.update("Account", t.csm_accounts[0], CSM__c=other)  # another CSM meanwhile

    result = apply(roe, plan, t.rules, tmp_path / "results.csv")
    assert result.exit_code == 1, result.output
    status = {r["object_id"]: (r["status"], r["error"]) for r in read_results(tmp_path / "results.csv")}
    assert status[gone][0] == "drifted" and "no longer in the CRM" in status[gone][1]
    csm_seat = f"{t.csm_accounts[0]}/CSM__c"
    assert status[csm_seat][0] == "drifted" and other in status[csm_seat][1]
    assert t.b not in live_rows(org, t.member_accounts[0])  # not written
    assert org.records["Account"][t.csm_accounts[0]]["CSM__c"] == other
    assert all(t.b in live_rows(org, x) for x in t.member_accounts[1:])


def test_a_crash_between_adding_and_removing_members_then_a_rerun_leaves_one_seat_for_b(
    sf_teams, roe, tmp_path, engine
):
    t = sf_teams
    org = t.emulator.org
    plan = plan_and_approve(roe, tmp_path, t.rules, t.a, t.b)
    # B's rows are created, then every DELETE fails: the run stops with the seats `sending`
    t.emulator.fail(status=500, method="DELETE", path="composite/sobjects", times=50)
    first = apply(roe, plan, t.rules, tmp_path / "first.csv")
    assert first.exit_code == 3, first.output
    for account in t.member_accounts:
        assert set(live_rows(org, account)) >= {t.a, t.b}  # both: no seat was lost

    t.emulator._faults.clear()
    t.emulator.clear_log()
    second = apply(roe, plan, t.rules, tmp_path / "second.csv")
    assert second.exit_code == 0, second.output
    for account in t.member_accounts:
        rows = live_rows(org, account)
        assert t.a not in rows and t.b in rows  # exactly one seat for B, none for A
    assert composite_calls(t.emulator, "POST") == []  # B's rows were not created twice
    assert len(composite_calls(t.emulator, "DELETE")) == 1
    status = {r["object_id"]: r["status"] for r in read_results(tmp_path / "second.csv")
              if r["object_type"] == "account_team_member"}
    assert set(status.values()) == {"applied"}
    assert not {s for s in seats_of(engine, "salesforce", t.a) if s[0] != t.shared}

    third = apply(roe, plan, t.rules, tmp_path / "third.csv")  # nothing left to do
    assert third.exit_code == 0, third.output
    assert sum(len(live_rows(org, x)) for x in t.member_accounts) == len(t.member_accounts)


def test_a_failed_create_is_never_retried_and_keeps_a_s_seat_until_the_rerun(
    sf_teams, roe, tmp_path
):
    t = sf_teams
    org = t.emulator.org
    plan = plan_and_approve(roe, tmp_path, t.rules, t.a, t.b)
    t.emulator.fail(status=500, method="POST", path="composite/sobjects", times=1)
    t.emulator.clear_log()
    first = apply(roe, plan, t.rules, tmp_path / "first.csv")
    assert first.exit_code == 3, first.output
    # a create that may have created is sent once, never again in the same run
    assert len(composite_calls(t.emulator, "POST")) == 1
    assert composite_calls(t.emulator, "DELETE") == []
    assert all(set(live_rows(org, x)) == {t.a} for x in t.member_accounts)

    second = apply(roe, plan, t.rules, tmp_path / "second.csv")
    assert second.exit_code == 0, second.output
    assert all(set(live_rows(org, x)) == {t.b} for x in t.member_accounts)


def test_seats_salesforce_refuses_to_create_stay_with_a_and_are_failed(sf_teams, roe, tmp_path):
    t = sf_teams
    org = t.emulator.org
    plan = plan_and_approve(roe, tmp_path, t.rules, t.a, t.b)
    org.records["User"][t.b]["IsActive"] = False  # B deactivated after the approval
    result = apply(roe, plan, t.rules, tmp_path / "results.csv")
    assert result.exit_code == 1, result.output
    failed = {r["object_id"]: r["error"] for r in read_results(tmp_path / "results.csv")
              if r["object_type"] == "account_team_member" and r["status"] == "failed"}
    member_seats = {live_rows(org, x)[t.a]["Id"] for x in t.member_accounts}
    assert member_seats <= set(failed)
    assert all("adding the new member: INACTIVE_OWNER_OR_USER" in failed[i] for i in member_seats)
    assert all(set(live_rows(org, x)) == {t.a} for x in t.member_accounts)  # A's seats kept


# ---- HubSpot ------------------------------------------------------------------------------------

HS_TEAM = '\nteam_properties = { CSM = "csm_owner" }\n'


def test_hubspot_seats_move_by_a_company_batch_update_and_a_changed_property_is_drifted(
    hs_emulator, roe, tmp_path, engine
):
    hs_emulator.load_demo(40, seed=5, as_of=AS_OF)
    active = sorted((o["id"] for o in hs_emulator.owners.values() if not o["archived"]), key=int)
    a, b, c = active[:3]
    companies = [x for x in hs_emulator.live("companies")
                 if x.props.get("hubspot_owner_id") not in (a, b)][:5]
    for company in companies:
        hs_emulator.update("companies", company.id, csm_owner=a)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + FAST_SETTINGS_TOML + HS_TEAM)
    assert roe("sync", "--source", "hubspot", rules=str(rules)).exit_code == 0

    plan = plan_and_approve(roe, tmp_path, str(rules), a, b, source="hubspot")
    seats = [x for x in plan.changes if x.object_type == plans.SEAT]
    assert sorted(x.object_id for x in seats) == sorted(f"{x.id}/csm_owner" for x in companies)
    hs_emulator.update("companies", companies[0].id, csm_owner=c)  # changed behind roe's back
    hs_emulator.clear_log()
    result = apply(roe, plan, str(rules), tmp_path / "results.csv")
    assert result.exit_code == 1, result.output

    props = {x.id: x.props.get("csm_owner") for x in hs_emulator.live("companies")}
    assert props[companies[0].id] == c
    assert all(props[x.id] == b for x in companies[1:])
    status = {r["object_id"]: r["status"] for r in read_results(tmp_path / "results.csv")
              if r["object_type"] == "account_team_member"}
    assert status.pop(f"{companies[0].id}/csm_owner") == "drifted"
    assert set(status.values()) == {"applied"}
    # one batch read and one batch update of companies for the seats
    seat_calls = [r for r in hs_emulator.calls("POST") if "csm_owner" in json.dumps(r.body)]
    assert [r.path.rsplit("/", 1)[-1] for r in seat_calls] == ["read", "update"]
    assert {s[0] for s in seats_of(engine, "hubspot", b)} == {x.id for x in companies[1:]}


# ---- the demo org and plan files ----------------------------------------------------------------


def _demo_seats(engine) -> tuple[str, str, list[str]]:
    """Give the demo org's busiest owner seats on four accounts, in place of any seat the demo org
    gave them or the receiver (so the seats below are the test's own)."""
    with engine.begin() as conn:
        users = conn.execute(select(owners.c.id).where(owners.c.source == "demo",
                                                       owners.c.active.is_(True))
                             .order_by(owners.c.id)).scalars().all()
        owned = Counter(conn.execute(select(accounts.c.owner_id).where(
            accounts.c.source == "demo", accounts.c.deleted.is_(False))).scalars())
        a = max(users, key=lambda u: (owned[u], u))  # a leaver with a book
        b = next(u for u in users if u != a)
        ids = conn.execute(select(accounts.c.id).where(
            accounts.c.source == "demo", accounts.c.deleted.is_(False),
            accounts.c.owner_id.not_in([a, b])).order_by(accounts.c.id).limit(4)).scalars().all()
        conn.execute(atm.delete().where(atm.c.source == "demo", atm.c.user_id.in_([a, b])))
        conn.execute(atm.insert(), [
            {"source": "demo", "id": f"{x}/CSM", "account_id": x, "user_id": a, "team_role": "CSM",
             "origin": "CSM", "deleted": False} for x in ids])
    return a, b, list(ids)


def test_demo_seats_move_in_the_mirror_the_results_list_them_and_revert_leaves_them_out(org, roe, tmp_path):
    a, b, ids = _demo_seats(org)
    plan = plan_and_approve(roe, tmp_path, str(RULES), a, b, source="demo")
    assert len([c for c in plan.changes if c.object_type == plans.SEAT]) == 4
    result = apply(roe, plan, str(RULES), tmp_path / "results.csv")
    assert result.exit_code == 0, result.output
    assert seats_of(org, "demo", a) == set()
    assert seats_of(org, "demo", b) == {(x, "CSM", "CSM") for x in ids}
    rows = read_results(tmp_path / "results.csv")
    assert [r["status"] for r in rows if r["object_type"] == "account_team_member"] == ["applied"] * 4
    # The account brief, read right after the apply, names the new team.
    brief = roe("account", ids[0], "--format", "json", rules=str(RULES))
    assert brief.exit_code == 0, brief.output
    team = {(m["id"], m["team_role"]) for m in json.loads(brief.stdout)["team"] if not m["is_owner"]}
    assert (b, "CSM") in team and not any(member == a for member, _ in team)

    revert = roe("revert", str(tmp_path / "results.csv"), "-o", str(tmp_path / "revert.json"))
    assert revert.exit_code == 0, revert.output
    assert revert.output.count("roe revert moves owners only") == 4
    back = plans.load_plan(tmp_path / "revert.json")
    assert back.changes and all(c.object_type != plans.SEAT for c in back.changes)


def test_team_seats_without_transfer_from_is_a_usage_error(org, roe):
    result = roe("reassign", "--findings", "OWN001", "--team-seats")
    assert result.exit_code == 2
    assert "--team-seats goes with --transfer-from" in result.output


def test_a_plan_written_before_team_seats_loads_verifies_and_writes_back_byte_identical():
    text = OLD_PLAN.read_text(encoding="utf-8")
    plan = plans.load_plan(OLD_PLAN)
    assert plan.compute_hash() == json.loads(text)["hash"] == plan.approval.hash
    assert plan_text(plan) == text


def test_a_plan_file_whose_seat_changes_the_owner_field_is_refused(tmp_path):
    data = json.loads(OLD_PLAN.read_text(encoding="utf-8"))
    seat = dict(data["changes"][0], object_type="account_team_member",
                object_id="001D00000000000001/CSM")
    data["changes"].append(seat)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        plans.load_plan(path)
    assert "change 3: an account_team_member change changes the team_seat" in err.value.what
