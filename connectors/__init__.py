"""Sources roe mirrors: one package per CRM, plus the demo org. See ``connectors.base``."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import Connector

SOURCES = ("salesforce", "hubspot", "demo")


def make_connector(source: str, settings: Any = None, engine: Any = None) -> Connector:
    """Build the connector for ``source`` from its ``rules.toml`` table and the environment.

    ``engine`` is the mirror, which the demo connector reads and writes as its "CRM".
    """
    if source not in SOURCES:
        from roe_cli.shared.errors import UsageError

        raise UsageError(f"Unknown source {source!r}.", f"Use one of: {', '.join(SOURCES)}.")
    module = import_module(f"connectors.{source}")
    return module.connect(settings=settings, engine=engine)
