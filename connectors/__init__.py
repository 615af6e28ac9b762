"""Sources roe mirrors: one package per CRM, plus the demo org. See ``connectors.base`` for the
protocol and ``connectors.registry`` for the map from source to factory.

The core builds connectors with ``roe_cli.sources.make_connector``. ``make_connector`` below is a
transitional alias for callers not yet switched (it imports the core lazily, inside the call, so
importing ``connectors`` never imports ``roe_cli``'s core); it goes away once they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roe_cli.shared.vocab import SOURCES

if TYPE_CHECKING:
    from .base import Connector

__all__ = ["SOURCES", "make_connector"]


def make_connector(source: str, settings: Any = None, engine: Any = None) -> Connector:
    """Deprecated: use :func:`roe_cli.sources.make_connector`."""
    from roe_cli.sources import make_connector as core_make_connector

    return core_make_connector(source, settings=settings, engine=engine)
