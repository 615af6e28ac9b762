"""`roe doctor`: one line per check with its fix; it never creates, migrates or locks the mirror,
never prints a credential, and exits 0 (nothing failed), 2 (configuration) or 3 (a CRM)."""
# The emulator fixtures arrive as arguments named like their imports:
# ruff: noqa: F811

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from roe_cli import db
from tests.conftest import RULES
from tests.emulators.hubspot import TOKEN as HS_TOKEN
from tests.emulators.hubspot import hs_emulator  # noqa: F401
from tests.emulators.salesforce import TOKEN as SF_TOKEN
from tests.emulators.salesforce import sf_emulator  # noqa: F401
from tests.support.writeback import make_org

CREDENTIALS = ("SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_USERNAME",
               "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN", "HUBSPOT_ACCESS_TOKEN")


@pytest.fixture
def no_credentials(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def org(org, tmp_path):
    """The audited demo mirror, private as roe creates it (the copy the fixture makes is not)."""
    for path in tmp_path.glob("mirror.db*"):
        os.chmod(path, 0o600)
    return org


def latest_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(db.alembic_config()).get_current_head()


def lines(output: str) -> dict[str, str]:
    """Each check's line by its name (the words between the status and the detail)."""
    found = {}
    for line in output.splitlines():
        status = line[:4]
        if status in ("PASS", "WARN", "FAIL"):
            rest = line[4:].strip()
            for name in ("salesforce credentials", "hubspot credentials", "salesforce answers",
                         "hubspot answers", "salesforce API usage", "hubspot API usage",
                         "file mode", "python", "sqlite", "rules", "people", "database",
                         "migrations", "lock", "disk"):
                if rest.startswith(name + " "):
                    found[name] = f"{status} {rest[len(name):].strip()}"
                    break
    return found


def test_doctor_on_a_healthy_mirror_without_credentials_passes_and_warns_per_source(
        org, roe, no_credentials):
    result = roe("doctor")
    assert result.exit_code == 0, result.output
    checks = lines(result.stdout)
    for name in ("python", "sqlite", "rules", "database", "migrations", "file mode", "people",
                 "lock", "disk"):
        assert checks[name].startswith("PASS"), (name, result.stdout)
    assert checks["migrations"] == f"PASS at the latest schema ({latest_revision()})"
    assert checks["lock"] == "PASS free"
    for source in ("salesforce", "hubspot"):
        assert checks[f"{source} credentials"].startswith("WARN not set")
        assert f"{source} answers" not in checks  # no credentials: no call
    assert "HUBSPOT_ACCESS_TOKEN" in result.stdout  # the fix names the variable to set
    assert result.stdout.rstrip().endswith("passed, 2 warned, 0 failed.")


def test_doctor_with_hubspot_credentials_makes_one_cheap_call_and_never_prints_the_token(
        org, roe, no_credentials, hs_emulator):
    hs_emulator.load_demo(20, seed=3)
    result = roe("doctor")
    assert result.exit_code == 0, result.output
    checks = lines(result.stdout)
    assert checks["hubspot credentials"] == "PASS present (not shown)"
    assert checks["hubspot answers"].startswith("PASS one call answered in")
    assert checks["hubspot API usage"] == "PASS 1 of 250,000 calls today"
    calls = hs_emulator.calls()
    assert [(c.method, c.path, c.query.get("limit")) for c in calls] == [
        ("GET", "/crm/v3/owners/", ["1"])]
    assert HS_TOKEN not in result.output


@pytest.mark.parametrize("sf_emulator", [{"accounts": 10, "seed": 3}], indirect=True)
def test_doctor_with_salesforce_credentials_reads_the_limits_and_reports_the_days_usage(
        org, roe, sf_emulator):
    result = roe("doctor")
    assert result.exit_code == 0, result.output
    checks = lines(result.stdout)
    assert checks["salesforce credentials"] == "PASS present (not shown)"
    assert checks["salesforce answers"].startswith("PASS one call answered in")
    assert checks["salesforce API usage"].startswith("PASS ")
    assert "of 15,000 requests in the last 24 hours" in checks["salesforce API usage"]
    assert [r.path.rsplit("/", 2)[-2] for r in sf_emulator.requests] == ["limits"]
    assert sf_emulator.writes() == []
    assert SF_TOKEN not in result.output


def test_doctor_exits_3_when_a_crm_refuses_the_credentials(org, roe, no_credentials,
                                                          hs_emulator, monkeypatch):
    wrong = "pat-na1-11111111-2222-3333-4444-555555555555"
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", wrong)
    result = roe("doctor", rules=RULES)
    assert result.exit_code == 3, result.output
    checks = lines(result.stdout)
    assert checks["hubspot credentials"] == "PASS present (not shown)"
    assert checks["hubspot answers"].startswith("FAIL ")
    assert "Fix: " in result.stdout.split("hubspot answers", 1)[1].splitlines()[0]
    assert wrong not in result.output and HS_TOKEN not in result.output


def test_doctor_exits_3_when_the_crm_cannot_be_reached(org, roe, no_credentials, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", HS_TOKEN)
    monkeypatch.setenv("HUBSPOT_BASE_URL", f"http://127.0.0.1:{port}")
    result = roe("doctor", rules=_fast_hubspot_rules(org))
    assert result.exit_code == 3, result.output
    assert lines(result.stdout)["hubspot answers"].startswith("FAIL ")


def _fast_hubspot_rules(org) -> Path:
    """The shipped rules with a [hubspot] table that does not wait long between retries."""
    path = Path(str(org.url.database)).with_name("fast-rules.toml")
    path.write_text(RULES.read_text() + "\n[hubspot]\nbackoff_seconds = 0.0\n"
                    "max_wait_seconds = 1.0\ntimeout_seconds = 2\nconnect_timeout_seconds = 2\n")
    return path


def test_doctor_reports_a_broken_rules_file_and_exits_2(org, roe, no_credentials, tmp_path):
    broken = tmp_path / "rules.toml"
    broken.write_text(RULES.read_text().replace("[[teams]]", "[[teams]]\nrole = 'Sales Droid'\nx", 1))
    result = roe("doctor", rules=broken)
    assert result.exit_code == 2, result.output
    checks = lines(result.stdout)
    assert checks["rules"].startswith("FAIL ")
    assert "roe rules --check" in checks["rules"]
    assert checks["database"].startswith("PASS")  # the other checks still run


def test_doctor_says_the_rules_file_is_missing(org, roe, no_credentials, tmp_path):
    result = roe("doctor", rules=tmp_path / "nowhere.toml")
    assert result.exit_code == 2
    assert lines(result.stdout)["rules"].startswith(f"FAIL no rules file at {tmp_path}")


def test_doctor_never_creates_a_missing_mirror(roe, no_credentials, tmp_path):
    mirror = tmp_path / "absent.db"
    result = roe("doctor", db=str(mirror))
    assert result.exit_code == 2, result.output
    checks = lines(result.stdout)
    assert checks["database"] == (f"FAIL no mirror at {mirror}  Fix: Run `roe sync --source "
                                  "salesforce|hubspot` (or `roe demo`) to create it, or point "
                                  "--db / ROE_DB at the existing one.")
    assert not mirror.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no lock file, no -wal, nothing


def test_doctor_warns_about_a_pending_migration_and_leaves_it_pending(roe, no_credentials, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.create(url)
    db.upgrade(engine, "0002")
    engine.dispose()
    pending = ", ".join(db.status(engine).pending)
    result = roe("doctor", db=url)
    assert result.exit_code == 0, result.output
    assert pending.startswith("0003, 0004, 0005, 0006")
    assert lines(result.stdout)["migrations"] == (
        f"WARN at 0002; pending: {pending}  Fix: Run `roe db upgrade` (any command that writes also "
        "upgrades it).")
    engine = db.create(url)
    assert db.status(engine).current == "0002"  # doctor migrated nothing
    engine.dispose()


def test_doctor_warns_about_a_mirror_others_can_read_with_the_chmod_fix(org, roe, no_credentials,
                                                                       tmp_path):
    mirror = tmp_path / "mirror.db"
    os.chmod(mirror, 0o644)
    result = roe("doctor")
    assert result.exit_code == 0
    check = lines(result.stdout)["file mode"]
    # (SQLite may recreate the -wal with the main file's mode: then it is named too)
    assert check.startswith("WARN others can read mirror.db (0644)")
    assert f"  Fix: chmod 600 {mirror}" in check


def test_doctor_says_who_holds_the_lock(org, roe, no_credentials):
    with db.run_lock(org, "sync hubspot"):
        result = roe("doctor")
    assert result.exit_code == 0
    check = lines(result.stdout)["lock"]
    assert check.startswith(f"WARN held by `roe sync hubspot` (pid {os.getpid()} on ")
    assert lines(roe("doctor").stdout)["lock"] == "PASS free"


def test_doctor_fails_when_someone_the_rules_name_is_not_in_the_mirror(engine, roe, no_credentials):
    make_org(engine)  # ana@, ben@ ... : none of the people the shipped rules.toml names
    result = roe("doctor")
    assert result.exit_code == 2
    assert lines(result.stdout)["people"].startswith("FAIL ")


Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize(("free", "status", "code"), [
    (50 << 30, "PASS", 0), (500 << 20, "WARN", 0), (50 << 20, "FAIL", 2)])
def test_doctor_checks_free_disk_space_next_to_the_mirror(org, roe, no_credentials, monkeypatch,
                                                          tmp_path, free, status, code):
    seen = []

    def fake(path):
        seen.append(path)
        return Usage(100 << 30, 0, free)

    monkeypatch.setattr(shutil, "disk_usage", fake)
    result = roe("doctor")
    assert result.exit_code == code, result.output
    assert lines(result.stdout)["disk"].startswith(status + " ")
    assert seen == [str(tmp_path)]
