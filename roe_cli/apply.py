"""The apply engine: write an approved plan to the CRM exactly once, and say what happened.

The plan's changes go in windows of the connector's ``write_batch_size`` (default 200), accounts
first, then contacts, then opportunities. A connector that writes several object types in one call
(``write_mixed_types``: Salesforce's sObject Collections take 200 records of any mix of types)
gets windows that run across types, so N changes take ceil(N/200) write calls; the others get
windows of one type each (HubSpot's batch update takes one type a call). For each window:

1. read the owners the CRM holds now (``connector.read_owners``, one call per type in the window);
2. in one mirror transaction, journal every record of the window: ``drifted`` when its owner is no
   longer the plan's ``expected`` (left untouched), ``failed`` with "not found" when the CRM no
   longer has it, and ``sending`` for the records about to be written;
3. send those in one ``connector.update_owners`` call (its type, or None for a mixed window);
4. in one mirror transaction, journal each result as ``applied`` or ``failed``, and for applied
   records set the mirror's owner and add an ``ownership_changes`` row with origin ``roe-apply``.

The journal (``apply_journal``, keyed by plan hash and record) makes a re-run safe after a crash,
a kill or a CRM error: records already ``applied``, ``drifted`` or ``failed`` are reported as
before and never sent again; records left ``sending`` (the run died during the write) are read
again: if the CRM now holds the new owner they are ``applied`` without another write, if it still
holds the expected owner they are sent, otherwise they drifted.

A book transfer moves each account with its children: the accounts go first, and a contact or
opportunity that was to follow an account that was not moved (drifted, deleted, failed) is
``held`` (journaled, with the account's reason) and never sent, so no split is created. A child
never shares a write call with its own account (the account could fail in that call while the
child is written): it waits for the next window, after its account's outcome is journaled. So a
transfer whose accounts and their children would fit one window takes one call more than
ceil(N/200): the price of never splitting an account from its contacts and deals.

Team seats (``roe reassign --team-seats``) go after the owner changes, in windows of their own;
see :mod:`roe_cli.seatapply`.

Records not settled when a CRM error or Ctrl-C stops the run are reported as ``sending`` (outcome
unknown) or ``pending`` (not sent) in the results; running apply again finishes them.

The results CSV (:func:`write_results`) has the columns ``object_type, object_id, expected, new,
status, error, source, plan_hash``, then ``object_name, expected_email, new_email, expected_name,
new_name`` (the names and e-mails beside the ids), UTF-8 with a BOM so Excel reads it right, with cells that
Excel would run as formulas neutralized by a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from connectors.base import Connector, OwnerChange

from . import seatapply
from .models import OWNED_TABLES, apply_journal, ownership_changes
from .plans import RESULTS_COLUMNS, SEAT, Change, Plan, verify_approval
from .shared.clock import utcnow
from .shared.errors import CrmError, UsageError
from .shared.files import atomic_write
from .shared.text import excel_safe
from .shared.vocab import FINAL_APPLY_STATUSES, OBJECT_TYPES, ApplyStatus, ObjectType

log = logging.getLogger(__name__)

ORIGIN = "roe-apply"  # ownership_changes.origin of the changes roe itself wrote
FINAL = FINAL_APPLY_STATUSES
DEFAULT_BATCH = 200


@dataclass
class RecordResult:
    change: Change
    status: ApplyStatus  # applied, drifted, failed; sending or pending when a CRM error stopped it
    error: str | None = None
    earlier: bool = False  # settled by an earlier run of the same plan (from the journal)


@dataclass
class ApplyReport:
    """What an apply did, record by record, and the calls it took."""

    plan: Plan
    results: dict[tuple[str, str], RecordResult] = field(default_factory=dict)
    read_calls: int = 0  # CRM calls spent reading current owners (drift checks)
    write_calls: int = 0  # CRM calls spent writing owners
    sent: int = 0  # records sent to the CRM in this run
    confirmed: int = 0  # records found written by an interrupted earlier run, not sent again
    crm_error: CrmError | None = None
    interrupted: bool = False  # stopped by Ctrl-C: what was settled is kept, the rest is pending

    def ordered(self) -> list[RecordResult]:
        """One result per change, in the plan's order."""
        return [self.results.get(c.key) or RecordResult(c, ApplyStatus.PENDING)
                for c in self.plan.changes]

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.ordered())

    @property
    def earlier(self) -> int:
        return sum(1 for r in self.results.values() if r.earlier)

    @property
    def exit_code(self) -> int:
        """130 on Ctrl-C, 3 on a CRM error, 1 when records failed, drifted or were held back,
        else 0 (see the spec)."""
        if self.interrupted:
            return 130
        if self.crm_error is not None:
            return self.crm_error.exit_code
        counts = self.counts()
        return 1 if counts[ApplyStatus.FAILED] or counts[ApplyStatus.DRIFTED] \
            or counts[ApplyStatus.HELD] else 0


