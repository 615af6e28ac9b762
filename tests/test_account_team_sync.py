"""Account team members in the mirror, kept by the sync engine, on both CRM emulators.

Salesforce: ``AccountTeamMember`` rows (incremental on SystemModstamp, deletes through queryAll)
and the user lookup fields of ``[salesforce] team_fields``; an org without account teams syncs
with one warning and later incremental syncs do not ask again. HubSpot: the owner properties of
``[hubspot] team_properties``. A changed or emptied field changes or removes its member in the
account page's transaction; a crash mid-pull loses nothing; the calls stay at the minimum.
"""
# The emulator fixtures arrive as arguments named like their imports:
# ruff: noqa: F811

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from connectors.hubspot.settings import HubSpotSettings
from connectors.salesforce import connect
from connectors.salesforce.settings import SalesforceSettings
from roe_cli.models import account_team_members as atm
from roe_cli.models import accounts, sync_state
from roe_cli.shared.errors import CrmError
from roe_cli.sync import sync
from tests.conftest import AS_OF, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401
from tests.emulators.salesforce import sf_emulator  # noqa: F401

SMALL = pytest.mark.parametrize("sf_emulator", [{"accounts": 40, "seed": 3}], indirect=True)
TEAM_FIELDS = {"CSM": "CSM__c", "Sales Engineer": "Sales_Engineer__c"}


def connector(**overrides):
    settings = {"backoff_seconds": 0.0, "bulk_poll_seconds": 0.01, "team_fields": TEAM_FIELDS,
                **overrides}
    return connect(settings=SalesforceSettings(**settings))


def members(engine, source: str) -> set[tuple]:
    """Every team member row of ``source``: (id, account, user, role, origin, deleted)."""
    with engine.connect() as conn:
        return {
            (r.id, r.account_id, r.user_id, r.team_role, r.origin, r.deleted)
            for r in conn.execute(select(atm).where(atm.c.source == source))
        }


def expected_sf(org) -> set[tuple]:
    """What the mirror must hold for the org: read from the emulator's own records."""
    want = {
        (r["Id"], r["AccountId"], r["UserId"], r["TeamMemberRole"], "AccountTeamMember",
         r["IsDeleted"])
        for r in org.records["AccountTeamMember"].values()
    }
    for account in org.records["Account"].values():
        for role, name in TEAM_FIELDS.items():
            if account.get(name):
                want.add((f"{account['Id']}/{name}", account["Id"], account[name], role, name, False))
    return want


def seed_teams(org, n_team: int = 12) -> tuple[list[str], list[str]]:
    """Team members on the first accounts: AccountTeamMember rows and CSM / SE lookups, in place
    of the demo org's own teams (so each count below is the test's)."""
    org.records["AccountTeamMember"].clear()
    users = sorted(u for u, rec in org.records["User"].items() if rec["IsActive"])
    accts = sorted(a for a, rec in org.records["Account"].items() if not rec["IsDeleted"])
    roles = ["Account Manager", "Sales Engineer", "Executive Sponsor"]
    for i in range(n_team):
        org.create("AccountTeamMember", AccountId=accts[i % len(accts)], UserId=users[i % len(users)],
                   TeamMemberRole=roles[i % len(roles)], AccountAccessLevel="Read")
    for i in range(6):
        org.update("Account", accts[i], CSM__c=users[(i + 1) % len(users)])
    org.update("Account", accts[0], Sales_Engineer__c=users[2])
    return users, accts


# ---- Salesforce -----------------------------------------------------------------------------------


@SMALL
def test_a_full_salesforce_sync_loads_team_rows_and_team_field_members_in_one_extra_call(
    sf_emulator, engine
):
    org = sf_emulator.org
    seed_teams(org)
    report = sync(engine, connector(), full=True)

    got = members(engine, "salesforce")
    assert got == expected_sf(org)
    assert len([m for m in got if m[4] == "AccountTeamMember"]) == 12
    assert len([m for m in got if m[4] != "AccountTeamMember"]) == 7
    # one query for the new object; team fields ride on the Account query
    calls = sf_emulator.calls_by_sobject()
    assert calls["AccountTeamMember"] == 1 and calls["Account"] == 1
    account_query = next(r.soql for r in sf_emulator.requests if r.sobject == "Account")
    assert "CSM__c" in account_query and "Sales_Engineer__c" in account_query
    assert report.objects["account_team_member"].inserted == 19


