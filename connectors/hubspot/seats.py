"""Account team seats in HubSpot: owner-type company properties named in ``team_properties``.

A seat (``'<company id>/<property>'``) moves by setting the property to the new owner's id: one
companies batch update of 100 companies a call (all of a company's seats in one input), after a
companies batch read of the same properties (100 a call) for the drift check. Both calls are
idempotent, so a re-run after a crash reads the property and writes only what is still A's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from roe_cli.shared.errors import UsageError

from ..base import SeatMove, SeatNow, SeatResult
from .client import HubSpotApiError
from .mapping import BATCH_LIMIT, crm_id

if TYPE_CHECKING:
    from .client import HubSpotClient


def read_seats(client: HubSpotClient, moves: Sequence[SeatMove],
               team_properties: Sequence[str]) -> dict[str, SeatNow]:
    """``{seat id: SeatNow}`` for the seats whose company HubSpot still has (not archived)."""
    for move in moves:
        if move.origin not in team_properties:
            raise UsageError(f"Team seat {move.seat_id} is on the property {move.origin!r}, which "
                             "is not in [hubspot] team_properties of rules.toml.",
                             "Add it back to team_properties, or rebuild the plan.")
    companies = list(dict.fromkeys(m.account_id for m in moves))
    names = sorted({m.origin for m in moves})
    props = client.read_live("companies", companies, names, BATCH_LIMIT)
    found: dict[str, SeatNow] = {}
    for move in moves:
        if move.account_id in props:
            user = crm_id(props[move.account_id].get(move.origin))
            found[move.seat_id] = SeatNow(
                user_id=user, new_seat_id=move.seat_id if user == move.new_user_id else None)
    return found


def move_seats(client: HubSpotClient, moves: Sequence[SeatMove]) -> list[SeatResult]:
    """Set each seat's property to its new owner; one :class:`SeatResult` per move, in order."""
    by_company: dict[str, dict[str, str]] = {}
    for move in moves:
        by_company.setdefault(move.account_id, {})[move.origin] = move.new_user_id
    companies = list(by_company)
    errors: dict[str, str | None] = {}
    for start in range(0, len(companies), BATCH_LIMIT):
        errors.update(_update(client, companies[start : start + BATCH_LIMIT], by_company))
    return [SeatResult(m.seat_id, errors[m.account_id] is None, errors[m.account_id],
                       m.seat_id if errors[m.account_id] is None else None) for m in moves]


def _update(client: HubSpotClient, companies: list[str],
            values: dict[str, dict[str, str]]) -> dict[str, str | None]:
    """``{company id: None when updated, else the error}`` for one batch update."""
    try:
        _status, data = client.batch_update(
            "companies", [{"id": c, "properties": values[c]} for c in companies])
    except HubSpotApiError as exc:
        if len(companies) == 1:
            return {companies[0]: exc.what}
        out: dict[str, str | None] = {}
        for company in companies:  # HubSpot refused the whole batch: find which, one by one
            out.update(_update(client, [company], values))
        return out
    done = {str(r.get("id")) for r in data.get("results") or []}
    failed: dict[str, str] = {}
    for error in data.get("errors") or []:
        message = str(error.get("message") or error.get("category") or "failed")
        for record_id in (error.get("context") or {}).get("ids") or []:
            failed[str(record_id)] = message
    return {c: None if c in done and c not in failed else
            failed.get(c, "HubSpot returned no result for it") for c in companies}
