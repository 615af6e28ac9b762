"""End to end: `roe sync --source salesforce` against the emulator org, then `roe audit`.

The emulator holds the demo generator's org in Salesforce's shape, so a correct connector and a
correct rule pass together must report exactly what the generator planted, as with `roe demo`.
"""
# The sf_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from roe_cli.models import accounts, activities, contacts, opportunities, owners, ownership_changes
from tests.conftest import AS_OF, RULES
from tests.emulators.salesforce import TOKEN, sf_emulator  # noqa: F401

ORG = {"accounts": 150, "seed": 7}

# The columns the rules read, per table.
RULE_COLUMNS = {
    owners: ("id", "email", "active", "role", "manager_id"),
    accounts: ("id", "domain", "owner_id", "parent_id", "country", "state", "employees", "industry",
               "lifecycle_stage", "stage_changed_at", "created_at", "deleted"),
    contacts: ("id", "account_id", "owner_id", "email_domain", "deleted"),
    opportunities: ("id", "account_id", "owner_id", "is_closed", "is_won", "deleted"),
    activities: ("id", "account_id", "contact_id", "opportunity_id", "owner_id", "occurred_at", "deleted"),
    ownership_changes: ("object_type", "object_id", "old_owner_id", "new_owner_id", "changed_at", "origin"),
}


def rule_data(engine, source: str) -> dict[str, set[tuple]]:
    def whole_seconds(value):
        return value.replace(microsecond=0) if hasattr(value, "microsecond") else value

    with engine.connect() as conn:
        return {
            table.name: {tuple(map(whole_seconds, row)) for row in conn.execute(
                select(*(table.c[c] for c in cols)).where(table.c.source == source))}
            for table, cols in RULE_COLUMNS.items()
        }


def audit_keys(roe) -> set[tuple]:
    result = roe("audit", "--as-of", AS_OF.date().isoformat(), "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    return {(f["rule"], f["object_type"], f["object_id"], f["related_user_id"] or "")
            for f in json.loads(result.stdout)["findings"]}


@pytest.mark.parametrize("sf_emulator", [ORG], indirect=True)
def test_sync_and_audit_find_exactly_the_planted_conflicts_then_follow_changes(sf_emulator, roe, engine):
    org = sf_emulator.org
    result = roe("sync", "--source", "salesforce")
    assert result.exit_code == 0, result.output
    for word in ("owner", "account", "contact", "opportunity", "activity", "ownership_change",
                 "read", "inserted", "updated", "deleted"):
        assert word in result.stdout
    assert f"API calls: {len(sf_emulator.requests)}" in result.stdout
    assert f"org API usage: {org.api_used:,} of 15,000 requests" in result.stdout
    assert sf_emulator.writes() == []

    planted = {(p["rule"], p["object_type"], p["object_id"], p["related_user_id"] or "") for p in org.planted}
    assert len(planted) > 30 and {p[0] for p in planted} >= {"OWN001", "OWN004", "HND001", "HND002",
                                                             "COV001", "COV002", "COV003"}
    assert audit_keys(roe) == planted

    # The org changes behind roe's back: an edit, a delete, an owner change.
    with engine.connect() as conn:
        account_id, owner_id = conn.execute(select(accounts.c.id, accounts.c.owner_id).where(
            accounts.c.deleted.is_(False)).order_by(accounts.c.id.desc())).first()
        contact_id = conn.execute(select(contacts.c.id).where(contacts.c.deleted.is_(False))
                                  .order_by(contacts.c.id.desc())).scalar()
    new_owner = next(u["Id"] for u in org.records["User"].values() if u["IsActive"] and u["Id"] != owner_id)
    org.update("Account", account_id, Website="http://www.Changed-Domain.example/about")
    org.set_owner("Account", account_id, new_owner)
    org.delete("Contact", contact_id)
    sf_emulator.clear_log()

    result = roe("sync", "--source", "salesforce")
    assert result.exit_code == 0, result.output
    assert len(sf_emulator.requests) == 8  # one call per sObject (AccountTeamMember included)
    with engine.connect() as conn:
        account = conn.execute(select(accounts).where(accounts.c.id == account_id)).mappings().one()
        assert (account["owner_id"], account["domain"]) == (new_owner, "changed-domain.example")
        assert conn.execute(select(contacts.c.deleted).where(contacts.c.id == contact_id)).scalar() is True
        origins = conn.execute(select(ownership_changes.c.origin).where(
            ownership_changes.c.object_id == account_id, ownership_changes.c.new_owner_id == new_owner)).scalars()
        assert sorted(origins) == ["crm-history", "observed"]
    account_row = report_row(result.stdout, "account")
    # "updated" also counts what the engine's 5-minute overlap re-reads unchanged
    assert account_row["updated"] >= 1 and account_row["inserted"] == 0
    assert account_row["owner changes"] == 1
    assert report_row(result.stdout, "contact")["deleted"] == 1
    assert report_row(result.stdout, "ownership_change")["inserted"] == 1


