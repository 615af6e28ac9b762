"""Account team members named by user fields on the account, kept in step with each account page.

Salesforce ``team_fields`` and HubSpot ``team_properties`` name user (owner) fields of the
account; each non-empty value is a member with id ``'<account id>/<field>'``, ``origin`` the
field and ``team_role`` the configured name. A connector sends, with each page of accounts, the
complete set of such members of those accounts (:attr:`connectors.base.Page.team_members`), and
:func:`write_field_members` makes the mirror match it in the page's transaction: new members are
inserted, a changed user or role is updated, and a member whose field was emptied (or is no
longer configured) is marked deleted. Members pulled as records of their own (Salesforce
``AccountTeamMember``) are never touched here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from connectors.base import TEAM_OBJECT_ORIGIN

from .models import account_team_members as atm
from .shared.clock import utcnow

if TYPE_CHECKING:
    from .sync import ObjectReport

_ID_CHUNK = 500


def write_field_members(
    conn: Connection,
    source: str,
    accounts: Mapping[str, datetime | None],
    members: Sequence[dict[str, Any]],
    report: ObjectReport,
) -> None:
    """Make the field members of ``accounts`` (id -> the account's modification time) equal
    ``members`` in the caller's transaction; count what changed in ``report``."""
    ids = list(accounts)
    existing: dict[str, tuple[str, str | None, bool]] = {}
    account_of: dict[str, str] = {}
    for start in range(0, len(ids), _ID_CHUNK):
        for row in conn.execute(
            select(atm.c.id, atm.c.account_id, atm.c.user_id, atm.c.team_role, atm.c.deleted).where(
                atm.c.source == source,
                atm.c.account_id.in_(ids[start : start + _ID_CHUNK]),
                atm.c.origin != TEAM_OBJECT_ORIGIN,
            )
        ):
            existing[row.id] = (row.user_id, row.team_role, bool(row.deleted))
            account_of[row.id] = row.account_id
    now = utcnow()
    wanted: dict[str, dict[str, Any]] = {}
    for member in members:
        if member["account_id"] in accounts:
            wanted[member["id"]] = member
    report.read += len(wanted)
    fresh = []
    for member_id, member in wanted.items():
        stamp = member.get("updated_at") or accounts.get(member["account_id"]) or now
        old = existing.get(member_id)
        if old is None:
            fresh.append({"source": source, "id": member_id, "account_id": member["account_id"],
                          "user_id": member["user_id"], "team_role": member.get("team_role"),
                          "origin": member["origin"], "created_at": stamp, "updated_at": stamp,
                          "deleted": False})
        elif old != (member["user_id"], member.get("team_role"), False):
            conn.execute(
                update(atm).where(atm.c.source == source, atm.c.id == member_id).values(
                    user_id=member["user_id"], team_role=member.get("team_role"),
                    updated_at=stamp, deleted=False,
                )
            )
            report.updated += 1
    if fresh:
        conn.execute(atm.insert(), fresh)
        report.inserted += len(fresh)
    for member_id, (_user, _role, deleted) in existing.items():
        if member_id not in wanted and not deleted:
            conn.execute(
                update(atm).where(atm.c.source == source, atm.c.id == member_id).values(
                    deleted=True, updated_at=accounts.get(account_of[member_id]) or now,
                )
            )
            report.deleted += 1
