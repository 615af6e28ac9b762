"""The demo org's "API": the mirror, through :class:`~connectors.base.MirrorPort`.

Like the CRM clients, it counts its calls: one per read of up to ``READ_CHUNK`` ids and one per
batch of owner writes, so ``roe apply`` on the demo org reports calls as it would on a CRM.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..base import MirrorPort
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
