"""`roe rules test PATH [--junit FILE]`: users' rule cases against their rules.toml (issue 12).

The cases are written the way a RevOps lead would: people named by e-mail (the ones the rules
file names exist on their own), times as days before `as_of`, the findings expected per rule.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

CASES_DIR = Path(__file__).parent / "rule_cases"

USER_RULES = """
[role_map]
"Account Executive" = "AE"

[[teams]]
name = "DACH"
role = "AE"
members = ["ana@acme.test", "ben@acme.test"]

[[territories]]
name = "DACH"
team = "DACH"
default_owner = "ana@acme.test"
match = { country = ["DE", "AT", "CH"] }

[rules.HND003]
max_idle_days = 14
"""

PASSING = """
as_of = 2026-03-31
owners = [{ id = "zoe@acme.test", role = "Account Executive" }]

[[case]]
name = "a German account owned outside the DACH team goes to its default owner"
rule = "OWN005"
accounts = [{ id = "A1", owner = "zoe@acme.test", country = "DE" }]
expect = [{ object = "account:A1", suggested = "ana@acme.test" }]

[[case]]
name = "every rule: a team account with an open deal idle for 15 days is neglected, nothing else"
accounts = [{ id = "A2", owner = "ben@acme.test", country = "AT" }]
opportunities = [{ id = "O1", account = "A2", owner = "ben@acme.test", amount = 5000 }]
activities = [{ account = "A2", owner = "ben@acme.test", at = 15 }]
expect = [{ rule = "HND003", object = "account:A2" }]

[[case]]
name = "the case's params win over the rules file: 30 idle days allowed"
rule = "HND003"
params = { max_idle_days = 30 }
accounts = [{ id = "A2", owner = "ben@acme.test", country = "AT" }]
opportunities = [{ id = "O1", account = "A2", owner = "ben@acme.test" }]
activities = [{ account = "A2", owner = "ben@acme.test", at = 15 }]
expect = []

[[case]]
name = "the case's rules replace the territories: Austria is no longer DACH"
rule = "OWN005"
rules = '''
[[territories]]
name = "DE"
team = "DACH"
match = { country = ["DE"] }
'''
accounts = [{ id = "A3", owner = "zoe@acme.test", country = "AT" }, { id = "A4", owner = "zoe@acme.test", country = "DE" }]
expect = [{ object = "account:A4", suggested = "" }]
"""

FAILING = """
as_of = 2026-03-31
owners = [{ id = "zoe@acme.test", role = "Account Executive" }]

