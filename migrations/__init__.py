"""Alembic migrations for the roe mirror. Run from code by ``roe_cli.db``; see ``roe db --help``."""
