"""The demo source: a synthetic org that lives in the mirror itself.

``roe demo`` generates it (``generator.py``, with the people in ``roster.py`` and the planted rule
breaks in ``scenarios.py``). As a connector it has nothing new to pull, and it reads and writes
owners in the mirror through :class:`~connectors.base.MirrorPort`, so an admin can rehearse a
reassignment (plan, approve, apply, revert) on the demo org with no CRM at all.

Files, as in every connector: ``settings.py`` (none: no table), ``factory.py``, ``client.py``
(the mirror port, with call counting), ``mapping.py``, ``connector.py``.
"""

from __future__ import annotations

from .connector import DemoConnector
from .factory import FACTORY, connect

__all__ = ["FACTORY", "DemoConnector", "connect"]
