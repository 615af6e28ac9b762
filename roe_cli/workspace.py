"""The core object a command works on: one mirror (``--db``) and one rules file (``--rules``).

sqlite-utils style: a command builds one :class:`Workspace` and makes one call; the workspace
opens what the call needs (the engine, the validated rules file, the run lock, the connector)
and nothing more. Invariants:

- Nothing is opened on construction. The engine is opened (and migrated) on first use, so a
  command that fails its own checks first (a bad plan file, a bad date) never creates a mirror.
- Every write to the mirror happens under the run lock; a connector is always closed, even when
  the run fails.
- No typer, no rich: progress is reported through plain callbacks (:data:`Progress`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import database_url, rules_path
from .shared.errors import UsageError
from .shared.vocab import Source

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .apply import ApplyReport
    from .audit import AuditResult
    from .db import SchemaStatus
    from .doctor import Check
    from .export import ExportResult
    from .findings import FindingFilter
    from .plans import Approval, BuildResult, Plan
    from .rulesfile import RulesConfig
    from .sync import SyncReport

Advance = Callable[[int], None]
# ``progress(description, total)`` is a context manager yielding ``advance(n)``.
Progress = Callable[[str, "int | None"], contextlib.AbstractContextManager[Advance]]


def ignore_advance(n: int = 1) -> None:
    """An :data:`Advance` that counts nothing."""


@contextlib.contextmanager
def no_progress(description: str, total: int | None) -> Iterator[Advance]:
    """The :data:`Progress` that reports nothing (cron, CI, tests)."""
    yield ignore_advance


class Workspace:
    """The mirror at ``db`` (a path or an SQLAlchemy URL) and the rules file at ``rules``."""

    def __init__(self, db: str | None = None, rules: str | None = None) -> None:
        self.db = db
        self.rules = rules
        self._engine: Engine | None = None

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
            self._engine = self.open_engine()
        return self._engine

    def open(self) -> None:
        """Open (and migrate) the mirror now rather than on first use."""
        _ = self.engine

    def open_engine(self, *, migrate: bool = True) -> Engine:
        """A new engine on the mirror; with ``migrate=False`` the schema is left as it is."""
        from .db import open_database

        return open_database(self.db_url, migrate=migrate)

    @staticmethod
    def display_url(engine: Engine) -> str:
        """The engine's URL with its password hidden, for messages."""
        return engine.url.render_as_string(hide_password=True)

    def config(self) -> RulesConfig:
        """The rules file, validated."""
        from .rulesfile import load_rules

        return load_rules(self.rules_file)

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
        """The mirror's run lock, held for ``command``."""
        from .db import run_lock

        with run_lock(self.engine, command):
            yield

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
        """The mirror's display URL and schema status, without migrating it."""
        from . import db

        engine = self.open_engine(migrate=False)
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

    def sync(self, source: str, *, full: bool = False,
             progress: Progress = no_progress) -> tuple[SyncReport, str | None]:
        """Pull ``source`` into the mirror: the report and the org's API usage text, if any."""
        from .sync import sync as run_sync

        engine = self.engine
        with self.connector(source) as connector:
            with self.lock(f"sync {source}"), progress(f"Syncing {source}", None) as advance:
                report = run_sync(engine, connector, full=full,
                                  on_page=lambda _object, n: advance(n))
        return report, report.api_usage or None

    def audit(self, as_of: datetime | None = None,
              codes: Sequence[str] | None = None) -> AuditResult:
        """Run the rules file against the mirror and store the findings."""
        from .audit import run_audit

        config = self.config()
        engine = self.engine
        with self.lock("audit"):
            return run_audit(engine, config, as_of, list(codes) if codes is not None else None)

    def load_demo(self, accounts: int, seed: int, as_of: datetime | None = None,
                  progress: Progress = no_progress) -> dict[str, int]:
        """Replace the demo org in the mirror; the counts of what was written."""
        from .demo import load_demo_org

        engine = self.engine
        with self.lock("demo"), progress("Generating the demo org", accounts) as advance:
            return load_demo_org(engine, accounts, seed, as_of, on_chunk=advance)

    def waive(self, finding_id: int, reason: str, by: str, until: date | None) -> dict[str, Any]:
        """Waive a finding until ``until`` (inclusive; None: no end)."""
        from .findings import waive

        engine = self.engine
        with self.lock("waive"):
            return waive(engine, finding_id, reason, by, until)

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
        from .findings import FindingFilter, document, iter_findings

        items = iter_findings(self.engine, FindingFilter(run_id=result.run_id))
        return document(result.run_id, result.as_of, result.summary(), items)

    def findings_document(self, flt: FindingFilter) -> dict[str, Any]:
        """The latest run's summary and every finding that matches ``flt``, as one document."""
        from .findings import document, iter_findings, run_summary

        run_id = self.require_run()
        as_of, summary = run_summary(self.engine, run_id)
        return document(run_id, as_of, summary, iter_findings(self.engine, flt))

    def findings(self, flt: FindingFilter,
                 limit: int = 0) -> tuple[int, list[dict[str, Any]], int]:
        """The latest run's id, the first ``limit`` matches (0: all) and how many match."""
        from .findings import count_findings, iter_findings

        run_id = self.require_run()
        total = count_findings(self.engine, flt)
        shown: list[dict[str, Any]] = []
        for item in iter_findings(self.engine, flt):
            if limit and len(shown) >= limit:
                break
            shown.append(item)
        return run_id, shown, total

    def export_findings(self, flt: FindingFilter, output: Path, kind: str, *,
                        count_first: bool = False,
                        progress: Progress = no_progress) -> ExportResult:
        """Write the matching findings to ``output``; ``count_first`` sizes the progress bar."""
        from .export import export_findings
        from .findings import count_findings

        self.require_run()
        total = count_findings(self.engine, flt) if count_first else None
        with progress(f"Exporting findings to {output.name}", total) as advance:
            return export_findings(self.engine, flt, output, kind, on_batch=advance)

    def export_kpi(self, output: Path, kind: str, *, period: str, since: date | None,
                   until: date | None, source: str | None) -> ExportResult:
        """Write activities per owner per period (roles from the rules file, when there is one)."""
        from .export import export_kpi

        engine = self.engine
        return export_kpi(engine, output, kind, config=self.config_if_present(), period=period,
                          since=since, until=until, source=source)

    def export_runs(self, output: Path, kind: str, by: str) -> ExportResult:
        """Write the findings trend, one row per run and rule (or owner)."""
        from .export import export_runs

        self.require_run()
        return export_runs(self.engine, output, kind, by)

    # -- write-back ----------------------------------------------------------------------------

    def approve(self, plan_file: Path, by: str,
                note: str | None) -> tuple[Plan, Approval | None]:
        """Approve the plan in ``plan_file`` and save it: the approved plan and the earlier
        approval, if any (plans are frozen: approving gives a new one)."""
        from .plans import approve_plan, load_plan, save_plan

        plan = load_plan(plan_file)
        previous = plan.approval
        plan = approve_plan(self.engine, plan, by, note)
        save_plan(plan, plan_file)
        return plan, previous

    def apply(self, plan_file: Path, results: Path | None = None,
              progress: Progress = no_progress) -> tuple[ApplyReport, Path]:
        """Apply an approved plan and write its results CSV: the report and the CSV's path."""
        from .apply import apply_plan, default_results_path, write_results
        from .plans import load_plan, verify_approval

        plan = load_plan(plan_file)
        engine = self.engine
        verify_approval(engine, plan)  # before anything talks to the CRM
        results_path = results or default_results_path(plan_file)
        if not results_path.parent.exists():
            raise UsageError(f"The folder {results_path.parent} does not exist.",
                             "Create it, or give --results a path in an existing folder.")
        with self.connector(plan.source) as connector:
            with self.lock(f"apply {plan_file.name}"), \
                    progress(f"Applying {len(plan.changes):,} changes", len(plan.changes)) \
                    as advance:
                report = apply_plan(engine, plan, connector, on_progress=advance)
        write_results(report, results_path)
        return report, results_path

    def plan(self, builder: Callable[..., BuildResult], *args: Any,
             progress: Progress = no_progress, **kwargs: Any) -> BuildResult:
        """Build a plan with one of :mod:`roe_cli.plans`' builders, on this mirror."""
        engine = self.engine
        with progress("Planning", None):
            return builder(engine, *args, **kwargs)
