"""Applying team seat moves (``roe reassign --transfer-from A --to B --team-seats``).

A plan's seat changes go after its owner changes, in windows of the connector's write batch. For
each window, as :mod:`roe_cli.apply` does for owners:

1. read the seats as the CRM holds them now (``connector.read_seats``: the seat's user, and a
   seat of B's on the same account if the CRM has one);
2. journal each seat in one mirror transaction: ``drifted`` when the seat vanished or another
   user holds it (left untouched), ``sending`` for the seats about to be written;
3. ``connector.move_seats``: a user field or property is set to B (Salesforce PATCH of the
   Account through sObject Collections, HubSpot companies batch update); a Salesforce
   AccountTeamMember row, whose UserId cannot be updated, is replaced: B's row is created first
   (same account, team role and access levels), then A's row is deleted, so a crash between the
   two leaves A's seat in place, never a lost seat;
4. journal each result as ``applied`` or ``failed``, and move the seat in the mirror (a new
   member row for a replaced AccountTeamMember, the old one marked deleted).

A re-run after a crash reads each ``sending`` seat again: B holding it (A's row gone, B's there;
the field naming B) is ``applied`` without a write; A's row still there beside B's new row means
the run died between create and delete, and only A's row is deleted; A's seat alone is sent again.
So each seat ends with exactly one member for B and none for A. Outside a re-run, B found already
holding a seat on that account is ``drifted``: the plan never gives B two seats on one team.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from connectors.base import SeatMove, SeatNow

from .models import account_team_members as atm
from .plans import Change
from .shared.clock import utcnow
from .shared.errors import CrmError, UsageError
from .shared.vocab import ApplyStatus

if TYPE_CHECKING:
    from .apply import Outcome, _Run


def check_connector(connector: Any, seats: int) -> None:
    """Refuse, before anything is written, a plan with seats for a connector that cannot move them."""
    if seats and not (hasattr(connector, "read_seats") and hasattr(connector, "move_seats")):
        raise UsageError(f"The plan moves {seats:,} team seat(s), but the {connector.source} "
                         "connector cannot write account teams.",
                         "Rebuild the plan without --team-seats.")


def _move(change: Change, state: SeatNow | None = None) -> SeatMove:
    why = change.why or {}
    return SeatMove(
        seat_id=change.object_id, account_id=str(why.get("account_id") or ""),
        origin=str(why.get("origin") or ""), team_role=why.get("team_role"),
        old_user_id=change.expected or "", new_user_id=change.new,
        new_seat_id=state.new_seat_id if state else None, copy=state.copy if state else (),
    )


def seat_window(run: _Run, changes: Sequence[Change]) -> None:
    """Settle one window of seat changes; see the module docstring."""
    connector: Any = run.connector
    report = run.report
    before = connector.api_calls()
    try:
        current: dict[str, SeatNow] = connector.read_seats([_move(c) for c in changes])
    finally:
        report.read_calls += connector.api_calls() - before
    settled: list[Outcome] = []
    found: dict[str, str] = {}  # seat id -> its id once moved, for seats found already moved
    to_send: list[tuple[Change, SeatMove]] = []
    for change in changes:
        was_sending = run.journal.get(change.key, (None,))[0] == ApplyStatus.SENDING
        state = current.get(change.object_id)
        holder = state.user_id if state else None
        theirs = state.new_seat_id if state else None
        if state is None:
            settled.append((change, ApplyStatus.DRIFTED, "the seat is no longer in the CRM"))
        elif theirs and holder in (None, change.new):
            if was_sending:  # moved by the interrupted run
                settled.append((change, ApplyStatus.APPLIED, None))
                found[change.object_id] = theirs
                report.confirmed += 1
            else:
                settled.append((change, ApplyStatus.DRIFTED, "already held by the new owner "
                                                             "(changed outside this plan)"))
        elif holder == change.expected and holder:
            if theirs and not was_sending:
                settled.append((change, ApplyStatus.DRIFTED,
                                f"{change.new_email or change.new} joined this account's team "
                                "outside this plan; the seat was left as is"))
            else:
                to_send.append((change, _move(change, state)))
        else:
            settled.append((change, ApplyStatus.DRIFTED,
                            f"the seat is now held by {holder or 'nobody'}, the plan expected "
                            f"{change.expected or 'nobody'}"))
    with run.engine.begin() as conn:
        run._journal(conn, [*settled, *((c, ApplyStatus.SENDING, None) for c, _ in to_send)])
        _mirror(conn, run.plan.source, [(c, found[c.object_id]) for c, s, _ in settled
                                        if s == ApplyStatus.APPLIED])
    for change, status, error in settled:
        run.record(change, status, error)
    run.advance(len(settled))
    if not to_send:
        return
    before = connector.api_calls()
    try:
        results = connector.move_seats([m for _, m in to_send])
    finally:
        report.write_calls += connector.api_calls() - before
    report.sent += len(to_send)
    if len(results) != len(to_send) or any(
            r.seat_id != c.object_id for r, (c, _) in zip(results, to_send, strict=False)):
        raise CrmError(
            f"The {run.plan.source} connector answered {len(results)} results for "
            f"{len(to_send)} team seat moves, not one per move in order.",
            "Run `roe apply` again: it re-reads these seats and writes only what is missing.")
    outcome: list[Outcome] = [
        (c, ApplyStatus.APPLIED, None) if r.ok else (c, ApplyStatus.FAILED, r.error or "refused")
        for (c, _), r in zip(to_send, results, strict=True)
    ]
    moved = {r.seat_id: r.new_seat_id or r.seat_id for r in results if r.ok}
    with run.engine.begin() as conn:
        run._journal(conn, outcome)
        _mirror(conn, run.plan.source, [(c, moved[c.object_id]) for c, s, _ in outcome
                                        if s == ApplyStatus.APPLIED])
    for change, status, error in outcome:
        run.record(change, status, error)
    run.advance(len(outcome))


def _mirror(conn: Connection, source: str, moved: Sequence[tuple[Change, str]]) -> None:
    """Each moved seat in the mirror: the same member row given to B, or (a replaced
    AccountTeamMember) the old row deleted and B's new row in."""
    now = utcnow()
    for change, new_id in moved:
        if new_id == change.object_id:
            conn.execute(update(atm).where(atm.c.source == source, atm.c.id == new_id)
                         .values(user_id=change.new, deleted=False, updated_at=now))
            continue
        conn.execute(update(atm).where(atm.c.source == source, atm.c.id == change.object_id)
                     .values(deleted=True, updated_at=now))
        why = change.why or {}
        exists = conn.execute(select(atm.c.id).where(atm.c.source == source,
                                                     atm.c.id == new_id)).first()
        if exists:
            conn.execute(update(atm).where(atm.c.source == source, atm.c.id == new_id)
                         .values(user_id=change.new, deleted=False, updated_at=now))
        else:
            conn.execute(atm.insert().values(
                source=source, id=new_id, account_id=why.get("account_id"), user_id=change.new,
                team_role=why.get("team_role"), origin=why.get("origin"), created_at=now,
                updated_at=now, deleted=False))
