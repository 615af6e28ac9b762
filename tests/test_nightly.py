"""`roe nightly`: one command for cron. Real mirrors, real files, the CLI, the HubSpot emulator.

It syncs the configured sources, audits, writes findings-DATE.csv and changes-DATE.csv, deletes
its own old files, logs each step, and exits with the worst step's code (4 lock, 3 CRM,
2 configuration, else the audit's 0/1), quietly when all went well and no one watches.
"""
# The hs_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import csv
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from connectors.registry import FACTORIES
from roe_cli.models import accounts, audit_runs, findings
from roe_cli.shared.errors import LockedError
from roe_cli.shared.vocab import Source
from roe_cli.workspace import Workspace
from tests.conftest import RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401

CREDENTIALS = ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_BASE_URL", "SALESFORCE_INSTANCE_URL",
               "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_USERNAME", "SALESFORCE_PASSWORD",
               "SALESFORCE_SECURITY_TOKEN")


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    """No CRM credentials from the machine running the tests; tests set what they need."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ROE_LOG", raising=False)


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    return folder


def rules_with(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "rules.toml"
    path.write_text(RULES.read_text() + FAST_SETTINGS_TOML + extra)
    return str(path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def latest_run(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(audit_runs.c.id))).scalar_one()


def test_on_the_demo_org_it_writes_the_open_findings_and_the_changes_private_and_excel_safe(
        roe, org, out):
    result = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    run_id = latest_run(org)
    with org.connect() as conn:
        open_ids = set(conn.execute(select(findings.c.id).where(
            findings.c.status == "open", findings.c.last_run_id == run_id)).scalars())
    found = out / "findings-2026-11-01.csv"
    rows = read_csv(found)
    assert {int(r["id"]) for r in rows} == open_ids and len(rows) == len(open_ids) > 0
    assert {r["status"] for r in rows} == {"open"}
    export = out / "export.csv"
    assert roe("export", "findings", "-o", str(export)).exit_code == 0
    assert list(rows[0]) == list(read_csv(export)[0])  # the columns of `roe export findings`
    assert found.read_bytes().startswith("\ufeff".encode())  # UTF-8 with BOM, for Excel
    changes = out / "changes-2026-11-01.csv"
    # The template's audit ran as of the same day: this run changed nothing.
    assert read_csv(changes) == []
    for path in (found, changes, out / "roe-nightly.log"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_a_first_run_lists_every_finding_as_new_with_owner_emails_and_account_names(
        roe, out, tmp_path):
    assert roe("demo", "--accounts", "120", "--as-of", "2026-11-01").exit_code == 0
    result = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    changes = read_csv(out / "changes-2026-11-01.csv")
    assert changes and {c["change"] for c in changes} == {"new"}
    assert list(changes[0]) == ["change", "id", "rule", "severity", "status", "object_type",
                                "object_id", "object_name", "account_name", "owner_email",
                                "suggested_owner_email", "related_user_email", "details"]
    assert all("@" in c["owner_email"] for c in changes if c["owner_email"])
    assert any(c["account_name"] for c in changes)
    opened = read_csv(out / "findings-2026-11-01.csv")
    assert {c["id"] for c in changes if c["status"] == "open"} == {r["id"] for r in opened}


def test_the_next_runs_changes_file_lists_what_was_resolved_and_then_reopened(roe, org, out):
    assert roe("nightly", "--out", str(out), "--as-of", "2026-11-01",
               "--fail-on", "never").exit_code == 0
    with org.connect() as conn:
        finding_id, account_id = conn.execute(
            select(findings.c.id, findings.c.object_id).where(
                findings.c.status == "open", findings.c.object_type == "account")
            .order_by(findings.c.id)).first()
    with org.begin() as conn:  # the account goes away: its findings resolve
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(deleted=True))
    assert roe("nightly", "--out", str(out), "--as-of", "2026-11-02",
               "--fail-on", "never").exit_code == 0
    run_id = latest_run(org)
    with org.connect() as conn:
        resolved = set(conn.execute(select(findings.c.id).where(
            findings.c.resolved_run_id == run_id)).scalars())
    second = read_csv(out / "changes-2026-11-02.csv")
    assert finding_id in resolved
    assert {int(c["id"]) for c in second} == resolved
    assert {c["change"] for c in second} == {"resolved"}

    with org.begin() as conn:  # it comes back: its findings reopen
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(deleted=False))
    result = roe("nightly", "--out", str(out), "--as-of", "2026-11-03", "--fail-on", "never",
                 "--summary")
    third = read_csv(out / "changes-2026-11-03.csv")
    assert {int(c["id"]) for c in third} == resolved
    assert {c["change"] for c in third} == {"reopened"}
    assert f"{len(resolved)} reopened" in result.stdout
    # Yesterday's files are still there: each day has its own.
    assert (out / "changes-2026-11-02.csv").exists()


def test_rerunning_the_same_day_replaces_that_days_files(roe, org, out):
    for _ in range(2):
        assert roe("nightly", "--out", str(out), "--as-of", "2026-11-05",
                   "--fail-on", "never").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "changes-2026-11-05.csv", "findings-2026-11-05.csv", "roe-nightly.log"]


def test_retention_deletes_only_its_own_dated_files_older_than_keep_days(roe, org, out, tmp_path):
    own_old = ["findings-2026-10-01.csv", "changes-2026-10-01.csv", "findings-2025-01-31.csv"]
    own_recent = ["findings-2026-10-29.csv", "changes-2026-10-29.csv"]
    decoys = ["findings-2026-10-01.csv.bak", "findings-2026-10-01.xlsx", "my-findings-2026-10-01.csv",
              "findings-2026-10-1.csv", "Findings-2026-10-01.csv", "findings-2026-10-01.csv.tmp",
              "report.csv", "roe-nightly.log", "changes-2026-13-45.csv"]
    for name in own_old + own_recent + decoys:
        (out / name).write_text("keep me?\n")
    (out / "changes-2026-09-01.csv").mkdir()  # a folder with the name: never touched
    outside = tmp_path / "findings-2026-09-01.csv"
    outside.write_text("not in --out\n")
    (out / "findings-2026-09-02.csv").symlink_to(outside)  # a link: never followed nor removed

    result = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--keep-days", "3",
                 "--fail-on", "never", "--summary")
    assert result.exit_code == 0, result.output
    left = {p.name for p in out.iterdir()}
    assert not left & set(own_old)
    assert left >= set(own_recent) | set(decoys) | {"changes-2026-09-01.csv",
                                                    "findings-2026-09-02.csv"}
    assert outside.read_text() == "not in --out\n"
    assert "Removed 3 dated file(s) older than 3 days." in result.stdout


def test_another_run_holding_the_lock_gives_exit_4_at_once_in_one_line(roe, org, out, tmp_path):
    lock_path = tmp_path / "mirror.db.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         f"f = open({str(lock_path)!r}, 'a+')\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\n"
         "f.truncate(0); f.write('apply plan.json, pid 4242'); f.flush()\n"
         "print('locked', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = roe("nightly", "--out", str(out), "--as-of", "2026-11-01")
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 4
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Another roe run is using this mirror" in lines[0], result.output
    assert sorted(p.name for p in out.iterdir()) == ["roe-nightly.log"]  # nothing else done
    assert '"exit_code": 4' in (out / "roe-nightly.log").read_text() or \
        "exit_code=4" in (out / "roe-nightly.log").read_text()


def test_a_crm_that_fails_gives_3_while_the_audit_runs_and_the_files_are_written(
        roe, org, out, tmp_path, hs_emulator, monkeypatch):
    hs_emulator.load_demo(20, seed=3)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-00000000-0000-0000-0000-000000000000")
    rules = rules_with(tmp_path, '\n[nightly]\nsources = ["hubspot"]\n')
    result = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--log-format", "json",
                 rules=rules)
    assert result.exit_code == 3, result.output
    assert (out / "findings-2026-11-01.csv").exists() and (out / "changes-2026-11-01.csv").exists()
    assert result.stdout.startswith("roe nightly 2026-11-01: exit 3, a CRM could not be synced")
    assert "Sync hubspot: FAILED (exit 3)" in result.stdout
    assert "Findings:" in result.stdout  # the audit ran anyway
    records = [json.loads(line) for line in (out / "roe-nightly.log").read_text().splitlines()]
    steps = {r["step"]: r for r in records if "step" in r}  # the other lines: the run's log
    assert steps["sync"]["exit_code"] == 3 and steps["sync"]["source"] == "hubspot"
    assert steps["sync"]["error"]
    assert steps["sync"]["api_calls"] == len(hs_emulator.calls()) > 0  # the refused calls count
    assert steps["audit"]["exit_code"] == 1 and steps["nightly"]["exit_code"] == 3
    assert "pat-na1-00000000" not in (out / "roe-nightly.log").read_text() + result.output


def test_a_configured_source_without_credentials_is_a_configuration_error_not_a_stop(
        roe, org, out, tmp_path):
    rules = rules_with(tmp_path, '\n[nightly]\nsources = ["hubspot"]\n')
    result = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--fail-on", "never",
                 rules=rules)
    assert result.exit_code == 2, result.output
    assert "No HubSpot access token" in result.stdout
    assert (out / "findings-2026-11-01.csv").exists()


def test_with_no_nightly_table_it_syncs_every_source_whose_credentials_are_set(
        roe, out, tmp_path, hs_emulator):
    hs_emulator.load_demo(40, seed=5)
    rules = rules_with(tmp_path, "")
    result = roe("nightly", "--out", str(out), "--fail-on", "never", "--log-format", "json",
                 rules=rules)
    assert result.exit_code == 0, result.output
    assert result.output == ""  # no TTY, all well: quiet (cron mails any output)
    records = [json.loads(line) for line in (out / "roe-nightly.log").read_text().splitlines()]
    syncs = [r for r in records if r.get("step") == "sync"]
    assert [s["source"] for s in syncs] == ["hubspot"]  # not salesforce: no credentials
    assert syncs[0]["api_calls"] == len(hs_emulator.calls()) > 0
    assert syncs[0]["counts"]["read"] > 0 and syncs[0]["error"] is None
    assert hs_emulator.token not in (out / "roe-nightly.log").read_text()
    for record in records:  # step records, and the run's other log lines, as JSON too
        assert {"time", "step", "exit_code", "seconds"} <= set(record) or \
            {"time", "level", "logger", "message"} <= set(record)
    assert sum("step" in r for r in records) >= 3  # sync, audit, files at the least


def test_fail_on_sets_exit_1_for_open_findings_at_that_severity(roe, org, out):
    assert roe("nightly", "--out", str(out), "--as-of", "2026-11-01").exit_code == 1
    assert roe("nightly", "--out", str(out), "--as-of", "2026-11-01",
               "--fail-on", "never").exit_code == 0


def test_quiet_without_a_tty_when_all_went_well_unless_summary(roe, org, out):
    quiet = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--fail-on", "never")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    loud = roe("nightly", "--out", str(out), "--as-of", "2026-11-01", "--fail-on", "never",
               "--summary")
    lines = loud.stdout.splitlines()
    assert lines[0] == "roe nightly 2026-11-01: exit 0, all went well."
    assert lines[1].startswith("Sources: none to sync")
    assert lines[2].startswith("Findings: ") and "high " in lines[2] and "resolved." in lines[2]
    assert lines[3] == f"File: {out / 'findings-2026-11-01.csv'} ({lines[3].split('(')[1]}"
    assert len(lines) <= 6
    failing = roe("nightly", "--out", str(out), "--as-of", "2026-11-01")
    assert failing.exit_code == 1
    assert failing.stdout.startswith("roe nightly 2026-11-01: exit 1, open findings at or above high.")


def test_text_log_lines_go_to_the_log_file_when_one_is_given(roe, org, out, tmp_path):
    log_file = tmp_path / "roe.log"
    result = roe("--log-file", str(log_file), "nightly", "--out", str(out), "--as-of", "2026-11-01",
                 "--fail-on", "never")
    assert result.exit_code == 0, result.output
    text = log_file.read_text()
    assert "nightly step=audit exit_code=0" in text and "nightly step=files" in text
    assert "nightly finished: exit_code=0" in text
    assert not (out / "roe-nightly.log").exists()


def test_a_missing_out_folder_or_a_bad_source_stops_it_before_anything(roe, org, tmp_path):
    missing = roe("nightly", "--out", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    typo = roe("nightly", "--out", str(tmp_path), "--source", "hubspt")
    assert typo.exit_code == 2 and "did you mean 'hubspot'" in typo.stderr
    demo = roe("nightly", "--out", str(tmp_path), "--source", "demo")
    assert demo.exit_code == 2 and "roe demo" in demo.stderr
    assert not list(tmp_path.glob("*.csv"))


def test_an_empty_mirror_with_nothing_to_sync_is_an_error_not_an_all_clear(roe, out):
    result = roe("nightly", "--out", str(out), "--fail-on", "never")
    assert result.exit_code == 2, result.output
    assert "There is no mirror at" in result.stderr  # and nightly, with no source, makes none
    assert roe("db", "upgrade").exit_code == 0  # the tables, but no records
    result = roe("nightly", "--out", str(out), "--fail-on", "never")
    assert result.exit_code == 2, result.output
    assert "holds no CRM data yet" in result.output and "sync" in result.output
    assert not list(out.glob("*.csv"))


def test_the_nightly_table_is_checked_with_did_you_mean(roe, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + '\n[nightly]\nsources = ["hubspt", "demo"]\nsourcs = 1\n')
    result = roe("rules", "--check", rules=rules)
    assert result.exit_code == 2
    assert "nightly.sources[0]: unknown source 'hubspt'; did you mean 'hubspot'?" in result.stderr
    assert "nightly.sources[1]: unknown source 'demo'" in result.stderr
    assert "nightly.sourcs: unknown key 'sourcs'; did you mean 'sources'?" in result.stderr


def test_the_workspace_lock_is_reentrant_but_still_excludes_other_runs(db_url):
    ws, other = Workspace(db=db_url), Workspace(db=db_url)
    ws.open(create=True)
    other.open(create=True)
    with ws.lock("nightly"), ws.lock("audit"), ws.lock("sync hubspot"):
        with pytest.raises(LockedError):
            with other.lock("audit"):
                pass
    with other.lock("audit"):  # released by the outermost block
        pass


def test_each_source_tells_whether_its_credentials_are_set(monkeypatch):
    def present() -> dict[str, bool]:
        return {str(s): f.has_credentials() for s, f in FACTORIES.items()}

    assert present() == {"salesforce": False, "hubspot": False, "demo": False}
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "  ")
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "00Dxx!token")  # no instance URL: not enough
    assert present() == {"salesforce": False, "hubspot": False, "demo": False}
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-x")
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    assert present() == {"salesforce": True, "hubspot": True, "demo": False}
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    monkeypatch.setenv("SALESFORCE_USERNAME", "ops@acme.com")
    monkeypatch.setenv("SALESFORCE_PASSWORD", "pw")
    assert FACTORIES[Source.SALESFORCE].has_credentials()


def test_the_lock_file_holder_is_not_this_process_after_a_run(roe, org, out, tmp_path):
    """The lock is released when the nightly ends: a second flock succeeds at once."""
    assert roe("nightly", "--out", str(out), "--as-of", "2026-11-01",
               "--fail-on", "never").exit_code == 0
    with open(tmp_path / "mirror.db.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert os.path.exists(tmp_path / "mirror.db.lock")
