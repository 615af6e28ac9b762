"""Account team seats in Salesforce: read them for drift checks, and move them to another user.

Two kinds of seat (see :class:`connectors.base.SeatMove`):

* an ``AccountTeamMember`` row (origin ``AccountTeamMember``). Its ``UserId`` can be set on
  create only (the object reference lists it Create, Filter, Group, Sort: no Update), so a move
  creates B's row (same AccountId and TeamMemberRole, the access levels copied) with one sObject
  Collections POST, then deletes A's row with one Collections DELETE (200 ids a call,
  ``allOrNone`` false). B's row first: a crash between the two leaves A's seat in place and B's
  new row beside it, which the re-run's read finds (``SeatNow.new_seat_id``): it then only deletes
  A's row. ContactAccessLevel is not copied (it exists only in orgs whose contact sharing is not
  controlled by the parent); the org's defaults apply.
* a user field on the Account named in ``team_fields`` (origin the field): a Collections PATCH of
  the account with that field set to B, one record per account whatever its number of fields.

Reads are SOQL queries of ``read_batch_size`` seats: AccountTeamMember rows by Id, together with
any live row of the new user on the same accounts (to see a half-done move), and the accounts'
team fields. A window of seats therefore costs one query per kind, one PATCH for field seats and
one POST plus one DELETE for AccountTeamMember seats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from roe_cli.shared.errors import UsageError

from ..base import TEAM_OBJECT_ORIGIN, SeatMove, SeatNow, SeatResult
from . import mapping
from .mapping import COLLECTION_LIMIT

if TYPE_CHECKING:
    from .client import SalesforceClient

# AccountTeamMember fields a new row copies from the one it replaces.
COPIED = ("AccountAccessLevel", "OpportunityAccessLevel", "CaseAccessLevel")


def _quoted(ids: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in dict.fromkeys(ids))


def _same(a: str | None, b: str | None) -> bool:
    """Two Salesforce ids name the same record (an 18-character id and its 15-character form)."""
    if not a or not b:
        return False
    return a == b if len(a) == len(b) else a[:15] == b[:15]


def read_seats(client: SalesforceClient, moves: Sequence[SeatMove], size: int,
               team_fields: Sequence[str]) -> dict[str, SeatNow]:
    """``{seat id: SeatNow}`` for the seats whose record (or account) the CRM still has."""
    members = [m for m in moves if m.origin == TEAM_OBJECT_ORIGIN]
    fields = [m for m in moves if m.origin != TEAM_OBJECT_ORIGIN]
    for move in fields:
        if move.origin not in team_fields or not mapping.is_sf_id(move.account_id):
            raise UsageError(f"Team seat {move.seat_id} is on the field {move.origin!r}, which "
                             "is not in [salesforce] team_fields of rules.toml.",
                             "Add it back to team_fields, or rebuild the plan.")
    found: dict[str, SeatNow] = {}
    for start in range(0, len(members), size):
        chunk = [m for m in members[start : start + size] if mapping.is_sf_id(m.seat_id)]
        if not chunk:
            continue
        soql = (f"SELECT Id, AccountId, UserId, {', '.join(COPIED)} FROM AccountTeamMember "
                f"WHERE Id IN ({_quoted([m.seat_id for m in chunk])}) OR "
                f"(AccountId IN ({_quoted([m.account_id for m in chunk])}) AND "
                f"UserId IN ({_quoted([m.new_user_id for m in chunk])}))")
        rows = [r for page in client.query_pages(soql, include_deleted=False,
                                                  action="reading account team members")
                for r in page["records"]]
        for move in chunk:
            own = next((r for r in rows if _same(r["Id"], move.seat_id)), None)
            theirs = next((r for r in rows if _same(r.get("AccountId"), move.account_id)
                           and _same(r.get("UserId"), move.new_user_id)), None)
            if own is None and theirs is None:
                continue
            copy = tuple((f, str(own[f])) for f in COPIED if own and own.get(f))
            found[move.seat_id] = SeatNow(
                user_id=move.old_user_id if own and _same(own.get("UserId"), move.old_user_id)
                else (mapping.text(own.get("UserId")) if own else None),
                new_seat_id=theirs["Id"] if theirs else None, copy=copy)
    for start in range(0, len(fields), size):
        chunk = fields[start : start + size]
        names = sorted({m.origin for m in chunk})
        soql = (f"SELECT Id, {', '.join(names)} FROM Account WHERE Id IN "
                f"({_quoted([m.account_id for m in chunk])})")
        accounts = [r for page in client.query_pages(
            soql, include_deleted=False, action="reading account team fields")
            for r in page["records"]]
        for move in chunk:
            account = next((r for r in accounts if _same(r["Id"], move.account_id)), None)
            if account is None:
                continue
            user = mapping.text(account.get(move.origin))
            if _same(user, move.old_user_id):
                user = move.old_user_id
            elif _same(user, move.new_user_id):
                user = move.new_user_id
            found[move.seat_id] = SeatNow(
                user_id=user, new_seat_id=move.seat_id if user == move.new_user_id else None)
    return found


def move_seats(client: SalesforceClient, moves: Sequence[SeatMove]) -> list[SeatResult]:
    """Move each seat to its new user; one :class:`SeatResult` per move, in order."""
    results: dict[str, SeatResult] = {}
    fields = [m for m in moves if m.origin != TEAM_OBJECT_ORIGIN]
    by_account: dict[str, dict[str, str]] = {}
    for move in fields:
        by_account.setdefault(move.account_id, {})[move.origin] = move.new_user_id
    accounts = list(by_account)
    for start in range(0, len(accounts), COLLECTION_LIMIT):
        ids = accounts[start : start + COLLECTION_LIMIT]
        answers = client.update_collection(
            [{"attributes": {"type": "Account"}, "id": a, **by_account[a]} for a in ids],
            action="updating account team fields")
        verdict = dict(zip(ids, answers, strict=True))
        for move in fields:
            if move.account_id in verdict:
                ok, error = _verdict(verdict[move.account_id])
                results[move.seat_id] = SeatResult(move.seat_id, ok, error,
                                                   move.seat_id if ok else None)
    members = [m for m in moves if m.origin == TEAM_OBJECT_ORIGIN]
    new_ids = {m.seat_id: m.new_seat_id for m in members if m.new_seat_id}
    create = [m for m in members if not m.new_seat_id]
    for start in range(0, len(create), COLLECTION_LIMIT):
        chunk = create[start : start + COLLECTION_LIMIT]
        answers = client.create_collection(
            [{"attributes": {"type": "AccountTeamMember"}, "AccountId": m.account_id,
              "UserId": m.new_user_id, "TeamMemberRole": m.team_role, **dict(m.copy)}
             for m in chunk], action="adding account team members")
        for move, answer in zip(chunk, answers, strict=True):
            ok, error = _verdict(answer)
            if ok and answer.get("id"):
                new_ids[move.seat_id] = str(answer["id"])
            else:
                results[move.seat_id] = SeatResult(move.seat_id, False,
                                                   f"adding the new member: {error}")
    delete = [m for m in members if m.seat_id in new_ids]
    for start in range(0, len(delete), COLLECTION_LIMIT):
        chunk = delete[start : start + COLLECTION_LIMIT]
        answers = client.delete_collection([m.seat_id for m in chunk],
                                           action="removing account team members")
        for move, answer in zip(chunk, answers, strict=True):
            ok, error = _verdict(answer)
            results[move.seat_id] = SeatResult(
                move.seat_id, ok, None if ok else
                f"the new member {new_ids[move.seat_id]} was added, but the old one could not "
                f"be removed ({error}): remove it in Salesforce", new_ids[move.seat_id])
    return [results[m.seat_id] for m in moves]


def _verdict(answer: dict) -> tuple[bool, str | None]:
    ok = bool(answer.get("success"))
    errors = "; ".join(f"{e.get('statusCode')}: {e.get('message')}"
                       for e in answer.get("errors") or [])
    return ok, None if ok else errors or "failed, no reason given"
