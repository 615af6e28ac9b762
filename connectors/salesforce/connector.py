"""The Salesforce connector: pull pages of normalized rows, read current owners, write owners.

Pulling
    Every sObject is read in ``SystemModstamp`` order (``CreatedDate`` for AccountHistory) from
    ``queryAll``, so changes *and* deletes (``IsDeleted``) arrive in one call per 2,000 records and
    an unchanged object costs one call. A page's watermark is the newest time in it, and the sync
    engine moves the watermark only after the page is committed: a crash loses nothing and the next
    run resumes from the last committed page, with upserts making the overlap harmless.

    A pull that matches more than ``bulk_threshold`` records takes its first page from REST and
    continues after that page's last record (by time, then Id) in one Bulk API 2.0 query job.
    Bulk results come in no order, so those pages carry no watermark; a final empty page carries
    the newest time once everything is committed.

    Activities come from two sObjects (Event, then Task) under one watermark. Only the last
    sObject's pages may move it, and every later query is bounded by the server time of the pull's
    first answer, so that nothing modified while the pull runs can fall behind the watermark.

Writing
    ``update_owners`` sends sObject Collections PATCH calls of 200 records of any mix of types
    (accounts first, then contacts, then opportunities: three chunks a call of the ten Salesforce
    allows) with ``allOrNone`` false, or one Bulk API 2.0 ingest job per type for more than
    ``bulk_write_threshold`` changes, and returns one result per change, in the caller's order.
"""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from roe_cli.shared.errors import CrmError, UsageError
from roe_cli.shared.vocab import Source

from ..base import ObjectUnavailable, OwnerChange, Page, SeatMove, SeatNow, SeatResult, WriteResult
from . import mapping, seats
from .client import Credentials, SalesforceClient
from .mapping import COLLECTION_LIMIT, TEAM_KEY
from .settings import SalesforceSettings

log = logging.getLogger(__name__)


_WRITE_ORDER = {t: n for n, t in enumerate(mapping.SOBJECT_BY_TYPE)}  # account, contact, opportunity


class SalesforceWriteError(CrmError):
    """A write call failed as a whole; ``results`` holds what earlier calls of the batch reported."""

    def __init__(self, what: str, todo: str | None, results: list[WriteResult]):
        super().__init__(what, todo)
        self.results = results


@dataclass
class _PullState:
    horizon: datetime | None = None  # the server's time at the pull's first answer


