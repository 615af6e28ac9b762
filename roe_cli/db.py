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
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from .settings import sqlite_path
from .shared.clock import utc_text
from .shared.errors import ConfigError, LockedError, RoeError, UsageError, redact

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


SYNC_FIRST = ("Build it first: `roe sync --source salesforce` (or hubspot), or `roe demo` for the "
              "demo org. If it exists elsewhere, point --db / ROE_DB at it.")


def check_sqlite_file(path: Path, *, may_create: bool) -> None:
    """Refuse, before SQLite touches anything, a mirror file that is missing (unless
    ``may_create``), in a missing folder, unreadable, or read-only (roe writes the mirror, its
    WAL and its lock file beside it). Mode bits count even where root could write anyway:
    a mirror made read-only on purpose stays untouched."""
    if not path.parent.is_dir():
        raise UsageError(f"The folder {path.parent} for the mirror {path.name} does not exist.",
                         "Check --db / ROE_DB for a typo, or create the folder first.")
    if not path.exists():
        if may_create:
            return
        raise UsageError(f"There is no mirror at {path}.", SYNC_FIRST)
    if not path.is_file():
        raise UsageError(f"The mirror {path} is not a file.", "Point --db / ROE_DB at the mirror file.")
    mode = path.stat().st_mode
    if not os.access(path, os.R_OK) or not mode & 0o444:
        raise UsageError(f"Cannot read the mirror {path}: permission denied.",
                         f"Give this user read and write access to it (e.g. `chmod 600 {path}`).")
    folder_mode = path.parent.stat().st_mode
    if not os.access(path, os.W_OK) or not mode & 0o222:
        raise UsageError(f"The mirror {path} is read-only; roe did not touch it.",
                         f"roe writes to its mirror; make it writable (e.g. `chmod 600 {path}`) "
                         "or work on a copy.")
    if not os.access(path.parent, os.W_OK | os.X_OK) or not folder_mode & 0o222:
        raise UsageError(f"The folder {path.parent} of the mirror is read-only; roe did not touch "
                         "the mirror.",
                         "roe keeps its write-ahead log and lock file beside the mirror; make the "
                         "folder writable, or work on a copy in a writable folder.")


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


def create(url: str, *, may_create: bool = True) -> Engine:
    """An engine for ``url``, with SQLite tuned for one writer and bulk loads. A missing SQLite
    file is refused unless ``may_create`` (see :func:`check_sqlite_file`); a new one is created
    readable by its owner only."""
    path = sqlite_path(url)
    if path is not None:
        check_sqlite_file(path, may_create=may_create)
        create_private(path)
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        # A ValueError quotes the piece that did not parse, which may be half a password.
        why = "its port is not a number" if isinstance(exc, ValueError) else redact(str(exc))
        raise ConfigError(
            f"Cannot use the database URL {redact(url)!r}: {why}",
            "Give --db / ROE_DB a file path or an SQLAlchemy URL such as "
            "postgresql+psycopg://user@host/dbname (install roe[postgres] for PostgreSQL); "
            "write an @, : or / in a password as %40, %3A or %2F.",
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"The database driver for {redact(url)!r} is not installed ({redact(str(exc))}).",
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


def open_database(url: str, *, migrate: bool = True, may_create: bool = True) -> Engine:
    """Open the mirror at ``url`` and bring its schema up to date.

    Without ``may_create``, a mirror that is missing, has no tables, or holds no owner and no
    account is a :class:`UsageError` saying to sync first (nothing is created)."""
    engine = create(url, may_create=may_create)
    if not may_create:
        try:
            if status(engine).current is None:
                raise UsageError(f"The mirror {_display(engine)} is empty (no roe tables).",
                                 SYNC_FIRST)
        except BaseException:
            engine.dispose()
            raise
    if migrate:
        current = status(engine)
        if not current.up_to_date:
            upgrade(engine)
        ensure_indexes(engine)
    if not may_create and not has_data(engine):
        engine.dispose()
        raise UsageError(f"The mirror {_display(engine)} holds no CRM data yet.", SYNC_FIRST)
    return engine


def has_data(engine: Engine) -> bool:
    """Whether the mirror holds any owner or account (of any source)."""
    from sqlalchemy import select

    from .models import accounts, owners

    with _connect(engine) as conn:
        return any(conn.execute(select(t.c.id).limit(1)).first() is not None
                   for t in (owners, accounts))


def _display(engine: Engine) -> str:
    path = sqlite_path(str(engine.url))
    return str(path) if path is not None else engine.url.render_as_string(hide_password=True)


def ensure_indexes(engine: Engine) -> None:
    """Create any index of the schema that is missing (a bulk load killed half-way drops them)."""
    from .models import metadata

    with _connect(engine) as conn, conn.begin():
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


def _corrupt(reason: str) -> bool:
    return "not a database" in reason or "malformed" in reason


@contextlib.contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            yield conn
    except DatabaseError as exc:
        reason = redact(str(exc.orig))
        if not isinstance(exc, OperationalError) and not _corrupt(reason):
            raise
        if _corrupt(reason):
            raise ConfigError(
                f"{_display(engine)} is not a readable roe mirror (SQLite: {reason}); roe did not "
                "change it.",
                "Check --db / ROE_DB. If this is the mirror, restore it from a backup, or build a "
                "new one at another path with `roe sync` (or `roe demo`).",
            ) from None
        raise ConfigError(
            f"Cannot open the database {redact(str(engine.url))}: {reason}",
            "Check --db / ROE_DB: the path must be writable, the server reachable.",
        ) from None


def describe_lock_holder(text: str) -> str:
    """Who holds the run lock, as words: "`roe audit` (pid 4242 on host-1, since
    2026-03-31T00:00:00Z)", from the lock file's JSON record; "another process" when unreadable."""
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return "another process"
    command = str(record.get("command") or "").strip()
    who = f"`roe {command}`" if command else "a roe command"
    parts = []
    if record.get("pid"):
        host = record.get("host")
        parts.append(f"pid {record['pid']}" + (f" on {host}" if host else ""))
    if record.get("since"):
        parts.append(f"since {record['since']}")
    return who + (f" ({', '.join(parts)})" if parts else "")


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
                return describe_lock_holder(handle.read())
            return None
    if engine.dialect.name == "postgresql":
        key = 0x726F65  # as run_lock
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                return "another roe run (PostgreSQL advisory lock held)"
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    return None


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
                holder = describe_lock_holder(handle.read())
                raise LockedError(
                    f"Another roe run is using this mirror: {holder}.",
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
