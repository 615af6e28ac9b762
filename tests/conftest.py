"""Shared fixtures: a fresh mirror per test, a CLI runner, and a small demo org."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roe_cli.cli import app
from roe_cli.db import open_database

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules.toml"
AS_OF = datetime(2026, 11, 1)  # a fixed "now" for demo orgs in tests


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mirror.db'}"


@pytest.fixture
def engine(db_url):
    eng = open_database(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def audited_template(tmp_path_factory):
    """A 300-account demo org audited once as of 2026-11-01, built once per test module."""
    path = tmp_path_factory.mktemp("template") / "mirror.db"
    runner = CliRunner()
    base = ["--db", f"sqlite:///{path}", "--rules", str(RULES)]
    for args in (["demo", "--accounts", "300", "--as-of", "2026-11-01"],
                 ["audit", "--as-of", "2026-11-01", "--fail-on", "never"]):
        res = runner.invoke(app, [*base, *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return path


@pytest.fixture
def org(audited_template, tmp_path, db_url):
    """This test's mirror (the `roe` fixture's database): a copy of the audited template."""
    src, dst = sqlite3.connect(audited_template), sqlite3.connect(tmp_path / "mirror.db")
    src.backup(dst)
    src.close()
    dst.close()
    eng = open_database(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def roe(db_url, monkeypatch):
    """Run `roe` in-process against the test's mirror with the shipped rules.toml."""
    monkeypatch.delenv("ROE_DB", raising=False)
    monkeypatch.delenv("ROE_RULES", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, db: str | None = None, rules: str | Path | None = None, env=None) -> Result:
        runner = CliRunner()
        argv = ["--db", db or db_url, "--rules", str(rules or RULES), *args]
        res = runner.invoke(app, argv, env=env, catch_exceptions=False)
        return Result(res.exit_code, res.stdout, res.stderr)

    return run