def default_results_path(plan_path: str | Path) -> Path:
    """``<plan>.results.csv`` beside the plan: ``plan.json`` -> ``plan.results.csv``."""
    path = Path(plan_path)
    return path.with_name(f"{path.stem}.results.csv")


def new_results_path(plan_path: str | Path) -> Path:
    """The first free results name beside the plan: ``plan.results.csv``, then
    ``plan.results-2.csv``, ``plan.results-3.csv``...: an apply never overwrites a results file."""
    first = default_results_path(plan_path)
    path, n = first, 1
    while path.exists():
        n += 1
        path = first.with_name(f"{Path(plan_path).stem}.results-{n}.csv")
    return path


def results_target(plan_file: Path, results: Path | None) -> Path:
    """Where an apply of ``plan_file`` writes its results: ``results``, or the first free
    ``<plan>.results[-N].csv``. Never a file that exists (revert reads it), never the plan."""
    if results is not None and results.resolve() == plan_file.resolve():
        raise UsageError(f"--results {results} is the plan itself; the results would "
                         "overwrite it.", "Drop --results (the default is "
                         "<plan>.results.csv beside the plan), or give another file.")
    if results is not None and results.exists():
        raise UsageError(f"{results} already exists; roe never overwrites a results file "
                         "(revert reads it).", "Drop --results (each apply then gets a new "
                         "<plan>.results-N.csv), or give a new file name.")
    target = results or new_results_path(plan_file)
    if not target.parent.exists():
        raise UsageError(f"The folder {target.parent} does not exist.",
                         "Create it, or give --results a path in an existing folder.")
    return target