class SalesforceConnector:
    """Salesforce as a roe source; see the module docstring."""

    source: str = Source.SALESFORCE
    write_batch_size = COLLECTION_LIMIT
    write_mixed_types = True  # one sObject Collections call takes 200 records of any types

    def __init__(
        self,
        settings: SalesforceSettings | None = None,
        credentials: Credentials | None = None,
        client: SalesforceClient | None = None,
    ):
        self.settings = settings or SalesforceSettings()
        self.client = client or SalesforceClient(self.settings, credentials or Credentials.from_env())

    # ---- pull ------------------------------------------------------------------------------
    def pull(self, object_type: str, since: datetime | None, full: bool) -> Iterator[Page]:
        """Pages of ``object_type`` modified at or after ``since`` (everything when None).

        ``full`` needs nothing special here: deleted records come with every pull (queryAll), and
        the sync engine marks whatever a full pull did not return as deleted.
        """
        queries = mapping.queries_for(object_type, self.settings)
        state = _PullState()
        newest: datetime | None = None
        unmarked = False  # a page went out without a watermark
        for position, query in enumerate(queries):
            last_query = position == len(queries) - 1
            for records, ordered in self._read(query, since, state):
                if not records:
                    continue
                team: list[dict] | None = None
                try:
                    rows = [row for row in map(query.convert, records) if row is not None]
                    if object_type == "account":
                        team = [m for row in rows for m in row.pop(TEAM_KEY)]
                    page_newest = max(filter(None, (mapping.stamp(r, query) for r in records)), default=None)
                except (KeyError, ValueError, TypeError) as exc:
                    raise CrmError(
                        f"Salesforce sent a {query.sobject} record roe could not read "
                        f"({type(exc).__name__}: {str(exc)[:200]}).",
                        "Run again; if it persists, check the field settings in the [salesforce] "
                        "table of rules.toml, and report the record's id.",
                    ) from None
                if page_newest is not None and (newest is None or page_newest > newest):
                    newest = page_newest
                watermark = page_newest if last_query and ordered else None
                unmarked = unmarked or watermark is None
                yield Page(object_type, rows, watermark=watermark, team_members=team)
        if unmarked and newest is not None:
            yield Page(object_type, [], watermark=newest)

    def _read(self, query: mapping.SObjectQuery, since, state: _PullState) -> Iterator[tuple[list[dict], bool]]:
        """Flat records of one sObject, page by page, and whether they come in cursor order."""
        soql = self._soql(query, since, state.horizon, rest=True)
        action = f"reading {query.sobject}"
        pages = self.client.query_pages(soql, include_deleted=query.deletable, action=action)
        first = True
        for page in _unless_missing(pages, query.sobject):
            if state.horizon is None:
                state.horizon = self.client.server_time
            records = [mapping.flatten(r) for r in page["records"]]
            if (first and records and not page["done"]
                    and int(page.get("totalSize") or 0) > self.settings.bulk_threshold):
                pages.close()
                yield records, True
                tail = records[-1]
                after = (mapping.stamp(tail, query), tail["Id"])
                log.info("%s: %s records, continuing with Bulk API 2.0", query.sobject, page["totalSize"])
                yield from self._read_bulk(query, since, state.horizon, after)
                return
            first = False
            yield records, True

    def _read_bulk(self, query: mapping.SObjectQuery, since, horizon, after) -> Iterator[tuple[list[dict], bool]]:
        action = f"reading {query.sobject} with Bulk API 2.0"
        stages = _StageHistory(self) if query.subqueries else None
        try:
            soql = self._soql(query, since, horizon, after=after, rest=False)
            for text in self.client.bulk_query(query.sobject, soql, include_deleted=query.deletable,
                                               action=action):
                batch: list[dict] = []
                for record in csv.DictReader(io.StringIO(text)):
                    if stages is not None:
                        record["Histories"] = stages.lookup(record["Id"])
                    batch.append(record)
                    if len(batch) >= self.settings.page_size:
                        yield batch, False
                        batch = []
                if batch:
                    yield batch, False
        finally:
            if stages is not None:
                stages.close()

    def _soql(self, query: mapping.SObjectQuery, since, horizon, *, after=None, rest: bool) -> str:
        fields = [*query.fields, *(query.subqueries if rest else ())]
        cursor = query.cursor
        where = [query.where] if query.where else []
        if since is not None:
            where.append(f"{cursor} >= {mapping.soql_datetime(since)}")
        if horizon is not None:
            where.append(f"{cursor} <= {mapping.soql_datetime(horizon)}")
        if after is not None:
            at, last_id = after
            if at is None or not mapping.is_sf_id(last_id):
                raise CrmError(f"Salesforce returned a {query.sobject} record without a valid "
                               f"{cursor} or Id ({last_id!r}).", "Run again; report it if it persists.")
            stamp = mapping.soql_datetime(at)
            where.append(f"({cursor} > {stamp} OR ({cursor} = {stamp} AND Id > '{last_id}'))")
        soql = f"SELECT {', '.join(fields)} FROM {query.sobject}"
        if where:
            soql += " WHERE " + " AND ".join(where)
        if rest:  # Bulk API 2.0 takes no ORDER BY
            soql += f" ORDER BY {cursor} ASC, Id ASC"
        return soql

    # ---- write side ------------------------------------------------------------------------
    @staticmethod
    def _sobject(object_type: str) -> str:
        try:
            return mapping.SOBJECT_BY_TYPE[object_type]
        except KeyError:
            raise UsageError(
                f"Salesforce owners can be read and written for accounts, contacts and "
                f"opportunities, not {object_type!r}."
            ) from None

    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        """``{id: owner id}`` for the records that exist and are not deleted.

        Ids go into ``Id IN (...)`` queries of ``read_batch_size`` ids, short enough for any URL
        limit. A 15-character id is answered under the same 15-character id.
        """
        sobject = self._sobject(object_type)
        wanted = list(dict.fromkeys(i for i in ids if mapping.is_sf_id(i)))
        owners: dict[str, str | None] = {}
        size = self.settings.read_batch_size
        for start in range(0, len(wanted), size):
            chunk = wanted[start : start + size]
            asked = set(chunk)
            soql = (f"SELECT Id, OwnerId FROM {sobject} WHERE Id IN "
                    f"({', '.join(repr(i) for i in chunk)})")
            for page in self.client.query_pages(soql, include_deleted=False,
                                                action=f"reading {sobject} owners"):
                for record in page["records"]:
                    record_id = record["Id"]
                    key = record_id if record_id in asked or record_id[:15] not in asked else record_id[:15]
                    owners[key] = mapping.text(record.get("OwnerId"))
        return owners

    def update_owners(self, object_type: str | None,
                      changes: Sequence[OwnerChange]) -> list[WriteResult]:
        """Set owners; one :class:`WriteResult` per change, in order (see the module docstring).

        ``object_type`` None: the changes may be of any mix of types, each named by its
        :class:`OwnerChange`; a Collections call takes 200 of them whatever their types.
        """
        if object_type is not None:
            self._sobject(object_type)  # an unknown type is refused before anything is sent
        changes = list(changes)
        results: list[WriteResult | None] = [None] * len(changes)
        valid: list[int] = []
        for index, change in enumerate(changes):
            kind = change.object_type
            if object_type is not None and kind != object_type:
                raise UsageError(f"update_owners({object_type!r}) got a {kind!r} change.")
            self._sobject(kind)
            if not mapping.is_sf_id(change.object_id):
                results[index] = WriteResult(kind, change.object_id, False, "not a Salesforce record id")
            elif not mapping.looks_like_owner_id(change.new_owner_id):
                results[index] = WriteResult(kind, change.object_id, False,
                                             f"{change.new_owner_id!r} is not a Salesforce user or queue id")
            else:
                valid.append(index)
        if len(valid) > self.settings.bulk_write_threshold:
            by_type: dict[str, list[int]] = {}
            for index in valid:
                by_type.setdefault(changes[index].object_type, []).append(index)
            for kind, indexes in by_type.items():  # one Bulk API 2.0 job handles one sObject
                self._bulk_update(kind, self._sobject(kind), changes, indexes, results)
            return [r for r in results if r is not None]
        # Collections update records in the order listed, in chunks of consecutive records of one
        # type, at most 10 chunks a call: grouping by type (accounts first, in the caller's order
        # within a type) keeps each call at 3 chunks and sends each account before its children.
        valid.sort(key=lambda i: _WRITE_ORDER.get(changes[i].object_type, len(_WRITE_ORDER)))
        for start in range(0, len(valid), COLLECTION_LIMIT):
            chunk = valid[start : start + COLLECTION_LIMIT]
            records = [{"attributes": {"type": self._sobject(changes[i].object_type)},
                        "id": changes[i].object_id, "OwnerId": changes[i].new_owner_id}
                       for i in chunk]
            kinds = sorted({self._sobject(changes[i].object_type) for i in chunk})
            try:
                answers = self.client.update_collection(
                    records, action=f"updating {', '.join(kinds)} owners")
            except CrmError as exc:
                done = [r for r in results if r is not None]  # refused locally or by earlier calls
                raise SalesforceWriteError(exc.what, exc.todo, done) from None
            for index, answer in zip(chunk, answers, strict=True):
                ok = bool(answer.get("success"))
                errors = "; ".join(
                    f"{e.get('statusCode')}: {e.get('message')}" for e in answer.get("errors") or []
                )
                results[index] = WriteResult(changes[index].object_type, changes[index].object_id,
                                             ok, None if ok else errors or "failed, no reason given")
        return [r for r in results if r is not None]

    def _bulk_update(self, object_type, sobject, changes, valid, results) -> None:
        records = [{"Id": changes[i].object_id, "OwnerId": changes[i].new_owner_id} for i in valid]
        jobs = self.client.bulk_update(sobject, records, action=f"updating {sobject} owners with Bulk API 2.0")
        outcome: dict[str, str | None] = {}  # id -> None when applied, else the error
        for job in jobs:
            for row in job["unprocessed"]:
                outcome[row.get("Id", "")] = "not processed: the Bulk API job stopped before this record"
            for row in job["failed"]:
                outcome[row.get("Id", "")] = row.get("sf__Error") or "failed, no reason given"
            for row in job["successful"]:
                outcome[row.get("Id") or row.get("sf__Id", "")] = None
        for index in valid:
            object_id = changes[index].object_id
            if object_id in outcome:
                error = outcome[object_id]
            else:
                error = "Salesforce reported nothing for this record"
            results[index] = WriteResult(object_type, object_id, error is None, error)

    # ---- account team seats (roe reassign --team-seats; see seats.py) ----------------------
    def read_seats(self, moves: Sequence[SeatMove]) -> dict[str, SeatNow]:
        return seats.read_seats(self.client, moves, self.settings.read_batch_size,
                                list(self.settings.team_fields.values()))

    def move_seats(self, moves: Sequence[SeatMove]) -> list[SeatResult]:
        return seats.move_seats(self.client, moves)

    # ---- bookkeeping -----------------------------------------------------------------------
    def probe(self) -> None:
        """Sign in and read the org's limits resource: one cheap call that also reports usage."""
        self.client.limits()

    def api_calls(self) -> int:
        """HTTP calls made so far, retries included."""
        return self.client.calls

    def api_usage_text(self) -> str | None:
        """The org's API usage as of the latest answer, e.g. ``1,234 of 15,000 requests (8.2%)``."""
        if not self.client.usage:
            return None
        used, limit = self.client.usage
        share = f" ({used / limit:.1%})" if limit else ""
        return f"{used:,} of {limit:,} requests in the last 24 hours{share}"

    def close(self) -> None:
        self.client.close()


