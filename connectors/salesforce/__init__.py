"""Salesforce as a roe source, through simple-salesforce.

``connect(settings=...)`` builds the connector from the ``[salesforce]`` table of ``rules.toml``
(a :class:`SalesforceSettings`, a plain dict, or None for the defaults) and the ``SALESFORCE_*``
environment variables. Nothing goes over the network until the first pull or write. Heavy imports
(simple-salesforce) wait until then too, so loading the settings stays cheap.

Files: ``settings.py`` (the table), ``factory.py`` (how the core builds it), ``mapping.py`` (every
field, in one place), ``client.py`` (timeouts, retries, quota guard, errors), ``connector.py``
(pull, read owners, update owners).
"""

from __future__ import annotations

from .factory import FACTORY, connect
from .settings import SalesforceSettings

__all__ = ["FACTORY", "SalesforceSettings", "connect"]
