"""``roe nightly``: the unattended job, as one call: sync, audit, files, retention, under one lock.

:func:`run_nightly` takes the mirror's run lock for the whole run (the workspace's lock is
re-entrant, so the sync and the audit inside do not take it again), syncs each source, runs the
audit, writes two dated CSV files and deletes its own old ones. Each part is a :class:`Step` with
its exit code, time, counts and API calls; a step that fails is recorded and the next one runs
(a CRM that is down must not stop the audit of what the mirror holds). The run's exit code is
the worst (largest) of its steps: 4 when another run holds the lock, 3 when a CRM failed, 2 for a
configuration error, else the audit's 0 or 1 by ``fail_on``.

Files, in ``out``, named by the audit's as-of date (UTC), replaced when the same day runs again:

* ``findings-YYYY-MM-DD.csv``: the open findings of the run, the columns of ``roe export findings``;
* ``changes-YYYY-MM-DD.csv``: what this run changed: findings new, reopened and resolved.

Every step is logged to ``roe.nightly`` with its record (``extra={"nightly": ...}``), so that the
CLI can write the log as text lines or JSON lines. No typer, no rich.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .export import Column, export_findings, write_rows
from .findings import FindingFilter, iter_findings
from .models import findings, owners
from .shared.clock import utcnow
from .shared.errors import EXIT_FINDINGS, EXIT_OK, LockedError, RoeError, UsageError
from .shared.text import suggest_end
from .shared.vocab import FindingStatus, Source

if TYPE_CHECKING:
    from .audit import AuditResult
    from .workspace import Workspace

log = logging.getLogger("roe.nightly")

LOG_NAME = "roe-nightly.log"  # in the output folder, when neither --log-file nor ROE_LOG is set
FILE_MODE = 0o600  # the files hold names, e-mails and deal amounts
OWN_FILE = re.compile(r"^(findings|changes)-(\d{4}-\d{2}-\d{2})\.csv$")
SYNCED = (Source.SALESFORCE, Source.HUBSPOT)  # the demo org comes from `roe demo`

CHANGE_COLUMNS = [
    Column(name, "json" if name == "details" else "int" if name == "id" else "str")
    for name in ("change", "id", "rule", "severity", "status", "object_type", "object_id",
                 "object_name", "account_name", "owner_email", "suggested_owner_email",
                 "related_user_email", "details")
]
"""The changes file: ``change`` is new, reopened or resolved; ``id`` is the finding's id."""


@dataclass
class Step:
    """One part of the run: ``sync`` (per source), ``audit``, ``files``, ``retention``, or the
    ``lock`` and ``sources`` steps that only appear when they fail."""

    name: str
    source: str | None = None
    exit_code: int = EXIT_OK
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    api_calls: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def record(self) -> dict[str, Any]:
        """The step as one log object."""
        return {"step": self.name, "source": self.source, "exit_code": self.exit_code,
                "seconds": round(self.seconds, 3), "counts": self.counts,
                "api_calls": self.api_calls, "error": self.error}

    def text(self) -> str:
        """The step as one log line."""
        parts = [f"step={self.name}"]
        if self.source:
            parts.append(f"source={self.source}")
        parts += [f"exit_code={self.exit_code}", f"seconds={self.seconds:.3f}"]
        parts += [f"{k}={v}" for k, v in self.counts.items()]
        if self.api_calls is not None:
            parts.append(f"api_calls={self.api_calls}")
        if self.error:
            parts.append(f"error={self.error.splitlines()[0]!r}")
        return "nightly " + " ".join(parts)


@dataclass
class NightlyReport:
    out: Path
    fail_on: str
    keep_days: int
    sources: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    as_of: datetime | None = None
    audit: AuditResult | None = None
    files: list[tuple[Path, int]] = field(default_factory=list)  # each file and its rows
    removed: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max((s.exit_code for s in self.steps), default=EXIT_OK)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def summary_lines(self) -> list[str]:
        return summary_lines(self)

    def record(self) -> dict[str, Any]:
        """The run's closing log object."""
        return {"step": "nightly", "exit_code": self.exit_code,
                "seconds": round(sum(s.seconds for s in self.steps), 3),
                "sources": self.sources,
                "failed": [s.name + (f" {s.source}" if s.source else "")
                           for s in self.steps if not s.ok]}


_EXIT_MEANING = {
    0: "all went well",
    1: "open findings at or above {fail_on}",
    2: "a configuration problem, see below",
    3: "a CRM could not be synced, see below; the audit ran on what the mirror holds",
    4: "another roe run holds the mirror; nothing was done",
}


