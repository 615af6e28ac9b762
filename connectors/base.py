"""The one protocol every source implements: Salesforce, HubSpot and the demo org alike.

A connector does three things and nothing else:

* ``pull(object_type, since, full)``: yield :class:`Page` objects of *normalized* rows (the mirror's
  column names, without ``source``) modified at or after ``since``; the sync engine
  (``roe_cli.sync``) commits each page atomically and only then moves the watermark.
* ``read_owners(object_type, ids)``: the owners the CRM holds right now, for drift checks.
* ``update_owners(object_type, changes)``: write owner changes in the CRM's batch calls and return
  one :class:`WriteResult` per change, in order. ``object_type`` None means the changes may be of
  several types (each :class:`OwnerChange` names its own): only a connector that says
  ``write_mixed_types = True`` is ever called so.

A connector that can move account team seats (``roe reassign --team-seats``) also has
``read_seats(moves)`` (``{seat id: SeatNow}`` for the seats the CRM still has) and
``move_seats(moves)`` (one :class:`SeatResult` per move, in order); the core reads them with
getattr, and a connector without them refuses a plan with seats before anything is written.

Beside those it tells the core how many changes one write call takes (``write_batch_size``),
whether one call takes several object types (``write_mixed_types``, False when absent), how
many HTTP calls it made (``api_calls()``) and the CRM's own API usage (``api_usage_text()``).

Each connector package has the same files: ``settings`` (its ``rules.toml`` table), ``factory``
(a :class:`ConnectorFactory` named ``FACTORY``, importing the client only when called),
``client``, ``mapping`` (the CRM's field mapping, in one place) and ``connector``. The registry
(``connectors.registry``) maps each :class:`~roe_cli.shared.vocab.Source` to its factory.

Connectors import nothing of ``roe_cli`` but ``roe_cli.shared``. The one connector that needs the
mirror, the demo org, reaches it through :class:`MirrorPort`, which the core implements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from roe_cli.shared.errors import CrmError
from roe_cli.shared.vocab import Source

if TYPE_CHECKING:
    from pydantic import BaseModel


# ``origin`` of account team members pulled as records of their own (Salesforce
# AccountTeamMember); any other origin names the user field on the account that gave the member.
TEAM_OBJECT_ORIGIN = "AccountTeamMember"


@dataclass
class Page:
    """One page of normalized rows of one object type, as one transaction in the mirror."""

    object_type: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    # The newest modification time among the rows: the watermark may move here once committed.
    watermark: datetime | None = None
    # Ids the CRM reports as gone (hard deletes, archives), marked deleted in the mirror.
    deleted_ids: list[str] = field(default_factory=list)
    # An opaque resume point stored with the watermark, for CRMs that page by cursor.
    cursor: str | None = None
    # On account pages only: the account team members that user fields on these accounts name
    # (Salesforce ``team_fields``, HubSpot ``team_properties``), rows of ``account_team_members``
    # without ``source``. The complete set for the page's accounts: a member of those accounts
    # from a field that is no longer in the set is removed. None: the connector reads no fields.
    team_members: list[dict[str, Any]] | None = None


class ObjectUnavailable(CrmError):
    """Raised by ``pull`` before any page when the CRM does not have the object at all (a
    Salesforce org without account teams). The sync engine warns once, goes on with the other
    objects, and skips the object on later incremental syncs; a full sync checks again."""


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


@dataclass(frozen=True)
class SeatMove:
    """One account team seat to give to another user (``roe reassign --team-seats``).

    ``seat_id`` is the mirror's member id: the CRM's record id for a member of its own
    (``origin`` :data:`TEAM_OBJECT_ORIGIN`), else ``'<account id>/<field>'`` for a user field on
    the account (``origin`` the field or property name). ``new_seat_id`` is set when the CRM
    already holds a seat of the new user for it (a re-run after a crash between creating the new
    member and deleting the old one): only the old member is then removed."""

    seat_id: str
    account_id: str
    origin: str
    team_role: str | None
    old_user_id: str
    new_user_id: str
    new_seat_id: str | None = None
    copy: tuple[tuple[str, str], ...] = ()  # fields the new member record copies (SeatNow.copy)


@dataclass(frozen=True)
class SeatNow:
    """A seat as the CRM holds it now: its user (None for an emptied field), and the id of a
    live seat of ``new_user`` that takes its place, if the CRM has one (see :class:`SeatMove`);
    ``copy`` holds what a new member record would copy (access levels)."""

    user_id: str | None
    new_seat_id: str | None = None
    copy: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SeatResult:
    seat_id: str
    ok: bool
    error: str | None = None
    new_seat_id: str | None = None  # the seat's id once moved (a new record id, or the same)


def write_each_type(
    changes: Sequence[OwnerChange],
    write: Callable[[str, Sequence[OwnerChange]], list[WriteResult]],
) -> list[WriteResult]:
    """``update_owners(None, changes)`` for a connector that writes one type a call: ``write``
    each type's changes, and the results back in the order of ``changes``."""
    groups: dict[str, list[int]] = {}
    for index, change in enumerate(changes):
        groups.setdefault(change.object_type, []).append(index)
    results: list[WriteResult | None] = [None] * len(changes)
    for object_type, indexes in groups.items():
        answers = write(object_type, [changes[i] for i in indexes])
        for index, answer in zip(indexes, answers, strict=True):
            results[index] = answer
    return [r for r in results if r is not None]


