"""Building a source's connector, and the mirror as the demo connector sees it.

``make_connector`` asks the registry (``connectors.registry``) for the source's factory; the core
never imports a connector package by name. :class:`MirrorOwners` is the core's side of
:class:`connectors.base.MirrorPort`: owners of one source's records, read and written in the
mirror, so that the demo connector never imports the mirror's models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Engine

from connectors.base import Connector
from connectors.registry import factory, settings_model

from .models import OWNED_TABLES, accounts, owners
from .models import account_team_members as atm
from .shared.clock import utcnow
from .shared.vocab import Source

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["MirrorOwners", "make_connector", "settings_model"]


def make_connector(
    source: str, settings: BaseModel | dict[str, Any] | None = None, engine: Engine | None = None
) -> Connector:
    """Build the connector for ``source`` from its ``rules.toml`` table and the environment.

    ``engine`` is the mirror, which the demo connector reads and writes as its "CRM".
    """
    found = factory(source)  # a UsageError for an unknown source
    mirror = MirrorOwners(engine, found.source) if engine is not None else None
    return found.connect(settings, mirror)


class MirrorOwners:
    """Owners of one source's records in the mirror; see :class:`connectors.base.MirrorPort`."""

    def __init__(self, engine: Engine, source: str = Source.DEMO) -> None:
        self.engine = engine
        self.source = source

    def owners_of(self, object_type: str, ids: Sequence[str]) -> dict[str, str | None]:
        table = OWNED_TABLES[object_type]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.id, table.c.owner_id).where(
                    table.c.source == self.source,
                    table.c.id.in_(list(ids)),
                    table.c.deleted.is_(False),
                )
            )
            return {row_id: owner_id for row_id, owner_id in rows}

    def active_owner_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(owners.c.id, owners.c.active).where(owners.c.source == self.source)
            )
            return {row_id for row_id, is_active in rows if is_active}

    def write_owners(self, object_type: str, assignments: Sequence[tuple[str, str]]) -> list[bool]:
        return self._set_each(OWNED_TABLES[object_type], "owner_id", assignments)

    def seat_users(self, ids: Sequence[str]) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(atm.c.id, atm.c.user_id)
                .join(accounts, (accounts.c.source == atm.c.source)
                      & (accounts.c.id == atm.c.account_id))
                .where(atm.c.source == self.source, atm.c.id.in_(list(ids)),
                       atm.c.deleted.is_(False), accounts.c.deleted.is_(False))
            )
            return {row_id: user_id for row_id, user_id in rows}

    def write_seats(self, assignments: Sequence[tuple[str, str]]) -> list[bool]:
        return self._set_each(atm, "user_id", assignments)

    def _set_each(self, table: Table, column: str,
                  assignments: Sequence[tuple[str, str]]) -> list[bool]:
        """Set ``column`` of each live ``(record id, user id)`` row of ``table`` in one
        transaction; per pair, whether a live row was there to change."""
        done = []
        with self.engine.begin() as conn:
            for row_id, user_id in assignments:
                count = conn.execute(
                    update(table)
                    .where(table.c.source == self.source, table.c.id == row_id,
                           table.c.deleted.is_(False))
                    .values({column: user_id, "updated_at": utcnow()})
                ).rowcount
                done.append(bool(count))
        return done
