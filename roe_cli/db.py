"""Opening the mirror: engine set-up, Alembic migrations run from code, and the run lock."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from .settings import sqlite_path
from .shared.clock import utc_text
from .shared.errors import ConfigError, LockedError, RoeError, redact

if TYPE_CHECKING:
    from alembic.config import Config


def _migrations_dir() -> Path:
    import migrations

    return Path(migrations.__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` that points at roe's migrations (installed or in a checkout)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# How long a write waits for another program's write transaction on an SQLite mirror.
BUSY_TIMEOUT_SECONDS = 30.0


def sqlite_fault(path: Path | None, exc: BaseException) -> RoeError | None:
    """The RoeError an SQLite failure means (the mirror locked by another program, the disk
    full), or None for any other error. The failed transaction is rolled back either way, so the
    mirror stays as the last committed one left it."""
    message = str(exc).lower()
    where = f"the mirror {path}" if path is not None else "the mirror"
    if "database is locked" in message or "database table is locked" in message:
        return LockedError(
            f"Another program holds a write lock on {where}; roe waited "
            f"{BUSY_TIMEOUT_SECONDS:g} s and gave up. This run's unfinished changes were rolled back.",
            "Run the command again when that program is done (`fuser` on the file shows it); "
            "a sqlite3 shell or a BI tool left open in a transaction is the usual cause.",
        )
    if "database or disk is full" in message or "disk i/o error" in message:
        cause = "the disk is full" if "full" in message else "a disk I/O error (the disk is full or failing)"
        return ConfigError(
            f"Could not write {where}: {cause}. The unfinished transaction was rolled back; the "
            "mirror holds what the last finished step wrote.",
            "Free some space next to the mirror (`df -h`), then run the command again: it "
            "carries on from there.",
        )
    return None


def create(url: str) -> Engine:
    """An engine for ``url``, with SQLite tuned for one writer and bulk loads."""
    path = sqlite_path(url)
    if path is not None and not path.parent.exists():
        raise ConfigError(
            f"The folder for the database {path} does not exist.",
            "Create the folder, or point --db / ROE_DB at another path.",
        )
    if path is not None:
        create_private(path)
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"Cannot use the database URL {redact(url)!r}: {exc}",
            "Give --db / ROE_DB a file path or an SQLAlchemy URL such as "
            "postgresql+psycopg://user@host/dbname (install roe[postgres] for PostgreSQL).",
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"The database driver for {redact(url)!r} is not installed ({exc}).",
            "Install it, e.g. `pip install 'roe[postgres]'` for PostgreSQL.",
        ) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "handle_error")
        def _sqlite_faults(context: Any) -> None:
            fault = sqlite_fault(path, context.original_exception)
            if fault is not None:
                raise fault from None

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache
            cur.close()

    return engine


def create_private(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only (0600), unless it exists.

    The mirror holds names, e-mails and deal amounts. SQLite gives its ``-wal`` and ``-shm``
    files the mode of the main file, so creating the main file 0600 before SQLite opens it keeps
    all three private. An existing file keeps its mode (``roe doctor`` warns about a wider one).
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


@dataclass
class SchemaStatus:
    current: str | None
    head: str | None  # None only for a migrations folder without revisions
    pending: list[str]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def status(engine: Engine) -> SchemaStatus:
    """Which migration the database is at, and which are still to run."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with _connect(engine) as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    pending = [
        rev.revision
        for rev in script.iterate_revisions(head, current or "base")
        if rev.revision != current
    ]
    pending.reverse()
    return SchemaStatus(current=current, head=head, pending=pending)


def upgrade(engine: Engine, revision: str = "head") -> SchemaStatus:
    """Run the migrations up to ``revision`` (all of them by default)."""
    from alembic import command

    with _connect(engine) as conn, conn.begin():
        command.upgrade(alembic_config(conn), revision)
    return status(engine)


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """Open the mirror at ``url`` and bring its schema up to date."""
    engine = create(url)
    if migrate:
        current = status(engine)
        if not current.up_to_date:
            upgrade(engine)
        ensure_indexes(engine)
    return engine


def ensure_indexes(engine: Engine) -> None:
    """Create any index of the schema that is missing (a bulk load killed half-way drops them)."""
    from .models import metadata

    with _connect(engine) as conn, conn.begin():
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


@contextlib.contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            yield conn
    except OperationalError as exc:
        raise ConfigError(
            f"Cannot open the database {redact(str(engine.url))}: {redact(str(exc.orig))}",
            "Check --db / ROE_DB: the path must be writable, the server reachable.",
        ) from None


def lock_holder(engine: Engine) -> str | None:
    """Who holds the mirror's run lock, in words; None when it is free. Takes nothing and
    creates nothing (no lock file appears where there was none)."""
    path = sqlite_path(str(engine.url))
    if path is not None:
        import fcntl

        lock_path = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return holder_text(handle.read())
            return None
    if engine.dialect.name == "postgresql":
        key = 0x726F65  # as run_lock
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                return "another roe run (PostgreSQL advisory lock held)"
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    return None


def holder_text(content: str) -> str:
    """The lock file's record as a sentence: `roe sync hubspot` (pid 12, host, since ...)."""
    try:
        info = json.loads(content)
        return (f"`roe {info['command']}` (pid {info['pid']} on {info['host']}, "
                f"since {info['since']})")
    except (ValueError, KeyError, TypeError):
        return content.strip() or "another process"


@contextlib.contextmanager
def run_lock(engine: Engine, command: str) -> Iterator[None]:
    """Hold the mirror's run lock for ``command``, so two roe runs never write one mirror at once.

    SQLite: an exclusive ``flock`` on ``<db>.lock`` beside the database (released by the OS if
    roe dies). PostgreSQL: a session advisory lock. Other databases: no lock.
    """
    path = sqlite_path(str(engine.url))
    if path is not None:
        import fcntl

        lock_path = path.with_name(path.name + ".lock")
        # 0600 like the mirror: it names the host and the command that holds it
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        handle = os.fdopen(fd, "a+")  # held for the whole block
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise LockedError(
                    f"Another roe run is using this mirror ({holder}).",
                    f"Wait for it to finish. If no roe is running, the lock file {lock_path} is "
                    "stale only if its process is gone; the lock is released automatically then.",
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(
                json.dumps(
                    {
                        "command": command,
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "since": utc_text(),
                    }
                )
            )
            handle.flush()
            yield
        finally:
            handle.close()
        return
    if engine.dialect.name == "postgresql":
        key = 0x726F65  # "roe"
        # autocommit: the advisory lock belongs to the session, and no transaction stays open
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got:
                raise LockedError(
                    "Another roe run is using this mirror (PostgreSQL advisory lock held).",
                    "Wait for it to finish; the lock is released when that run disconnects.",
                )
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    yield
