"""The same mirror, rules and findings on PostgreSQL.

Runs when ``ROE_TEST_POSTGRES_URL`` names a server roe may create databases on (``.ci/run``
installs and starts one); each test gets a database of its own.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from roe_cli.db import open_database, run_lock
from roe_cli.models import demo_planted, metadata
from roe_cli.shared.errors import LockedError

SERVER = os.environ.get("ROE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not SERVER, reason="ROE_TEST_POSTGRES_URL is not set (.ci/run sets it)")


@pytest.fixture
def pg_url():
    name = f"roe_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_build_the_models_schema_on_postgres(pg_url):
    engine = open_database(pg_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == []


def test_the_audit_on_postgres_finds_exactly_what_the_demo_planted(roe, pg_url, tmp_path):
    assert roe("demo", "--accounts", "800", "--seed", "11", "--as-of", "2026-11-01", db=pg_url).exit_code == 0
    first = roe("audit", "--as-of", "2026-11-01", "--format", "json", "--fail-on", "never", db=pg_url)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    found = {(f["rule"], f["object_type"], f["object_id"], f["related_user_id"] or "") for f in doc["findings"]}
    engine = open_database(pg_url)
    with engine.connect() as conn:
        planted = set(conn.execute(select(demo_planted.c.rule, demo_planted.c.object_type,
                                          demo_planted.c.object_id, demo_planted.c.related_user_id)).all())
    assert found == planted
    again = json.loads(roe("audit", "--as-of", "2026-11-01", "--format", "json", "--fail-on", "never", db=pg_url).stdout)
    assert again["summary"]["new"] == 0 and again["summary"]["open"] == doc["summary"]["open"]
    exported = roe("export", "findings", "-o", str(tmp_path / "findings.json"), db=pg_url)
    assert exported.exit_code == 0, exported.output
    assert len(json.loads((tmp_path / "findings.json").read_text())) == len(doc["findings"])
    with run_lock(engine, "audit"):
        with pytest.raises(LockedError):
            with run_lock(open_database(pg_url), "demo"):
                pass
    engine.dispose()


def test_dates_in_details_are_iso_8601_utc_on_postgres_as_on_sqlite(roe, pg_url, tmp_path):
    lite = f"sqlite:///{tmp_path / 'lite.db'}"
    docs = []
    for url in (pg_url, lite):
        assert roe("demo", "--accounts", "300", "--seed", "5", "--as-of", "2026-11-01",
                   db=url).exit_code == 0
        result = roe("audit", "--as-of", "2026-11-01", "--format", "json", "--fail-on", "never",
                     "--rule", "HND001,HND002", db=url)
        assert result.exit_code == 0, result.output
        docs.append({(f["rule"], f["object_id"]): f["details"]
                     for f in json.loads(result.stdout)["findings"]})
    on_pg, on_sqlite = docs
    dated = [v for d in on_pg.values() for k, v in d.items() if k.endswith("_at") and v]
    assert dated and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v) for v in dated)
    assert on_pg == on_sqlite


def test_the_rule_cases_pass_on_postgres(pg_url):
    """Every rule case (the coverage rules' included) gives on PostgreSQL what it gives on SQLite:
    one database, emptied between cases."""
    from pathlib import Path

    from sqlalchemy import delete

    from roe_cli.rulecases import load_cases, run_case
    from roe_cli.rulesfile import load_rules

    folder = Path(__file__).parent / "rule_cases"
    rules = folder / "rules.toml"
    base = load_rules(rules)
    engine = open_database(pg_url)
    failed = []
    for case in load_cases(folder, skip=rules):
        result = run_case(case, rules, base, url=pg_url)
        if not result.passed:
            failed.append(f"{case.label}: {result.diff()}")
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))
    engine.dispose()
    assert failed == []