def summary_lines(report: NightlyReport) -> list[str]:
    """A few plain lines a manager reads in a mail: the outcome and what the exit code means,
    each source, the findings, the files."""
    code = report.exit_code
    lock = report.step("lock")
    if lock is not None and not lock.ok:
        return [f"roe nightly: exit 4, {(lock.error or '').splitlines()[0]} Nothing was done."]
    day = f"{report.as_of:%Y-%m-%d}" if report.as_of else "(no audit)"
    meaning = _EXIT_MEANING.get(code, "").format(fail_on=report.fail_on)
    lines = [f"roe nightly {day}: exit {code}, {meaning}."]
    syncs = [s for s in report.steps if s.name == "sync"]
    if not syncs:
        lines.append("Sources: none to sync (no [nightly] sources, no credentials set); the "
                     "audit ran on the mirror as it is.")
    for step in syncs:
        if step.ok:
            lines.append(f"Sync {step.source}: ok, {step.counts.get('read', 0):,} records read, "
                         f"{step.api_calls or 0:,} API calls, {step.seconds:.0f}s.")
    for step in report.steps:
        if not step.ok:
            where = f" {step.source}" if step.source else ""
            lines.append(f"{step.name.capitalize()}{where}: FAILED (exit {step.exit_code}):")
            lines += [f"  {line}" for line in (step.error or "").splitlines()]
    if report.audit is not None:
        s = report.audit.summary()
        sev = s["open_by_severity"]
        lines.append(f"Findings: {s['open']:,} open (high {sev['high']:,}, medium "
                     f"{sev['medium']:,}, low {sev['low']:,}), {s['waived']:,} waived; since the "
                     f"last run {s['new']:,} new, {s['reopened']:,} reopened, "
                     f"{s['resolved']:,} resolved.")
    lines += [f"File: {path} ({rows:,} rows)" for path, rows in report.files]
    if report.removed:
        lines.append(f"Removed {len(report.removed):,} dated file(s) older than "
                     f"{report.keep_days} days.")
    return lines


def dated_name(kind: str, day: date) -> str:
    return f"{kind}-{day.isoformat()}.csv"


def check_sources(names: Sequence[str]) -> list[str]:
    """``--source`` values, checked: salesforce or hubspot (the demo org is never synced)."""
    chosen: list[str] = []
    for name in names:
        name = name.strip().lower()
        if name == Source.DEMO:
            raise UsageError("The demo org is not synced: `roe demo` makes it.",
                             "Leave --source out: with no source, roe nightly audits the mirror.")
        if name not in SYNCED:
            raise UsageError(f"Unknown source {name!r}{suggest_end(name, SYNCED)}",
                             "Use salesforce or hubspot.")
        if name not in chosen:
            chosen.append(name)
    return chosen


def choose_sources(ws: Workspace, given: Sequence[str] | None) -> list[str]:
    """``--source`` when given, else ``[nightly] sources``, else every source with credentials."""
    if given:
        return check_sources(given)
    config = ws.config_if_present()
    if config is not None and config.nightly is not None:
        return list(config.nightly.sources)
    from connectors.registry import factory

    return [str(s) for s in SYNCED if factory(s).has_credentials()]


class _Timer:
    def __init__(self, step: Step) -> None:
        self.step = step
        self.started = time.perf_counter()

    def stop(self, error: RoeError | None = None) -> Step:
        self.step.seconds = time.perf_counter() - self.started
        if error is not None:
            self.step.exit_code, self.step.error = error.exit_code, str(error)
        log.info(self.step.text(), extra={"nightly": self.step.record()})
        return self.step


def run_nightly(ws: Workspace, *, sources: Sequence[str] | None, out: Path, keep_days: int,
                fail_on: str, as_of: datetime | None = None) -> NightlyReport:
    """Sync, audit, write the files and delete old ones, all under the mirror's lock."""
    if sources:
        sources = check_sources(sources)  # a typo on the command line stops the run before it starts
    report = NightlyReport(out=out, fail_on=fail_on, keep_days=keep_days)
    timer = _Timer(Step("sources"))
    try:
        report.sources = choose_sources(ws, sources)
    except RoeError as exc:  # a broken rules file: the audit will say so too
        report.steps.append(timer.stop(exc))
    timer = _Timer(Step("lock"))
    try:
        if report.sources:
            ws.open(create=True)  # a first nightly may build the mirror, as `roe sync` may
        with ws.lock("nightly"):
            timer.step.seconds = time.perf_counter() - timer.started
            _run(ws, report, as_of)
    except LockedError as exc:
        report.steps.append(timer.stop(exc))
    log.info("nightly finished: exit_code=%d", report.exit_code, extra={"nightly": report.record()})
    return report