@runtime_checkable
class Connector(Protocol):
    """What the sync engine and the write-back need from a source."""

    source: str
    # How many owner changes one write call takes; the write-back sends windows of this size.
    # A connector whose calls take several object types at once also sets
    # ``write_mixed_types = True`` (read with getattr: absent means one type a call).
    write_batch_size: int

    def pull(self, object_type: str, since: datetime | None, full: bool) -> Iterator[Page]: ...

    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]: ...

    def update_owners(
        self, object_type: str | None, changes: Sequence[OwnerChange]
    ) -> list[WriteResult]: ...

    def api_calls(self) -> int:
        """How many HTTP calls this connector made so far."""
        ...

    def api_usage_text(self) -> str | None:
        """The CRM's API usage as it last reported it, in words; None when it said nothing."""
        ...

    def probe(self) -> None:
        """Make one cheap call that proves the CRM answers and takes the credentials (for
        ``roe doctor``); raise :class:`~roe_cli.shared.errors.CrmError` when it does not."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MirrorPort(Protocol):
    """The mirror, as the demo connector sees it: owners of one source's records, nothing more.

    The core implements it (``roe_cli.sources``); connectors never import the mirror's models.
    """

    def owners_of(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        """The owner of each live (not deleted) record among ``ids``; missing ids are left out."""
        ...

    def active_owner_ids(self) -> set[str]:
        """The ids of the source's active users."""
        ...

    def write_owners(self, object_type: str, assignments: Sequence[tuple[str, str]]) -> list[bool]:
        """Set ``(record id, owner id)`` pairs in one transaction; per pair, whether a live record
        was there to change."""
        ...

    def seat_users(self, ids: Sequence[str]) -> dict[str, str]:
        """The user of each live account team member among ``ids`` whose account is live."""
        ...

    def write_seats(self, assignments: Sequence[tuple[str, str]]) -> list[bool]:
        """Set ``(member id, user id)`` pairs in one transaction; per pair, whether a live member
        was there to change."""
        ...


# How a factory builds its connector: the ``rules.toml`` table (a settings model, a plain dict or
# None for the defaults) and the mirror (only the demo org needs it).
Connect = Callable[["BaseModel | dict[str, Any] | None", "MirrorPort | None"], Connector]


@dataclass(frozen=True)
class ConnectorFactory:
    """What the core may know about a source before building its connector (dlt-style).

    ``settings_model`` returns the model of the source's ``rules.toml`` table, imported only when
    asked; None when the source has no table. ``connect`` imports the client only when called.
    ``has_credentials`` says whether the environment holds what ``connect`` needs to sign in
    (never the values themselves); the demo org needs none and answers False: it is generated
    by ``roe demo``, never synced.
    """

    source: Source
    write_batch_size: int
    settings_model: Callable[[], type[BaseModel]] | None
    connect: Connect
    has_credentials: Callable[[], bool]
