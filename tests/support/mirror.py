"""Comparing mirrors: every CRM row of one, sorted, so that two syncs can be compared whole."""

from __future__ import annotations

from sqlalchemy import select

from roe_cli.db import open_database
from roe_cli.models import CRM_TABLES, ownership_changes


def dump(url: str) -> dict[str, list[tuple]]:
    """Every CRM row of the mirror (and the owner history), sorted, for comparing two mirrors."""
    engine = open_database(url)
    out = {}
    with engine.connect() as conn:
        for name, table in [*CRM_TABLES.items(), ("ownership_change", ownership_changes)]:
            cols = [c for c in table.c if c.name != "id" or name != "ownership_change"]
            out[name] = sorted(tuple(map(str, row)) for row in conn.execute(select(*cols)))
    engine.dispose()
    return out