def report_row(stdout: str, object_type: str) -> dict[str, int]:
    """One object's line of the sync report table, by column."""
    columns = ("read", "inserted", "updated", "deleted", "owner changes")
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == object_type:
            return {name: int(value.replace(",", "")) for name, value in zip(columns, cells[1:], strict=True)}
    raise AssertionError(f"no {object_type} line in:\n{stdout}")


@pytest.mark.parametrize("sf_emulator", [ORG], indirect=True)
def test_the_synced_mirror_holds_what_roe_demo_would(sf_emulator, roe, engine):
    assert roe("sync", "--source", "salesforce").exit_code == 0
    result = roe("demo", "--accounts", "150", "--seed", "7", "--as-of", AS_OF.date().isoformat())
    assert result.exit_code == 0, result.output
    got, want = rule_data(engine, "salesforce"), rule_data(engine, "demo")
    for table in want:
        assert got[table] == want[table], table


def test_a_wrong_token_exits_3_and_is_never_printed(sf_emulator, roe, tmp_path):
    wrong = "00D000000000001EAA!AQ0AQWrongTokenThatMustNeverBePrinted.0123456789"
    log = tmp_path / "roe.log"
    result = roe("--log-file", str(log), "sync", "--source", "salesforce",
                 env={"SALESFORCE_ACCESS_TOKEN": wrong})
    assert result.exit_code == 3
    assert "401" in result.stderr and "SALESFORCE_ACCESS_TOKEN" in result.stderr
    text = result.output + log.read_text()
    assert "INVALID_SESSION_ID" in text
    for secret in (wrong, "WrongTokenThatMustNeverBePrinted", TOKEN):
        assert secret not in text


def test_request_limit_exceeded_exits_3_and_the_next_run_finishes(sf_emulator, roe, engine):
    sf_emulator.fail(status=403, soql="FROM Opportunity", body=[
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    result = roe("sync", "--source", "salesforce")
    assert result.exit_code == 3
    assert "REQUEST_LIMIT_EXCEEDED" in result.stderr and "kept" in result.stderr
    with engine.connect() as conn:
        assert len(conn.execute(select(contacts.c.id)).all()) == sf_emulator.org.count("Contact")
        assert not conn.execute(select(opportunities.c.id)).all()
    assert roe("sync", "--source", "salesforce").exit_code == 0
    with engine.connect() as conn:
        assert len(conn.execute(select(opportunities.c.id)).all()) == sf_emulator.org.count("Opportunity")


def test_the_salesforce_table_of_rules_toml_reaches_the_connector(sf_emulator, roe, engine, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + "\n[salesforce]\nbulk_threshold = 300\nbulk_poll_seconds = 0.01\n"
                     "page_size = 200\nlifecycle_stage_field = \"Type\"\n")
    result = roe("sync", "--source", "salesforce", "--full", rules=rules)
    assert result.exit_code == 0, result.output
    org = sf_emulator.org
    jobs = {r.sobject for r in sf_emulator.requests if r.path.endswith("/jobs/query")}
    # above the threshold, a pull continues in Bulk API 2.0; below it, it stays on REST
    assert jobs == {s for s in ("User", "Account", "Contact", "Opportunity", "Task", "Event")
                    if org.count(s) > 300}
    assert {"Contact", "Task"} <= jobs and "Account" not in jobs
    with engine.connect() as conn:
        assert len(conn.execute(select(activities.c.id)).all()) == org.count("Task") + org.count("Event")
