"""Alembic environment: roe runs migrations from code (``roe_cli.db.upgrade``), on a connection it
passes in ``config.attributes["connection"]``; ``alembic`` on the command line works too, with
``ROE_DB`` naming the database."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from roe_cli.models import metadata

config = context.config
target_metadata = metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from roe_cli.settings import database_url

    section = config.get_section(config.config_ini_section) or {}
    section["sqlalchemy.url"] = database_url(None)
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("roe's migrations run online only: use `roe db upgrade`.")
run_migrations_online()