@SMALL
def test_an_incremental_salesforce_sync_reflects_a_role_change_a_new_member_and_removals(
    sf_emulator, engine
):
    org = sf_emulator.org
    users, accts = seed_teams(org)
    sync(engine, connector(), full=True)
    team = sorted(org.records["AccountTeamMember"])
    with engine.connect() as conn:
        mark = conn.execute(select(sync_state.c.watermark).where(
            sync_state.c.object == "account_team_member")).scalar_one()
    org.advance(minutes=10)

    org.update("AccountTeamMember", team[0], TeamMemberRole="Account Manager Lead")  # role changed
    added = org.create("AccountTeamMember", AccountId=accts[20], UserId=users[0],
                       TeamMemberRole="Sales Engineer")  # a member added
    org.delete("AccountTeamMember", team[1])  # removed: an IsDeleted row through queryAll
    org.update("Account", accts[1], CSM__c=users[5])  # another CSM
    org.update("Account", accts[2], CSM__c=None)  # the CSM field emptied
    org.update("Account", accts[30], Sales_Engineer__c=users[3])  # a new field member
    sf_emulator.clear_log()

    report = sync(engine, connector())

    got = {m[0]: m for m in members(engine, "salesforce")}
    assert set(got.values()) == expected_sf(org) | {
        (f"{accts[2]}/CSM__c", accts[2], users[3], "CSM", "CSM__c", True)}
    assert got[team[0]][3] == "Account Manager Lead"
    assert got[added][1:4] == (accts[20], users[0], "Sales Engineer")
    assert got[team[1]][5] is True
    assert got[f"{accts[1]}/CSM__c"][2] == users[5]
    assert got[f"{accts[2]}/CSM__c"][5] is True  # the emptied field removed its member
    assert got[f"{accts[30]}/Sales_Engineer__c"][5] is False
    team_report = report.objects["account_team_member"]
    # Rows the pull read again that the mirror held count as updated, as for every object: the
    # role change and the deleted row, the rows inside the 5-minute overlap before the
    # watermark, and the one field member whose user changed. Inserted: the new row and the new
    # field member; deleted: the IsDeleted row and the emptied field.
    overlap = sum(1 for i in team[2:] if org.records["AccountTeamMember"][i]["SystemModstamp"]
                  >= mark - timedelta(minutes=5))
    assert (team_report.inserted, team_report.updated, team_report.deleted) == (2, 2 + overlap + 1, 2)
    assert sf_emulator.calls_by_sobject()["AccountTeamMember"] == 1


@SMALL
def test_a_full_salesforce_sync_keeps_field_members_and_marks_vanished_team_rows_deleted(
    sf_emulator, engine
):
    org = sf_emulator.org
    seed_teams(org)
    sync(engine, connector(), full=True)
    gone = sorted(org.records["AccountTeamMember"])[0]
    org.purge("AccountTeamMember", gone)  # emptied from the recycle bin: no IsDeleted row

    sync(engine, connector(), full=True)

    got = {m[0]: m for m in members(engine, "salesforce")}
    assert got[gone][5] is True
    assert all(not m[5] for i, m in got.items() if i != gone)  # the CSM members stay live


@pytest.mark.parametrize("sf_emulator", [{"accounts": 250, "seed": 3}], indirect=True)
def test_field_members_commit_with_their_account_page_when_a_sync_dies(sf_emulator, engine):
    org = sf_emulator.org
    users = sorted(u for u, rec in org.records["User"].items() if rec["IsActive"])
    for i, account_id in enumerate(sorted(org.records["Account"])):
        org.update("Account", account_id, CSM__c=users[i % len(users)])
    # the second Account page fails on every attempt
    sf_emulator.fail(status=500, path="/queryAll/01g", soql="FROM Account", times=2)
    with pytest.raises(CrmError):
        sync(engine, connector(page_size=200, retries=1), full=True)
    with engine.connect() as conn:
        committed = set(conn.execute(select(accounts.c.id)).scalars())
    field_accounts = {m[1] for m in members(engine, "salesforce")}
    assert len(committed) == 200 and field_accounts == committed

    sync(engine, connector(page_size=200))  # resumes
    assert members(engine, "salesforce") == expected_sf(org)


@pytest.mark.parametrize("sf_emulator", [{"accounts": 20, "seed": 3}], indirect=True)
def test_a_crash_mid_pull_of_team_members_loses_nothing_and_the_next_run_resumes(
    sf_emulator, engine
):
    org = sf_emulator.org
    users = sorted(org.records["User"])
    accts = sorted(org.records["Account"])
    for i in range(450):
        org.create("AccountTeamMember", AccountId=accts[i % len(accts)], UserId=users[i % len(users)],
                   TeamMemberRole=f"Role {i % 4}")
    sf_emulator.fail(status=500, path="/queryAll/01g", soql="FROM AccountTeamMember", times=2)
    with pytest.raises(CrmError) as err:
        sync(engine, connector(page_size=200, retries=1), full=True)
    assert err.value.exit_code == 3
    with engine.connect() as conn:
        kept = conn.execute(select(atm.c.updated_at).where(
            atm.c.origin == "AccountTeamMember")).scalars().all()
        mark = conn.execute(select(sync_state.c.watermark).where(
            sync_state.c.object == "account_team_member")).scalar_one()
    assert len(kept) == 200 and mark == max(kept)  # the first page and its watermark

    sync(engine, connector(page_size=200))
    assert members(engine, "salesforce") == expected_sf(org)


