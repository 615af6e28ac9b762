"""How evenly work is spread over owners: per-owner figures, the Gini coefficient and the
largest/smallest ratio. Used by ``roe realign`` to show the balance before and after a plan.

Pure Python over small mappings (one entry per owner); nothing here reads the mirror.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MEASURES = ("accounts", "pipeline", "activities")


def gini(values: Sequence[float]) -> float:
    """The Gini coefficient of ``values`` (0 = all equal, towards 1 = one holds everything);
    0 for no values or when all are 0."""
    xs = sorted(max(0.0, float(v)) for v in values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return (2 * weighted) / (n * total) - (n + 1) / n


def spread_ratio(values: Sequence[float]) -> float | None:
    """The largest value over the smallest; None when there is none or the smallest is 0
    (an owner with nothing: the ratio is unbounded)."""
    if not values:
        return None
    low, high = min(values), max(values)
    if low <= 0:
        return None if high > 0 else 1.0
    return high / low


@dataclass(frozen=True)
class OwnerLoad:
    """One owner's figures: live accounts owned, open pipeline (sum of the amounts of the open
    opportunities they own), and activities in the last 90 days on the accounts they own."""

    owner_id: str
    email: str | None
    accounts: int
    pipeline: float
    activities: int

    def value(self, measure: str) -> float:
        return float(getattr(self, measure))

    def to_json(self) -> dict[str, Any]:
        return {"owner_id": self.owner_id, "email": self.email, "accounts": self.accounts,
                "pipeline": round(self.pipeline, 2), "activities": self.activities}


@dataclass(frozen=True)
class Balance:
    """The figures of a set of owners, with the spread of each measure."""

    owners: tuple[OwnerLoad, ...]

    def gini(self, measure: str) -> float:
        return gini([o.value(measure) for o in self.owners])

    def ratio(self, measure: str) -> float | None:
        return spread_ratio([o.value(measure) for o in self.owners])

    def by_owner(self) -> dict[str, OwnerLoad]:
        return {o.owner_id: o for o in self.owners}

    def to_json(self) -> dict[str, Any]:
        return {
            "owners": [o.to_json() for o in self.owners],
            "gini": {m: round(self.gini(m), 4) for m in MEASURES},
            "largest_smallest_ratio": {
                m: (None if (r := self.ratio(m)) is None else round(r, 4)) for m in MEASURES
            },
        }


def balance_of(owner_ids: Iterable[str], emails: Mapping[str, str | None],
               accounts: Mapping[str, int], pipeline: Mapping[str, float],
               activities: Mapping[str, int]) -> Balance:
    """The balance of ``owner_ids`` (ordered by e-mail, then id) from per-owner totals."""
    ids = sorted(set(owner_ids), key=lambda i: ((emails.get(i) or "").lower(), i))
    return Balance(tuple(
        OwnerLoad(i, emails.get(i), accounts.get(i, 0), pipeline.get(i, 0.0), activities.get(i, 0))
        for i in ids
    ))
