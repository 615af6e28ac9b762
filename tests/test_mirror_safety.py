"""Issue 15, "Data loss and false all-clears": the mirror is never emptied, created or rewritten
by mistake. A full sync refuses a mass delete, only sync/demo/db upgrade create a mirror, a past
``audit --as-of`` does not rewrite the history, a broken mirror file is a clear error, and
Ctrl-C on ``roe demo`` leaves a mirror that says it is partial."""
# The hs_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from roe_cli.cli import app
from roe_cli.models import accounts
from tests.conftest import AS_OF, ROOT, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401


def _rules(tmp_path, extra: str = "") -> str:
    path = tmp_path / "rules-hs.toml"
    path.write_text(RULES.read_text() + FAST_SETTINGS_TOML + "detect_archived = false\n" + extra)
    return str(path)


def _live_accounts(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.source == "hubspot", accounts.c.deleted.is_(False))).scalar_one()


def _drop_companies(emulator, share: float | None = None) -> int:
    """Make companies vanish from the CRM's answers (lost sharing): a share of them, or all."""
    ids = list(emulator.records["companies"])
    gone = ids if share is None else ids[: int(len(ids) * share)]
    with emulator.lock:
        for rid in gone:
            del emulator.records["companies"][rid]
        emulator.changed("companies")
    return len(gone)


# ---- the full sync's mass-delete guard ------------------------------------------------------------

def test_a_full_sync_that_loses_a_third_of_the_accounts_keeps_them_and_exits_3(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules = _rules(tmp_path)
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    gone = _drop_companies(hs_emulator, 0.3)

    result = roe("sync", "--source", "hubspot", "--full", rules=rules)

    assert result.exit_code == 3, result.output
    assert _live_accounts(engine) == before
    assert f"account: {before:,} live in the mirror, {before - gone:,} returned by the CRM, " \
           f"{gone:,} would be marked deleted" in result.stderr
    assert "--allow-mass-delete" in result.stderr


def test_a_full_sync_with_allow_mass_delete_marks_the_vanished_accounts_deleted(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules = _rules(tmp_path)
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    gone = _drop_companies(hs_emulator, 0.3)

    result = roe("sync", "--source", "hubspot", "--full", "--allow-mass-delete", rules=rules)

    assert result.exit_code == 0, result.output
    assert _live_accounts(engine) == before - gone


def test_a_full_sync_that_gets_no_accounts_back_never_marks_any_deleted(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    # Even with the limit at 100%, an empty pull of a non-empty object is never acted on.
    rules = _rules(tmp_path, "\n[sync]\nmax_delete_share = 1.0\n")
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    _drop_companies(hs_emulator)

    result = roe("sync", "--source", "hubspot", "--full", rules=rules)

    assert result.exit_code == 3, result.output
    assert f"account: {before:,} live in the mirror, 0 returned by the CRM" in result.stderr
    assert _live_accounts(engine) == before


def test_max_delete_share_in_rules_toml_raises_the_limit(hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules = _rules(tmp_path, "\n[sync]\nmax_delete_share = 0.5\n")
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    gone = _drop_companies(hs_emulator, 0.3)

    assert roe("sync", "--source", "hubspot", "--full", rules=rules).exit_code == 0
    assert _live_accounts(engine) == before - gone


def test_a_max_delete_share_outside_0_to_1_or_a_typo_in_sync_is_a_rules_error(roe, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.read_text() + "\n[sync]\nmax_delete_share = 1.5\nmax_delete_shares = 0.2\n")
    result = roe("rules", "--check", rules=bad)
    assert result.exit_code == 2, result.output
    assert "max_delete_share" in result.output and "max_delete_shares" in result.output


def test_sync_of_the_demo_source_is_refused_and_leaves_the_demo_org_alone(roe, org):
    with org.connect() as conn:
        before = conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.deleted.is_(False))).scalar_one()
    result = roe("sync", "--source", "demo", "--full")
    assert result.exit_code == 2, result.output
    assert "roe demo" in result.stderr
    with org.connect() as conn:
        assert conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.deleted.is_(False))).scalar_one() == before


