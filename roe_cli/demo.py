"""Loading the demo org into the mirror (source ``demo``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from connectors.demo.generator import default_as_of, generate

from .models import (
    CRM_TABLES,
    audit_runs,
    demo_orgs,
    demo_planted,
    findings,
    ownership_changes,
    sync_state,
    waivers,
)
from .sync import utcnow

SOURCE = "demo"
_TABLES = {**CRM_TABLES, "ownership_change": ownership_changes}


def load_demo_org(
    engine: Engine,
    accounts: int,
    seed: int = 42,
    as_of: datetime | None = None,
    on_chunk: Callable[[int], None] | None = None,
    source: str = SOURCE,
) -> dict[str, int]:
    """Replace the ``demo`` source in the mirror with a fresh generated org; return row counts.

    Each chunk is one transaction. Findings and waivers of an earlier demo org go with it.
    """
    as_of = as_of or default_as_of()
    counts = {name: 0 for name in _TABLES} | {"planted": 0}
    with engine.begin() as conn:
        for table in [*_TABLES.values(), sync_state, demo_planted, demo_orgs, findings]:
            conn.execute(delete(table).where(table.c.source == source))
        conn.execute(delete(waivers).where(waivers.c.source == source))
        conn.execute(
            insert(demo_orgs).values(
                source=source, seed=seed, accounts=accounts, as_of=as_of, created_at=utcnow()
            )
        )
    done = 0
    for chunk in generate(accounts, seed, as_of):
        with engine.begin() as conn:
            for object_type, rows in chunk.rows.items():
                table = _TABLES[object_type]
                conn.execute(insert(table), [{"source": source, **row} for row in rows])
                counts[object_type] += len(rows)
            if chunk.planted:
                conn.execute(insert(demo_planted), [{"source": source, **p} for p in chunk.planted])
                counts["planted"] += len(chunk.planted)
        n = len(chunk.rows.get("account", ()))
        done += n
        if on_chunk and n:
            on_chunk(n)
    return counts
