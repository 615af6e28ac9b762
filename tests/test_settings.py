"""Settings: --db / ROE_DB take a path or an SQLAlchemy URL; --rules / ROE_RULES; the run lock."""

from __future__ import annotations

from pathlib import Path

from roe_cli.db import open_database, run_lock
from roe_cli.settings import database_url, rules_path
from roe_cli.shared.errors import LockedError


def test_a_path_becomes_an_absolute_sqlite_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROE_DB", raising=False)
    assert database_url("mirror.db") == f"sqlite:///{tmp_path / 'mirror.db'}"
    assert database_url(None) == f"sqlite:///{tmp_path / 'roe.db'}"


def test_a_url_is_used_as_it_is(monkeypatch):
    monkeypatch.setenv("ROE_DB", "ignored.db")
    url = "postgresql+psycopg://roe@db.internal:5432/roe"
    assert database_url(url) == url


def test_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROE_DB", "from-env.db")
    monkeypatch.setenv("ROE_RULES", "policy/rules.toml")
    assert database_url(None).endswith("/from-env.db")
    assert rules_path(None) == Path("policy/rules.toml")
    monkeypatch.delenv("ROE_RULES")
    assert rules_path(None) == Path("rules.toml")
    assert rules_path("other.toml") == Path("other.toml")


def test_roe_db_environment_variable_reaches_the_cli(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from roe_cli.cli import app

    target = tmp_path / "env.db"
    result = CliRunner().invoke(app, ["db", "upgrade"], env={"ROE_DB": str(target)})
    assert result.exit_code == 0, result.output
    assert str(target) in result.stdout
    status = CliRunner().invoke(app, ["db", "status"], env={"ROE_DB": str(target)})
    assert status.exit_code == 0 and "up to date" in status.stdout


def test_the_run_lock_refuses_a_second_run(db_url, roe):
    engine = open_database(db_url)
    with run_lock(engine, "audit"):
        try:
            with run_lock(open_database(db_url), "demo"):
                raise AssertionError("a second lock was granted")
        except LockedError as exc:
            assert "Another roe run" in exc.what and "`roe audit` (pid " in exc.what
        busy = roe("demo", "--accounts", "20")
        assert busy.exit_code == 4
        assert "Another roe run is using this mirror" in busy.stderr
    assert roe("demo", "--accounts", "20").exit_code == 0  # released
