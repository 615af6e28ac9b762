"""Loading the demo org into the mirror (source ``demo``)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Index, Table, delete, insert, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.types import TypeEngine

from connectors.demo.generator import Chunk, default_as_of, generate

from .models import (
    CRM_TABLES,
    account_team_members,
    activities,
    contacts,
    demo_orgs,
    demo_planted,
    findings,
    opportunities,
    ownership_changes,
    sync_state,
    waivers,
)
from .shared.clock import utcnow
from .shared.errors import RoeError
from .shared.vocab import Source, SyncObject

SOURCE: str = Source.DEMO
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
_TABLES: dict[str, Table] = {**CRM_TABLES, SyncObject.OWNERSHIP_CHANGE: ownership_changes,
                             "account_team_member": account_team_members}


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
    done = [0]
    with engine.begin() as conn:
        for table in [*_TABLES.values(), sync_state, demo_planted, demo_orgs, findings]:
            conn.execute(delete(table).where(table.c.source == source))
        conn.execute(delete(waivers).where(waivers.c.source == source))
        conn.execute(
            insert(demo_orgs).values(
                source=source, seed=seed, accounts=accounts, as_of=as_of, created_at=utcnow()
            )
        )
    workers = 2 if accounts >= 20_000 else 1  # a second process pays off on big orgs
    deferred = _defer_indexes(engine)
    chunks = generate(accounts, seed, as_of, workers=workers)
    try:
        with _ctrl_c_between_chunks() as interrupted:
            _load_chunks(engine, source, chunks, counts, on_chunk, done, interrupted)
    except (_StopBetweenChunks, KeyboardInterrupt) as stop:
        chunks.close()  # stops the generator's worker processes now
        if isinstance(stop, _StopBetweenChunks):
            # (After a second Ctrl-C mid-write the connection may still hold its lock: the
            # next open of the mirror rebuilds the indexes instead, see _defer_indexes.)
            _restore_indexes(engine, deferred)
        again = f"--accounts {accounts} --seed {seed}"
        if as_of != default_as_of():
            again += f" --as-of {as_of.isoformat()}"
        raise DemoInterrupted(done[0], accounts, again) from None
    except BaseException:
        chunks.close()
        _restore_indexes(engine, deferred)
        raise
    _restore_indexes(engine, deferred)
    with engine.begin() as conn:
        conn.execute(update(demo_orgs).where(demo_orgs.c.source == source)
                     .values(completed_at=utcnow()))
    return counts


class DemoInterrupted(RoeError):
    """Ctrl-C during ``roe demo``: what is in the mirror, and how to get the whole org."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, loaded: int, accounts: int, options: str) -> None:
        self.loaded = loaded
        super().__init__(
            f"Interrupted: the mirror holds a partial demo org ({loaded:,} of {accounts:,} "
            f"accounts, recorded as partial); run `roe demo {options}` again to rebuild it whole."
        )


def _restore_indexes(engine: Engine, deferred: list[Index]) -> None:
    """Rebuild the indexes dropped for the load; also after an error or Ctrl-C, so the mirror is
    never left without them."""
    with engine.begin() as conn:
        for index in deferred:
            index.create(conn, checkfirst=True)


def _defer_indexes(engine: Engine) -> list[Index]:
    """On SQLite, drop the secondary indexes of the big tables for the bulk load: building each
    once afterwards is several times faster than maintaining it row by row. (``open_database``
    recreates any that a killed load left missing.)"""
    if engine.dialect.name != "sqlite":
        return []
    deferred = [index for table in (activities, contacts, opportunities) for index in table.indexes]
    with engine.begin() as conn:
        for index in deferred:
            index.drop(conn, checkfirst=True)
    return deferred


class _StopBetweenChunks(Exception):
    """A Ctrl-C seen while a chunk was written, acted on once it was committed."""


@contextlib.contextmanager
def _ctrl_c_between_chunks() -> Iterator[Callable[[], bool]]:
    """Hold a first Ctrl-C until the chunk being written is committed: yields ``interrupted()``,
    which the load checks between chunks. A KeyboardInterrupt inside a write would leave the
    SQLite connection holding its lock until the process ends, so the clean-up after it (the
    indexes) would wait 30 seconds and fail. A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hits: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


def _load_chunks(engine: Engine, source: str, chunks: Iterable[Chunk], counts: dict[str, int],
                 on_chunk: Callable[[int], None] | None, done: list[int],
                 interrupted: Callable[[], bool] = lambda: False) -> None:
    """Write each chunk in one transaction, with the org's ``loaded_accounts`` (``done[0]``);
    :class:`_StopBetweenChunks` between chunks once ``interrupted()``."""
    for chunk in chunks:
        if interrupted():
            raise _StopBetweenChunks
        n = len(chunk.rows.get("account", ()))
        with engine.begin() as conn:
            for object_type, rows in chunk.rows.items():
                table = _TABLES[object_type]
                bulk_insert(conn, table, [{"source": source, **row} for row in rows])
            if chunk.planted:
                bulk_insert(conn, demo_planted, [{"source": source, **p} for p in chunk.planted])
            conn.execute(update(demo_orgs).where(demo_orgs.c.source == source)
                         .values(loaded_accounts=done[0] + n))
        done[0] += n  # counted once committed: Ctrl-C inside the transaction rolls it back
        for object_type, rows in chunk.rows.items():
            counts[object_type] += len(rows)
        counts["planted"] += len(chunk.planted)
        if interrupted():
            raise _StopBetweenChunks
        if on_chunk and n:
            on_chunk(n)


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows fast: straight to the driver's ``executemany`` with values converted by
    the columns' own SQLAlchemy types (so SQLite stores times exactly as SQLAlchemy would).
    Rows must share the keys of the first. Other databases take the ordinary Core path."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    names = list(rows[0])
    processors = [_fast_processor(table.c[name].type, conn.dialect) for name in names]
    convert = [(i, p) for i, p in enumerate(processors) if p is not None]
    values = []
    for row in rows:
        record = [row[name] for name in names]
        for i, process in convert:
            if record[i] is not None:
                record[i] = process(record[i])
        values.append(tuple(record))
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    )
    conn.exec_driver_sql(sql, values)


def _fast_processor(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processor, with C-speed equivalents for times on SQLite
    (``isoformat`` writes exactly SQLAlchemy's SQLite storage format for naive values)."""
    if isinstance(column_type, DateTime):
        return lambda value: value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(column_type, Date):
        return date.isoformat
    return column_type._cached_bind_processor(dialect)
