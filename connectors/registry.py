"""Every source roe knows, as a map from :class:`~roe_cli.shared.vocab.Source` to its factory.

Adding a connector means adding its ``factory.FACTORY`` here; nothing builds module names from
strings. Importing this module imports each connector's ``factory`` and ``base`` only: settings
models and clients load when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roe_cli.shared.errors import UsageError
from roe_cli.shared.vocab import SOURCES, Source

from .base import ConnectorFactory
from .demo.factory import FACTORY as DEMO
from .hubspot.factory import FACTORY as HUBSPOT
from .salesforce.factory import FACTORY as SALESFORCE

if TYPE_CHECKING:
    from pydantic import BaseModel

FACTORIES: dict[Source, ConnectorFactory] = {f.source: f for f in (SALESFORCE, HUBSPOT, DEMO)}


def factory(source: str) -> ConnectorFactory:
    """The factory of ``source``; a UsageError naming the known sources for anything else."""
    try:
        return FACTORIES[Source(source)]
    except ValueError:
        raise UsageError(f"Unknown source {source!r}.", f"Use one of: {', '.join(SOURCES)}.") from None


def settings_model(source: str) -> type[BaseModel] | None:
    """The model of ``source``'s ``rules.toml`` table, or None when it has none (the demo)."""
    lazy = factory(source).settings_model
    return lazy() if lazy is not None else None
