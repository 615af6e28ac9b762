"""A typo'd role is an error, never a silent change of results; a rules file's problems come in
one pass.

`allowed_roles = ["SDRR"]` once made OWN001 jump from 46 to 2,004 open findings with a mere
warning under `rules --check` and nothing under `audit`. Real files, the real CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from roe_cli.models import audit_runs
from roe_cli.rulesfile import RulesFileError, parse_rules

from .support.rules import SHIPPED, edited, line_of


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def problems(text: str) -> dict[str, str]:
    with pytest.raises(RulesFileError) as info:
        parse_rules(text)
    assert info.value.exit_code == 2
    return {p.key: p.message for p in info.value.problems}


def test_a_typod_allowed_role_is_an_error_with_did_you_mean_under_rules_check(roe, tmp_path):
    text = edited('allowed_roles = ["SDR"]', 'allowed_roles = ["SDRR"]')
    path = write(tmp_path, text)
    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 2, result.output
    assert "is valid" not in result.stdout
    line = line_of(text, '["SDRR"]')
    assert (f"{path}:{line}: rules.OWN001.allowed_roles[0]: no [[teams]] role "
            "or [role_map] value gives the role 'SDRR', so it would match nobody; did you mean "
            "'SDR'?") in flat(result.stderr)


def test_a_typod_role_stops_every_command_that_loads_the_rules(roe, org, tmp_path):
    path = write(tmp_path, edited('exempt_roles = ["SE"]', 'exempt_roles = ["Se", "SEE"]'))
    with org.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(audit_runs)).scalar_one()
    for args in (["audit", "--as-of", "2026-11-01"], ["rules"], ["rules", "--explain", "OWN004"]):
        result = roe(*args, rules=path)
        assert result.exit_code == 2, (args, result.output)
        assert "rules.OWN004.exempt_roles[0]" in result.stderr, args
        assert "rules.OWN004.exempt_roles[1]" in result.stderr, args
        assert "did you mean 'SE'?" in result.stderr, args
    with org.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_runs)).scalar_one() == runs


def test_roles_in_a_table_of_lists_are_checked_too():
    found = problems(edited('customer = ["AM", "CSM"]', 'customer = ["AM", "CMS"]'))
    assert found == {"rules.HND002.stage_roles.customer[1]":
                     "no [[teams]] role or [role_map] value gives the role 'CMS', so it would "
                     "match nobody; did you mean 'CSM'?"}


def test_a_role_nothing_is_close_to_lists_the_roles_there_are():
    (message,) = problems(edited('allowed_roles = ["SDR"]', 'allowed_roles = ["Partner"]')).values()
    assert "the roles given are 'AE', 'AM', 'CSM', 'EXEC', 'MGR', 'SDR' or 'SE'" in message


def test_a_role_map_value_that_is_a_near_miss_of_a_role_is_an_error(roe, tmp_path):
    # No other mapping or team gives 'AMM'; 'AM' is a role of roe's rules (HND002's defaults).
    text = edited('"Account Manager" = "AM"', '"Account Manager" = "AMM"')
    path = write(tmp_path, text)
    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 2, result.output
    out = flat(result.stderr)
    line = line_of(text, '"AMM"')
    assert (f"{path}:{line}: role_map.\"Account Manager\": the role 'AMM' is "
            "given by no other mapping or team and is none of the rules' default roles; did you "
            "mean 'AM'?") in out
    # ... and the rule that now names a role nobody has says so in the same pass.
    assert "rules.HND002.stage_roles.customer[0]" in out


def test_a_near_miss_of_a_role_only_a_rule_default_uses_is_an_error():
    text = ('[role_map]\n"Sales Development Representative" = "SDRs"\n'
            '"Account Executive" = "AE"\n')
    assert problems(text) == {'role_map."Sales Development Representative"':
                              "the role 'SDRs' is given by no other mapping or team and is none of "
                              "the rules' default roles; did you mean 'SDR'?"}


def test_roles_that_are_far_apart_or_given_by_a_team_are_fine():
    text = edited('"VP Sales" = "EXEC"', '"VP Sales" = "EXEC"\n"Partner Manager" = "PARTNER"')
    text = edited('allowed_roles = ["SE"]', 'allowed_roles = ["SE", "PARTNER"]', text)
    config = parse_rules(text)
    assert config.role_map["Partner Manager"] == "PARTNER"
    assert config.rules["OWN006"].allowed_roles == ("SE", "PARTNER")
    # A file with no roles at all leans on the rules' defaults: nothing to report.
    assert parse_rules("[rules.OWN001]\nseverity = \"high\"\n").rules["OWN001"]
    assert parse_rules(SHIPPED).warnings == ()


def test_every_problem_of_a_rules_file_is_listed_in_one_pass(roe, tmp_path):
    assert roe("demo", "--accounts", "5").exit_code == 0
    text = edited('allowed_roles = ["SDR"]', 'allowed_roles = ["SDRR"]')
    text = edited('"Account Manager" = "AM"', '"Account Manager" = "AMM"', text)
    text = edited("window_days = 30", "windw_days = 30", text)
    text = edited('"malik@example.com", "ana@example.com",',
                  '"malik@example.com", "anna@example.com",', text)
    path = write(tmp_path, text)
    want = {"rules.OWN001.allowed_roles[0]", 'role_map."Account Manager"', "rules.OWN004.windw_days",
            "teams[1].members[3]"}

    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 2, result.output
    # + the 'AM' that HND002, COV002's quarterback_roles and COV003's requirement name
    assert f"{path} has {len(want) + 3} problems:" in result.stderr
    assert ": rules.COV003.requirements[0].roles[0]: " in result.stderr
    for key in want:
        assert f": {key}: " in result.stderr, key
    assert "did you mean 'ana@example.com'?" in flat(result.stderr)

    as_json = roe("rules", "--check", "--format", "json", rules=path)
    assert as_json.exit_code == 2
    keys = {p["key"] for p in json.loads(as_json.stdout)["problems"]}
    assert want <= keys


def test_one_mistake_gives_one_error_not_one_per_role_it_hides():
    # The only team giving 'SE' has a bad member: that is the one problem, not every rule naming SE.
    text = edited('"Solutions Engineer" = "SE"\n', "")
    text = edited('members = ["ivo@example.com"]', 'members = ["ivo(at)example.com"]', text)
    assert list(problems(text)) == ["teams[0].members[0]"]
    # A [role_map] that does not validate: its error only.
    assert list(problems(edited('"VP Sales" = "EXEC"', '"VP Sales" = ["EXEC"]'))) == [
        'role_map."VP Sales"']
