"""Faults a nightly job meets, each proved to lose nothing and write nothing twice: roe killed
(SIGKILL) mid-sync and mid-apply then run again, the mirror locked by another program, a full
disk, and answers cut short.

Each uses real parts: roe in a subprocess (``python -m roe_cli.cli``) against the HubSpot
emulator serving from this test process, real SQLite files, a real second process holding a lock.
"""
# The emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from roe_cli import db
from roe_cli.models import accounts, apply_journal, audit_runs, findings, owners
from tests.conftest import AS_OF, ROOT, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401
from tests.emulators.salesforce import sf_emulator  # noqa: F401
from tests.support.mirror import dump

HS_TYPES = {"account": "companies", "contact": "contacts", "opportunity": "deals"}
SF_TYPES = {"account": "Account", "contact": "Contact", "opportunity": "Opportunity"}
HS_OWNER = "hubspot_owner_id"

PYTHON = sys.executable


def roe_process(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """`roe ARGS` in a child process, with this checkout on its path."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    full_env.pop("ROE_DB", None)
    full_env.pop("ROE_RULES", None)
    return subprocess.Popen([PYTHON, "-m", "roe_cli.cli", *args], env=full_env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for(condition, timeout: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def counts(url: str) -> dict[str, int]:
    engine = db.open_database(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (audit_runs, findings)}
    finally:
        engine.dispose()


@pytest.fixture
def hs_rules(tmp_path) -> str:
    path = tmp_path / "rules-hubspot.toml"
    path.write_text(RULES.read_text() + FAST_SETTINGS_TOML)
    return str(path)


# ---- SIGKILL ---------------------------------------------------------------------------------


def kill_when(child: subprocess.Popen, ready: Callable[[], object], what: str) -> None:
    """SIGKILL ``child`` once ``ready()`` holds, and check that the kill is what ended it."""
    try:
        wait_for(ready, what=what)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL


def test_a_sync_killed_after_its_first_pages_resumes_to_the_same_mirror_as_a_whole_sync(
        hs_emulator, roe, hs_rules, tmp_path):
    hs_emulator.load_demo(60, seed=4, as_of=AS_OF)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert roe("sync", "--source", "hubspot", rules=hs_rules, db=reference).exit_code == 0

    killed = tmp_path / "killed.db"
    hs_emulator.clear_log()
    # The activities come after owners, accounts, contacts and deals: hold their first search
    # until roe is killed, so that it dies with the earlier objects committed and the rest not.
    hs_emulator.delay_next(1, 30, path="/crm/v3/objects/calls/search")
    child = roe_process("--db", str(killed), "--rules", hs_rules, "sync", "--source", "hubspot")
    kill_when(child, lambda: hs_emulator.calls(path="/crm/v3/objects/calls/search"),
              "roe to reach the activities")
    assert integrity(killed) == "ok"
    half = dump(f"sqlite:///{killed}")
    whole = dump(reference)
    assert half["account"] == whole["account"] and half["opportunity"] == whole["opportunity"]
    assert half["activity"] != whole["activity"]  # it really died half-way

    hs_emulator.clear_faults()
    result = roe("sync", "--source", "hubspot", rules=hs_rules, db=f"sqlite:///{killed}")
    assert result.exit_code == 0, result.output
    assert dump(f"sqlite:///{killed}") == whole  # nothing lost, nothing twice


def test_an_apply_killed_while_the_crm_takes_a_batch_writes_each_record_once(
        hs_emulator, roe, hs_rules, tmp_path, engine, db_url):
    hs_emulator.load_demo(40, seed=5, as_of=AS_OF)
    assert roe("sync", "--source", "hubspot", rules=hs_rules).exit_code == 0
    plan = tmp_path / "plan.json"
    _old, new = approved_transfer(roe, engine, "hubspot", hs_rules, plan)
    hs_emulator.clear_log()

    # The contacts' batch reaches HubSpot, which takes it after a pause; roe dies meanwhile,
    # before it can journal the outcome.
    hs_emulator.delay_next(1, 3, path="/crm/v3/objects/contacts/batch/update")
    child = roe_process("--db", db_url, "--rules", hs_rules, "apply", str(plan))
    kill_when(child, lambda: hs_emulator.calls(path="/crm/v3/objects/contacts/batch/update"),
              "roe to send the contacts")
    taken = hs_emulator.calls(path="/crm/v3/objects/contacts/batch/update")[0]
    wait_for(lambda: taken.status is not None, what="HubSpot to take the batch")
    assert integrity(Path(db_url.removeprefix("sqlite:///"))) == "ok"

    result = roe("apply", str(plan), rules=hs_rules)
    assert result.exit_code == 0, result.output
    written = Counter()
    for request in hs_emulator.writes():
        if 200 <= (request.status or 0) < 300:
            hs_type = request.path.split("/")[-3]
            for item in request.body["inputs"]:
                written[(hs_type, item["id"])] += 1
                assert item["properties"][HS_OWNER] == new
    changes = json.loads(plan.read_text())["changes"]
    expected = Counter((HS_TYPES[c["object_type"]], c["object_id"]) for c in changes)
    assert written == expected  # every record written, none twice
    for c in changes:
        assert hs_emulator.records[HS_TYPES[c["object_type"]]][c["object_id"]].props[HS_OWNER] == new
    with engine.connect() as conn:
        journal = dict(conn.execute(select(apply_journal.c.status, func.count())
                                    .group_by(apply_journal.c.status)).all())
    assert journal == {"applied": len(changes)}


# ---- another program holds the mirror --------------------------------------------------------


def test_a_mirror_locked_by_another_program_exits_4_after_a_bounded_wait_and_writes_nothing(
        org, roe, db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 1.0)
    before = counts(db_url)
    path = tmp_path / "mirror.db"
    holder = subprocess.Popen(
        [PYTHON, "-c", (
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute('DELETE FROM findings WHERE id < 0')\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = roe("audit", "--as-of", "2026-11-02", "--fail-on", "never")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 4, result.output
    assert "Another program holds a write lock on the mirror" in result.stderr
    assert "waited 1 s" in result.stderr and "Traceback" not in result.output
    assert waited < 20
    assert integrity(path) == "ok"
    assert counts(db_url) == before  # the audit stored nothing


# ---- a full disk -------------------------------------------------------------------------------


def test_a_full_disk_fails_the_write_cleanly_and_leaves_the_mirror_as_it_was(roe, db_url, tmp_path):
    import resource

    assert roe("demo", "--accounts", "200", "--as-of", "2026-11-01").exit_code == 0
    path = tmp_path / "mirror.db"
    assert integrity(path) == "ok"
    before = counts(db_url)
    limit = 16 * 1024  # no file may grow past 16 KiB: the first audit's -wal soon cannot

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = roe_process("--db", db_url, "--rules", str(RULES), "audit", "--as-of", "2026-11-01",
                        "--fail-on", "never", preexec_fn=small_disk)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 2, (out, err)
    assert "Could not write the mirror" in err and "disk is full" in err, err
    assert "Free some space" in err and "Traceback" not in err
    assert integrity(path) == "ok"
    assert counts(db_url) == before == {"audit_runs": 0, "findings": 0}  # rolled back together

    result = roe("audit", "--as-of", "2026-11-01", "--fail-on", "never")  # space again: it runs
    assert result.exit_code == 0, result.output
    assert counts(db_url)["audit_runs"] == 1


# ---- answers cut short -----------------------------------------------------------------------


def test_a_hubspot_answer_cut_short_is_asked_again_and_the_mirror_is_whole(
        hs_emulator, roe, hs_rules, tmp_path):
    hs_emulator.load_demo(40, seed=6, as_of=AS_OF)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert roe("sync", "--source", "hubspot", rules=hs_rules, db=reference).exit_code == 0
    hs_emulator.clear_log()
    hs_emulator.truncate_next(1, path="/crm/v3/objects/companies/search")
    hs_emulator.truncate_next(1, path="/crm/v3/owners/")
    cut = f"sqlite:///{tmp_path / 'cut.db'}"
    result = roe("sync", "--source", "hubspot", rules=hs_rules, db=cut)
    assert result.exit_code == 0, result.output
    assert dump(cut) == dump(reference)
    first_searches = [c for c in hs_emulator.calls(path="/crm/v3/objects/companies/search")]
    assert first_searches[0].body == first_searches[1].body  # the cut answer was asked again


def test_hubspot_answers_always_cut_short_end_the_sync_with_exit_3_and_no_traceback(
        hs_emulator, roe, tmp_path):
    hs_emulator.load_demo(10, seed=6, as_of=AS_OF)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + FAST_SETTINGS_TOML + "max_retries = 1\n")
    hs_emulator.truncate_next(1000)
    result = roe("sync", "--source", "hubspot", rules=rules)
    assert result.exit_code == 3, result.output
    assert "HubSpot" in result.stderr and "Traceback" not in result.output
    assert len(hs_emulator.calls()) == 2  # once, and one retry


@pytest.mark.parametrize("sf_emulator", [{"accounts": 30, "seed": 6}], indirect=True)
def test_a_salesforce_answer_cut_short_is_asked_again_and_the_mirror_is_whole(
        sf_emulator, roe, tmp_path):
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    assert roe("sync", "--source", "salesforce", db=reference).exit_code == 0
    sf_emulator.clear_log()
    sf_emulator.fail(status=0, path="/query", truncate=True, soql="FROM Account")
    cut = f"sqlite:///{tmp_path / 'cut.db'}"
    result = roe("sync", "--source", "salesforce", db=cut)
    assert result.exit_code == 0, result.output
    assert dump(cut) == dump(reference)
    account_queries = [r for r in sf_emulator.requests if "FROM Account" in (r.soql or "")]
    assert len(account_queries) >= 2 and account_queries[0].soql == account_queries[1].soql


@pytest.mark.parametrize("sf_emulator", [{"accounts": 10, "seed": 6}], indirect=True)
def test_salesforce_answers_always_cut_short_end_the_sync_with_exit_3_and_no_traceback(
        sf_emulator, roe, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + "\n[salesforce]\nretries = 1\nbackoff_seconds = 0\n")
    sf_emulator.fail(status=0, truncate=True, times=1000)
    result = roe("sync", "--source", "salesforce", rules=rules)
    assert result.exit_code == 3, result.output
    assert "Salesforce" in result.stderr and "Traceback" not in result.output
    assert len(sf_emulator.requests) == 2  # once, and one retry


# ---- timeouts --------------------------------------------------------------------------------


def test_hubspot_that_never_answers_in_time_ends_the_sync_with_exit_3_keeping_what_was_committed(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(10, seed=6, as_of=AS_OF)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + FAST_SETTINGS_TOML.replace("timeout_seconds = 10",
                                                                    "timeout_seconds = 0.5")
                     + "max_retries = 1\n")
    hs_emulator.delay_next(1000, 2.0, path="/crm/v3/objects/contacts/search")
    started = time.monotonic()
    result = roe("sync", "--source", "hubspot", rules=rules)
    assert time.monotonic() - started < 30
    assert result.exit_code == 3, result.output
    assert "HubSpot" in result.stderr and "Traceback" not in result.output
    assert len(hs_emulator.calls(path="/crm/v3/objects/contacts/search")) == 2
    with engine.connect() as conn:  # the accounts before it are in, and stay in
        assert conn.execute(select(func.count()).select_from(accounts)).scalar_one() > 0


def approved_transfer(roe, engine, source: str, rules, plan: Path) -> tuple[str, str]:
    """An approved plan moving the book of the active owner with the most accounts: the old and
    the new owner's ids."""
    with engine.connect() as conn:
        old = conn.execute(
            select(accounts.c.owner_id).join(owners, (owners.c.id == accounts.c.owner_id)
                                             & (owners.c.source == accounts.c.source))
            .where(owners.c.active.is_(True), accounts.c.deleted.is_(False))
            .group_by(accounts.c.owner_id).order_by(func.count().desc(), accounts.c.owner_id)
        ).scalars().first()
        new = conn.execute(select(owners.c.id).where(owners.c.active.is_(True),
                                                     owners.c.id != old).order_by(owners.c.id)
                           ).scalars().first()
    result = roe("reassign", "--transfer-from", old, "--to", new, "--source", source,
                 "-o", str(plan), rules=rules)
    assert result.exit_code == 0, result.output
    assert roe("approve", str(plan), "--by", "vp@example.com", rules=rules).exit_code == 0
    return old, new


def test_a_hubspot_write_that_times_out_is_not_sent_again_and_the_rerun_writes_each_record_once(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=5, as_of=AS_OF)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + FAST_SETTINGS_TOML.replace("timeout_seconds = 10",
                                                                    "timeout_seconds = 1"))
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    plan = tmp_path / "plan.json"
    approved_transfer(roe, engine, "hubspot", rules, plan)
    hs_emulator.clear_log()
    # HubSpot takes the contacts' batch, but answers after roe stopped waiting.
    hs_emulator.delay_next(1, 2.5, path="/crm/v3/objects/contacts/batch/update")
    first = roe("apply", str(plan), rules=rules)
    assert first.exit_code == 3, first.output
    assert "did not confirm" in first.stderr and "did not send it again" in first.stderr
    time.sleep(3)  # HubSpot finishes the slow call
    result = roe("apply", str(plan), rules=rules)
    assert result.exit_code == 0, result.output
    written = Counter()
    for request in hs_emulator.writes():
        if 200 <= (request.status or 0) < 300:
            for item in request.body["inputs"]:
                written[(request.path.split("/")[-3], item["id"])] += 1
    changes = json.loads(plan.read_text())["changes"]
    assert written == Counter((HS_TYPES[c["object_type"]], c["object_id"]) for c in changes)
    with engine.connect() as conn:
        journal = dict(conn.execute(select(apply_journal.c.status, func.count())
                                    .group_by(apply_journal.c.status)).all())
    assert journal == {"applied": len(changes)}