[[case]]
name = "ben is wrongly expected as the suggestion, and A6 is not expected"
rule = "OWN005"
accounts = [{ id = "A5", owner = "zoe@acme.test", country = "DE" }, { id = "A6", owner = "zoe@acme.test", country = "CH" }]
expect = [{ object = "account:A5", suggested = "ben@acme.test" }, { object = "account:A7" }]
"""


@pytest.fixture
def user_files(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(USER_RULES, encoding="utf-8")
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "dach.toml").write_text(PASSING, encoding="utf-8")
    return rules, cases


def test_user_cases_that_hold_print_pass_for_each_and_exit_0(roe, user_files, tmp_path):
    rules, cases = user_files
    db = tmp_path / "never-created.db"
    res = roe("rules", "test", str(cases), rules=rules, db=f"sqlite:///{db}")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["PASS"] * 4
    assert "4 cases: 4 passed, 0 failed" in res.stdout
    assert not db.exists(), "the cases run in memory: the mirror is not created"


def test_a_failing_user_case_exits_1_with_what_was_expected_and_what_was_found(roe, user_files):
    rules, cases = user_files
    (cases / "wrong.toml").write_text(FAILING, encoding="utf-8")
    res = roe("rules", "test", str(cases), rules=rules)
    assert res.exit_code == 1, res.stdout + res.stderr
    out = res.stdout
    assert f"FAIL  {cases / 'wrong.toml'}  #1 ben is wrongly expected" in out
    assert "expected, not found: OWN005 account:A7" in out
    assert "found, not expected: OWN005 account:A6 (suggested ana@acme.test)" in out
    assert ("found, but OWN005 account:A5: suggested expected 'ben@acme.test', "
            "found 'ana@acme.test'") in out
    assert "5 cases: 4 passed, 1 failed" in out


def test_junit_report_has_a_testcase_per_case_and_a_failure_with_the_diff(roe, user_files, tmp_path):
    rules, cases = user_files
    (cases / "wrong.toml").write_text(FAILING, encoding="utf-8")
    report = tmp_path / "junit.xml"
    res = roe("rules", "test", str(cases), "--junit", str(report), rules=rules)
    assert res.exit_code == 1
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "1"
    suites = {Path(s.get("name")).name: s for s in root.findall("testsuite")}
    assert set(suites) == {"dach.toml", "wrong.toml"}
    assert [c.find("failure") is None for c in suites["dach.toml"].findall("testcase")] == [True] * 4
    (failed,) = suites["wrong.toml"].findall("testcase")
    failure = failed.find("failure")
    assert failure is not None
    assert "expected, not found: OWN005 account:A7" in (failure.text or "")


def test_a_case_naming_an_unknown_owner_fails_with_did_you_mean(roe, user_files):
    rules, cases = user_files
    (cases / "typo.toml").write_text(
        'as_of = 2026-03-31\n[[case]]\nname = "typo"\nrule = "OWN005"\n'
        'accounts = [{ id = "A1", owner = "ana@acme.tset", country = "DE" }]\nexpect = []\n',
        encoding="utf-8")
    res = roe("rules", "test", str(cases / "typo.toml"), rules=rules)
    assert res.exit_code == 1
    assert "error: accounts owner 'ana@acme.tset' is no owner of the case; did you mean 'ana@acme.test'?" \
        in res.stdout


def test_a_case_file_with_an_unknown_key_is_refused_with_exit_2(roe, user_files):
    rules, cases = user_files
    (cases / "bad.toml").write_text(
        'as_of = 2026-03-31\n[[case]]\nname = "bad"\naccounts = []\nexpects = []\n', encoding="utf-8")
    res = roe("rules", "test", str(cases / "bad.toml"), rules=rules)
    assert res.exit_code == 2
    assert "unknown key 'expects'" in res.stderr and "did you mean 'expect'" in res.stderr


def test_without_a_rules_file_the_command_says_so_and_exits_2(roe, user_files, tmp_path):
    _rules, cases = user_files
    res = roe("rules", "test", str(cases), rules=tmp_path / "missing.toml")
    assert res.exit_code == 2
    assert "No rules file at" in res.stderr


def test_the_project_rule_cases_pass_through_roe_rules_test(roe):
    res = roe("rules", "test", str(CASES_DIR), rules=CASES_DIR / "rules.toml")
    assert res.exit_code == 0, res.stdout[-3000:]
    assert sum(1 for line in res.stdout.splitlines() if line.startswith("PASS")) >= 9 * 6
    assert "rules.toml" not in "".join(line for line in res.stdout.splitlines() if line.startswith("PASS"))


def test_roe_rules_and_its_options_still_work_beside_the_test_subcommand(roe):
    listed = roe("rules")
    assert listed.exit_code == 0 and "OWN001" in listed.stdout
    checked = roe("rules", "--check")
    assert checked.exit_code == 0 and "is valid" in checked.stdout
    explained = roe("rules", "--explain", "OWN004")
    assert explained.exit_code == 0 and "OWN004" in explained.stdout


def test_the_readme_example_cases_pass_against_the_rules_they_describe(roe, user_files):
    rules, cases = user_files
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Rule cases", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (cases / "readme.toml").write_text(example, encoding="utf-8")
    res = roe("rules", "test", str(cases / "readme.toml"), rules=rules)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "2 cases: 2 passed, 0 failed" in res.stdout


def test_a_case_can_waive_a_finding_with_its_own_exception_and_expect_it_waived(roe, user_files):
    rules, cases = user_files
    (cases / "waived.toml").write_text('''
as_of = 2026-03-31
rule = "OWN005"
owners = [{ id = "zoe@acme.test", role = "Account Executive" }]

[[case]]
name = "a waived finding is still found, as waived"
rules = """
[[exceptions]]
rule = "OWN005"
object = "account:A1"
reason = "Partner account"
approved_by = "vp@acme.test"
expires = 2026-12-31
"""
accounts = [{ id = "A1", owner = "zoe@acme.test", country = "DE" }]
expect = [{ object = "account:A1", status = "waived" }]

[[case]]
name = "expecting it open shows the status that differs"
accounts = [{ id = "A1", owner = "zoe@acme.test", country = "DE" }]
rules = """
[[exceptions]]
rule = "OWN005"
object = "account:A1"
reason = "Partner account"
approved_by = "vp@acme.test"
expires = 2026-12-31
"""
expect = [{ object = "account:A1", status = "open" }]
''', encoding="utf-8")
    res = roe("rules", "test", str(cases / "waived.toml"), rules=rules)
    assert res.exit_code == 1, res.stdout + res.stderr
    assert res.stdout.splitlines()[0].startswith("PASS")
    assert "found, but OWN005 account:A1: status expected 'open', found 'waived'" in res.stdout


@pytest.mark.parametrize(("records", "says"), [
    ('accounts = [{ owner = "ana@acme.test" }]', "has no id"),
    ('activities = [{ owner = "ana@acme.test" }]', "has no at"),
    ('accounts = [{ id = "A1", employees = "lots" }]', "employees must be a number, not 'lots'"),
    ('accounts = [{ id = "A1", created = "yesterday" }]', "created must be a number of days"),
    ('accounts = [{ id = "A1", deleted = "no" }]', "deleted must be true or false"),
    ('accounts = [{ id = "A1" }, { id = "A1" }]', "has two accounts with the id 'A1'"),
    ('rules = { teams = 1 }', "rules must be TOML text"),
    ('accounts = { id = "A1" }', "records are lists"),
], ids=["no-id", "no-at", "number", "time", "flag", "duplicate", "rules-table", "not-a-list"])
def test_a_malformed_record_is_refused_with_exit_2_naming_it_never_an_internal_error(
        roe, user_files, records, says):
    rules, cases = user_files
    (cases / "bad.toml").write_text(
        f'as_of = 2026-03-31\n[[case]]\nname = "bad"\nrule = "OWN005"\n{records}\nexpect = []\n',
        encoding="utf-8")
    res = roe("rules", "test", str(cases / "bad.toml"), rules=rules)
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "bad.toml: case #1 (bad)" in res.stderr and says in res.stderr


def test_a_case_owner_replaces_the_files_owner_of_the_same_id(roe, user_files):
    rules, cases = user_files
    (cases / "own.toml").write_text(
        'as_of = 2026-03-31\nrule = "OWN002"\n'
        'owners = [{ id = "zoe@acme.test", role = "Account Executive" }]\n'
        '[[case]]\nname = "zoe has left"\nowners = [{ id = "zoe@acme.test", active = false }]\n'
        'accounts = [{ id = "A1", owner = "zoe@acme.test", country = "DE" }]\n'
        'expect = [{ object = "account:A1" }]\n', encoding="utf-8")
    res = roe("rules", "test", str(cases / "own.toml"), rules=rules)
    assert res.exit_code == 0, res.stdout + res.stderr
