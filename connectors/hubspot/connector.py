"""The HubSpot connector: pages of mirror rows out of HubSpot, owner changes back in.

Reading (``pull``), per mirror object:

* owners: ``/crm/v3/owners/``, active then archived (archived owners are inactive users).
* accounts, contacts, opportunities, activities: the CRM search API, sorted on the last-modified
  property and paged by keyset (:mod:`.search`), so incremental syncs read only what changed and
  the 10,000-result cap never bites. Deals and engagements get their company, contact and deal
  from one association batch read per 1,000 records. Activities merge five engagement objects;
  the watermark of a page is the oldest point every one of them has reached, so a crash never
  skips anything. On incremental syncs the archived records are listed and marked deleted.
* ownership changes: ``hubspot_owner_id`` with history, read in batches of 50 for the records
  whose owner was assigned after they were created (``hubspot_owner_assigneddate``).

Every page is one transaction in the mirror; see :mod:`roe_cli.sync`.

Writing: ``read_owners`` (batch read, 100 a call) and ``update_owners`` (batch update, 100 a
call), with one result per record, 207 partial failures included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeGuard

from roe_cli.shared.vocab import Source

from ..base import OwnerChange, Page, SeatMove, SeatNow, SeatResult, WriteResult, write_each_type
from . import seats
from .client import HubSpotApiError, HubSpotClient
from .mapping import (
    BATCH_LIMIT,
    CREATED,
    HS_OBJECT,
    OWNER,
    OWNER_ASSIGNED,
    TEAM_KEY,
    Mapping,
    crm_id,
    cursor_property,
)
from .search import SearchStream
from .settings import HubSpotSettings

log = logging.getLogger(__name__)

HISTORY_PAGE_ROWS = 1000
MAX_HINT_IDS = 200_000  # beyond this, the history pass finds its records by search instead


@dataclass
class _HistoryHint:
    """Records a pull from ``since`` saw whose owner changed, for the history pass of the run."""

    since: datetime | None
    ids: list[str] = field(default_factory=list)
    complete: bool = False
    overflow: bool = False
    frontier: datetime | None = None


class HubSpotConnector:
    """See the module docstring. Build it with :func:`connectors.hubspot.factory.connect`."""

    source: str = Source.HUBSPOT
    write_batch_size = BATCH_LIMIT

    def __init__(self, client: HubSpotClient, settings: HubSpotSettings | None = None):
        self.client = client
        self.settings = settings or client.settings
        self.mapping = Mapping(self.settings)
        self._hints: dict[str, _HistoryHint] = {}

    # ---- the protocol ------------------------------------------------------------------------
    def api_calls(self) -> int:
        return self.client.calls

    def close(self) -> None:
        self.client.close()

    def api_usage_text(self) -> str | None:
        """The portal's daily API allowance, as HubSpot reported it on the last call."""
        c = self.client
        if c.daily_limit is None or c.daily_remaining is None:
            return None
        return f"{c.daily_limit - c.daily_remaining:,} of {c.daily_limit:,} calls today"

    def probe(self) -> None:
        """One owners page of one owner: proves the token works and reads the daily allowance."""
        self.client.owners(archived=False, limit=1)

    def pull(self, object_type: str, since: datetime | None, full: bool) -> Iterator[Page]:
        if full:
            since = None
        if object_type == "owner":
            return self._pull_owners()
        if object_type in HS_OBJECT:
            return self._pull_records(object_type, [HS_OBJECT[object_type]], since, full)
        if object_type == "activity":
            return self._pull_records("activity", list(self.settings.activity_types), since, full)
        if object_type == "ownership_change":
            return self._pull_history(since)
        return iter(())

    # ---- owners ------------------------------------------------------------------------------
    def _pull_owners(self) -> Iterator[Page]:
        newest: datetime | None = None
        for archived in (False, True):
            after = None
            while True:
                data = self.client.owners(archived=archived, after=after)
                rows = [self.mapping.owner_row({**o, "archived": archived or o.get("archived")})
                        for o in data.get("results") or []]
                for row in rows:
                    if row["updated_at"] and (newest is None or row["updated_at"] > newest):
                        newest = row["updated_at"]
                if rows:
                    yield Page("owner", rows)
                after = _next_after(data)
                if not after:
                    break
        yield Page("owner", [], watermark=newest)

    # ---- records -----------------------------------------------------------------------------
    def _pull_records(
        self, object_type: str, hs_types: list[str], since: datetime | None, full: bool
    ) -> Iterator[Page]:
        s = self.settings
        streams = {
            t: SearchStream(self.client, t, cursor_property(t), self.mapping.properties(t), since,
                            s.search_page_size)
            for t in hs_types
        }
        hint = None
        if object_type in s.owner_history_objects:
            hint = self._hints[object_type] = _HistoryHint(since)
        moved_to = since
        active = list(hs_types)
        while active:
            # Advance the stream that is furthest behind, so the common watermark keeps moving.
            hs_type = min(active, key=lambda t: streams[t].frontier or datetime.min)
            stream = streams[hs_type]
            wanted = s.association_batch_size if self.mapping.associations(hs_type) else 1
            records = stream.take(wanted)
            if stream.drained:
                active.remove(hs_type)
            rows = []
            team: list[dict] | None = [] if object_type == "account" else None
            if records:
                links = self._links(hs_type, [str(r["id"]) for r in records])
                rows = [self.mapping.row(hs_type, r, links.get(str(r["id"]))) for r in records]
                if object_type == "account":
                    team = [m for row in rows for m in row.pop(TEAM_KEY)]
                if hint is not None:
                    self._add_hint(hint, records, since)
            frontiers = [st.frontier for st in streams.values()]
            reached = [f for f in frontiers if f is not None]
            watermark = None
            if len(reached) == len(frontiers):
                low = min(reached)
                if moved_to is None or low > moved_to:
                    watermark = moved_to = low
            if rows or watermark is not None:
                yield Page(object_type, rows, watermark=watermark, team_members=team)
        if hint is not None:
            hint.complete = True
            hint.frontier = moved_to
        if not full and since is not None and s.detect_archived:
            for hs_type in hs_types:
                yield from self._archived(object_type, hs_type)

    def _add_hint(self, hint: _HistoryHint, records: list[dict], since: datetime | None) -> None:
        if hint.overflow:
            return
        hint.ids.extend(str(r["id"]) for r in records if self.mapping.needs_history(r, since))
        if len(hint.ids) > MAX_HINT_IDS:
            hint.overflow = True
            hint.ids = []

    def _archived(self, object_type: str, hs_type: str) -> Iterator[Page]:
        after = None
        while True:
            data = self.client.list_archived(hs_type, after=after)
            ids = [str(r["id"]) for r in data.get("results") or []]
            if ids:
                yield Page(object_type, [], deleted_ids=ids)
            after = _next_after(data)
            if not after:
                return

    def _links(self, hs_type: str, ids: list[str]) -> dict[str, dict[str, str]]:
        """The associated company, contact and deal of each record, one call per type and 1,000."""
        links: dict[str, dict[str, str]] = {}
        size = self.settings.association_batch_size
        for to_type in self.mapping.associations(hs_type):
            for start in range(0, len(ids), size):
                data = self.client.associations(hs_type, to_type, ids[start : start + size])
                for result in data.get("results") or []:
                    targets = result.get("to") or []
                    if targets:
                        chosen = min(targets, key=_association_rank)
                        from_id = str((result.get("from") or {}).get("id"))
                        links.setdefault(from_id, {})[to_type] = str(chosen["toObjectId"])
        return links

    # ---- owner history -----------------------------------------------------------------------
    def _pull_history(self, since: datetime | None) -> Iterator[Page]:
        s = self.settings
        frontiers: list[datetime | None] = []
        rows: list[dict] = []
        for object_type in s.owner_history_objects:
            hs_type = HS_OBJECT[object_type]
            hint = self._hints.get(object_type)
            if _hint_covers(hint, since):
                batches: Iterator[list[str]] = iter([hint.ids])
                frontiers.append(hint.frontier)
                stream = None
            else:  # this run's pull did not cover the window: find the reassigned records
                filters = [] if since else [{"propertyName": OWNER_ASSIGNED,
                                             "operator": "HAS_PROPERTY"}]
                stream = SearchStream(self.client, hs_type, OWNER_ASSIGNED,
                                      [CREATED, OWNER_ASSIGNED, OWNER], since,
                                      s.search_page_size, filters)
                batches = self._history_candidates(stream, since)
            for ids in batches:
                for start in range(0, len(ids), s.history_batch_size):
                    rows.extend(self._history(object_type, hs_type,
                                              ids[start : start + s.history_batch_size]))
                    if len(rows) >= HISTORY_PAGE_ROWS:
                        yield Page("ownership_change", rows)
                        rows = []
            if stream is not None:
                frontiers.append(stream.frontier)
        reached = [f for f in frontiers if f is not None]
        watermark = None
        if frontiers and len(reached) == len(frontiers):
            watermark = min(reached)
        if rows or watermark is not None:
            yield Page("ownership_change", rows, watermark=watermark)

    def _history_candidates(self, stream: SearchStream, since: datetime | None) -> Iterator[list[str]]:
        while not stream.drained:
            records = stream.take(1)
            ids = [str(r["id"]) for r in records if self.mapping.needs_history(r, since)]
            if ids:
                yield ids

    def _history(self, object_type: str, hs_type: str, ids: list[str]) -> list[dict]:
        data = self.client.batch_read(hs_type, {
            "inputs": [{"id": i} for i in ids],
            "properties": [OWNER],
            "propertiesWithHistory": [OWNER],
        })
        rows = []
        for record in data.get("results") or []:
            rows.extend(self.mapping.history_rows(object_type, record))
        return rows

    # ---- the write side ----------------------------------------------------------------------
    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        """Current owners of the records that exist and are not archived, 100 a call."""
        live = self.client.read_live(_hs_type(object_type), list(dict.fromkeys(str(i) for i in ids)),
                                     [OWNER], BATCH_LIMIT)
        return {record_id: crm_id(props.get(OWNER)) for record_id, props in live.items()}

    def read_seats(self, moves: Sequence[SeatMove]) -> dict[str, SeatNow]:
        """Account team seats (``team_properties``) as HubSpot holds them; see seats.py."""
        return seats.read_seats(self.client, moves, list(self.settings.team_properties.values()))

    def move_seats(self, moves: Sequence[SeatMove]) -> list[SeatResult]:
        return seats.move_seats(self.client, moves)

    def update_owners(self, object_type: str | None,
                      changes: Sequence[OwnerChange]) -> list[WriteResult]:
        """Set owners with batch updates of 100 (one type a call); one result per change, in order."""
        if object_type is None:
            return write_each_type(changes, self.update_owners)
        hs_type = _hs_type(object_type)
        results: list[WriteResult] = []
        for start in range(0, len(changes), BATCH_LIMIT):
            results.extend(self._update(object_type, hs_type, changes[start : start + BATCH_LIMIT]))
        return results

    def _update(self, object_type: str, hs_type: str, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        inputs = [{"id": str(c.object_id), "properties": {OWNER: str(c.new_owner_id)}}
                  for c in changes]
        try:
            _status, data = self.client.batch_update(hs_type, inputs)
        except HubSpotApiError as exc:
            if len(changes) == 1:
                return [WriteResult(object_type, str(changes[0].object_id), False, exc.what)]
            # HubSpot refused the whole batch for some record in it: find which, one by one.
            log.warning("HubSpot refused a batch of %d %s updates (%s); sending them one by one",
                        len(changes), hs_type, exc.status)
            out: list[WriteResult] = []
            for change in changes:
                out.extend(self._update(object_type, hs_type, [change]))
            return out
        done = {str(r.get("id")) for r in data.get("results") or []}
        failed: dict[str, str] = {}
        unattributed = None
        for error in data.get("errors") or []:
            message = str(error.get("message") or error.get("category") or "failed")
            ids = ((error.get("context") or {}).get("ids")) or []
            for record_id in ids:
                failed[str(record_id)] = message
            if not ids:
                unattributed = unattributed or message
        results = []
        for change in changes:
            record_id = str(change.object_id)
            if record_id in failed:
                results.append(WriteResult(object_type, record_id, False, failed[record_id]))
            elif record_id in done:
                results.append(WriteResult(object_type, record_id, True))
            else:
                results.append(WriteResult(object_type, record_id, False,
                                           unattributed or "HubSpot returned no result for it"))
        return results


def _hint_covers(hint: _HistoryHint | None, since: datetime | None) -> TypeGuard[_HistoryHint]:
    """Whether this run's pull saw every record whose owner may have changed since ``since``.

    An owner change modifies the record, so a complete pull from ``hint.since`` at or before
    ``since`` saw them all. When it started later (an earlier run stopped between the two), the
    history pass searches on ``hubspot_owner_assigneddate`` instead.
    """
    if hint is None or not hint.complete or hint.overflow:
        return False
    return hint.since is None or (since is not None and hint.since <= since)


def _hs_type(object_type: str) -> str:
    try:
        return HS_OBJECT[object_type]
    except KeyError:
        raise ValueError(f"HubSpot cannot change owners of {object_type!r}") from None


def _next_after(data: dict) -> str | None:
    return (((data.get("paging") or {}).get("next")) or {}).get("after")


def _association_rank(target: dict) -> tuple:
    """Primary associations first, then the lowest id."""
    labels = [str(t.get("label") or "").lower() for t in target.get("associationTypes") or []]
    try:
        number = int(target.get("toObjectId"))  # type: ignore[arg-type]  # None: TypeError below
    except (TypeError, ValueError):
        number = 0
    return ("primary" not in labels, number)
