"""HubSpot as a roe source: see :mod:`.connector` for what it reads and writes.

Credentials come only from the environment: ``HUBSPOT_ACCESS_TOKEN`` (a private app's access
token) and ``HUBSPOT_BASE_URL`` (default ``https://api.hubapi.com``; any base URL works, a local
test server included). Everything else is in the ``[hubspot]`` table of ``rules.toml``
(:class:`.settings.HubSpotSettings`).

Files: ``settings.py`` (the table), ``factory.py`` (how the core builds it), ``mapping.py`` (every
property, in one place), ``client.py`` (HTTP, retries, errors), ``ratelimit.py``, ``search.py``
(keyset paging), ``connector.py`` (pull, read owners, update owners).

Example: ``HUBSPOT_ACCESS_TOKEN=pat-na1-... roe sync --source hubspot``
"""

from __future__ import annotations

from .factory import FACTORY, connect
from .settings import HubSpotSettings

__all__ = ["FACTORY", "HubSpotSettings", "connect"]
