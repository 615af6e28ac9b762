"""`roe account ID`: the one-screen brief of an account, on a hand-built mirror where every
figure is known."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from sqlalchemy import update

from roe_cli.models import (
    account_team_members,
    accounts,
    activities,
    contacts,
    owners,
    ownership_changes,
    waivers,
)
from tests.support.writeback import ANA, BEN, CLEO, DAN, T0, add_finding, make_org

AS_OF = "2026-11-01"
NOW = datetime(2026, 11, 1)


@pytest.fixture
def small(engine):
    """make_org's six accounts; account 3 (Ana's) gets a story: a parent, a stage, a handoff,
    a team, activities, findings and a waiver."""
    org = make_org(engine)
    acc = org["accounts"][3]
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == acc).values(
            name="Acme Corp", domain="acme.example", country="DE", employees=5000,
            lifecycle_stage="Customer", stage_changed_at=datetime(2026, 6, 1),
            parent_id=org["accounts"][4]))
        conn.execute(update(accounts).where(accounts.c.id == org["accounts"][4]).values(name="Acme Holding"))
        conn.execute(ownership_changes.insert(), [
            {"source": "demo", "object_type": "account", "object_id": acc, "old_owner_id": CLEO,
             "new_owner_id": ANA, "changed_at": datetime(2026, 9, 1), "origin": "sync"},
            {"source": "demo", "object_type": "account", "object_id": acc, "old_owner_id": None,
             "new_owner_id": CLEO, "changed_at": datetime(2025, 1, 1), "origin": "sync"},
        ])
        conn.execute(account_team_members.insert(), [
            {"source": "demo", "id": "T1", "account_id": acc, "user_id": DAN,
             "team_role": "Customer Success Manager", "origin": "AccountTeamMember", "deleted": False},
            {"source": "demo", "id": f"{acc}/SE__c", "account_id": acc, "user_id": BEN,
             "team_role": "Unmapped Role", "origin": "SE__c", "deleted": False},
            {"source": "demo", "id": "T3", "account_id": acc, "user_id": CLEO,
             "team_role": "Sales Manager", "origin": "AccountTeamMember", "deleted": True},
        ])
        con0, con1 = org["contacts"][6], org["contacts"][7]  # account 3's two contacts
        opp0 = org["opportunities"][6]  # its open deal
        conn.execute(update(contacts).where(contacts.c.id == con1).values(title="CFO"))
        conn.execute(contacts.insert(), {"source": "demo", "id": "003GONE", "account_id": acc,
                                         "owner_id": BEN, "name": "Gone", "deleted": True})
        acts = [
            ("A1", "call", acc, None, None, ANA, datetime(2026, 10, 20)),   # on the account
            ("A2", "email", acc, con0, None, ANA, datetime(2026, 10, 21)),  # account AND contact: once
            ("A3", "meeting", None, con1, None, BEN, datetime(2026, 10, 22)),  # via a live contact
            ("A4", "call", None, None, opp0, BEN, datetime(2026, 10, 23)),  # via a live deal
            ("A5", "call", None, "003GONE", None, DAN, datetime(2026, 10, 24)),  # deleted contact: no
            ("A6", "call", acc, None, None, DAN, datetime(2026, 7, 1)),  # before the 90 days: no
            ("A7", "call", acc, None, None, DAN, datetime(2026, 11, 2)),  # after --as-of: no
        ]
        conn.execute(activities.insert(), [
            {"source": "demo", "id": i, "kind": k, "account_id": a, "contact_id": c,
             "opportunity_id": o, "owner_id": w, "occurred_at": t, "deleted": False}
            for i, k, a, c, o, w, t in acts
        ])
        conn.execute(activities.insert(), {"source": "demo", "id": "A8", "kind": "call",
                                           "account_id": acc, "owner_id": DAN,
                                           "occurred_at": datetime(2026, 10, 25), "deleted": True})
        conn.execute(waivers.insert(), [
            {"rule": "OWN002", "source": "demo", "object_type": "contact", "object_id": con1,
             "reason": "Partner contact", "approved_by": "vp@example.com",
             "expires": date(2027, 1, 31), "created_at": T0, "origin": "cli"},
            {"rule": "OWN002", "source": "demo", "object_type": "contact", "object_id": con0,
             "reason": "expired", "approved_by": "vp@example.com",
             "expires": date(2026, 10, 1), "created_at": T0, "origin": "cli"},
        ])
    f_open = add_finding(engine, "HND001", "account", acc, ANA, None)
    f_res = add_finding(engine, "OWN002", "contact", con0, BEN, None, status="resolved")
    from roe_cli.models import findings
    with engine.begin() as conn:
        conn.execute(update(findings).values(account_id=acc).where(findings.c.id.in_([f_open, f_res])))
    return org | {"acc": acc, "open_finding": f_open, "resolved_finding": f_res}


def brief(roe, *args):
    res = roe("account", *args, "--as-of", AS_OF, "--format", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_the_brief_names_owner_role_team_territory_stage_and_parent(roe, small):
    b = brief(roe, small["acc"])
    assert b["account"]["name"] == "Acme Corp"
    assert b["account"]["stage"] == "Customer"
    assert b["account"]["stage_since"] == "2026-06-01T00:00:00Z"
    assert b["account"]["parent"] == {"id": small["accounts"][4], "name": "Acme Holding"}
    # DE with 5,000 employees: the first territory of the shipped rules.toml that fits
    assert b["account"]["territory"] == "EMEA Enterprise"
    owner = b["owner"]
    assert (owner["id"], owner["email"], owner["crm_role"]) == (ANA, "ana@example.com", "Account Executive")
    assert owner["role"] == "AE"  # through [role_map]
    assert owner["team"] == "EMEA Enterprise"  # the first [[teams]] entry listing ana
    res = roe("account", small["acc"], "--as-of", AS_OF)
    assert res.exit_code == 0, res.output
    for text in ("Acme Corp", "Customer since 2026-06-01", "Acme Holding", "EMEA Enterprise",
                 "Ana <ana@example.com>", "AE"):
        assert text in res.stdout


def test_ownership_history_is_newest_first_with_who_when_and_origin(roe, small):
    hist = brief(roe, small["acc"])["ownership_history"]
    assert [(h["changed_at"][:10], h["from"] and h["from"]["id"], h["to"]["id"], h["origin"])
            for h in hist] == [("2026-09-01", CLEO, ANA, "sync"), ("2025-01-01", None, CLEO, "sync")]


def test_engagement_counts_each_activity_once_through_the_account_its_live_contacts_and_deals(roe, small):
    eng = brief(roe, small["acc"])["engagement"]
    by_user = {e["user"]["id"]: (e["activities"], e["by_kind"]) for e in eng}
    # Ana: A1 (account), A2 (account and contact: once). Ben: A3 (contact), A4 (deal).
    # Dan: A5 is on a deleted contact, A6 before the 90 days, A7 after --as-of, A8 deleted: none.
    assert by_user == {ANA: (2, {"call": 1, "email": 1}), BEN: (2, {"call": 1, "meeting": 1})}


def test_contacts_are_listed_by_name_up_to_the_cap_and_the_rest_counted(roe, small, engine):
    with engine.begin() as conn:
        conn.execute(contacts.insert(), [
            {"source": "demo", "id": f"003X{n:04d}", "account_id": small["acc"], "owner_id": ANA,
             "name": f"Zed {n:04d}", "deleted": False} for n in range(500)
        ])
    b = brief(roe, small["acc"], "--contacts", "3")
    assert b["contacts"]["total"] == 502  # two from make_org, 500 added; the deleted one not
    assert [c["name"] for c in b["contacts"]["shown"]] == ["Contact 3.0", "Contact 3.1", "Zed 0000"]
    res = roe("account", small["acc"], "--contacts", "3", "--as-of", AS_OF)
    assert "and 499 more" in res.stdout
    assert roe("account", small["acc"], "--contacts", "-1").exit_code == 2


def test_open_deals_findings_waivers_and_team_are_in_the_brief(roe, small):
    b = brief(roe, small["acc"])
    assert [d["id"] for d in b["open_opportunities"]] == [small["opportunities"][6]]  # not the closed one
    assert [f["id"] for f in b["findings"]] == [small["open_finding"]]  # the resolved one is not
    assert [(w["object_id"], w["reason"]) for w in b["waivers"]] == [(small["contacts"][7], "Partner contact")]
    team = {(m["id"], m["team_role"], m["role"], m["is_owner"]) for m in b["team"]}
    assert team == {
        (ANA, None, "AE", True),  # the owner counts as a member
        (DAN, "Customer Success Manager", "CSM", False),  # team role through [role_map]
        (BEN, "Unmapped Role", "AE", False),  # no mapping: the user's own roe role
    }  # Cleo's row is deleted: not a member


def test_a_name_or_a_domain_in_any_case_finds_the_account(roe, small):
    assert brief(roe, "ACME corp")["account"]["id"] == small["acc"]
    assert brief(roe, "Acme.Example")["account"]["id"] == small["acc"]


def test_several_accounts_with_the_name_are_listed_and_roe_asks_for_the_id(roe, small, engine):
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == small["accounts"][0]).values(name="Acme Corp"))
    res = roe("account", "acme corp")
    assert res.exit_code == 2
    assert "2 accounts match 'acme corp'" in res.stderr
    assert small["accounts"][0] in res.stderr and small["acc"] in res.stderr
    assert "Cleo" in res.stderr and "Ana" in res.stderr  # each one's owner
    assert "Pass the account's id" in res.stderr


def test_an_unknown_account_exits_2_with_a_did_you_mean(roe, small):
    res = roe("account", "acme corq")
    assert res.exit_code == 2
    assert "did you mean 'Acme Corp'?" in res.stderr
    res = roe("account", "nothing-like-it")
    assert res.exit_code == 2 and "No account has the id, name or domain 'nothing-like-it'." in res.stderr


def test_source_chooses_between_two_crms_holding_the_same_id(roe, small, engine):
    with engine.begin() as conn:
        conn.execute(owners.insert(), {"source": "hubspot", "id": "9", "email": "h@example.com",
                                       "name": "Hub", "active": True})
        conn.execute(accounts.insert(), {"source": "hubspot", "id": small["acc"], "name": "Other",
                                         "owner_id": "9", "deleted": False})
    res = roe("account", small["acc"])
    assert res.exit_code == 2 and "Pass --source" in res.stderr
    assert brief(roe, small["acc"], "--source", "hubspot")["owner"]["name"] == "Hub"
    res = roe("account", small["acc"], "--source", "salesforce")
    assert res.exit_code == 2 and "no salesforce data" in res.stderr


def test_hostile_names_print_as_text_never_as_terminal_codes(roe, small, engine):
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == small["acc"]).values(
            name="<script>alert(1)</script>\x1b[2J[bold]x[/bold]"))
        conn.execute(update(contacts).where(contacts.c.id == small["contacts"][6]).values(
            title="\x1b]0;pwned\x07"))
    res = roe("account", small["acc"], "--as-of", AS_OF)
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert "<script>alert(1)</script>\\x1b[2J[bold]x[/bold]" in res.stdout
    assert "\\x1b]0;pwned\\x07" in res.stdout
    assert brief(roe, small["acc"])["account"]["name"].startswith("<script>")


def test_an_account_with_nothing_around_it_still_gets_a_brief(roe, engine):
    with engine.begin() as conn:
        conn.execute(accounts.insert(), {"source": "demo", "id": "001LONE", "name": "Lone",
                                         "deleted": False})
    b = brief(roe, "001LONE")
    assert b["owner"] is None and b["team"] == [] and b["contacts"] == {"total": 0, "shown": []}
    res = roe("account", "001LONE", "--as-of", AS_OF)
    assert res.exit_code == 0 and "No engagement in the last 90 days." in res.stdout


def test_an_empty_mirror_is_refused_with_what_to_do(roe, tmp_path):
    res = roe("account", "x", db=f"sqlite:///{tmp_path / 'none.db'}")
    assert res.exit_code == 2
