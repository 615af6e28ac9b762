"""Sources roe mirrors: one package per CRM, plus the demo org.

``connectors.base`` is the protocol every source implements; ``connectors.registry`` maps each
source to its factory. The core builds connectors with ``roe_cli.sources.make_connector``; nothing
here imports the core (only ``roe_cli.shared``).
"""

from roe_cli.shared.vocab import SOURCES

__all__ = ["SOURCES"]