@pytest.mark.parametrize("sf_emulator", [{"accounts": 40, "seed": 5}], indirect=True)
def test_a_salesforce_write_that_times_out_is_not_sent_again_and_the_rerun_writes_each_record_once(
        sf_emulator, roe, tmp_path, engine):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + "\n[salesforce]\ntimeout_seconds = 1\nbackoff_seconds = 0\n")
    assert roe("sync", "--source", "salesforce", rules=rules).exit_code == 0
    plan = tmp_path / "plan.json"
    approved_transfer(roe, engine, "salesforce", rules, plan)
    sf_emulator.clear_log()
    sf_emulator.fail(status=0, delay=2.5, method="PATCH", times=1)  # takes it, answers too late
    first = roe("apply", str(plan), rules=rules)
    assert first.exit_code == 3, first.output
    time.sleep(3)
    result = roe("apply", str(plan), rules=rules)
    assert result.exit_code == 0, result.output
    written = Counter()
    for request in sf_emulator.writes():
        if 200 <= (request.status or 0) < 300:
            for record in json.loads(request.body)["records"]:
                written[record["id"]] += 1
    changes = json.loads(plan.read_text())["changes"]
    assert written == Counter(c["object_id"] for c in changes)
    new = changes[0]["new"]
    assert all(sf_emulator.org.owner_of(SF_TYPES[c["object_type"]], c["object_id"]) == new
               for c in changes)
