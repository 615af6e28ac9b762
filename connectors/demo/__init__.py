"""The demo source: a synthetic org that lives in the mirror itself.

``roe demo`` generates it (``connectors.demo.generator``). As a connector it has nothing new to pull,
and it reads and writes owners straight in the mirror, so an admin can rehearse a reassignment
(plan, approve, apply, revert) on the demo org with no CRM at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select, update

from ..base import Connector, OwnerChange, Page, WriteResult

SOURCE = "demo"


class DemoConnector:
    source = SOURCE

    def __init__(self, engine, source: str = SOURCE):
        self.engine = engine
        self.source = source
        self._calls = 0

    def pull(self, object_type: str, since: datetime | None, full: bool) -> Iterator[Page]:
        return iter(())  # the demo org is generated into the mirror by `roe demo`

    def _table(self, object_type: str):
        from roe_cli.models import OWNED_TABLES

        return OWNED_TABLES[object_type]

    def read_owners(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        table = self._table(object_type)
        out: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                self._calls += 1
                chunk = list(ids[start : start + 500])
                rows = conn.execute(
                    select(table.c.id, table.c.owner_id).where(
                        table.c.source == self.source,
                        table.c.id.in_(chunk),
                        table.c.deleted.is_(False),
                    )
                )
                out.update((row_id, owner_id) for row_id, owner_id in rows)
        return out

    def update_owners(self, object_type: str, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        from roe_cli.models import owners
        from roe_cli.shared.clock import utcnow

        table = self._table(object_type)
        results = []
        with self.engine.begin() as conn:
            self._calls += 1
            active = {
                row_id
                for row_id, is_active in conn.execute(
                    select(owners.c.id, owners.c.active).where(owners.c.source == self.source)
                )
                if is_active
            }
            for change in changes:
                if change.new_owner_id not in active:
                    results.append(WriteResult(object_type, change.object_id, False,
                                               f"owner {change.new_owner_id} is not an active user"))
                    continue
                done = conn.execute(
                    update(table)
                    .where(table.c.source == self.source, table.c.id == change.object_id,
                           table.c.deleted.is_(False))
                    .values(owner_id=change.new_owner_id, updated_at=utcnow())
                ).rowcount
                results.append(WriteResult(object_type, change.object_id, bool(done),
                                           None if done else "record not found"))
        return results

    def api_calls(self) -> int:
        return self._calls

    def close(self) -> None:
        pass


def connect(settings=None, engine=None) -> Connector:
    if engine is None:
        raise ValueError("the demo connector needs the mirror's engine")
    return DemoConnector(engine)
