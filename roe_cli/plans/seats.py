"""Account team seats in a book transfer (``roe reassign --transfer-from A --to B --team-seats``).

A seat is a live row of ``account_team_members`` whose user is A, on a live account. Each becomes
a :class:`~roe_cli.plans.model.Change` with ``object_type`` ``account_team_member``, ``field``
``team_seat``, ``object_id`` the member's id, ``expected`` A and ``new`` B; ``object_name`` is the
account's name and ``why`` names the account, the member's origin (``AccountTeamMember`` or the
user field) and its team role, which the apply needs to write it.

When B is already on that account's team (a seat of their own, the owner, or the new owner by
this same plan), the seat is left out with a note: moving it would give B two places on one team
(Salesforce would refuse a second AccountTeamMember row, a user field would name B twice), and
removing A's seat without handing it to anyone is not a transfer. The admin reads the note and
removes A from that team in the CRM if A is leaving.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..models import account_team_members as atm
from ..models import accounts
from .directory import Owner
from .model import SEAT, SEAT_FIELD, Change

_CHUNK = 500


def seat_changes(conn: Connection, source: str, old: Owner, new: Owner,
                 moving: Collection[str]) -> tuple[list[Change], list[str]]:
    """The seat moves from ``old`` to ``new``, and the notes on seats left out; ``moving`` are
    the accounts this plan hands to ``new``."""
    rows = conn.execute(
        select(atm.c.id, atm.c.account_id, atm.c.origin, atm.c.team_role, accounts.c.name,
               accounts.c.owner_id)
        .join(accounts, (accounts.c.source == atm.c.source) & (accounts.c.id == atm.c.account_id))
        .where(atm.c.source == source, atm.c.user_id == old.id, atm.c.deleted.is_(False),
               accounts.c.deleted.is_(False))
        .order_by(atm.c.account_id, atm.c.id)
    ).all()
    taken = _members(conn, source, new.id, {r.account_id for r in rows})
    changes: list[Change] = []
    skipped: list[str] = []
    for row in rows:
        role = f" ({row.team_role})" if row.team_role else ""
        if row.account_id in taken or row.owner_id == new.id or row.account_id in moving:
            why = ("owns it" if row.owner_id == new.id else "gets it in this plan"
                   if row.account_id in moving else "is already on its team")
            skipped.append(f"team seat {row.id}{role} on account {row.account_id}: "
                           f"{new.email or new.id} {why}, so {old.email or old.id}'s seat "
                           "stays; remove it in the CRM if they leave the team")
            continue
        changes.append(Change(
            object_type=SEAT, object_id=row.id, object_name=row.name, field=SEAT_FIELD,
            expected=old.id, expected_email=old.email, new=new.id, new_email=new.email,
            why={"kind": "team_seat", "from": old.id, "account_id": row.account_id,
                 "origin": row.origin, "team_role": row.team_role},
        ))
    return changes, skipped


def _members(conn: Connection, source: str, user_id: str, account_ids: Iterable[str]) -> set[str]:
    """The accounts among ``account_ids`` where ``user_id`` holds a live seat."""
    wanted = sorted(account_ids)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        found.update(conn.execute(
            select(atm.c.account_id).where(
                atm.c.source == source, atm.c.user_id == user_id, atm.c.deleted.is_(False),
                atm.c.account_id.in_(wanted[start : start + _CHUNK]))
        ).scalars())
    return found


def seat_problems(conn: Connection, source: str, changes: Iterable[Change]) -> list[str]:
    """What the mirror says against the plan's seat changes (for ``roe approve``): a seat that is
    gone, held by another user than the plan expects, or on an account named otherwise."""
    seats = [c for c in changes if c.is_seat]
    ids = [c.object_id for c in seats]
    found: dict[str, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        for found_row in conn.execute(
            select(atm.c.id, atm.c.user_id, atm.c.deleted, atm.c.account_id, accounts.c.name)
            .outerjoin(accounts, (accounts.c.source == atm.c.source)
                       & (accounts.c.id == atm.c.account_id))
            .where(atm.c.source == source, atm.c.id.in_(ids[start : start + _CHUNK]))
        ):
            found[found_row.id] = found_row
    problems = []
    for change in seats:
        label = f"team seat {change.object_id}"
        row = found.get(change.object_id)
        if row is None or row.deleted:
            problems.append(f"{label}: no such live team member in the mirror")
        elif row.account_id != (change.why or {}).get("account_id"):
            problems.append(f"{label}: the mirror has it on account {row.account_id}, the plan "
                            f"on {(change.why or {}).get('account_id')}")
        elif change.object_name is not None and row.name != change.object_name:
            problems.append(f"{label}: the plan names its account {change.object_name!r}, the "
                            f"mirror {row.name!r}")
    return problems
