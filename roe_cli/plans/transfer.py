"""A plan that moves one owner's book to another (``roe reassign --transfer-from A --to B``).

The book is the accounts A owns, with their contacts and open opportunities that A also owns;
``objects`` narrows it to some of those object types; ``team_seats`` adds A's account team seats
(:mod:`roe_cli.plans.seats`). B must be active; A may be inactive (the
usual case: a rep who left). Reads the mirror only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Engine

from ..models import accounts, contacts, opportunities
from ..shared.errors import UsageError
from ..shared.vocab import OBJECT_TYPES, ObjectType
from .csvinput import OBJECT_ALIASES
from .directory import Directory, pick_source, sources_in_mirror
from .model import BuildResult, Change, Plan
from .seats import seat_changes


def build_transfer(engine: Engine, from_owner: str, to_owner: str, *,
                   objects: Sequence[str] = OBJECT_TYPES, source: str | None = None,
                   created_by: str | None = None, team_seats: bool = False) -> BuildResult:
    """A plan that moves ``from_owner``'s book to ``to_owner`` (ids or e-mails); see above.
    ``team_seats``: A's account team seats move to B too (:mod:`roe_cli.plans.seats`)."""
    kinds = _object_types(objects)
    with engine.connect() as conn:
        if not source:
            in_mirror = sources_in_mirror(conn)
            sources = [s for s in in_mirror if Directory(conn, s).find(from_owner)[0]]
            if not sources and len(in_mirror) > 1:
                raise UsageError(f"--transfer-from {from_owner!r} is not a user in the mirror "
                                 f"({', '.join(in_mirror)}).",
                                 "Give a user id or e-mail from the mirror (run `roe sync` if new).")
            source = pick_source(conn, None, sources or None, f"{from_owner!r} is a user in")
        source = pick_source(conn, source)
        directory = Directory(conn, source)
        old, problem = directory.find(from_owner)
        if old is None:
            raise UsageError(f"--transfer-from {problem}.", "Give a user id or e-mail from the mirror.")
        new, problem = directory.find_active(to_owner)
        if new is None:
            raise UsageError(f"--to {problem}.", "The new owner must be an active user of the CRM.")
        if old.id == new.id:
            raise UsageError("--transfer-from and --to name the same user.", "Give two different users.")
        queries = _book_queries(source, old.id)
        changes = [
            Change(
                object_type=ObjectType(object_type), object_id=row.id, object_name=row.name,
                expected=old.id, expected_email=old.email, new=new.id, new_email=new.email,
                why={"kind": "transfer", "from": old.id, "account_id": row.account_id},
            )
            for object_type in kinds
            for row in conn.execute(queries[object_type])
        ]
        skipped: list[str] = []
        if team_seats:
            moving = {c.object_id for c in changes if c.object_type == ObjectType.ACCOUNT}
            seats, skipped = seat_changes(conn, source, old, new, moving)
            changes.extend(seats)
    origin: dict[str, Any] = {"kind": "transfer", "from": old.id, "from_email": old.email, "to": new.id,
              "to_email": new.email, "objects": list(kinds)}
    if team_seats:  # only then: a plan without seats keeps the origin (and hash) it always had
        origin["team_seats"] = True
    return BuildResult(Plan.build(source, origin, changes, created_by), skipped=skipped)


def _book_queries(source: str, owner_id: str) -> dict[str, Select[Any]]:
    """The book of ``owner_id``, one query per object type (``id, name, account_id``)."""
    book = select(accounts.c.id).where(
        accounts.c.source == source, accounts.c.owner_id == owner_id, accounts.c.deleted.is_(False)
    )
    return {
        ObjectType.ACCOUNT: select(accounts.c.id, accounts.c.name, accounts.c.id.label("account_id"))
        .where(accounts.c.source == source, accounts.c.owner_id == owner_id,
               accounts.c.deleted.is_(False))
        .order_by(accounts.c.id),
        ObjectType.CONTACT: select(contacts.c.id, contacts.c.name, contacts.c.account_id).where(
            contacts.c.source == source, contacts.c.owner_id == owner_id,
            contacts.c.deleted.is_(False), contacts.c.account_id.in_(book.scalar_subquery()),
        ).order_by(contacts.c.account_id, contacts.c.id),
        ObjectType.OPPORTUNITY: select(opportunities.c.id, opportunities.c.name,
                                       opportunities.c.account_id).where(
            opportunities.c.source == source, opportunities.c.owner_id == owner_id,
            opportunities.c.deleted.is_(False), opportunities.c.is_closed.is_(False),
            opportunities.c.account_id.in_(book.scalar_subquery()),
        ).order_by(opportunities.c.account_id, opportunities.c.id),
    }


def _object_types(objects: Sequence[str]) -> tuple[str, ...]:
    """The object types ``--objects`` names, in roe's order."""
    picked = []
    for raw in objects:
        name = OBJECT_ALIASES.get(raw.strip().lower())
        if name is None:
            raise UsageError(f"Unknown object type {raw.strip()!r} in --objects.",
                             f"Use a comma-separated list of {', '.join(OBJECT_TYPES)}.")
        picked.append(name)
    if not picked:
        raise UsageError("--objects is empty.", f"Use a comma-separated list of {', '.join(OBJECT_TYPES)}.")
    return tuple(t for t in OBJECT_TYPES if t in picked)
