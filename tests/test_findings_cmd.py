"""`roe findings` (filters, table, JSON) and `roe waive` (waived, never failing, back when expired)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from roe_cli.models import contacts, findings, owners, waivers

AS_OF = "2026-11-01"


def table_ids(stdout: str) -> list[int]:
    """The id column of a `roe findings` table."""
    cells = (line.split("│")[1].strip() for line in stdout.splitlines() if line.startswith("│"))
    return [int(c) for c in cells if c.isdigit()]


def as_json(result) -> dict:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_table_lists_open_and_waived_most_severe_first_and_says_how_many_more(roe, org):
    every = as_json(roe("findings", "--format", "json"))["findings"]
    assert {f["status"] for f in every} == {"open", "waived"}  # the default: no resolved ones
    result = roe("findings", "--limit", "5")
    assert result.exit_code == 0
    for header in ("id", "rule", "severity", "status", "object", "owner", "suggested owner", "first seen"):
        assert header in result.stdout
    first = every[0]
    assert first["severity"] == "high"
    assert f"{first['object_type']}:{first['object_name']}" in result.stdout
    assert first["owner_email"] in result.stdout
    assert table_ids(result.stdout) == [f["id"] for f in every[:5]]
    assert f"Showing 5 of {len(every)} findings; {len(every) - 5} more" in result.stdout
    everything = roe("findings", "--limit", "0")
    assert table_ids(everything.stdout) == [f["id"] for f in every]
    assert "more" not in everything.stdout
    assert f"{len(every)} finding(s)." in everything.stdout


def test_json_is_the_audit_document_of_the_latest_run(roe, org):
    audit = as_json(roe("audit", "--as-of", AS_OF, "--format", "json", "--fail-on", "never"))
    listed = as_json(roe("findings", "--format", "json"))
    assert listed["run_id"] == audit["run_id"] == 2
    assert listed["as_of"] == audit["as_of"]
    assert listed["summary"]["open"] == audit["summary"]["open"]
    assert listed["summary"]["rules"] == audit["summary"]["rules"]
    assert listed["findings"] == audit["findings"]


def test_filters_by_rule_severity_owner_status_and_source(roe, org):
    every = as_json(roe("findings", "--format", "json"))["findings"]

    own002 = as_json(roe("findings", "--rule", "own002", "--format", "json"))["findings"]
    assert own002 and {f["rule"] for f in own002} == {"OWN002"}
    assert len(own002) == sum(f["rule"] == "OWN002" for f in every)

    medium_up = as_json(roe("findings", "--severity", "medium", "--format", "json"))["findings"]
    assert {f["severity"] for f in medium_up} == {"medium", "high"}
    assert len(medium_up) == sum(f["severity"] != "low" for f in every)

    owner = own002[0]
    by_email = as_json(roe("findings", "--owner", owner["owner_email"].upper(), "--format", "json"))["findings"]
    by_id = as_json(roe("findings", "--owner", owner["owner_id"], "--format", "json"))["findings"]
    assert by_email == by_id
    assert {f["owner_email"] for f in by_email} == {owner["owner_email"]}
    assert len(by_email) == sum(f["owner_id"] == owner["owner_id"] for f in every)

    waived = as_json(roe("findings", "--status", "waived", "--format", "json"))["findings"]
    assert waived and {f["status"] for f in waived} == {"waived"}
    assert as_json(roe("findings", "--status", "resolved", "--format", "json"))["findings"] == []

    assert len(as_json(roe("findings", "--source", "demo", "--format", "json"))["findings"]) == len(every)
    # a source the mirror holds nothing of is refused, not an empty (all-clear) answer
    none = roe("findings", "--source", "hubspot", "--format", "json")
    assert none.exit_code == 2 and "holds no hubspot data" in none.stderr


def test_new_lists_only_findings_first_seen_in_the_latest_run(roe, org):
    roe("audit", "--as-of", AS_OF, "--fail-on", "never")
    assert as_json(roe("findings", "--new", "--format", "json"))["findings"] == []
    # Hand a clean contact to an inactive owner: OWN002 (and OWN001) flag it in the next run.
    with org.begin() as conn:
        inactive = conn.execute(select(owners.c.id).where(owners.c.active.is_(False))).scalars().first()
        flagged = set(conn.execute(select(findings.c.object_id)).scalars())
        contact = next(c for c in conn.execute(select(contacts.c.id).where(contacts.c.deleted.is_(False))).scalars()
                       if c not in flagged)
        conn.execute(update(contacts).where(contacts.c.id == contact).values(owner_id=inactive))
    roe("audit", "--as-of", AS_OF, "--fail-on", "never")
    new = as_json(roe("findings", "--new", "--format", "json"))["findings"]
    assert new and {f["object_id"] for f in new} == {contact}
    assert "OWN002" in {f["rule"] for f in new}
    table = roe("findings", "--new")
    assert f"contact:{new[0]['object_name']}" in table.stdout


def test_names_are_printed_literally_not_as_markup(roe, org):
    every = as_json(roe("findings", "--rule", "OWN001", "--format", "json"))["findings"]
    with org.begin() as conn:
        conn.execute(update(contacts).where(contacts.c.id == every[0]["object_id"]).values(name="[red]Acme[/red]"))
    assert "contact:[red]Acme[/red]" in roe("findings", "--rule", "OWN001").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("--rule", "OWN999"), "Unknown rule 'OWN999'"),
        (("--status", "closed"), "Unknown status closed"),
        (("--severity", "urgent"), "urgent"),
    ],
)
def test_bad_filters_are_usage_errors(roe, org, args, message):
    result = roe("findings", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_findings_before_any_audit_says_to_run_one(roe):
    roe("demo", "--accounts", "5", "--as-of", AS_OF)
    result = roe("findings")
    assert result.exit_code == 2
    assert "Run `roe audit` first" in result.stderr


# --- roe waive -------------------------------------------------------------------------------


def test_waiver_is_shown_never_fails_a_run_and_expires(roe, org):
    """OWN001 (medium) does not depend on time, so only the waiver changes between the runs."""
    # Audits may look at most a day ahead: a waiver until today, then tomorrow's audit.
    until = datetime.now(UTC).date()
    after = until + timedelta(days=1)
    before = as_json(roe("audit", "--rule", "OWN001", "--as-of", AS_OF, "--format", "json", "--fail-on", "medium"))
    targets = [f["id"] for f in before["findings"] if f["status"] == "open"]
    assert len(targets) >= 2
    assert roe("audit", "--rule", "OWN001", "--as-of", AS_OF, "--fail-on", "medium").exit_code == 1

    for fid in targets:
        result = roe("waive", str(fid), "--reason", "Partner contacts", "--by", "vp@example.com",
                     "--until", until.isoformat())
        assert result.exit_code == 0, result.output
        assert f"Waived finding {fid}" in result.stdout
        assert f"until {until.isoformat()} inclusive" in result.stdout
    listed = as_json(roe("findings", "--rule", "OWN001", "--format", "json"))["findings"]
    assert {f["id"]: f["status"] for f in listed} == {fid: "waived" for fid in targets}

    # While the waiver holds (up to and including --until): reported as waived, exit 0.
    for when in (AS_OF, until.isoformat()):
        res = roe("audit", "--rule", "OWN001", "--as-of", when, "--format", "json", "--fail-on", "medium")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert {f["id"]: f["status"] for f in doc["findings"]} == {fid: "waived" for fid in targets}
        assert doc["summary"]["open"] == 0
        assert doc["summary"]["waived"] == len(targets)

    # The day after: the same findings are open again and fail the run.
    res = roe("audit", "--rule", "OWN001", "--as-of", after.isoformat(), "--format", "json", "--fail-on", "medium")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert {f["id"]: f["status"] for f in doc["findings"]} == {fid: "open" for fid in targets}
    assert doc["summary"]["open"] == len(targets)


def test_waive_without_end_date_says_so(roe, org):
    fid = as_json(roe("findings", "--status", "open", "--format", "json"))["findings"][0]["id"]
    result = roe("waive", str(fid), "--reason", "Accepted", "--by", "ops@example.com")
    assert result.exit_code == 0
    assert "with no end date" in result.stdout
    with org.connect() as conn:
        assert conn.execute(select(findings.c.status).where(findings.c.id == fid)).scalar() == "waived"


@pytest.mark.parametrize(
    "args, message",
    [
        (("999999", "--reason", "x", "--by", "me"), "No finding with id 999999"),
        (("1", "--reason", "x", "--by", "me", "--until", "2020-01-01"), "would already have expired"),
        (("1", "--reason", "x", "--by", "me", "--until", "next week"), "Cannot read the --until date"),
        (("1", "--reason", "  ", "--by", "me"), "A waiver needs a reason"),
    ],
)
def test_waive_errors_exit_2(roe, org, args, message):
    result = roe("waive", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    with org.connect() as conn:  # nothing was waived
        assert conn.execute(select(func.count()).select_from(waivers).where(waivers.c.origin == "cli")).scalar() == 0
