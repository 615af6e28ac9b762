"""How the core builds the demo connector: from the mirror alone (no settings, no credentials)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roe_cli.shared.vocab import Source

from ..base import ConnectorFactory, MirrorPort
from .mapping import WRITE_BATCH_SIZE

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .connector import DemoConnector


def connect(
    settings: BaseModel | dict[str, Any] | None = None, mirror: MirrorPort | None = None
) -> DemoConnector:
    """The demo connector over ``mirror``; settings are ignored (the demo has no table)."""
    from .connector import DemoConnector

    if mirror is None:
        raise ValueError("the demo connector needs the mirror")
    return DemoConnector(mirror)


def has_credentials() -> bool:
    """Never: the demo org is generated into the mirror by `roe demo`, not synced."""
    return False


FACTORY = ConnectorFactory(
    source=Source.DEMO,
    write_batch_size=WRITE_BATCH_SIZE,
    settings_model=None,
    connect=connect,
    has_credentials=has_credentials,
)