def apply_plan(
    engine: Engine,
    plan: Plan,
    connector: Connector,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ApplyReport:
    """Write ``plan`` through ``connector``; see the module docstring. The caller holds the run lock.

    Raises :class:`~roe_cli.shared.errors.ConfigError` for a plan that is not approved or was changed.
    A :class:`CrmError` does not raise: it stops the run and is kept in ``report.crm_error``, so the
    caller can still write the results of what was settled. Ctrl-C (KeyboardInterrupt) does the
    same and sets ``report.interrupted``.
    """
    verify_approval(engine, plan)
    if connector.source != plan.source:
        raise UsageError(f"{plan.name} is for {plan.source}, not {connector.source}.",
                         f"Apply it with the {plan.source} connector.")
    advance = on_progress if on_progress is not None else _no_progress
    report = ApplyReport(plan)
    batch = max(1, connector.write_batch_size or DEFAULT_BATCH)
    journal = _load_journal(engine, plan.hash)

    pending: dict[str, list[Change]] = {}
    seatapply.check_connector(connector, sum(1 for c in plan.changes if c.is_seat))
    mixed = bool(getattr(connector, "write_mixed_types", False))
    for change in plan.changes:
        status, error = journal.get(change.key, (None, None))
        if status in FINAL:
            report.results[change.key] = RecordResult(change, ApplyStatus(status), error,
                                                      earlier=True)
            advance(1)
        else:
            pending.setdefault(change.object_type, []).append(change)
    run = _Run(engine, plan, connector, report, journal, advance)
    try:
        # Accounts first: a transfer's children follow their account, or are held with it.
        seats = pending.pop(SEAT, [])
        queue = [c for t in sorted(pending, key=_TYPE_ORDER.index) for c in pending[t]]
        for window in _windows(queue, batch, mixed=mixed):
            run.window(window)
        for start in range(0, len(seats), batch):  # team seats last (roe_cli.seatapply)
            seatapply.seat_window(run, seats[start : start + batch])
    except CrmError as exc:
        report.crm_error = exc
        log.warning("apply of %s stopped by a CRM error: %s", plan.hash[:12], exc.what)
    except KeyboardInterrupt:
        report.interrupted = True
        log.info("apply of %s interrupted (Ctrl-C)", plan.hash[:12])  # the command says it
    if len(report.results) < len(plan.changes):
        # Stopped early: the mirror's journal, not this run's memory, says what was settled
        # (Ctrl-C can land between a commit and the report).
        journal = _load_journal(engine, plan.hash)
    for change in plan.changes:
        if change.key not in report.results:
            status, error = journal.get(change.key, (None, None))
            if status in FINAL:
                report.results[change.key] = RecordResult(change, ApplyStatus(status), error)
            elif status == ApplyStatus.SENDING:
                report.results[change.key] = RecordResult(
                    change, ApplyStatus.SENDING,
                    "sent, outcome unknown: run roe apply again to settle it")
            else:
                report.results[change.key] = RecordResult(change, ApplyStatus.PENDING, "not sent")
    return report


_TYPE_ORDER = list(OBJECT_TYPES)
Journal = dict[tuple[str, str], tuple[str, str | None]]  # (type, id) -> (status, error)
Outcome = tuple[Change, ApplyStatus, str | None]


def _follows(change: Change) -> str | None:
    """The account a transfer's contact or opportunity follows (moves with, or is held with)."""
    why = change.why or {}
    if why.get("kind") != "transfer" or change.object_type == ObjectType.ACCOUNT:
        return None
    account = why.get("account_id")
    return str(account) if account else None


def _windows(queue: Sequence[Change], size: int, *, mixed: bool) -> Iterator[list[Change]]:
    """The write windows of ``queue`` (sorted accounts first): up to ``size`` changes each, of one
    type unless ``mixed``. A change that follows an account of the same window waits for the
    next window, taken first there, so that it is sent only once its account's outcome is known."""
    carry: list[Change] = []
    position = 0
    while carry or position < len(queue):
        window = _Window(size, mixed)
        pool, carry = carry, []
        for change in pool:
            if not window.take(change):
                carry.append(change)
        while position < len(queue) and window.fits(queue[position]):
            if not window.take(queue[position]):
                carry.append(queue[position])
            position += 1
        if not window.changes:  # cannot happen (a window's first change always fits): never loop
            raise AssertionError("apply: a write window came out empty")
        yield window.changes


class _Window:
    """One write window being filled: its changes, and the accounts it moves."""

    def __init__(self, size: int, mixed: bool) -> None:
        self.size = size
        self.mixed = mixed
        self.changes: list[Change] = []
        self.accounts: set[str] = set()

    def fits(self, change: Change) -> bool:
        return len(self.changes) < self.size and (
            self.mixed or not self.changes or change.object_type == self.changes[0].object_type)

    def take(self, change: Change) -> bool:
        """Add ``change`` if it fits and does not follow an account of this window."""
        if not self.fits(change) or _follows(change) in self.accounts:
            return False
        self.changes.append(change)
        if change.object_type == ObjectType.ACCOUNT:
            self.accounts.add(change.object_id)
        return True


def _no_progress(n: int = 1) -> None:
    """What ``on_progress`` does when the caller does not follow progress."""


def _load_journal(engine: Engine, plan_hash: str) -> Journal:
    with engine.connect() as conn:
        return {
            (row.object_type, row.object_id): (row.status, row.error)
            for row in conn.execute(
                select(apply_journal.c.object_type, apply_journal.c.object_id,
                       apply_journal.c.status, apply_journal.c.error)
                .where(apply_journal.c.plan_hash == plan_hash)
            )
        }


class _Run:
    """One apply run's state: the journal as it stands, and the report being filled."""

    def __init__(self, engine: Engine, plan: Plan, connector: Connector, report: ApplyReport,
                 journal: Journal, advance: Callable[[int], None]) -> None:
        self.engine = engine
        self.plan = plan
        self.connector = connector
        self.report = report
        self.journal = journal
        self.advance = advance
        self.keys = {c.key for c in plan.changes}

    def record(self, change: Change, status: ApplyStatus, error: str | None) -> None:
        self.report.results[change.key] = RecordResult(change, status, error)

    def held_reason(self, change: Change) -> str | None:
        """Why a transfer's contact or opportunity stays with its account that was not moved."""
        account = _follows(change)
        if account is None or (ObjectType.ACCOUNT, account) not in self.keys:
            return None
        result = self.report.results.get((ObjectType.ACCOUNT, account))
        if result is not None and result.status == ApplyStatus.APPLIED:
            return None
        state = f"{result.status}: {result.error}" if result and result.error else \
            (result.status if result else "not moved")
        return f"held back with its account {account}, which was not moved ({state})"

    def window(self, changes: list[Change]) -> None:
        settled: list[Outcome] = []
        held = {c.key: reason for c in changes if (reason := self.held_reason(c))}
        settled.extend((c, ApplyStatus.HELD, held[c.key]) for c in changes if c.key in held)
        changes = [c for c in changes if c.key not in held]
        current = self.read(changes)
        to_send: list[Change] = []
        for change in changes:
            was_sending = self.journal.get(change.key, (None,))[0] == ApplyStatus.SENDING
            if change.key not in current:
                settled.append((change, ApplyStatus.FAILED,
                                "not found in the CRM (deleted or no access)"))
                continue
            owner = current[change.key]
            if was_sending and owner == change.new:
                settled.append((change, ApplyStatus.APPLIED, None))  # by the interrupted run
                self.report.confirmed += 1
            elif owner == change.expected:
                to_send.append(change)
            elif owner == change.new:
                settled.append((change, ApplyStatus.DRIFTED, "already owned by the new owner "
                                                             "(changed outside this plan)"))
            else:
                settled.append((change, ApplyStatus.DRIFTED,
                                f"owner is now {owner or 'nobody'}, the plan "
                                f"expected {change.expected or 'nobody'}"))
        with self.engine.begin() as conn:
            self._journal(conn, [*settled, *((c, ApplyStatus.SENDING, None) for c in to_send)])
            self._mirror(conn, [c for c, status, _ in settled if status == ApplyStatus.APPLIED])
        for change, status, error in settled:
            self.report.results[change.key] = RecordResult(change, status, error)
        self.advance(len(settled))
        if not to_send:
            return

        types = {c.object_type for c in to_send}
        object_type = next(iter(types)) if len(types) == 1 else None  # None: a mixed window
        before = self.connector.api_calls()
        try:
            results = self.connector.update_owners(
                object_type, [OwnerChange(c.object_type, c.object_id, c.new) for c in to_send])
        finally:
            self.report.write_calls += self.connector.api_calls() - before
        self.report.sent += len(to_send)
        if len(results) != len(to_send) or any(
            r.object_id != c.object_id for r, c in zip(results, to_send, strict=False)
        ):
            # The records stay `sending`: a re-run reads them again and settles them.
            raise CrmError(
                f"The {self.plan.source} connector answered {len(results)} results for "
                f"{len(to_send)} {object_type or 'owner'} changes, not one per change in order.",
                "Run `roe apply` again: it re-reads these records and writes only what is missing.",
            )
        outcome: list[Outcome] = [
            (c, ApplyStatus.APPLIED, None) if r.ok else (c, ApplyStatus.FAILED, r.error or "refused")
            for c, r in zip(to_send, results, strict=True)
        ]
        with self.engine.begin() as conn:
            self._journal(conn, outcome)
            self._mirror(conn, [c for c, status, _ in outcome if status == ApplyStatus.APPLIED])
        for change, status, error in outcome:
            self.report.results[change.key] = RecordResult(change, status, error)
        self.advance(len(outcome))

    def read(self, changes: Sequence[Change]) -> dict[tuple[str, str], str | None]:
        """The owners the CRM holds now, by (type, id): one ``read_owners`` per type present."""
        by_type: dict[str, list[str]] = {}
        for change in changes:
            by_type.setdefault(change.object_type, []).append(change.object_id)
        current: dict[tuple[str, str], str | None] = {}
        before = self.connector.api_calls()
        try:
            for object_type, ids in by_type.items():
                owners = self.connector.read_owners(object_type, ids)
                current.update(((object_type, i), o) for i, o in owners.items())
        finally:
            self.report.read_calls += self.connector.api_calls() - before
        return current

    def _journal(self, conn: Connection, entries: Sequence[Outcome]) -> None:
        now = utcnow()
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        for change, status, error in entries:
            if change.key in self.journal:
                updates.append({"p_type": change.object_type, "p_id": change.object_id,
                                "p_status": status, "p_error": error, "p_now": now})
            else:
                inserts.append({
                    "plan_hash": self.plan.hash, "source": self.plan.source,
                    "object_type": change.object_type, "object_id": change.object_id,
                    "expected": change.expected, "new": change.new, "status": status,
                    "error": error, "updated_at": now,
                })
        if inserts:
            conn.execute(apply_journal.insert(), inserts)
        if updates:
            conn.execute(
                update(apply_journal)
                .where(apply_journal.c.plan_hash == self.plan.hash,
                       apply_journal.c.object_type == bindparam("p_type"),
                       apply_journal.c.object_id == bindparam("p_id"))
                .values(status=bindparam("p_status"), error=bindparam("p_error"),
                        updated_at=bindparam("p_now")),
                updates,
            )
        # Only once the transaction commits does the in-memory journal follow; a failed commit
        # raises out of the run, and nothing is sent after it.
        for change, status, error in entries:
            self.journal[change.key] = (status, error)

    def _mirror(self, conn: Connection, applied: Sequence[Change]) -> None:
        if not applied:
            return
        now = utcnow()
        by_type: dict[str, list[Change]] = {}
        for change in applied:
            by_type.setdefault(change.object_type, []).append(change)
        for object_type, changes in by_type.items():
            table = OWNED_TABLES[object_type]
            conn.execute(
                update(table)
                .where(table.c.source == self.plan.source, table.c.id == bindparam("p_id"))
                .values(owner_id=bindparam("p_owner")),
                [{"p_id": c.object_id, "p_owner": c.new} for c in changes],
            )
        conn.execute(
            ownership_changes.insert(),
            [{"source": self.plan.source, "object_type": c.object_type, "object_id": c.object_id,
              "old_owner_id": c.expected, "new_owner_id": c.new, "changed_at": now,
              "origin": ORIGIN} for c in applied],
        )


def write_results(report: ApplyReport, path: str | Path,
                  owner_names: Mapping[str, str | None] | None = None) -> Path:
    """Write the results CSV of ``report`` to ``path`` (atomically); see the module docstring.
    ``owner_names`` gives the owners' names by id (from the mirror)."""
    path = Path(path)
    names = owner_names or {}
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(RESULTS_COLUMNS)
    plan = report.plan
    for result in report.ordered():
        c = result.change
        writer.writerow([excel_safe(v) for v in (
            c.object_type, c.object_id, c.expected, c.new, result.status, result.error,
            plan.source, plan.hash, c.object_name, c.expected_email, c.new_email,
            names.get(c.expected) if c.expected else None, names.get(c.new),
        )])
    atomic_write(path, buffer.getvalue().encode("utf-8-sig"), mode=0o600)  # names, e-mails
    return path
