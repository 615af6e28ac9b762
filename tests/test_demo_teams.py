"""The demo org's account teams: every coverage scenario planted, its near misses quiet, and the
shipped rules.toml set as the generator plants. (The audit finding exactly what was planted, COV
rules included, is tests/test_demo.py's test over every rule.)"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from connectors.demo import teams
from connectors.demo.generator import generate
from roe_cli.models import account_team_members, demo_planted
from roe_cli.rulesfile import load_rules

from .conftest import AS_OF, RULES

FIRES = {"cov001-coasting": "COV001", "cov002-none": "COV002", "cov002-two": "COV002",
         "cov003-gap": "COV003"}
QUIET = {"edge-cov001-share": "COV001", "edge-cov001-exempt": "COV001",
         "edge-cov002-inactive": "COV002", "edge-cov003-mapped": "COV003"}


def test_every_team_scenario_is_planted_and_its_near_misses_stay_quiet():
    accounts_of: dict[str, list[str]] = defaultdict(list)
    found: set[tuple[str, str]] = set()  # (rule, account id)
    members = 0
    for chunk in generate(3000, seed=5, as_of=AS_OF):
        for aid, scenario in chunk.scenarios.items():
            accounts_of[scenario].append(aid)
        found |= {(p["rule"], p["object_id"]) for p in chunk.planted}
        members += len(chunk.rows.get("account_team_member", []))
    assert set(FIRES) | set(QUIET) == set(teams.TEAM_SCENARIOS)
    for scenario, rule in FIRES.items():
        assert accounts_of[scenario], scenario
        assert all((rule, aid) in found for aid in accounts_of[scenario]), scenario
    for scenario, rule in QUIET.items():
        assert accounts_of[scenario], scenario
        assert not any((rule, aid) in found for aid in accounts_of[scenario]), scenario
    assert members > 300  # teams on many accounts, not only the planted ones


def test_a_tiny_org_has_one_of_each_team_scenario():
    scenarios = {s for chunk in generate(60, seed=1, as_of=AS_OF) for s in chunk.scenarios.values()}
    assert scenarios >= set(teams.TEAM_SCENARIOS)


def test_rules_toml_sets_the_coverage_rules_as_the_demo_plants_them():
    rules = load_rules(RULES).rules
    cov1, cov2, cov3 = rules["COV001"], rules["COV002"], rules["COV003"]
    assert (cov1.window_days, cov1.min_activities, cov1.min_share, cov1.exempt_roles) == (
        teams.WINDOW_DAYS, teams.MIN_ACTIVITIES, teams.MIN_SHARE, teams.EXEMPT_ROLES)
    assert cov2.quarterback_roles == teams.QUARTERBACK_ROLES
    assert [{"stage": r.stage, "roles": r.roles} for r in cov3.requirements] == list(teams.REQUIREMENTS)
    assert all(rules[c].enabled for c in ("COV001", "COV002", "COV003"))


def test_roe_demo_writes_the_teams_into_the_mirror(roe, engine):
    result = roe("demo", "--accounts", "400", "--seed", "9", "--as-of", "2026-11-01")
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        live, deleted = (conn.execute(select(func.count()).select_from(account_team_members)
                                      .where(account_team_members.c.deleted.is_(d))).scalar_one()
                         for d in (False, True))
        cov = conn.execute(select(func.count()).select_from(demo_planted)
                           .where(demo_planted.c.rule.like("COV%"))).scalar_one()
    assert live > 20 and deleted >= 1 and cov >= 3
    assert f"{live + deleted:,} account team members" in " ".join(result.stdout.split())
