"""The coverage rules' settings (COV001-COV003) are checked like every rule's: out-of-range
numbers and roles nobody has are errors naming the key, before any audit runs."""

from __future__ import annotations

import json

import pytest

from roe_cli.rulesfile import RulesFileError, parse_rules

ROLES = '[role_map]\n"Account Manager" = "AM"\n"Customer Success Manager" = "CSM"\n'


def problems(text: str) -> dict[str, str]:
    with pytest.raises(RulesFileError) as info:
        parse_rules(text)
    assert info.value.exit_code == 2
    return {p.key: p.message for p in info.value.problems}


@pytest.mark.parametrize("share", ["1.5", "-0.1"])
def test_a_min_share_outside_zero_to_one_is_an_error(share):
    found = problems(ROLES + f"[rules.COV001]\nmin_share = {share}\n")
    assert list(found) == ["rules.COV001.min_share"]


def test_a_quarterback_role_no_team_or_role_map_gives_is_an_error_with_did_you_mean():
    found = problems(ROLES + '[rules.COV002]\nquarterback_roles = ["AMM"]\n')
    assert "AM" in found["rules.COV002.quarterback_roles[0]"]
    assert "did you mean" in found["rules.COV002.quarterback_roles[0]"]


def test_an_empty_quarterback_list_is_an_error():
    assert list(problems(ROLES + "[rules.COV002]\nquarterback_roles = []\n")) == [
        "rules.COV002.quarterback_roles"]


def test_a_requirement_role_nobody_has_is_an_error_naming_its_place():
    found = problems(ROLES + '[rules.COV003]\nrequirements = [{ stage = "Customer", roles = ["AM", "CSN"] }]\n')
    (key, message), = found.items()
    assert key == "rules.COV003.requirements[0].roles[1]"
    assert "'CSN'" in message and "CSM" in message


@pytest.mark.parametrize("entry, key", [
    ('{ stage = "Customer" }', "rules.COV003.requirements[0].roles"),
    ('{ roles = [] }', "rules.COV003.requirements[0].roles"),
    ('{ roles = ["AM"], min_employees = 10, max_employees = 5 }', "rules.COV003.requirements[0]"),
    ('{ roles = ["AM"], region = "EMEA" }', "rules.COV003.requirements[0].region"),
])
def test_a_malformed_requirement_is_an_error_naming_it(entry, key):
    assert key in problems(ROLES + f"[rules.COV003]\nrequirements = [{entry}]\n")


def test_valid_coverage_settings_load_with_the_documented_defaults():
    config = parse_rules(ROLES + '[rules.COV003]\nrequirements = [{ stage = "Customer", min_employees = 1000, roles = ["AM", "CSM"] }]\n')
    assert config.rules["COV001"].min_share == 0.1
    assert config.rules["COV002"].quarterback_roles == ("AM",)
    (req,) = config.rules["COV003"].requirements
    assert (req.stage, req.min_employees, req.max_employees, req.roles) == ("Customer", 1000, None, ("AM", "CSM"))


def _small_org(engine, hostile: str) -> None:
    from datetime import datetime, timedelta

    from sqlalchemy import insert

    from roe_cli.models import account_team_members, accounts, activities, owners

    now = datetime(2026, 11, 1)
    people = [("u1", "amy@example.com", "Account Manager"), ("u2", "ben@example.com", "Account Executive"),
              ("u3", "cat@example.com", "Account Executive")]
    with engine.begin() as conn:
        conn.execute(insert(owners), [{"source": "demo", "id": i, "email": e, "name": hostile, "active": True,
                                       "role": r} for i, e, r in people])
        conn.execute(insert(accounts), [{"source": "demo", "id": "A1", "name": hostile, "owner_id": "u1",
                                         "lifecycle_stage": "Customer", "deleted": False}])
        conn.execute(insert(account_team_members), [
            {"source": "demo", "id": "A1/1", "account_id": "A1", "user_id": "u2",
             "team_role": "Account Manager", "origin": "AccountTeamMember", "deleted": False},
            {"source": "demo", "id": "A1/2", "account_id": "A1", "user_id": "u3",
             "team_role": hostile, "origin": "AccountTeamMember", "deleted": False},
            {"source": "demo", "id": "A1/3", "account_id": "A1", "user_id": "u3",
             "team_role": "Account Manager", "origin": "AccountTeamMember", "deleted": True},
        ])
        conn.execute(insert(activities), [
            {"source": "demo", "id": f"T{k}", "kind": "call", "account_id": "A1", "owner_id": "u1",
             "occurred_at": now - timedelta(days=k + 1), "deleted": False} for k in range(6)])


def test_coverage_findings_carry_their_account_team_in_the_json(roe, engine, tmp_path):
    hostile = "<script>alert(1)</script>\x1b[31m"
    _small_org(engine, hostile)
    rules = tmp_path / "rules.toml"
    rules.write_text(ROLES + '"Account Executive" = "AE"\n', encoding="utf-8")
    result = roe("audit", "--as-of", "2026-11-01", "--format", "json", "--fail-on", "never",
                 "--rule", "COV001,COV002,OWN001", rules=rules)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cov = {(f["rule"], f["related_user_id"]): f for f in doc["findings"]}
    # u2 and u3 log nothing of the owner's six activities: both coast; two AMs (owner, u2's team role)
    assert set(cov) == {("COV001", "u2"), ("COV001", "u3"), ("COV002", None)}
    team = [{"user_id": "u1", "email": "amy@example.com", "team_role": None, "role": "AM"},
            {"user_id": "u2", "email": "ben@example.com", "team_role": "Account Manager", "role": "AM"},
            {"user_id": "u3", "email": "cat@example.com", "team_role": hostile, "role": "AE"}]
    for finding in cov.values():
        assert finding["team"] == team
    assert cov[("COV002", None)]["details"]["quarterback_ids"] == "u1,u2"
    again = json.loads(roe("findings", "--format", "json", rules=rules).stdout)
    assert all(f["team"] == team for f in again["findings"] if f["rule"].startswith("COV"))
    assert all("team" not in f for f in again["findings"] if not f["rule"].startswith("COV"))
