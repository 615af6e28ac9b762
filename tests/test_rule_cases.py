"""Every rule against its data file of cases (tests/rule_cases/<CODE>.toml), one test per case.

The cases use the format of `roe rules test` (README, "Rule cases") and run through the same
runner, :mod:`roe_cli.rulecases`, against tests/rule_cases/rules.toml: each builds a tiny org in a
fresh in-memory mirror, runs its rule as of the file's `as_of`, and must find exactly the findings
it lists, with the suggested owners it names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roe_cli.rulecases import load_case_file, load_cases, run_case
from roe_cli.rules import REGISTRY
from roe_cli.rulesfile import load_rules

CASES_DIR = Path(__file__).parent / "rule_cases"
RULES_FILE = CASES_DIR / "rules.toml"
CASES = load_cases(CASES_DIR, skip=RULES_FILE)


def _rows(case) -> int:
    return sum(len(case.org[k]) for k in ("accounts", "contacts", "opportunities"))


def test_every_rule_has_a_case_file_with_three_firing_and_three_quiet_cases():
    for code in REGISTRY:
        cases = load_case_file(CASES_DIR / f"{code}.toml")
        assert all(c.codes == (code,) for c in cases), f"{code}: a case runs another rule"
        firing = sum(1 for c in cases if c.expect)
        quiet = sum(1 for c in cases if not c.expect or len(c.expect) < _rows(c))
        assert firing >= 3, f"{code}: fewer than three cases that fire"
        assert quiet >= 3, f"{code}: fewer than three cases with records that must not fire"


@pytest.fixture(scope="module")
def base_rules():
    return load_rules(RULES_FILE)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file.stem}-{c.index}-{c.name[:50]}" for c in CASES])
def test_rule_case(case, base_rules):
    result = run_case(case, RULES_FILE, base_rules)
    assert result.passed, "\n".join([case.label, *result.diff()])
