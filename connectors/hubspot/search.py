"""Reading everything modified since a time through the CRM search API, past its 10,000 cap.

A search returns at most 200 records a call and refuses to page past 10,000 results. Paging by
offset (``after``) has a second problem: a record that changes while roe pages moves to the end
of the sorted results, the rest shift, and one record is skipped without a trace. So
:class:`SearchStream` never pages by offset: it sorts ascending on the cursor property and asks
each time for records at or after the last value it saw (keyset paging), skipping the few it
already has at exactly that value. When a whole page shares one value (a bulk update), it pages
through that value by ``hs_object_id`` before moving past it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from .client import HubSpotClient
from .mapping import OBJECT_ID, epoch_ms, parse_time

log = logging.getLogger(__name__)


class SearchStream:
    """Records of one HubSpot object type with ``cursor >= since``, oldest first, page by page."""

    def __init__(
        self,
        client: HubSpotClient,
        hs_type: str,
        cursor: str,
        properties: list[str],
        since: datetime | None,
        page_size: int = 200,
        filters: list[dict] | None = None,
    ):
        self.client = client
        self.hs_type = hs_type
        self.cursor = cursor
        self.properties = list(dict.fromkeys([*properties, cursor, OBJECT_ID]))
        self.since = since
        self.page_size = page_size
        self.filters = list(filters or [])
        self.calls = 0
        self.drained = False
        self.max_seen: datetime | None = None
        self._lo: int | None = int(epoch_ms(since)) if since else None
        self._strict = False  # after a tie: strictly greater than _lo
        self._seen_at_lo: set[str] = set()
        self._tie_after: int | None = None  # paging one value by id: the last id seen

    @property
    def frontier(self) -> datetime | None:
        """Every record modified up to this time has been returned.

        Once drained, that is also everything modified before the connector's first call (by
        HubSpot's clock, from its ``Date`` header): this search started after it. Using the
        run's start, not the search's, gives every object of a run the same point when nothing
        newer changed, which lets the owner-history pass trust what the other pulls saw.
        """
        if self.drained:
            known = [t for t in (self.max_seen, self.client.first_server_time, self.since)
                     if t is not None]
            return max(known) if known else None
        return self.max_seen or self.since

    def take(self, at_most: int) -> list[dict]:
        """Fetch pages while another still fits in ``at_most`` records (at least one page).

        Returns [] only when drained. Callers that read associations for what they take ask
        for 1,000 (one association call) and get five pages.
        """
        out: list[dict] = []
        while not self.drained and (not out or len(out) + self.page_size <= at_most):
            out.extend(self._next())
        return out

    def _value(self, record: dict) -> int | None:
        props = record.get("properties") or {}
        when = parse_time(props.get(self.cursor))
        if when is None and self.cursor.endswith("lastmodifieddate"):
            when = parse_time(record.get("updatedAt"))
        return int(epoch_ms(when)) if when else None

    def _body(self) -> dict:
        filters = list(self.filters)
        if self._tie_after is not None:
            filters += [
                {"propertyName": self.cursor, "operator": "EQ", "value": str(self._lo)},
                {"propertyName": OBJECT_ID, "operator": "GT", "value": str(self._tie_after)},
            ]
            sort = OBJECT_ID
        else:
            if self._lo is not None:
                op = "GT" if self._strict else "GTE"
                filters.append({"propertyName": self.cursor, "operator": op, "value": str(self._lo)})
            sort = self.cursor
        body: dict = {
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self.properties,
            "limit": self.page_size,
        }
        if filters:
            body["filterGroups"] = [{"filters": filters}]
        return body

    def _next(self) -> list[dict]:
        data = self.client.search(self.hs_type, self._body())
        self.calls += 1
        records = data.get("results") or []
        full = len(records) >= self.page_size
        fresh = [r for r in records if str(r["id"]) not in self._seen_at_lo]
        if self._tie_after is not None:
            if records:
                self._tie_after = max(int(r["id"]) for r in records)
            if not full:  # that value is done: move strictly past it
                self._tie_after = None
                self._strict = True
                self._seen_at_lo = set()
        elif not full:
            self.drained = True
        else:
            last = self._value(records[-1])
            if last is None:  # no modification time to page on: nothing more to do safely
                log.warning("HubSpot %s record %s has no %s; stopping this search there",
                            self.hs_type, records[-1].get("id"), self.cursor)
                self.drained = True
            elif self._value(records[0]) == last:
                # A whole page at one value (a bulk update): page through it by id, then past it.
                if last != self._lo:
                    self._seen_at_lo = set()
                self._lo = last
                self._strict = False
                self._seen_at_lo |= {str(r["id"]) for r in records}
                self._tie_after = -1  # below every id
            else:
                self._lo = last
                self._strict = False
                self._seen_at_lo = {str(r["id"]) for r in records if self._value(r) == last}
        for record in fresh:
            value = self._value(record)
            when = parse_time(value) if value is not None else None
            if when is not None:
                if self.max_seen is None or when > self.max_seen:
                    self.max_seen = when
        return fresh
