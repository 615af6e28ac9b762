"""`roe realign`: a hand-built org where every choice is known (ties, holds, the default owner,
unassigned accounts), the balance figures, and a realign of the demo org that approves, applies
and reverts on the demo connector."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from roe_cli import plans
from roe_cli.models import accounts, contacts, opportunities, owners
from roe_cli.plans.balance import gini, spread_ratio
from roe_cli.rulesfile import load_rules
from tests.conftest import RULES

T0 = datetime(2026, 10, 1)
AS_OF = datetime(2026, 11, 1)

HAND_RULES = """
[role_map]
"Account Executive" = "AE"
"Sales Development" = "SDR"

[[teams]]
name = "West"
members = ["amy@x.com", "bob@x.com", "cat@x.com", "sam@x.com"]

[[teams]]
name = "East"
members = ["dee@x.com", "abe@x.com"]

[[teams]]
name = "North"
members = ["fay@x.com"]

[[territories]]
name = "West"
team = "West"
match = { country = ["US"] }

[[territories]]
name = "East"
team = "East"
default_owner = "dee@x.com"
match = { country = ["CA"] }

[[territories]]
name = "North"
team = "North"
match = { country = ["MX"] }

[rules.HND002]
stage_roles = { lead = ["SDR"], opportunity = ["AE"] }
"""

# (id, email, active, CRM role)
USERS = [
    ("OUT", "out@x.com", True, "Account Executive"),  # owns accounts outside its team
    ("AMY", "amy@x.com", True, "Account Executive"),
    ("BOB", "bob@x.com", True, "Account Executive"),
    ("CAT", "cat@x.com", False, "Account Executive"),  # inactive: never chosen
    ("SAM", "sam@x.com", True, "Sales Development"),
    ("DEE", "dee@x.com", True, "Account Executive"),  # East's default owner
    ("ABE", "abe@x.com", True, "Account Executive"),
    ("FAY", "fay@x.com", True, "Sales Development"),  # North's only member: no AE there
]

# (id, owner, country, stage, deleted)
ACCOUNTS = [
    ("A-amy1", "AMY", "US", "opportunity", False),
    ("A-amy2", "AMY", "US", "opportunity", False),
    ("A-bob1", "BOB", "US", "opportunity", False),
    ("A-cat1", "CAT", "US", "opportunity", False),  # owner in the team (inactive): not moved
    ("A-dee1", "DEE", "CA", "opportunity", False),
    ("A-dee2", "DEE", "CA", "opportunity", False),
    ("A-abe1", "ABE", "CA", "opportunity", False),
    ("W1", "OUT", "US", "opportunity", False),
    ("W2", "OUT", "US", "Opportunity", False),
    ("W3", "OUT", "US", "lead", False),
    ("W4", "OUT", "US", "prospect", False),  # a stage stage_roles does not map: any role
    ("W5", "OUT", "US", "opportunity", False),  # has an open deal: held
    ("W6", "OUT", "US", "opportunity", True),  # deleted: not looked at
    ("E1", "OUT", "CA", "opportunity", False),
    ("E2", "OUT", "CA", "opportunity", False),
    ("E3", "OUT", "CA", "opportunity", False),
    ("N1", "OUT", "MX", "opportunity", False),  # no eligible member: unassigned
    ("B1", "OUT", "BR", "opportunity", False),  # in no territory: unassigned
]


def make_hand_org(engine) -> None:
    with engine.begin() as conn:
        conn.execute(owners.insert(), [
            {"source": "demo", "id": i, "email": e, "name": e.split("@")[0].title(), "active": a,
             "role": r, "updated_at": T0} for i, e, a, r in USERS])
        conn.execute(accounts.insert(), [
            {"source": "demo", "id": i, "name": f"Account {i}", "owner_id": o, "country": c,
             "lifecycle_stage": s, "created_at": T0, "updated_at": T0, "deleted": d}
            for i, o, c, s, d in ACCOUNTS])
        conn.execute(accounts.insert(), [{"source": "demo", "id": "U1", "name": "Unowned",
                                          "owner_id": None, "country": "US", "deleted": False}])
        conn.execute(contacts.insert(), [
            {"source": "demo", "id": "C-W1-out", "account_id": "W1", "owner_id": "OUT",
             "name": "follows", "deleted": False},
            {"source": "demo", "id": "C-W1-amy", "account_id": "W1", "owner_id": "AMY",
             "name": "stays", "deleted": False},
            {"source": "demo", "id": "C-W5-out", "account_id": "W5", "owner_id": "OUT",
             "name": "follows W5", "deleted": False},
        ])
        conn.execute(opportunities.insert(), [
            {"source": "demo", "id": "O-W1-closed", "account_id": "W1", "owner_id": "OUT",
             "name": "closed", "amount": 10.0, "is_closed": True, "is_won": True, "deleted": False},
            {"source": "demo", "id": "O-W5-open", "account_id": "W5", "owner_id": "OUT",
             "name": "open", "amount": 500.0, "is_closed": False, "is_won": False,
             "deleted": False},
            {"source": "demo", "id": "O-W5-other", "account_id": "W5", "owner_id": "BOB",
             "name": "open, Bob's", "amount": 70.0, "is_closed": False, "is_won": False,
             "deleted": False},
            {"source": "demo", "id": "O-amy1", "account_id": "A-amy1", "owner_id": "AMY",
             "name": "Amy's deal", "amount": 1000.0, "is_closed": False, "is_won": False,
             "deleted": False},
        ])


@pytest.fixture
def hand(engine, tmp_path):
    make_hand_org(engine)
    path = tmp_path / "new-rules.toml"
    path.write_text(HAND_RULES, encoding="utf-8")
    return path


def _moves(result) -> dict[str, str]:
    return {c.object_id: c.new for c in result.plan.changes}


def test_realign_gives_each_account_to_the_least_loaded_eligible_member_as_the_rules_say(engine, hand):
    result = plans.build_realign(engine, hand, as_of=AS_OF)
    accounts_moved = [c.object_id for c in result.plan.changes if c.object_type == "account"]
    # territory order (West, East), then account id
    assert accounts_moved == ["W1", "W2", "W3", "W4", "E1", "E2", "E3"]
    assert _moves(result) == {
        "W1": "BOB",  # AE stage: Amy 2, Bob 1 -> Bob (Cat is inactive, Sam is an SDR)
        "C-W1-out": "BOB",  # the old owner's contact follows; Amy's contact and the closed deal stay
        "W2": "AMY",  # stage compared ignoring case; Amy 2, Bob 2: the tie goes by e-mail
        "W3": "SAM",  # lead -> SDR only
        "W4": "SAM",  # unmapped stage: anyone; Amy 3, Bob 2, Sam 1
        "E1": "ABE",  # the default owner Dee (2) is more loaded than Abe (1)
        "E2": "DEE",  # Dee 2, Abe 2: the default owner is not more loaded, so first (abe < dee)
        "E3": "ABE",  # Dee 3, Abe 2
    }
    assert all(c.expected == "OUT" and c.expected_email == "out@x.com" for c in result.plan.changes)
    assert [(p.account_id, p.territory) for p in result.held] == [("W5", "West")]
    assert [(p.account_id, p.territory) for p in result.unassigned] == [("B1", None), ("N1", "North")]
    assert "no active member" in result.unassigned[1].reason
    assert result.moved == 7
    origin = result.plan.origin
    assert (origin["kind"], origin["moved"], origin["held"], origin["unassigned"]) == \
        ("realign", 7, 1, 2)


def test_realign_moves_open_deal_accounts_with_their_old_owners_open_deals_when_asked(engine, hand):
    result = plans.build_realign(engine, hand, move_open_deals=True, as_of=AS_OF)
    moves = _moves(result)
    assert not result.held
    # W5 after W4: Amy 3, Bob 2 -> Bob; its contact and OUT's open deal follow, Bob's own stays
    assert moves["W5"] == moves["C-W5-out"] == moves["O-W5-open"] == "BOB"
    assert "O-W5-other" not in moves and "O-W1-closed" not in moves
    after = result.after.by_owner()  # type: ignore[union-attr]
    assert after["BOB"].pipeline == 570.0 and after["BOB"].accounts == 3


def test_realign_balances_by_open_pipeline_when_asked(engine, hand):
    result = plans.build_realign(engine, hand, balance="pipeline", as_of=AS_OF)
    moves = _moves(result)
    # Amy carries 1,000 of open pipeline, Bob 70: both AE accounts of West go to Bob
    assert moves["W1"] == moves["W2"] == "BOB"


def test_realign_is_the_same_plan_every_time(engine, hand):
    first = plans.build_realign(engine, hand, as_of=AS_OF).plan
    again = plans.build_realign(engine, hand, as_of=AS_OF).plan
    assert [c.to_json() for c in first.changes] == [c.to_json() for c in again.changes]


def test_realign_reports_the_balance_before_and_after(engine, hand):
    result = plans.build_realign(engine, hand, as_of=AS_OF)
    before, after = result.before.by_owner(), result.after.by_owner()  # type: ignore[union-attr]
    # the population: active members of the territories' teams (Cat is inactive; OUT is no member)
    assert set(before) == {"AMY", "BOB", "SAM", "DEE", "ABE", "FAY"}
    assert (before["SAM"].accounts, after["SAM"].accounts) == (0, 2)
    assert (before["AMY"].pipeline, after["AMY"].pipeline) == (1000.0, 1000.0)
    assert result.before.ratio("accounts") is None  # Sam and Fay own nothing: unbounded
    assert result.after.gini("accounts") < result.before.gini("accounts")  # type: ignore[union-attr]


def test_gini_and_the_largest_smallest_ratio():
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 3]) == pytest.approx(2 / 3)
    assert gini([]) == 0.0
    assert spread_ratio([2, 8, 4]) == 4.0
    assert spread_ratio([0, 3]) is None
    assert spread_ratio([0, 0]) == 1.0


def test_roe_realign_prints_the_balance_holds_and_unassigned_and_saves_a_standard_plan(
        engine, hand, roe, tmp_path):
    out = tmp_path / "realign.json"
    result = roe("realign", "--rules", str(hand), "--as-of", "2026-11-01", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = result.stdout
    for expected in ("Balance per owner", "sam@x.com", "0 -> 2", "Gini", "largest/smallest",
                     "Held (open opportunity): 1", "W5", "Unassigned (not moved): 2",
                     "in no territory", "Realign: 7 account(s) moved, 1 held, 2 unassigned.",
                     "realign: West", "Plan saved to"):
        assert expected in text, expected
    plan = plans.load_plan(out)
    assert plan.origin["kind"] == "realign" and len(plan.changes) == 8

    piped = roe("realign", "--rules", str(hand), "--as-of", "2026-11-01", "-o", "-")
    assert json.loads(piped.stdout)["origin"]["kind"] == "realign"
    assert "Balance per owner" in piped.stderr


def test_roe_realign_refuses_a_bad_balance_and_a_missing_rules_file(engine, hand, roe, tmp_path):
    assert roe("realign", "--rules", str(hand), "--balance", "revenue").exit_code == 2
    missing = roe("realign", "--rules", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "nope.toml" in missing.output


# --------------------------------------------------------------------------------------------
# The demo org: exactly the accounts the rules choose, then approve, apply and revert.


def _owner(org, object_type: str, object_id: str) -> str | None:
    table = {"account": accounts, "contact": contacts, "opportunity": opportunities}[object_type]
    with org.connect() as conn:
        return conn.execute(select(table.c.owner_id).where(table.c.id == object_id)).scalar_one()


def test_realign_on_the_demo_org_moves_exactly_the_accounts_owned_outside_their_team(
        org, roe, tmp_path):
    audit = json.loads(roe("audit", "--as-of", "2026-11-01", "--format", "json", "--no-store",
                           "--fail-on", "never", "--rule", "OWN005").stdout)
    flagged = {f["object_id"] for f in audit["findings"]}
    assert flagged, "the demo org breaks OWN005 somewhere"
    with org.connect() as conn:
        open_deal = set(conn.execute(select(opportunities.c.account_id).where(
            opportunities.c.is_closed.is_(False), opportunities.c.deleted.is_(False))).scalars())
        people = {r.id: r for r in conn.execute(select(owners))}
        stage = dict(conn.execute(select(accounts.c.id, accounts.c.lifecycle_stage)).all())
    config = load_rules(RULES)
    result = plans.build_realign(org, RULES, as_of=AS_OF)
    moved = {c.object_id for c in result.plan.changes if c.object_type == "account"}
    held = {p.account_id for p in result.held}
    no_member = {p.account_id for p in result.unassigned if p.territory is not None}
    # every OWN005 account is moved, held or has no eligible member; nothing else is moved
    assert moved | held | no_member == flagged
    assert not (moved & held) and not (moved & no_member)
    assert held == (flagged - no_member) & open_deal and not (moved & open_deal)
    stage_roles = {k.lower(): set(v) for k, v in config.rules["HND002"].stage_roles.items()}
    for change in result.plan.changes:
        if change.object_type != "account":
            continue
        new = people[change.new]
        territory = change.why["realign"]
        team = next(t.team for t in config.territories if t.name == territory)
        assert new.active and new.email.lower() in config.team_members(team)
        wanted = stage_roles.get((stage[change.object_id] or "").lower())
        assert wanted is None or config.role_of(new.email, new.role) in wanted

    out = tmp_path / "realign.json"
    assert roe("realign", "--rules", str(RULES), "--as-of", "2026-11-01", "-o", str(out),
               "--move-open-deals").exit_code == 0
    plan = plans.load_plan(out)
    assert roe("approve", str(out), "--by", "vp@example.com").exit_code == 0
    applied = roe("apply", str(out))
    assert applied.exit_code == 0, applied.output
    for change in plan.changes:
        assert _owner(org, change.object_type, change.object_id) == change.new
    after = json.loads(roe("audit", "--as-of", "2026-11-01", "--format", "json", "--no-store",
                           "--fail-on", "never", "--rule", "OWN005").stdout)
    still = {f["object_id"] for f in after["findings"]}
    assert still == no_member  # only the accounts with no eligible member are left
    assert not roe("realign", "--rules", str(RULES), "--as-of", "2026-11-01",
                   "--move-open-deals").stdout.count("realign: ")  # nothing left to move

    results = Path(str(out).replace(".json", ".results.csv"))
    undo = tmp_path / "undo.json"
    assert roe("revert", str(results), "-o", str(undo)).exit_code == 0
    assert roe("approve", str(undo), "--by", "vp@example.com").exit_code == 0
    assert roe("apply", str(undo)).exit_code == 0
    for change in plan.changes:
        assert _owner(org, change.object_type, change.object_id) == change.expected
