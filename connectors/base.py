"""The one protocol every source implements: Salesforce, HubSpot and the demo org alike.

A connector does three things and nothing else:

* ``pull(object_type, since, full)``: yield :class:`Page` objects of *normalized* rows (the mirror's
  column names, without ``source``) modified at or after ``since``; the sync engine
  (``roe_cli.sync``) commits each page atomically and only then moves the watermark.
* ``read_owners(object_type, ids)``: the owners the CRM holds right now, for drift checks.
* ``update_owners(object_type, changes)``: write owner changes in the CRM's batch calls and return
  one :class:`WriteResult` per change, in order.

The CRM's field mapping lives in one place per connector (its ``mapping.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

# Pull order: owners first (rules and observed changes need them), history last.
OBJECT_TYPES = ("owner", "account", "contact", "opportunity", "activity", "ownership_change")
WRITABLE_TYPES = ("account", "contact", "opportunity")


@dataclass
class Page:
    """One page of normalized rows of one object type, as one transaction in the mirror."""

    object_type: str
    rows: list[dict] = field(default_factory=list)
    # The newest modification time among the rows: the watermark may move here once committed.
    watermark: datetime | None = None
    # Ids the CRM reports as gone (hard deletes, archives), marked deleted in the mirror.
    deleted_ids: list[str] = field(default_factory=list)
    # An opaque resume point stored with the watermark, for CRMs that page by cursor.
    cursor: str | None = None


@dataclass(frozen=True)
class OwnerChange:
    object_type: str
    object_id: str
    new_owner_id: str


@dataclass(frozen=True)
class WriteResult:
    object_type: str
    object_id: str
    ok: bool
    error: str | None = None


@runtime_checkable
class Connector(Protocol):
    """What the sync engine and the write-back need from a source."""

    source: str

    def pull(self, object_type: str, since: datetime | None, full: bool) -> Iterator[Page]: ...

    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]: ...

    def update_owners(
        self, object_type: str, changes: Sequence[OwnerChange]
    ) -> list[WriteResult]: ...

    def api_calls(self) -> int:
        """How many HTTP calls this connector made so far."""
        ...

    def close(self) -> None: ...
