"""The coverage rules' settings (COV001-COV003) are checked like every rule's: out-of-range
numbers and roles nobody has are errors naming the key, before any audit runs."""

from __future__ import annotations

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