def test_an_org_without_account_teams_syncs_with_one_warning_and_is_not_asked_again(
    sf_emulator, roe, tmp_path
):
    sf_emulator.org.unavailable.add("AccountTeamMember")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + '\n[salesforce]\nteam_fields = { CSM = "CSM__c" }\n')

    first = roe("sync", "--source", "salesforce", rules=rules)
    assert first.exit_code == 0, first.output
    assert first.output.count("no account teams") == 1
    assert "Traceback" not in first.output
    assert sf_emulator.calls_by_sobject()["AccountTeamMember"] == 1

    sf_emulator.clear_log()
    second = roe("sync", "--source", "salesforce", rules=rules)
    assert second.exit_code == 0, second.output
    assert "no account teams" not in second.output
    calls = sf_emulator.calls_by_sobject()
    assert "AccountTeamMember" not in calls  # no failing call every night
    assert int(re.search(r"API calls: (\d+)", second.stdout).group(1)) == sum(calls.values())

    sf_emulator.clear_log()  # a full sync asks again: the org may have turned account teams on
    sf_emulator.org.unavailable.clear()
    third = roe("sync", "--source", "salesforce", "--full", rules=rules)
    assert third.exit_code == 0, third.output
    assert "no account teams" not in third.output
    assert sf_emulator.calls_by_sobject()["AccountTeamMember"] == 1


@pytest.mark.parametrize("bad, words", [
    ({"CSM": "CSM__c) OR Name != ''"}, "not an Account field's API name"),
    ({"": "CSM__c"}, "team role is empty"),
    ({"CSM": "CSM__c", "Success": "csm__c"}, "give each field one team role"),
])
def test_team_fields_that_are_not_api_names_are_refused_with_what_to_fix(bad, words):
    with pytest.raises(ValidationError) as err:
        SalesforceSettings(team_fields=bad)
    assert words in str(err.value)


def test_a_bad_team_field_in_rules_toml_is_a_config_error_naming_the_key(roe, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + '\n[salesforce]\nteam_fields = { CSM = "<script>" }\n')
    result = roe("rules", "--check", rules=rules)
    assert result.exit_code == 2
    assert "team_fields" in result.output and "API name" in result.output


# ---- HubSpot --------------------------------------------------------------------------------------

HS_TEAM = '\nteam_properties = { CSM = "csm_owner", "Solutions Engineer" = "se_owner" }\n'


def hs_rules(tmp_path, extra: str = HS_TEAM) -> str:
    path = tmp_path / f"rules-{abs(hash(extra))}.toml"
    path.write_text(RULES.read_text() + FAST_SETTINGS_TOML + extra)
    return str(path)


def active_owners(emu) -> list[str]:
    return sorted((o["id"] for o in emu.owners.values() if not o["archived"]), key=int)


def test_hubspot_owner_properties_become_members_and_follow_changes_incrementally(
    hs_emulator, roe, tmp_path, engine
):
    hs_emulator.load_demo(40, seed=5, as_of=AS_OF)
    owners = active_owners(hs_emulator)
    companies = hs_emulator.live("companies")
    for i, company in enumerate(companies[:5]):
        hs_emulator.update("companies", company.id, csm_owner=owners[i % len(owners)])
    hs_emulator.update("companies", companies[0].id, se_owner=owners[1])
    rules = hs_rules(tmp_path)

    first = roe("sync", "--source", "hubspot", rules=rules)
    assert first.exit_code == 0, first.output
    want = {(f"{c.id}/csm_owner", c.id, owners[i % len(owners)], "CSM", "csm_owner", False)
            for i, c in enumerate(companies[:5])}
    want.add((f"{companies[0].id}/se_owner", companies[0].id, owners[1], "Solutions Engineer",
              "se_owner", False))
    assert members(engine, "hubspot") == want
    search = next(c for c in hs_emulator.calls("POST") if "companies/search" in c.path)
    assert {"csm_owner", "se_owner"} <= set(search.body["properties"])

    hs_emulator.update("companies", companies[1].id, csm_owner=owners[3])  # another CSM
    hs_emulator.update("companies", companies[2].id, csm_owner=None)  # emptied
    hs_emulator.update("companies", companies[10].id, se_owner=owners[2])  # added
    second = roe("sync", "--source", "hubspot", rules=rules)
    assert second.exit_code == 0, second.output

    got = {m[0]: m for m in members(engine, "hubspot")}
    assert got[f"{companies[1].id}/csm_owner"][2] == owners[3]
    assert got[f"{companies[2].id}/csm_owner"][5] is True
    assert got[f"{companies[10].id}/se_owner"][1:] == (
        companies[10].id, owners[2], "Solutions Engineer", "se_owner", False)
    assert got[f"{companies[0].id}/csm_owner"][5] is False  # untouched members stay
    assert len(got) == 7