def _unless_missing(pages: Iterator[dict], sobject: str) -> Iterator[dict]:
    """``pages``, but an org without account teams (INVALID_TYPE on AccountTeamMember's first
    page) raises :class:`ObjectUnavailable` so that the sync warns and goes on."""
    try:
        first = next(pages)
    except StopIteration:
        return
    except CrmError as exc:
        if sobject == "AccountTeamMember" and "INVALID_TYPE" in exc.what:
            raise ObjectUnavailable(
                "This Salesforce org has no account teams (AccountTeamMember is not available "
                "to the user roe signs in as), so only the team_fields of accounts give team "
                "members.",
                "Nothing to do unless the org uses account teams: then turn them on (Setup > "
                "Account Teams) or give the user read access, and run `roe sync --full`. Later "
                "syncs skip the object until a full sync.",
            ) from None
        raise
    yield first
    yield from pages


class _StageHistory:
    """Newest lifecycle-stage change per account, for bulk pulls (Bulk API 2.0 has no subqueries).

    Read with one bulk job into a private temporary SQLite file, so memory stays bounded.
    """

    def __init__(self, connector: SalesforceConnector):
        field = connector.settings.lifecycle_stage_field
        self.db = sqlite3.connect("")  # "" = a private temporary database on disk
        self.db.execute("CREATE TABLE stage (account_id TEXT PRIMARY KEY, changed_at TEXT)")
        soql = f"SELECT AccountId, CreatedDate FROM AccountHistory WHERE Field = '{field}'"
        for text in connector.client.bulk_query("AccountHistory", soql, include_deleted=False,
                                                action="reading the lifecycle stage history"):
            rows = []
            for record in csv.DictReader(io.StringIO(text)):
                changed = mapping.timestamp(record.get("CreatedDate"))
                if record.get("AccountId") and changed is not None:
                    rows.append((record["AccountId"], changed.isoformat()))
            self.db.executemany(
                "INSERT INTO stage VALUES (?, ?) ON CONFLICT (account_id) "
                "DO UPDATE SET changed_at = max(changed_at, excluded.changed_at)",
                rows,
            )

    def lookup(self, account_id: str) -> list[dict] | None:
        row = self.db.execute("SELECT changed_at FROM stage WHERE account_id = ?", (account_id,)).fetchone()
        return [{"CreatedDate": row[0]}] if row else None

    def close(self) -> None:
        self.db.close()
