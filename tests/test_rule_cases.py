"""Every rule against its data file of cases (tests/rule_cases/<CODE>.toml), one test per case.

Each case builds a tiny org in a fresh mirror, runs only its rule as of a fixed time, and must find
exactly the findings it lists, with the suggested owners it names.
"""

from __future__ import annotations

import shutil
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from roe_cli.audit import run_audit
from roe_cli.db import open_database
from roe_cli.models import (
    accounts,
    activities,
    contacts,
    findings,
    opportunities,
    owners,
    ownership_changes,
)
from roe_cli.rules import REGISTRY
from roe_cli.rulesfile import parse_rules
from roe_cli.shared.domains import email_domain, normalize_domain

CASES_DIR = Path(__file__).parent / "rule_cases"
AS_OF = datetime(2026, 6, 1, 12, 0, 0)
SOURCE = "test"

# id: (CRM role, active, manager)
PEOPLE = {
    "ana": ("Account Executive", True, "max"),
    "ben": ("Account Executive", True, "max"),
    "cal": ("Account Executive", True, "max"),
    "sam": ("Sales Development Representative", True, "max"),
    "sid": ("Solutions Engineer", True, "max"),
    "amy": ("Account Manager", True, "max"),
    "cara": ("Customer Success Manager", True, "max"),
    "nora": ("Intern", True, "max"),
    "ivy": ("Account Executive", False, "max"),
    "ian": ("Account Executive", False, "old"),
    "max": ("Sales Manager", True, None),
    "old": ("Sales Manager", False, None),
}
BASE_RULES = """
[role_map]
"Account Executive" = "AE"
"Sales Development Representative" = "SDR"
"Solutions Engineer" = "SE"
"Account Manager" = "AM"
"Customer Success Manager" = "CSM"
"Sales Manager" = "MGR"
"""


def _cases():
    for path in sorted(CASES_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for index, case in enumerate(data["case"]):
            yield pytest.param(data, case, id=f"{data['rule']}-{index + 1}-{case['name'][:50]}")


def test_every_rule_has_a_case_file_with_three_firing_and_three_quiet_cases():
    for code in REGISTRY:
        data = tomllib.loads((CASES_DIR / f"{code}.toml").read_text(encoding="utf-8"))
        firing = sum(1 for c in data["case"] if c["expect"])
        quiet = sum(1 for c in data["case"] if not c["expect"] or len(c["expect"]) < _rows(c))
        assert firing >= 3, f"{code}: fewer than three cases that fire"
        assert quiet >= 3, f"{code}: fewer than three cases with records that must not fire"


def _rows(case) -> int:
    return sum(len(case.get(k, ())) for k in ("accounts", "contacts", "opportunities"))


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "mirror.db"
    engine = open_database(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(insert(owners), [
            {"source": SOURCE, "id": pid, "email": f"{pid}@corp.test", "name": pid.title(),
             "active": active, "role": role, "team": None, "manager_id": manager}
            for pid, (role, active, manager) in PEOPLE.items()
        ])
    engine.dispose()
    return path


def _ago(days) -> datetime | None:
    return None if days is None else AS_OF - timedelta(days=days)


def _load(engine, case) -> None:
    rows_accounts = [
        {"source": SOURCE, "id": a["id"], "name": f"Account {a['id']}", "website": a.get("website"),
         "domain": normalize_domain(a.get("website")), "owner_id": a.get("owner"),
         "country": a.get("country"), "state": a.get("state"), "employees": a.get("employees"),
         "industry": a.get("industry"), "lifecycle_stage": a.get("stage"),
         "stage_changed_at": _ago(a.get("stage_changed")), "created_at": _ago(a.get("created", 1000)),
         "deleted": a.get("deleted", False)}
        for a in case.get("accounts", [])
    ]
    rows_contacts = [
        {"source": SOURCE, "id": c["id"], "account_id": c.get("account"), "owner_id": c.get("owner"),
         "email": c.get("email"), "email_domain": email_domain(c.get("email")), "name": c["id"],
         "deleted": c.get("deleted", False)}
        for c in case.get("contacts", [])
    ]
    rows_opps = [
        {"source": SOURCE, "id": o["id"], "account_id": o.get("account"), "owner_id": o.get("owner"),
         "name": o["id"], "is_closed": o.get("closed", False), "is_won": o.get("won", False),
         "deleted": o.get("deleted", False)}
        for o in case.get("opportunities", [])
    ]
    rows_acts = [
        {"source": SOURCE, "id": f"T{i}", "kind": "call", "account_id": x.get("account"),
         "contact_id": x.get("contact"), "opportunity_id": x.get("opportunity"),
         "owner_id": x.get("owner"), "occurred_at": _ago(x["at"]), "deleted": x.get("deleted", False)}
        for i, x in enumerate(case.get("activities", []))
    ]
    rows_changes = [
        {"source": SOURCE, "object_type": "account", "object_id": ch["account"], "old_owner_id": ch.get("old"),
         "new_owner_id": ch.get("new"), "changed_at": _ago(ch["at"]), "origin": "crm-history"}
        for ch in case.get("changes", [])
    ]
    with engine.begin() as conn:
        for table, rows in ((accounts, rows_accounts), (contacts, rows_contacts), (opportunities, rows_opps),
                            (activities, rows_acts), (ownership_changes, rows_changes)):
            if rows:
                conn.execute(insert(table), rows)


@pytest.mark.parametrize(("data", "case"), list(_cases()))
def test_rule_case(data, case, template_db, tmp_path):
    code = data["rule"]
    db_path = tmp_path / "mirror.db"
    shutil.copy(template_db, db_path)
    engine = open_database(f"sqlite:///{db_path}")
    _load(engine, case)
    params = "\n".join(f"{k} = {_toml(v)}" for k, v in case.get("params", {}).items())
    text = BASE_RULES + data.get("rules", "") + f"\n[rules.{code}]\n{params}\n"
    config = parse_rules(text, path=str(tmp_path / "rules.toml"))
    run_audit(engine, config, AS_OF, [code])
    with engine.connect() as conn:
        got = conn.execute(
            select(findings.c.object_type, findings.c.object_id, findings.c.related_user_id,
                   findings.c.suggested_owner_id).where(findings.c.status != "resolved")
        ).all()
    engine.dispose()
    found = {(f"{t}:{i}", r or "") for t, i, r, _s in got}
    expected = {(e["object"], e.get("related", "")) for e in case["expect"]}
    assert found == expected
    suggested = {(f"{t}:{i}", r or ""): s or "" for t, i, r, s in got}
    for e in case["expect"]:
        if "suggested" in e:
            assert suggested[(e["object"], e.get("related", ""))] == e["suggested"], e["object"]


def _toml(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)
