"""What the plan builders read from the mirror: owners by id or e-mail, records, the source.

Owners are found by id (a Salesforce 15-character id is read as its 18-character form, which the
mirror stores) or by e-mail, case-insensitive; an e-mail shared by several users resolves only when
exactly one of them is active. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..models import OWNED_TABLES, accounts, contacts, opportunities, owners
from ..shared.errors import UsageError
from ..shared.vocab import SOURCES, ObjectType, Source
from .model import Change

_CHUNK = 500
_SF_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def change_to(object_type: str, object_id: str, record: Record, owner: Owner,
              directory: Directory, why: dict[str, Any]) -> Change:
    """The change that hands ``record`` (as the mirror holds it now) to ``owner``."""
    return Change(
        object_type=ObjectType(object_type), object_id=object_id, object_name=record.name,
        expected=record.owner_id, expected_email=directory.email(record.owner_id),
        new=owner.id, new_email=owner.email, why=why,
    )


def normalize_id(source: str, value: str) -> str:
    """A CRM id as the mirror stores it: Salesforce 15-character ids become their 18-character form."""
    value = value.strip()
    if source == Source.SALESFORCE and len(value) == 15 and value.isalnum():
        suffix = ""
        for start in (0, 5, 10):
            bits = sum(1 << i for i, ch in enumerate(value[start : start + 5]) if ch.isupper())
            suffix += _SF_SUFFIX[bits]
        return value + suffix
    return value


@dataclass(frozen=True)
class Owner:
    id: str
    email: str | None
    name: str | None
    active: bool

    @property
    def label(self) -> str:
        return self.email or self.id


class Directory:
    """The owners of one source, found by id or e-mail (case-insensitive)."""

    def __init__(self, conn: Connection, source: str):
        self.source = source
        self.by_id: dict[str, Owner] = {}
        self.by_email: dict[str, list[Owner]] = defaultdict(list)
        for row in conn.execute(
            select(owners.c.id, owners.c.email, owners.c.name, owners.c.active).where(
                owners.c.source == source
            )
        ):
            owner = Owner(row.id, row.email, row.name, bool(row.active))
            self.by_id[owner.id] = owner
            if owner.email:
                self.by_email[owner.email.strip().lower()].append(owner)

    def find(self, value: str) -> tuple[Owner | None, str | None]:
        """The owner ``value`` names (an id or an e-mail), or None and why not."""
        value = value.strip()
        if not value:
            return None, "is empty"
        owner = self.by_id.get(normalize_id(self.source, value))
        if owner is None:
            matches = self.by_email.get(value.lower(), [])
            live = [o for o in matches if o.active]
            if len(matches) == 1:
                owner = matches[0]
            elif len(live) == 1:
                owner = live[0]
            elif len(matches) > 1:
                return None, f"{value!r} matches {len(matches)} {self.source} users; give the user id"
        if owner is None:
            return None, (f"{value!r} is not a {self.source} user in the mirror "
                          "(run `roe sync` if the user is new)")
        return owner, None

    def find_active(self, value: str) -> tuple[Owner | None, str | None]:
        owner, problem = self.find(value)
        if owner is not None and not owner.active:
            return None, f"{value.strip()!r} ({owner.name or owner.id}) is inactive"
        return owner, problem

    def email(self, owner_id: str | None) -> str | None:
        owner = self.by_id.get(owner_id) if owner_id else None
        return owner.email if owner else None


def owner_names(conn: Connection, source: str) -> dict[str, str | None]:
    """Every owner's name by id, for the results CSV."""
    return {o.id: o.name for o in Directory(conn, source).by_id.values()}


@dataclass(frozen=True)
class Record:
    id: str
    owner_id: str | None
    name: str | None
    deleted: bool


_NAME = {ObjectType.ACCOUNT: accounts.c.name, ObjectType.CONTACT: contacts.c.name,
         ObjectType.OPPORTUNITY: opportunities.c.name}


def load_records(conn: Connection, source: str, object_type: str,
                 ids: Iterable[str]) -> dict[str, Record]:
    """The mirror's records of ``object_type`` among ``ids``, by id (deleted ones included)."""
    table = OWNED_TABLES[object_type]
    wanted = list(dict.fromkeys(ids))
    out: dict[str, Record] = {}
    for start in range(0, len(wanted), _CHUNK):
        for row in conn.execute(
            select(table.c.id, table.c.owner_id, _NAME[ObjectType(object_type)],
                   table.c.deleted).where(
                table.c.source == source, table.c.id.in_(wanted[start : start + _CHUNK])
            )
        ):
            out[row.id] = Record(row.id, row.owner_id, row.name, bool(row.deleted))
    return out


def sources_in_mirror(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(owners.c.source).distinct()).scalars())


def pick_source(conn: Connection, source: str | None, candidates: Iterable[str] | None = None,
                what: str = "The mirror holds") -> str:
    """``source`` if given, else the only source among ``candidates`` (default: the mirror's)."""
    if source:
        if source not in SOURCES:
            raise UsageError(f"Unknown source {source!r}.", f"Use one of: {', '.join(SOURCES)}.")
        return source
    found = sorted(set(candidates) if candidates is not None else sources_in_mirror(conn))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError("The mirror holds no CRM data.",
                         "Run `roe sync --source ...` (or `roe demo`) first.")
    raise UsageError(f"{what} several sources ({', '.join(found)}); a plan covers one source.",
                     "Pass --source salesforce, hubspot or demo.")
