"""The schema: Alembic migrations create it, agree with the models, and keep data on upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from roe_cli import db
from roe_cli.models import accounts, metadata, owners


def test_models_and_migrations_agree(db_url):
    engine = db.open_database(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_opening_a_database_runs_every_migration(db_url):
    engine = db.open_database(db_url)
    status = db.status(engine)
    assert status.current == status.head and status.pending == []
    assert {"owners", "accounts", "findings", "apply_journal"} <= set(inspect(engine).get_table_names())


def test_upgrading_from_the_first_revision_keeps_rows(db_url):
    engine = db.create(db_url)
    db.upgrade(engine, "0001")
    assert db.status(engine).current == "0001"
    with engine.begin() as conn:
        conn.execute(insert(owners).values(source="demo", id="u1", email="ana@example.com", active=True))
        conn.execute(insert(accounts).values(source="demo", id="a1", name="Acme", owner_id="u1", deleted=False))
    assert db.status(engine).pending  # later revisions are waiting
    engine = db.open_database(db_url)  # roe upgrades on open
    assert db.status(engine).pending == []
    with engine.connect() as conn:
        assert conn.execute(select(accounts.c.name, accounts.c.owner_id)).all() == [("Acme", "u1")]
        assert conn.execute(select(owners.c.email)).scalar_one() == "ana@example.com"


def test_db_status_and_upgrade_commands(roe, db_url):
    engine = db.create(db_url)
    db.upgrade(engine, "0001")
    pending = roe("db", "status")
    assert pending.exit_code == 1
    assert "pending" in pending.stdout and "roe db upgrade" in pending.stdout
    upgraded = roe("db", "upgrade")
    assert upgraded.exit_code == 0 and "from 0001" in upgraded.stdout
    assert roe("db", "status").exit_code == 0


def test_a_missing_index_is_recreated_when_the_mirror_is_opened(db_url):
    """A bulk load drops secondary indexes and rebuilds them; if it is killed in between,
    the next roe command must not run on a mirror without them."""
    from sqlalchemy import inspect as sa_inspect

    from roe_cli.models import activities

    engine = db.open_database(db_url)
    index = next(iter(activities.indexes))
    with engine.begin() as conn:
        index.drop(conn)
    assert index.name not in {i["name"] for i in sa_inspect(engine).get_indexes("activities")}
    engine = db.open_database(db_url)
    assert index.name in {i["name"] for i in sa_inspect(engine).get_indexes("activities")}