def _run(ws: Workspace, report: NightlyReport, as_of: datetime | None) -> None:
    for source in report.sources:
        report.steps.append(_sync(ws, source))
    timer = _Timer(Step("audit"))
    as_of = as_of or utcnow()
    resolved_before: set[int] = set()
    try:
        resolved_before, last_id = _before_audit(ws)
        _require_records(ws)
        result = ws.audit(as_of)
    except RoeError as exc:
        report.steps.append(timer.stop(exc))
    else:
        report.audit, report.as_of = result, result.as_of
        summary = result.summary()
        timer.step.counts = {k: summary[k] for k in ("open", "waived", "new", "reopened", "resolved")}
        timer.step.exit_code = EXIT_FINDINGS if result.failing(report.fail_on) else EXIT_OK
        report.steps.append(timer.stop())
        report.steps.append(_files(ws, report, result, resolved_before, last_id))
    report.steps.append(_retention(report.out, as_of.date(), report.keep_days, report.removed))


def _sync(ws: Workspace, source: str) -> Step:
    timer = _Timer(Step("sync", source))
    ws.last_api_calls = None
    try:
        sync_report, _usage = ws.sync(source)
    except RoeError as exc:
        timer.step.api_calls = ws.last_api_calls  # None when the connector was never built
        return timer.stop(exc)
    objects = sync_report.objects.values()
    timer.step.counts = {k: sum(getattr(o, k) for o in objects)
                         for k in ("read", "inserted", "updated", "deleted")}
    timer.step.api_calls = sync_report.api_calls
    return timer.stop()


def _require_records(ws: Workspace) -> None:
    """An empty mirror would audit to a false all-clear: say so instead."""
    with ws.engine.connect() as conn:
        if conn.execute(select(owners.c.id).limit(1)).first() is None:
            raise UsageError(
                "The mirror holds no records, so there is nothing to audit.",
                "Configure a source ([nightly] sources in rules.toml, or set its credentials) "
                "or fill the mirror with `roe demo`; check --db / ROE_DB points at the mirror.")


def _before_audit(ws: Workspace) -> tuple[set[int], int]:
    """The ids of resolved findings (those the audit may reopen) and the largest finding id."""
    with ws.engine.connect() as conn:
        resolved = set(conn.execute(select(findings.c.id).where(
            findings.c.status == FindingStatus.RESOLVED.value)).scalars())
        last = conn.execute(select(findings.c.id).order_by(findings.c.id.desc()).limit(1)).scalar()
    return resolved, int(last or 0)


def _changes(ws: Workspace, run_id: int, resolved_before: set[int],
             last_id: int) -> Iterator[dict[str, Any]]:
    seen = FindingFilter(run_id=run_id, statuses=[FindingStatus.OPEN, FindingStatus.WAIVED])
    for item in iter_findings(ws.engine, seen):
        if item["id"] > last_id:
            yield {**item, "change": "new"}
        elif item["id"] in resolved_before:
            yield {**item, "change": "reopened"}
    for item in iter_findings(ws.engine, FindingFilter(resolved_in_run=run_id)):
        yield {**item, "change": "resolved"}


def _files(ws: Workspace, report: NightlyReport, result: AuditResult, resolved_before: set[int],
           last_id: int) -> Step:
    timer = _Timer(Step("files"))
    day = result.as_of.date()
    try:
        open_now = FindingFilter(run_id=result.run_id, statuses=[FindingStatus.OPEN])
        written = export_findings(ws.engine, open_now, report.out / dated_name("findings", day),
                                  "csv", mode=FILE_MODE)
        report.files.append((written.path, written.rows))
        written = write_rows(report.out / dated_name("changes", day), "csv", CHANGE_COLUMNS,
                             _changes(ws, result.run_id, resolved_before, last_id),
                             mode=FILE_MODE)
        report.files.append((written.path, written.rows))
    except RoeError as exc:
        return timer.stop(exc)
    timer.step.counts = {path.stem.split("-")[0]: rows for path, rows in report.files}
    return timer.stop()


def _retention(out: Path, today: date, keep_days: int, removed: list[Path]) -> Step:
    """Delete nightly's own dated files in ``out`` dated more than ``keep_days`` before ``today``;
    nothing else (other names, folders, links) is ever touched."""
    timer = _Timer(Step("retention"))
    oldest_kept = today - timedelta(days=keep_days)
    try:
        for path in sorted(out.iterdir()):
            match = OWN_FILE.match(path.name)
            if not match or path.is_symlink() or not path.is_file():
                continue
            try:
                day = date.fromisoformat(match.group(2))
            except ValueError:
                continue
            if day < oldest_kept:
                path.unlink()
                removed.append(path)
    except OSError as exc:
        return timer.stop(UsageError(f"Could not delete old files in {out}: {exc.strerror or exc}.",
                                     f"Check the permissions of {out}."))
    timer.step.counts = {"removed": len(removed)}
    return timer.stop()


__all__ = ["CHANGE_COLUMNS", "LOG_NAME", "NightlyReport", "Step", "check_sources", "run_nightly"]
