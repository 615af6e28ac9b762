"""The mirror is private: it holds names, e-mails and deal amounts, so every file roe creates for
it (the SQLite file, its -wal and -shm, the lock file) and every plan and results file is readable
by its owner only (0600), whatever the umask says."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.writeback import CLEO, NO_RULES, make_org


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def open_umask():
    """The most permissive umask: without roe's care every file would be world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_mirror_its_wal_shm_and_lock_files_are_created_0600(roe, tmp_path, open_umask):
    db = tmp_path / "new.db"
    result = roe("demo", "--accounts", "20", "--as-of", "2026-11-01", db=str(db))
    assert result.exit_code == 0, result.output
    lock = tmp_path / "new.db.lock"
    assert db.exists() and lock.exists()
    assert mode(db) == 0o600
    assert mode(lock) == 0o600
    # While a connection has the mirror open in WAL mode its -wal and -shm exist: SQLite gives
    # them the main file's mode.
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE probe_private (x)")
        conn.commit()
        for suffix in ("-wal", "-shm"):
            side = tmp_path / f"new.db{suffix}"
            assert side.exists(), suffix
            assert mode(side) == 0o600, suffix
    finally:
        conn.close()


def test_an_existing_mirror_keeps_the_mode_its_owner_gave_it(roe, tmp_path, open_umask):
    db = tmp_path / "shared.db"
    assert roe("demo", "--accounts", "20", "--as-of", "2026-11-01", db=str(db)).exit_code == 0
    os.chmod(db, 0o640)  # a deliberate choice (a group that reads the mirror)
    assert roe("audit", "--as-of", "2026-11-01", "--fail-on", "never", db=str(db)).exit_code == 0
    assert mode(db) == 0o640


def test_plans_approved_plans_and_results_files_are_0600(engine, roe, tmp_path, open_umask):
    make_org(engine)
    plan = tmp_path / "plan.json"
    result = roe("reassign", "--transfer-from", CLEO, "--to", "dan@example.com", "-o", str(plan))
    assert result.exit_code == 0, result.output
    assert mode(plan) == 0o600
    assert roe("approve", str(plan), "--by", "vp@example.com").exit_code == 0
    assert mode(plan) == 0o600
    result = roe("apply", str(plan), rules=NO_RULES)
    assert result.exit_code == 0, result.output
    results = tmp_path / "plan.results.csv"
    assert results.exists() and mode(results) == 0o600
