"""The sync engine: pages from a connector into the mirror, one transaction a page.

Each page's rows are upserted by ``(source, id)``, owner differences against the mirror are recorded
as ``observed`` ownership changes, and the object's watermark moves in the same transaction, so a
crash loses nothing and the next run resumes where the last committed page left off. A full sync
also marks as deleted whatever the mirror holds that the CRM no longer returned, unless that is
more than ``max_delete_share`` of an object's live records (or the pull came back empty): a pull
that lost sharing, hit the wrong org or ran as a filtered user looks exactly like that, so the
records are kept and the sync fails (:class:`MassDeleteRefused`) unless ``allow_mass_delete``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from connectors.base import TEAM_OBJECT_ORIGIN, Connector, ObjectUnavailable, Page

from .models import CRM_TABLES, OWNED_TABLES, account_team_members, ownership_changes, sync_state
from .shared.clock import utcnow
from .shared.errors import CrmError
from .shared.vocab import SYNC_OBJECTS, SyncObject
from .teamsync import write_field_members

log = logging.getLogger(__name__)

# Rows modified just before the watermark can become visible late (clock skew, long transactions
# in the CRM): each incremental pull starts this far before the watermark. Upserts make it safe.
OVERLAP = timedelta(minutes=5)
_ID_CHUNK = 500
DEFAULT_MAX_DELETE_SHARE = 0.10
# The tables a sync writes, by object type.
SYNC_TABLES: dict[str, Table] = {**CRM_TABLES, SyncObject.ACCOUNT_TEAM_MEMBER: account_team_members}
# The cursor stored for an object the CRM does not have (see ObjectUnavailable): incremental syncs
# skip it without a call; a full sync asks again.
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class DeleteRefusal:
    """A full pull that would have marked too much of an object deleted: what it saw."""

    object_type: str
    live: int  # records the mirror held as live after the pull
    seen: int  # records the CRM returned
    would_delete: int  # live records the CRM did not return

    def describe(self) -> str:
        share = self.would_delete / self.live if self.live else 0.0
        return (f"{self.object_type}: {self.live:,} live in the mirror, {self.seen:,} returned by "
                f"the CRM, {self.would_delete:,} would be marked deleted ({share:.0%})")


class MassDeleteRefused(CrmError):
    """A full sync kept records it would otherwise have marked deleted (see the module docstring)."""

    def __init__(self, source: str, refusals: list[DeleteRefusal], max_share: float) -> None:
        self.refusals = refusals
        lines = "\n".join(f"  {r.describe()}" for r in refusals)
        super().__init__(
            f"The full sync of {source} returned too few records to trust, so nothing was marked "
            f"deleted (the limit is {max_share:.0%} of an object's live records, and never all "
            f"of them on an empty pull):\n{lines}",
            "Check the credentials' user, its sharing and the org (--source, the instance URL): "
            "a pull that lost access looks just like this. If the CRM really deleted these records, "
            "run `roe sync --full --allow-mass-delete`, or raise max_delete_share under [sync] "
            "in rules.toml.",
        )


@dataclass
class ObjectReport:
    object_type: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    owner_changes: int = 0


@dataclass
class SyncReport:
    source: str
    full: bool
    objects: dict[str, ObjectReport] = field(default_factory=dict)
    api_calls: int = 0
    # The CRM's own account of its API usage after the sync (``Connector.api_usage_text``).
    api_usage: str | None = None
    notes: list[str] = field(default_factory=list)


def get_state(conn: Connection, source: str, object_type: str) -> Row[Any] | None:
    return conn.execute(
        select(sync_state).where(
            sync_state.c.source == source, sync_state.c.object == object_type
        )
    ).first()


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    dialect = conn.dialect.name
    stmt: sqlite.Insert | postgresql.Insert
    if dialect == "sqlite":
        stmt = sqlite.insert(table)
    elif dialect == "postgresql":
        stmt = postgresql.insert(table)
    else:  # pragma: no cover - other databases take the slow, portable path
        for row in rows:
            where = and_(*(table.c[k] == row[k] for k in keys))
            if conn.execute(update(table).where(where).values(**row)).rowcount == 0:
                conn.execute(table.insert().values(**row))
        return
    columns = [c for c in rows[0] if c not in keys]
    if columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, rows)


def set_watermark(
    conn: Connection,
    source: str,
    object_type: str,
    watermark: datetime | None,
    cursor: str | None = None,
    full_done: bool = False,
) -> None:
    """Move an object's watermark forward (never back) in the caller's transaction."""
    state = get_state(conn, source, object_type)
    now = utcnow()
    values: dict[str, Any] = {"updated_at": now, "cursor": cursor}
    if watermark is not None and (state is None or state.watermark is None or watermark > state.watermark):
        values["watermark"] = watermark
    if full_done:
        values["last_full_at"] = now
    if state is None:
        _upsert(
            conn,
            sync_state,
            [{"source": source, "object": object_type, "watermark": None, "last_full_at": None, **values}],
            ["source", "object"],
        )
    else:
        conn.execute(
            update(sync_state)
            .where(sync_state.c.source == source, sync_state.c.object == object_type)
            .values(**values)
        )


def write_page(conn: Connection, source: str, page: Page, report: ObjectReport,
               team_report: ObjectReport | None = None) -> None:
    """Write one page into the mirror in the caller's transaction (an account page's
    ``team_members`` too, counted in ``team_report``)."""
    if page.object_type == SyncObject.OWNERSHIP_CHANGE:
        rows = [{"source": source, **row} for row in page.rows]
        keys = ["source", "object_type", "object_id", "changed_at", "origin"]
        seen: set[tuple[Any, ...]] = set()
        ids = sorted({row["object_id"] for row in rows})
        oc = ownership_changes
        for start in range(0, len(ids), _ID_CHUNK):  # only this page's records, not the table
            seen.update(
                tuple(r) for r in conn.execute(
                    select(*(oc.c[k] for k in keys)).where(
                        oc.c.source == source, oc.c.object_id.in_(ids[start : start + _ID_CHUNK])
                    )
                )
            )
        fresh = {tuple(row[k] for k in keys) for row in rows} - seen
        _upsert(conn, oc, rows, keys)
        report.read += len(rows)
        report.inserted += len(fresh)
        return

    table = SYNC_TABLES[page.object_type]
    rows = [{"source": source, **row} for row in page.rows]
    report.read += len(rows)
    ids = [row["id"] for row in rows]
    existing: dict[str, str | None] = {}
    owned = page.object_type in OWNED_TABLES
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        cols = [table.c.id, table.c.owner_id if owned else table.c.id]
        for row_id, owner in conn.execute(
            select(*cols).where(table.c.source == source, table.c.id.in_(chunk))
        ):
            existing[row_id] = owner
    report.inserted += sum(1 for i in ids if i not in existing)
    report.updated += sum(1 for i in ids if i in existing)
    if owned:
        observed = [
            {
                "source": source,
                "object_type": page.object_type,
                "object_id": row["id"],
                "old_owner_id": existing[row["id"]],
                "new_owner_id": row.get("owner_id"),
                "changed_at": row.get("updated_at") or utcnow(),
                "origin": "observed",
            }
            for row in rows
            if row["id"] in existing
            and "owner_id" in row
            and existing[row["id"]] is not None
            and row["owner_id"] != existing[row["id"]]
        ]
        if observed:
            _upsert(
                conn,
                ownership_changes,
                observed,
                ["source", "object_type", "object_id", "changed_at", "origin"],
            )
            report.owner_changes += len(observed)
    # Rows of one page may carry different column sets (a connector may omit what it did not
    # read); group them so each statement has one shape.
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault(tuple(row), []).append(row)
    for group in by_shape.values():
        _upsert(conn, table, group, ["source", "id"])
    report.deleted += sum(1 for row in rows if row.get("deleted"))
    if page.deleted_ids:
        for start in range(0, len(page.deleted_ids), _ID_CHUNK):
            chunk = page.deleted_ids[start : start + _ID_CHUNK]
            result = conn.execute(
                update(table)
                .where(table.c.source == source, table.c.id.in_(chunk), table.c.deleted.is_(False))
                .values(deleted=True)
            )
            report.deleted += result.rowcount
    if page.team_members is not None and page.object_type == SyncObject.ACCOUNT:
        write_field_members(
            conn, source, {row["id"]: row.get("updated_at") for row in page.rows},
            page.team_members,
            team_report or ObjectReport(SyncObject.ACCOUNT_TEAM_MEMBER),
        )


def sync(
    engine: Engine,
    connector: Connector,
    *,
    full: bool = False,
    objects: Iterable[str] = SYNC_OBJECTS,
    on_page: Callable[[str, int], None] | None = None,
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
    allow_mass_delete: bool = False,
) -> SyncReport:
    """Pull every object type from ``connector`` into the mirror; see the module docstring.

    Every object is pulled even when one's deletions are refused; the refusals are raised
    together at the end (:class:`MassDeleteRefused`), each refused object's records kept.
    """
    source = connector.source
    report = SyncReport(source=source, full=full)
    refusals: list[DeleteRefusal] = []
    limit = None if allow_mass_delete else max_delete_share
    for object_type in objects:
        obj_report = report.objects.setdefault(object_type, ObjectReport(object_type))
        with engine.connect() as conn:
            state = get_state(conn, source, object_type)
        if not full and state is not None and state.cursor == UNAVAILABLE:
            log.info("%s: %s skipped, the CRM did not have it (a full sync checks again)",
                     source, object_type)
            continue
        since = None
        if not full and state is not None and state.watermark is not None:
            since = state.watermark - OVERLAP
        seen: set[str] | None = set() if full and object_type in SYNC_TABLES else None
        team_report = None
        if object_type == SyncObject.ACCOUNT:
            team_report = report.objects.setdefault(
                SyncObject.ACCOUNT_TEAM_MEMBER, ObjectReport(SyncObject.ACCOUNT_TEAM_MEMBER))
        try:
            for page in connector.pull(object_type, since, full):
                with engine.begin() as conn:
                    write_page(conn, source, page, obj_report, team_report)
                    set_watermark(conn, source, object_type, page.watermark, page.cursor)
                if seen is not None:
                    seen.update(row["id"] for row in page.rows)
                if on_page:
                    on_page(object_type, len(page.rows))
        except ObjectUnavailable as exc:
            note = f"Warning: {exc.what}" + (f" {exc.todo}" if exc.todo else "")
            log.info("%s: %s", source, note)  # the note is the one line the user sees
            report.notes.append(note)
            with engine.begin() as conn:
                set_watermark(conn, source, object_type, None, UNAVAILABLE)
            continue
        with engine.begin() as conn:
            refused = None
            if seen is not None:
                deleted = _mark_unseen_deleted(conn, source, object_type, seen, limit)
                if isinstance(deleted, DeleteRefusal):
                    refused = deleted
                    refusals.append(refused)
                else:
                    obj_report.deleted += deleted
            # A refused object is not recorded as fully synced: the next full sync checks again.
            set_watermark(conn, source, object_type, None, None, full_done=full and not refused)
    report.api_calls = connector.api_calls()
    report.api_usage = connector.api_usage_text()
    if refusals:
        log.warning("full sync of %s: deletions refused: %s", source,
                    "; ".join(r.describe() for r in refusals))
        raise MassDeleteRefused(source, refusals, max_delete_share)
    return report


def _mark_unseen_deleted(conn: Connection, source: str, object_type: str, seen: set[str],
                         max_share: float | None = None) -> int | DeleteRefusal:
    """After a full pull: whatever the mirror holds that the CRM did not return is gone.

    With ``max_share`` (None: no limit), nothing is marked and a :class:`DeleteRefusal` comes
    back when that would be more than ``max_share`` of the live records, or when the pull
    returned nothing of an object the mirror holds."""
    table = SYNC_TABLES[object_type]
    if object_type == SyncObject.OWNER:
        return 0  # owners are never deleted, only deactivated; the CRM lists inactive ones too
    where = [table.c.source == source, table.c.deleted.is_(False)]
    if object_type == SyncObject.ACCOUNT_TEAM_MEMBER:
        # Members named by fields on the account come with the accounts, not with this pull.
        where.append(table.c.origin == TEAM_OBJECT_ORIGIN)
    live = list(conn.execute(select(table.c.id).where(*where)).scalars())
    gone = [row_id for row_id in live if row_id not in seen]
    if max_share is not None and gone and (not seen or len(gone) > max_share * len(live)):
        return DeleteRefusal(object_type, len(live), len(seen), len(gone))
    for start in range(0, len(gone), _ID_CHUNK):
        conn.execute(
            update(table)
            .where(table.c.source == source, table.c.id.in_(gone[start : start + _ID_CHUNK]))
            .values(deleted=True)
        )
    return len(gone)
