"""The demo org's "API": the mirror, through :class:`~connectors.base.MirrorPort`.

Like the CRM clients, it counts its calls: one per read of up to ``READ_CHUNK`` ids and one per
batch of owner writes, so ``roe apply`` on the demo org reports calls as it would on a CRM.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..base import MirrorPort, SeatMove, SeatNow, SeatResult
from .mapping import READ_CHUNK


class DemoClient:
    def __init__(self, mirror: MirrorPort) -> None:
        self.mirror = mirror
        self.calls = 0

    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for start in range(0, len(ids), READ_CHUNK):
            self.calls += 1
            out.update(self.mirror.owners_of(object_type, list(ids[start : start + READ_CHUNK])))
        return out

    def write_owners(
        self, object_type: str, assignments: Sequence[tuple[str, str]]
    ) -> tuple[set[str], list[bool]]:
        """The active owner ids, and per assignment whether it was written. Assignments to an
        inactive owner are not sent; they come back False."""
        self.calls += 1
        active = self.mirror.active_owner_ids()
        allowed = [pair for pair in assignments if pair[1] in active]
        done = iter(self.mirror.write_owners(object_type, allowed) if allowed else [])
        return active, [next(done) if owner in active else False for _, owner in assignments]

    def read_seats(self, moves: Sequence[SeatMove]) -> dict[str, SeatNow]:
        """Seats (live members on live accounts) as the demo org holds them; moved in place."""
        users: dict[str, str] = {}
        for start in range(0, len(moves), READ_CHUNK):
            self.calls += 1
            users.update(self.mirror.seat_users([m.seat_id for m in moves[start : start + READ_CHUNK]]))
        return {m.seat_id: SeatNow(users[m.seat_id], m.seat_id if users[m.seat_id] == m.new_user_id
                                   else None) for m in moves if m.seat_id in users}

    def move_seats(self, moves: Sequence[SeatMove]) -> list[SeatResult]:
        """Give each seat to its new user, in place (the member keeps its id)."""
        self.calls += 1
        active = self.mirror.active_owner_ids()
        allowed = [(m.seat_id, m.new_user_id) for m in moves if m.new_user_id in active]
        done = iter(self.mirror.write_seats(allowed) if allowed else [])
        results = []
        for move in moves:
            ok = move.new_user_id in active and next(done)
            error = (None if ok else f"user {move.new_user_id} is not an active user"
                     if move.new_user_id not in active else "team member not found")
            results.append(SeatResult(move.seat_id, ok, error, move.seat_id if ok else None))
        return results
