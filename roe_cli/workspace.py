"""The core object a command works on: one mirror (``--db``) and one rules file (``--rules``).

sqlite-utils style: a command builds one :class:`Workspace` and makes one call; the workspace
opens what the call needs (the engine, the validated rules file, the run lock, the connector)
and nothing more. Invariants:

- Nothing is opened on construction. The engine is opened (and migrated) on first use, so a
  command that fails its own checks first (a bad plan file, a bad date) never creates a mirror.
- Every write to the mirror happens under the run lock; a connector is always closed, even when
  the run fails.
- No typer, no rich: progress is reported through plain callbacks (:data:`Progress`).
- Each run logs what it did (counts, time taken) on ``roe.<area>``; the CLI logs each command's
  start, outcome and exit code on ``roe.run``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logsetup import area_log, counts_text
from .progress import Progress, no_progress
from .settings import database_url, rules_path
from .shared.errors import UsageError
from .shared.vocab import Source

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .audit import AuditResult
    from .db import SchemaStatus
    from .doctor import Check
    from .export import ExportResult
    from .findings import FindingFilter
    from .nightly import NightlyReport
    from .report import Report
    from .rulecases import CasesReport
    from .rulesfile import RulesConfig
    from .sync import SyncReport
    from .whatif import WhatIf
    from .writeback import WriteBack

def _logged_export(what: str, result: ExportResult) -> ExportResult:
    area_log("export").info("export %s: %d row(s) to %s (%s)", what, result.rows, result.path,
                        result.format)
    return result


class Workspace:
    """The mirror at ``db`` (a path or an SQLAlchemy URL) and the rules file at ``rules``."""

    def __init__(self, db: str | None = None, rules: str | None = None) -> None:
        self.db = db
        self.rules = rules
        self._engine: Engine | None = None
        self._lock_depth = 0  # how many `lock` blocks of this workspace are open
        self.last_api_calls: int | None = None  # the HTTP calls of the latest sync, even a failed one
        # Only sync, demo and `db upgrade` may create a mirror; every other call refuses a
        # missing or empty one (a typo in --db must not audit a fresh, empty mirror).
        self._may_create = False

    # -- what it points at -------------------------------------------------------------------

    @property
    def db_url(self) -> str:
        return database_url(self.db)

    @property
    def rules_file(self) -> Path:
        return rules_path(self.rules)

    @property
    def engine(self) -> Engine:
        """The mirror, opened and migrated on first use."""
        if self._engine is None:
            from .db import open_database

            self._engine = open_database(self.db_url, may_create=self._may_create)
        return self._engine

    def open(self, *, create: bool = False) -> Engine:
        """Open (and migrate) the mirror now rather than on first use. Only ``create`` (sync,
        demo) makes a mirror that is not there; otherwise a missing or empty one is refused."""
        if create:
            self._may_create = True
        return self.engine

    def open_engine(self, *, migrate: bool = True, may_create: bool = True) -> Engine:
        """A new engine on the mirror; with ``migrate=False`` the schema is left as it is."""
        from .db import create, open_database

        if not migrate:
            return create(self.db_url, may_create=may_create)
        return open_database(self.db_url, may_create=may_create)

    @staticmethod
    def display_url(engine: Engine) -> str:
        """The engine's URL with its password hidden, for messages."""
        return engine.url.render_as_string(hide_password=True)

    def config(self) -> RulesConfig:
        """The rules file, validated."""
        from .rulesfile import load_rules

        return load_rules(self.rules_file)

    def test_rule_cases(self, path: Path) -> CasesReport:
        """The rule cases in ``path`` run against the rules file, each in an in-memory mirror."""
        from .rulecases import run_cases

        report = run_cases(path, self.rules_file)
        area_log("rules").info("rule cases %s against %s: %d run, %d failed in %.2fs", path,
                               self.rules_file, len(report.results), len(report.failed), report.seconds)
        return report

    def mirror_people(self) -> tuple[set[str], set[str]] | None:
        """The mirror's owner e-mails and the inactive ones, or None when there is no mirror (or
        no owner in it). Never creates a database: `roe rules --check` leaves no roe.db behind."""
        from .rulesfile import mirror_people
        from .settings import sqlite_path

        path = sqlite_path(self.db_url)
        if path is not None and not path.exists():
            return None
        engine = self.open_engine(migrate=False)
        try:
            return mirror_people(engine)
        finally:
            engine.dispose()

    def config_if_present(self) -> RulesConfig | None:
        """The rules file when there is one (every setting has a default otherwise)."""
        return self.config() if self.rules_file.exists() else None

    def connector_settings(self, source: str) -> Any:
        """The ``[salesforce]`` / ``[hubspot]`` table of the rules file, or None for the demo."""
        if source == Source.DEMO:
            return None
        config = self.config_if_present()
        return None if config is None else getattr(config, source, None)

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """The mirror's run lock, held for ``command``.

        Re-entrant within this workspace: a run that holds the lock (``roe nightly``) calls
        :meth:`sync` and :meth:`audit`, which take it again; only the outermost block takes and
        releases it (a second ``flock`` from the same process would fail on its own lock).
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        from .db import run_lock

        with run_lock(self.engine, command):
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0

    @contextlib.contextmanager
    def connector(self, source: str) -> Iterator[Any]:
        """The connector for ``source``, closed on the way out."""
        from .sources import make_connector

        settings = self.connector_settings(source)
        connector = make_connector(source, settings=settings, engine=self.engine)
        try:
            yield connector
        finally:
            connector.close()

    # -- schema --------------------------------------------------------------------------------

    def schema_status(self) -> tuple[str, SchemaStatus]:
        """The mirror's display URL and schema status, without migrating (or creating) it."""
        from . import db

        engine = self.open_engine(migrate=False, may_create=False)
        return self.display_url(engine), db.status(engine)

    def upgrade_schema(self) -> tuple[str, SchemaStatus, SchemaStatus]:
        """Run every pending migration: the display URL, the status before and after."""
        from . import db

        engine = self.open_engine(migrate=False)
        before = db.status(engine)
        return self.display_url(engine), before, db.upgrade(engine)

    def doctor(self) -> list[Check]:
        """Every `roe doctor` check; creates, migrates and locks nothing."""
        from .doctor import run_doctor

        return run_doctor(self)

    # -- the runs ------------------------------------------------------------------------------

    def sync(self, source: str, *, full: bool = False, allow_mass_delete: bool = False,
             progress: Progress = no_progress) -> tuple[SyncReport, str | None]:
        """Pull ``source`` into the mirror: the report and the org's API usage text, if any.

        A full sync keeps records it would mark deleted beyond ``[sync] max_delete_share``
        (CrmError) unless ``allow_mass_delete``."""
        from .sync import DEFAULT_MAX_DELETE_SHARE
        from .sync import sync as run_sync

        if source == Source.DEMO:
            raise UsageError("The demo org is not synced: `roe demo` generates it into the mirror.",
                             "Run `roe demo` to (re)build it, or sync salesforce or hubspot.")
        config = self.config_if_present()
        share = config.sync.max_delete_share if config is not None else DEFAULT_MAX_DELETE_SHARE
        started = time.monotonic()
        engine = self.open(create=True)
        with self.connector(source) as connector:
            try:
                with self.lock(f"sync {source}"), progress(f"Syncing {source}", None) as advance:
                    report = run_sync(engine, connector, full=full,
                                      on_page=lambda _object, n: advance(n),
                                      max_delete_share=share, allow_mass_delete=allow_mass_delete)
            finally:  # kept when the sync fails too: `roe nightly` logs the calls it cost
                self.last_api_calls = connector.api_calls()
        log = area_log("sync")
        for obj in report.objects.values():
            log.info("sync %s %s: read=%d inserted=%d updated=%d deleted=%d owner_changes=%d",
                     source, obj.object_type, obj.read, obj.inserted, obj.updated, obj.deleted,
                     obj.owner_changes)
        log.info("sync %s (%s) done in %.2fs: %d API call(s)%s", source,
                 "full" if full else "incremental", time.monotonic() - started, report.api_calls,
                 f"; {report.api_usage}" if report.api_usage else "")
        return report, report.api_usage or None

    def audit(self, as_of: datetime | None = None, codes: Sequence[str] | None = None, *,
              store: bool = True, record: bool = False) -> AuditResult:
        """Run the rules file against the mirror and store the findings.

        Nothing is stored without ``store``, nor, unless ``record``, when ``as_of`` is earlier
        than the latest stored run's: a look at the past must not rewrite the live history
        (``result.stored`` says which). An as-of before 2000 or over a day ahead is refused."""
        from .audit import check_as_of, latest_stored_as_of, run_audit

        if record and not store:
            raise UsageError("--record and --no-store contradict each other.",
                             "Give one of them.")
        if as_of is not None:
            check_as_of(as_of)
        config = self.config()
        engine = self.engine
        with self.lock("audit"):
            if store and as_of is not None and not record:
                latest = latest_stored_as_of(engine)
                store = latest is None or as_of >= latest
            result = run_audit(engine, config, as_of, list(codes) if codes is not None else None,
                               store=store)
        log = area_log("audit")
        for code, r in result.rules.items():
            log.info("audit rule %s (%s): open=%d waived=%d new=%d reopened=%d resolved=%d "
                     "in %.2fs", code, r.severity, r.open, r.waived, r.new, r.reopened,
                     r.resolved, r.seconds)
        summary = result.summary()
        log.info("audit run %s as of %s done in %.2fs%s: open=%d (%s) waived=%d new=%d "
                 "reopened=%d resolved=%d", result.run_id, result.as_of.isoformat(),
                 result.seconds, "" if result.stored else " (not stored)", summary["open"],
                 counts_text(summary["open_by_severity"]), summary["waived"], summary["new"],
                 summary["reopened"], summary["resolved"])
        return result

    def latest_audit_as_of(self) -> datetime | None:
        """The as-of time of the latest stored audit run (None before the first)."""
        from .audit import latest_stored_as_of

        return latest_stored_as_of(self.engine)

    def whatif(self, proposed: Path, current: Path | None = None,
               as_of: datetime | None = None) -> WhatIf:
        """What ``proposed`` would change in the findings here; stores nothing (:mod:`.whatif`)."""
        from .whatif import load_pair, run_whatif

        old, new = load_pair(current or self.rules_file, proposed, as_of)
        with self.lock("whatif"):
            return run_whatif(self.engine, old, new, as_of)

    def nightly(self, *, sources: Sequence[str] | None, out: Path, keep_days: int, fail_on: str,
                as_of: datetime | None = None) -> NightlyReport:
        """The unattended run: sync, audit, dated files, retention (see :mod:`roe_cli.nightly`)."""
        from .nightly import run_nightly

        return run_nightly(self, sources=sources, out=out, keep_days=keep_days, fail_on=fail_on,
                           as_of=as_of)

    def load_demo(self, accounts: int, seed: int, as_of: datetime | None = None,
                  progress: Progress = no_progress) -> dict[str, int]:
        """Replace the demo org in the mirror; the counts of what was written."""
        from .demo import load_demo_org

        started = time.monotonic()
        engine = self.open(create=True)
        with self.lock("demo"), progress("Generating the demo org", accounts) as advance:
            counts = load_demo_org(engine, accounts, seed, as_of, on_chunk=advance)
        area_log("demo").info("demo org (%d accounts, seed %d) written in %.2fs: %s", accounts, seed,
                          time.monotonic() - started, counts_text(counts))
        return counts

    def waive(self, finding_id: int, reason: str, by: str, until: date | None) -> dict[str, Any]:
        """Waive a finding until ``until`` (inclusive; None: no end)."""
        from .findings import waive

        engine = self.engine
        with self.lock("waive"):
            waiver = waive(engine, finding_id, reason, by, until)
        area_log("waive").info("finding %d waived by %s until %s: %s", finding_id, by,
                           until or "no end", reason)
        return waiver

    def require_run(self) -> int:
        """The latest finished audit run's id, or a usage error saying to run one."""
        from .findings import latest_run_id

        run_id = latest_run_id(self.engine)
        if run_id is None:
            raise UsageError("No audit has run on this mirror yet, so there are no findings.",
                             "Run `roe audit` first.")
        return run_id

    # -- findings and exports ------------------------------------------------------------------

    def audit_document(self, result: AuditResult) -> dict[str, Any]:
        """The JSON document of an audit run: its summary and every finding it saw."""
        from .findings import FindingFilter, document, iter_findings, with_teams

        if not result.stored:  # a dry run: its findings are only in the result
            return document(None, result.as_of, result.summary(),
                            with_teams(self.engine, self.config(), result.items or []))
        items = iter_findings(self.engine, FindingFilter(run_id=result.run_id))
        return document(result.run_id, result.as_of, result.summary(),
                        with_teams(self.engine, self.config(), items))

    def findings_document(self, flt: FindingFilter) -> dict[str, Any]:
        """The latest run's summary and every finding that matches ``flt``, as one document."""
        from .findings import check_names, document, iter_findings, run_summary, with_teams

        run_id = self.require_run()
        check_names(self.engine, flt)
        as_of, summary = run_summary(self.engine, run_id)
        return document(run_id, as_of, summary,
                        with_teams(self.engine, self.config(), iter_findings(self.engine, flt)))

    def findings(self, flt: FindingFilter,
                 limit: int = 0) -> tuple[int, list[dict[str, Any]], int]:
        """The latest run's id, the first ``limit`` matches (0: all) and how many match."""
        from .findings import check_names, count_findings, iter_findings

        run_id = self.require_run()
        check_names(self.engine, flt)
        total = count_findings(self.engine, flt)
        shown: list[dict[str, Any]] = []
        for item in iter_findings(self.engine, flt):
            if limit and len(shown) >= limit:
                break
            shown.append(item)
        area_log("findings").info("findings of run %d: %d match, %d shown", run_id, total, len(shown))
        return run_id, shown, total

    def export_findings(self, flt: FindingFilter, output: Path, kind: str, *,
                        count_first: bool = False,
                        progress: Progress = no_progress) -> ExportResult:
        """Write the matching findings to ``output``; ``count_first`` sizes the progress bar."""
        from .export import export_findings
        from .findings import check_names, count_findings

        self.require_run()
        check_names(self.engine, flt)
        total = count_findings(self.engine, flt) if count_first else None
        with progress(f"Exporting findings to {output.name}", total) as advance:
            return _logged_export("findings", export_findings(self.engine, flt, output, kind,
                                                              on_batch=advance))

    def export_kpi(self, output: Path, kind: str, *, period: str, since: date | None,
                   until: date | None, source: str | None) -> ExportResult:
        """Write activities per owner per period (roles from the rules file, when there is one)."""
        from .export import export_kpi
        from .findings import check_source

        engine = self.engine
        check_source(engine, source)
        return _logged_export("kpi", export_kpi(engine, output, kind,
                                                config=self.config_if_present(), period=period,
                                                since=since, until=until, source=source))

    def account_brief(self, key: str, *, source: str | None, contacts: int,
                      as_of: datetime | None) -> dict[str, Any]:
        """The brief of the account ``key`` names (id, name or domain): see :mod:`.brief`."""
        from .brief import account_brief
        from .findings import check_source

        check_source(self.engine, source)
        return account_brief(self.engine, self.config_if_present(), key, source=source,
                             contacts_limit=contacts, as_of=as_of)

    def export_runs(self, output: Path, kind: str, by: str) -> ExportResult:
        """Write the findings trend, one row per run and rule (or owner)."""
        from .export import export_runs

        self.require_run()
        return _logged_export("runs", export_runs(self.engine, output, kind, by))

    def report(self, runs: int, html: Path | None = None, *,
               force: bool = False) -> tuple[Report, int | None]:
        """The weekly review (:mod:`roe_cli.report`) over the last ``runs`` audit runs; with
        ``html``, also written there as one self-contained page (its size in bytes)."""
        from .report import build_report, check_runs
        from .report.html import check_target, write_report_html

        check_runs(runs)
        if html is not None:
            check_target(html, force=force)
        report = build_report(self.engine, self.config_if_present(), runs)
        size = write_report_html(report, html, force=force) if html is not None else None
        area_log("report").info("report over %d run(s)%s", runs,
                                f": {size:,} bytes to {html}" if html is not None else "")
        return report, size

    # -- write-back ----------------------------------------------------------------------------

    @property
    def writeback(self) -> WriteBack:
        """Plans, approvals and applies on this workspace (:mod:`roe_cli.writeback`)."""
        from .writeback import WriteBack

        return WriteBack(self)