# ---- only sync, demo and db upgrade create a mirror ------------------------------------------------

READERS = [
    ("audit",),
    ("findings",),
    ("export", "findings", "-o", "out.csv"),
    ("export", "kpi", "-o", "kpi.csv"),
    ("waive", "1", "--reason", "x", "--by", "a@b.c"),
    ("reassign", "--transfer-from", "a@example.com", "--to", "b@example.com"),
    ("db", "status"),
]


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_a_command_that_reads_the_mirror_refuses_a_missing_one_and_creates_nothing(
        roe, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "nothing-here.db"
    result = roe(*args, db=str(path))
    assert result.exit_code == 2, result.output
    assert f"There is no mirror at {path}" in result.stderr and "roe sync" in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_a_mirror_path_in_a_missing_folder_is_refused_everywhere(roe, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = roe(*args, db="typo/roe.db")
    assert result.exit_code == 2, result.output
    assert f"The folder {tmp_path / 'typo'} for the mirror roe.db does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_sync_and_demo_into_a_missing_folder_are_refused_too(roe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (("demo", "--accounts", "5"), ("sync", "--source", "hubspot"), ("db", "upgrade")):
        result = roe(*args, db="typo/roe.db")
        assert result.exit_code == 2, result.output
        assert "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_empty_db_option_is_refused_and_does_not_audit_roe_db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROE_DB", raising=False)
    for args in (("audit",), ("demo", "--accounts", "5"), ("findings",)):
        result = CliRunner().invoke(app, ["--db", "", "--rules", str(RULES), *args])
        assert result.exit_code == 2, result.output
        assert "--db / ROE_DB is empty" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_mirror_with_tables_but_no_data_is_refused_with_sync_first(roe, tmp_path):
    path = tmp_path / "fresh.db"
    assert roe("db", "upgrade", db=str(path)).exit_code == 0  # db upgrade may create it
    result = roe("audit", db=str(path))
    assert result.exit_code == 2, result.output
    assert "holds no CRM data yet" in result.stderr and "roe sync" in result.stderr
    assert "No open findings" not in result.output


def test_a_file_without_roe_tables_is_refused_as_empty(roe, tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("create table t (x)")
    con.commit()
    con.close()
    result = roe("findings", db=str(path))
    assert result.exit_code == 2, result.output
    assert "is empty (no roe tables)" in result.stderr


def test_demo_and_db_upgrade_create_the_mirror(roe, tmp_path):
    assert roe("demo", "--accounts", "5", db=str(tmp_path / "d.db")).exit_code == 0
    assert roe("audit", "--fail-on", "never", db=str(tmp_path / "d.db")).exit_code == 0
    assert roe("db", "upgrade", db=str(tmp_path / "u.db")).exit_code == 0
    assert (tmp_path / "u.db").exists()


# ---- a corrupt, unreadable or read-only mirror ------------------------------------------------------

def _fingerprint(path):
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


def test_a_corrupt_mirror_is_a_clear_error_exit_2_and_stays_untouched(roe, tmp_path):
    path = tmp_path / "corrupt.db"
    path.write_bytes(random.Random(15).randbytes(64 * 1024))
    before = _fingerprint(path)
    for args in (("audit",), ("findings",), ("sync", "--source", "hubspot"), ("demo", "--accounts", "5")):
        result = roe(*args, db=str(path))
        assert result.exit_code == 2, (args, result.output)
        assert "is not a readable roe mirror" in result.stderr
        assert "Traceback" not in result.output and len(result.output.splitlines()) <= 4
    assert _fingerprint(path) == before


@pytest.mark.parametrize(("mode", "message"), [
    (0o000, "Cannot read the mirror {path}: permission denied"),
    (0o444, "The mirror {path} is read-only; roe did not touch it"),
], ids=["unreadable", "read-only"])
def test_an_unreadable_or_read_only_mirror_is_a_clear_error_exit_2_and_stays_untouched(
        roe, org, tmp_path, mode, message):
    path = tmp_path / "mirror.db"
    org.dispose()
    path.chmod(mode)
    try:
        before = _fingerprint(path)
        for args in (("audit",), ("findings",), ("demo", "--accounts", "5")):
            result = roe(*args)
            assert result.exit_code == 2, (args, result.output)
            assert message.format(path=path) in result.stderr
        assert _fingerprint(path) == before
    finally:
        path.chmod(0o600)


def test_a_mirror_in_a_read_only_folder_is_a_clear_error_exit_2_and_stays_untouched(
        roe, org, tmp_path):
    path = tmp_path / "mirror.db"
    org.dispose()
    tmp_path.chmod(0o555)
    try:
        before = _fingerprint(path)
        result = roe("audit")
        assert result.exit_code == 2, result.output
        assert "is read-only; roe did not touch the mirror" in result.stderr
        assert _fingerprint(path) == before
    finally:
        tmp_path.chmod(0o755)


# ---- audit --as-of in the past does not rewrite the live history ------------------------------------

def _history(engine):
    from roe_cli.models import audit_runs, findings

    with engine.connect() as conn:
        runs = conn.execute(select(audit_runs.c.id, audit_runs.c.as_of).order_by(audit_runs.c.id)).all()
        rows = conn.execute(select(findings).order_by(findings.c.id)).all()
    return runs, rows


def test_an_audit_as_of_before_the_latest_run_prints_but_stores_nothing(roe, org):
    before = _history(org)  # the template's run is as of 2026-11-01
    result = roe("audit", "--as-of", "2026-03-31", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert "dry run, not stored" in result.stdout and "total" in result.stdout
    assert "earlier than the latest stored run's" in result.stderr and "--record" in result.stderr
    assert _history(org) == before
    findings = roe("findings", "--format", "json")
    assert json.loads(findings.stdout)["as_of"].startswith("2026-11-01")


def test_an_audit_as_of_in_the_past_as_json_lists_its_findings_without_a_run_id(roe, org):
    before = _history(org)
    result = roe("audit", "--as-of", "2026-03-31", "--fail-on", "never", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["run_id"] is None and doc["as_of"].startswith("2026-03-31")
    assert len(doc["findings"]) == doc["summary"]["open"] + doc["summary"]["waived"] > 0
    assert _history(org) == before


def test_an_audit_as_of_in_the_past_with_record_is_stored_as_the_latest_run(roe, org):
    runs, _ = _history(org)
    result = roe("audit", "--as-of", "2026-03-31", "--record", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    after, _ = _history(org)
    assert len(after) == len(runs) + 1 and after[-1].as_of.date().isoformat() == "2026-03-31"


def test_no_store_leaves_the_mirror_as_it_was_for_any_audit(roe, org):
    before = _history(org)
    result = roe("audit", "--no-store", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert "Dry run (--no-store)" in result.stderr
    assert _history(org) == before
    assert roe("audit", "--no-store", "--record").exit_code == 2


@pytest.mark.parametrize("as_of", ["1970-01-01", "1999-12-31T23:59:59Z", "9999-12-31"])
def test_an_as_of_before_2000_or_more_than_a_day_ahead_is_refused(roe, org, as_of):
    before = _history(org)
    result = roe("audit", "--as-of", as_of)
    assert result.exit_code == 2, result.output
    assert "outside the range roe audits" in result.stderr
    assert _history(org) == before


def test_an_as_of_up_to_a_day_ahead_is_accepted(roe, org):
    from roe_cli.shared.clock import utcnow

    tomorrow = (utcnow() + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert roe("audit", "--as-of", tomorrow, "--fail-on", "never").exit_code == 0


# ---- Ctrl-C on roe demo ---------------------------------------------------------------------------

def _demo_org(path):
    con = sqlite3.connect(path, timeout=5)
    try:
        org = con.execute("select accounts, loaded_accounts, completed_at from demo_orgs").fetchone()
        count = con.execute("select count(*) from accounts").fetchone()[0]
    finally:
        con.close()
    return org, count


def test_a_whole_demo_org_is_recorded_as_complete(roe, tmp_path):
    assert roe("demo", "--accounts", "50", db=str(tmp_path / "d.db")).exit_code == 0
    (accounts_, loaded, completed_at), count = _demo_org(tmp_path / "d.db")
    assert (accounts_, loaded, count) == (50, 50, 50) and completed_at is not None


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_ctrl_c_on_a_big_demo_stops_within_seconds_with_one_line_and_a_partial_org(tmp_path):
    path = tmp_path / "demo.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    env.pop("ROE_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "roe_cli.cli", "--db", str(path), "--rules", str(RULES),
         "demo", "--accounts", "30000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,  # its own process group, which Ctrl-C in a terminal signals whole
    )
    try:
        deadline = time.monotonic() + 240
        while True:  # until it has committed its first accounts
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the demo never started writing"
            time.sleep(0.3)
            try:
                if path.exists() and _demo_org(path)[1] > 0:
                    break
            except sqlite3.OperationalError:
                pass  # the tables are not there yet
        workers = _children(proc.pid)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert took < 20, f"took {took:.1f}s to stop"
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    (accounts_, loaded, completed_at), count = _demo_org(path)
    assert accounts_ == 30000 and completed_at is None  # recorded as partial
    assert 0 < loaded == count < 30000
    assert f"partial demo org ({loaded:,} of 30,000 accounts" in lines[0]
    assert "roe demo --accounts 30000 --seed 42" in lines[0]
    for pid in workers:  # no worker process left behind
        assert not Path(f"/proc/{pid}").exists() or \
            "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    con = sqlite3.connect(path)
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    con.close()


# ---- the README's cron job --------------------------------------------------------------------------

def test_the_readme_cron_script_sets_the_mirror_for_every_command_and_prints_only_on_findings(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    script = readme.split("# /srv/roe/nightly.sh", 1)[1].split("```", 1)[0]
    script = script.split("\n", 1)[1]  # past the rest of the comment line
    assert "30 2 * * * /srv/roe/nightly.sh" in readme
    site = tmp_path / "srv"
    (site / ".venv" / "bin").mkdir(parents=True)
    (site / "reports").mkdir()
    roe_bin = site / ".venv" / "bin" / "roe"
    roe_bin.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m roe_cli.cli "
                       f"--rules {RULES} \"$@\"\n")
    roe_bin.chmod(0o755)
    # The demo org stands in for Salesforce: the same script, without the credentials, after
    # `roe demo` has filled the mirror.
    script = script.replace("/srv/roe", str(site)).replace("/var/log/roe.log", str(site / "log.txt"))
    lines = [line for line in script.splitlines() if "SALESFORCE_" not in line]
    assert any(line.startswith("exec .venv/bin/roe nightly") for line in lines)
    lines.insert(next(i for i, line in enumerate(lines) if line.startswith("exec ")),
                 ".venv/bin/roe demo --accounts 60 --as-of 2026-11-01 > /dev/null")
    (site / "nightly.sh").write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROE_", "SALESFORCE_", "HUBSPOT_"))}
    run = subprocess.run(["sh", str(site / "nightly.sh")], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr  # the demo org has high findings
    assert run.stderr == ""
    assert "exit 1, open findings at or above high" in run.stdout  # what cron mails
    assert (site / "roe.db").exists() and list((site / "reports").glob("findings-*.csv"))
    records = [json.loads(line) for line in (site / "log.txt").read_text().splitlines()
               if line.startswith("{")]  # nightly's own lines are JSON; the run's start/end text
    assert records[-1]["step"] == "nightly" and records[-1]["exit_code"] == 1
    assert list(elsewhere.iterdir()) == []  # no stray ./roe.db where cron started it
