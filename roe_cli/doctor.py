"""`roe doctor`: every check a nightly job depends on, each PASS, WARN or FAIL with its fix.

:func:`run_doctor` looks without touching: it never creates the mirror, never migrates it, never
takes the run lock and never prints a credential (it says whether one is present). The one call it
makes to each CRM with credentials is the connector's :meth:`~connectors.base.Connector.probe`.

Each :class:`Check` says whether a failure is the configuration's (exit 2) or the CRM's (exit 3);
:func:`exit_code` turns the list into the command's exit code. No typer, no rich.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from .shared.errors import EXIT_CRM, EXIT_OK, EXIT_USAGE, ConfigError, RoeError, redact
from .shared.vocab import Source

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .rulesfile import RulesConfig
    from .workspace import Workspace

MIN_PYTHON = (3, 11)
MIN_SQLITE = (3, 35, 0)  # RETURNING, and the ALTER TABLE forms the migrations use
DISK_WARN = 1 << 30  # 1 GiB
DISK_FAIL = 100 << 20  # 100 MiB
USAGE_WARN = 0.90  # share of the CRM's daily API allowance already used

CREDENTIAL_VARIABLES = {
    Source.SALESFORCE: "SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME, "
    "SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN",
    Source.HUBSPOT: "HUBSPOT_ACCESS_TOKEN (and HUBSPOT_BASE_URL for a test server)",
}


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


class Area(StrEnum):
    """Whose failure a failed check is: the configuration's (exit 2) or a CRM's (exit 3)."""

    CONFIG = "config"
    CRM = "crm"


@dataclass(frozen=True)
class Check:
    """One line of `roe doctor`: what was checked, how it went, what was seen, what to do."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    area: Area = Area.CONFIG

    def __post_init__(self) -> None:  # nothing a check says may carry a secret
        object.__setattr__(self, "detail", redact(self.detail))
        if self.fix:
            object.__setattr__(self, "fix", redact(self.fix))


def exit_code(checks: list[Check]) -> int:
    """3 when a CRM check failed, else 2 when a configuration check failed, else 0."""
    failed = {c.area for c in checks if c.status is Status.FAIL}
    if Area.CRM in failed:
        return EXIT_CRM
    return EXIT_USAGE if failed else EXIT_OK


def run_doctor(ws: Workspace, *, sources: tuple[str, ...] = (Source.SALESFORCE, Source.HUBSPOT),
               disk_usage: Callable[[str], tuple[int, int, int]] | None = None,
               ) -> list[Check]:
    """Every check, in the order a person fixes them: runtime, rules, mirror, lock, CRMs, disk."""
    checks = [_python(), _sqlite()]
    config, rules_checks = _rules(ws)
    checks += rules_checks
    engine, mirror_checks = _mirror(ws)
    checks += mirror_checks
    if engine is not None:
        try:
            checks += list(_people(config, engine))
            checks.append(_lock(engine))
        finally:
            engine.dispose()
    for source in sources:
        checks += list(_crm(ws, source, config))
    checks.append(_disk(ws, disk_usage or shutil.disk_usage))
    return checks


# -- runtime -------------------------------------------------------------------------------------


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", Status.FAIL, f"Python {version} is older than 3.11",
                     "Install Python 3.11 or newer and reinstall roe with it.")
    return Check("python", Status.PASS, f"Python {version}")


def _sqlite() -> Check:
    version = sqlite3.sqlite_version
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        return Check("sqlite", Status.WARN, f"SQLite {version} is older than 3.35",
                     "Use a Python built with a newer SQLite, or a PostgreSQL mirror.")
    return Check("sqlite", Status.PASS, f"SQLite {version}")


# -- the rules file ------------------------------------------------------------------------------