def test_hubspot_team_properties_cost_no_extra_call(hs_emulator, roe, tmp_path):
    hs_emulator.load_demo(40, seed=5, as_of=AS_OF)
    hs_emulator.update("companies", hs_emulator.live("companies")[0].id,
                       csm_owner=active_owners(hs_emulator)[0])
    calls = []
    for n, extra in enumerate(("", HS_TEAM)):
        hs_emulator.clear_log()
        result = roe("sync", "--source", "hubspot", "--full", rules=hs_rules(tmp_path, extra),
                     db=f"sqlite:///{tmp_path}/m{n}.db")
        assert result.exit_code == 0, result.output
        calls.append(len(hs_emulator.calls()))
    assert calls[0] == calls[1]


@pytest.mark.parametrize("bad, words", [
    ({"CSM": "CSM Owner"}, "internal name"),
    ({" ": "csm_owner"}, "team role is empty"),
    ({"CSM": "csm_owner", "Success": "csm_owner"}, "one team role"),
])
def test_team_properties_that_are_not_internal_names_are_refused(bad, words):
    with pytest.raises(ValidationError) as err:
        HubSpotSettings(team_properties=bad)
    assert words in str(err.value)


@SMALL
def test_a_team_field_the_org_does_not_have_says_to_check_team_fields(sf_emulator, engine):
    with pytest.raises(CrmError) as err:
        sync(engine, connector(team_fields={"CSM": "Customer_Success__c"}), full=True)
    assert "Customer_Success__c" in err.value.what and "team_fields" in (err.value.todo or "")


@SMALL
def test_values_of_a_team_field_that_are_not_user_ids_make_no_member(sf_emulator, engine):
    org = sf_emulator.org
    accts = sorted(org.records["Account"])
    queue = "00G" + "E" * 12 + "AAA"
    org.update("Account", accts[0], CSM__c=queue)  # a queue is not a person
    org.update("Account", accts[1], CSM__c=sorted(org.records["Contact"])[0])  # nor a contact
    users = sorted(org.records["User"])
    org.update("Account", accts[2], CSM__c=users[0])
    sync(engine, connector(), full=True)
    by_field = {m[1:3] for m in members(engine, "salesforce") if m[4] == "CSM__c"}
    assert by_field == {(accts[2], users[0])}


def test_a_text_value_in_a_hubspot_team_property_makes_no_member(hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(20, seed=5, as_of=AS_OF)
    companies = hs_emulator.live("companies")
    hs_emulator.update("companies", companies[0].id, csm_owner="<script>alert(1)</script>")
    hs_emulator.update("companies", companies[1].id, csm_owner=active_owners(hs_emulator)[0])
    result = roe("sync", "--source", "hubspot", rules=hs_rules(tmp_path))
    assert result.exit_code == 0, result.output
    assert {m[1] for m in members(engine, "hubspot")} == {companies[1].id}


def test_roe_demo_and_its_audit_still_run_with_the_team_object_in_the_sync_vocabulary(roe):
    built = roe("demo", "--accounts", "60", "--as-of", AS_OF.isoformat())
    assert built.exit_code == 0, built.output
    audit = roe("audit", "--as-of", AS_OF.isoformat(), "--fail-on", "never")
    assert audit.exit_code == 0, audit.output


@pytest.mark.parametrize("sf_emulator", [{"accounts": 250, "seed": 3}], indirect=True)
def test_team_rows_and_team_fields_come_through_bulk_api_2_pulls_the_same(sf_emulator, engine):
    org = sf_emulator.org
    _users, accts = seed_teams(org, n_team=450)
    for account_id in accts[200:]:  # on accounts of the bulk part of the pull too
        org.update("Account", account_id, Sales_Engineer__c=_users[1])
    sync(engine, connector(bulk_threshold=100, page_size=200), full=True)
    bulk = {r.sobject for r in sf_emulator.requests if r.path.endswith("/jobs/query")}
    assert {"Account", "AccountTeamMember"} <= bulk
    assert members(engine, "salesforce") == expected_sf(org)


@SMALL
def test_a_full_sync_that_finds_account_teams_gone_keeps_the_members_and_warns(sf_emulator, engine):
    org = sf_emulator.org
    seed_teams(org)
    sync(engine, connector(), full=True)
    before = members(engine, "salesforce")
    org.unavailable.add("AccountTeamMember")  # turned off, or the user lost access
    report = sync(engine, connector(), full=True)
    assert len([n for n in report.notes if "no account teams" in n]) == 1
    assert members(engine, "salesforce") == before
