"""The demo connector: nothing to pull, owners read and written straight in the mirror.

``roe demo`` generates the org into the mirror (``connectors.demo.generator``); as a connector it
lets an admin rehearse a reassignment (plan, approve, apply, revert) with no CRM at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from roe_cli.shared.vocab import Source

from ..base import (
    MirrorPort,
    OwnerChange,
    Page,
    SeatMove,
    SeatNow,
    SeatResult,
    WriteResult,
    write_each_type,
)
from .client import DemoClient
from .mapping import WRITE_BATCH_SIZE


class DemoConnector:
    source: str = Source.DEMO
    write_batch_size = WRITE_BATCH_SIZE

    def __init__(self, mirror: MirrorPort, source: str = Source.DEMO) -> None:
        self.client = DemoClient(mirror)
        self.source = source

    def pull(self, object_type: str, since: datetime | None, full: bool) -> Iterator[Page]:
        return iter(())  # the demo org is generated into the mirror by `roe demo`

    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        return self.client.read_owners(object_type, ids)

    def update_owners(self, object_type: str | None,
                      changes: Sequence[OwnerChange]) -> list[WriteResult]:
        if object_type is None:
            return write_each_type(changes, self.update_owners)
        active, written = self.client.write_owners(
            object_type, [(change.object_id, change.new_owner_id) for change in changes]
        )
        results = []
        for change, done in zip(changes, written, strict=True):
            if change.new_owner_id not in active:
                error: str | None = f"owner {change.new_owner_id} is not an active user"
            else:
                error = None if done else "record not found"
            results.append(WriteResult(object_type, change.object_id, done, error))
        return results

    def read_seats(self, moves: Sequence[SeatMove]) -> dict[str, SeatNow]:
        return self.client.read_seats(moves)

    def move_seats(self, moves: Sequence[SeatMove]) -> list[SeatResult]:
        return self.client.move_seats(moves)

    def api_calls(self) -> int:
        return self.client.calls

    def api_usage_text(self) -> str | None:
        return None  # the mirror has no quota

    def probe(self) -> None:
        pass  # the demo org lives in the mirror: nothing to reach

    def close(self) -> None:
        pass