def _rules(ws: Workspace) -> tuple[RulesConfig | None, list[Check]]:
    from .rulesfile import RulesFileError

    path = ws.rules_file
    if not path.exists():
        return None, [Check("rules", Status.FAIL, f"no rules file at {path}",
                            "Create it (copy the rules.toml that ships with roe), or point "
                            "--rules / ROE_RULES at yours.")]
    try:
        config = ws.config()
    except RulesFileError as exc:
        count = len(exc.problems)
        first = str(exc.problems[0]) if exc.problems else exc.what
        detail = first if count <= 1 else f"{count} problems, the first: {first}"
        return None, [Check("rules", Status.FAIL, detail,
                            f"Fix {path}; `roe rules --check` lists every problem.")]
    except RoeError as exc:
        return None, [Check("rules", Status.FAIL, exc.what.splitlines()[0], exc.todo)]
    teams = len(getattr(config, "teams", ()) or ())
    return config, [Check("rules", Status.PASS, f"{path} is valid ({teams} teams)")]


def _people(config: RulesConfig | None, engine: Engine) -> Iterator[Check]:
    from .rulesfile import RulesFileError, check_people, mirror_people

    if config is None:
        return  # the rules check said why
    try:
        people = mirror_people(engine)
    except ConfigError as exc:
        yield Check("people", Status.FAIL, exc.what, exc.todo)
        return
    if people is None:
        yield Check("people", Status.WARN, "the mirror has no owners yet to check the rules against",
                    "Run `roe sync` (or `roe demo`), then `roe doctor` again.")
        return
    known, inactive = people
    try:
        warnings = check_people(config, known, inactive_emails=inactive)
    except RulesFileError as exc:
        count = len(exc.problems)
        first = str(exc.problems[0]) if exc.problems else exc.what
        detail = first if count <= 1 else f"{count} people unknown, the first: {first}"
        yield Check("people", Status.FAIL, detail,
                    "Correct the e-mails in the rules file, or sync the source they belong to.")
        return
    if warnings:
        yield Check("people", Status.WARN, str(warnings[0])
                    + (f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""),
                    "Name an active owner instead.")
        return
    yield Check("people", Status.PASS, f"everyone the rules file names is an owner in the mirror "
                                       f"({len(known):,} owners)")


# -- the mirror ----------------------------------------------------------------------------------


def _mirror(ws: Workspace) -> tuple[Engine | None, list[Check]]:
    """The database, its migrations and its file mode; the engine (not migrated) when it opens."""
    from sqlalchemy.exc import SQLAlchemyError

    from . import db
    from .settings import sqlite_path

    url = ws.db_url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None, [Check("database", Status.FAIL, f"no mirror at {path}",
                            "Run `roe sync --source salesforce|hubspot` (or `roe demo`) to create "
                            "it, or point --db / ROE_DB at the existing one.")]
    try:
        engine = ws.open_engine(migrate=False)
    except RoeError as exc:
        return None, [Check("database", Status.FAIL, exc.what, exc.todo)]
    shown = ws.display_url(engine)
    try:
        st = db.status(engine)
    except (RoeError, SQLAlchemyError) as exc:
        engine.dispose()
        what = exc.what if isinstance(exc, RoeError) else f"{type(exc).__name__}: {exc}"
        return None, [Check("database", Status.FAIL, f"cannot read {shown}: {what}",
                            "Check --db / ROE_DB: the file must be an SQLite database roe "
                            "wrote (or the server reachable), readable and writable.")]
    except Exception as exc:  # noqa: BLE001 - alembic on a revision it does not know
        engine.dispose()
        return None, [Check("migrations", Status.FAIL,
                            f"{shown} is at a schema revision this roe does not know ({exc})",
                            "A newer roe wrote this mirror: upgrade roe.")]
    checks = [Check("database", Status.PASS, f"{shown} opens")]
    if st.current is None:
        checks.append(Check("migrations", Status.WARN, "the mirror is empty (no schema yet)",
                            "Run `roe sync` or `roe demo` to fill it."))
    elif st.pending:
        checks.append(Check("migrations", Status.WARN,
                            f"at {st.current}; pending: {', '.join(st.pending)}",
                            "Run `roe db upgrade` (any command that writes also upgrades it)."))
    else:
        checks.append(Check("migrations", Status.PASS, f"at the latest schema ({st.current})"))
    if path is not None:
        checks.append(_file_mode(path))
    return engine, checks


def _file_mode(path: Path) -> Check:
    """0600 for the mirror and the files beside it: they hold names, e-mails and amounts."""
    files = [path] + [p for p in (path.with_name(path.name + s) for s in ("-wal", "-shm", ".lock"))
                      if p.exists()]
    loose = [(p, p.stat().st_mode & 0o777) for p in files if p.stat().st_mode & 0o077]
    if loose:
        names = ", ".join(f"{p.name} ({mode:04o})" for p, mode in loose)
        return Check("file mode", Status.WARN, f"others can read {names}",
                     "chmod 600 " + " ".join(str(p) for p, _ in loose))
    return Check("file mode", Status.PASS, f"{path.name} is readable by its owner only (0600)")


def _lock(engine: Engine) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from .db import lock_holder

    try:
        holder = lock_holder(engine)
    except (OSError, SQLAlchemyError) as exc:
        return Check("lock", Status.WARN, f"cannot tell whether the run lock is free ({exc})",
                     "Check that the mirror's folder is readable.")
    if holder is not None:
        return Check("lock", Status.WARN, f"held by {holder}",
                     "Wait for that run to finish; the lock goes when its process ends.")
    return Check("lock", Status.PASS, "free")


# -- the CRMs ------------------------------------------------------------------------------------


def _crm(ws: Workspace, source: str, config: RulesConfig | None) -> Iterator[Check]:
    """Credentials present (never shown); then one cheap call and the API usage it reports."""
    from connectors.registry import factory

    from .sources import make_connector

    found = factory(source)
    if not found.has_credentials():
        yield Check(f"{source} credentials", Status.WARN, "not set: this source cannot be synced",
                    f"To sync {source}, set {CREDENTIAL_VARIABLES.get(Source(source), 'them')}.")
        return
    yield Check(f"{source} credentials", Status.PASS, "present (not shown)")
    settings = getattr(config, source, None) if config is not None else None
    try:
        connector = make_connector(source, settings=settings)  # no engine: never opens the mirror
    except RoeError as exc:
        yield Check(f"{source} answers", Status.FAIL, exc.what, exc.todo,
                    area=Area.CRM if exc.exit_code == EXIT_CRM else Area.CONFIG)
        return
    try:
        started = time.monotonic()
        try:
            connector.probe()
        except RoeError as exc:
            yield Check(f"{source} answers", Status.FAIL, exc.what, exc.todo,
                        area=Area.CRM if exc.exit_code == EXIT_CRM else Area.CONFIG)
            return
        yield Check(f"{source} answers", Status.PASS,
                    f"one call answered in {time.monotonic() - started:.1f} s", area=Area.CRM)
        yield _usage(source, connector.api_usage_text())
    finally:
        connector.close()


_USED_OF = re.compile(r"([\d,]+) of ([\d,]+)")


def _usage(source: str, text: str | None) -> Check:
    name = f"{source} API usage"
    if not text:
        return Check(name, Status.PASS, "not reported by the CRM", area=Area.CRM)
    match = _USED_OF.search(text)
    if match:
        used, limit = (int(g.replace(",", "")) for g in match.groups())
        if limit and used / limit >= USAGE_WARN:
            return Check(name, Status.WARN, text,
                         "Little of today's allowance is left: sync later, or raise the limit.",
                         area=Area.CRM)
    return Check(name, Status.PASS, text, area=Area.CRM)


# -- the disk ------------------------------------------------------------------------------------


def _disk(ws: Workspace, disk_usage: Callable[[str], tuple[int, int, int]]) -> Check:
    from .settings import sqlite_path

    path = sqlite_path(ws.db_url)
    folder = path.parent if path is not None else Path.cwd()
    where = f"{folder}" + ("" if path is not None else " (plans and exports)")
    try:
        free = disk_usage(os.fspath(folder))[2]
    except OSError as exc:
        return Check("disk", Status.WARN, f"cannot read the free space of {where}: {exc}",
                     "Check that the folder exists.")
    text = f"{_size(free)} free in {where}"
    if free < DISK_FAIL:
        return Check("disk", Status.FAIL, text,
                     "Free some space: a sync or an audit needs room to write the mirror.")
    if free < DISK_WARN:
        return Check("disk", Status.WARN, text, "Free some space before the mirror grows.")
    return Check("disk", Status.PASS, text)


def _size(n: int) -> str:
    size, unit = float(n), "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:,.1f} {unit}"
