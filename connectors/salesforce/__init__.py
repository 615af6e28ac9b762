"""Salesforce as a roe source, through simple-salesforce.

``connect(settings=..., engine=...)`` builds the connector from the ``[salesforce]`` table of
``rules.toml`` (a :class:`SalesforceSettings`, a plain dict, or None for the defaults) and the
``SALESFORCE_*`` environment variables. Nothing goes over the network until the first pull or
write. Heavy imports (simple-salesforce) wait until then too, so loading the settings stays cheap.

Files: ``settings.py`` (the table), ``mapping.py`` (every field, in one place), ``client.py``
(timeouts, retries, quota guard, errors), ``connector.py`` (pull, read owners, update owners).
"""

from __future__ import annotations

from typing import Any

from .settings import SalesforceSettings

__all__ = ["SalesforceSettings", "connect"]


def connect(settings: SalesforceSettings | dict | None = None, engine: Any = None):
    """The Salesforce connector. ``engine`` (the mirror) is not needed: Salesforce is the CRM."""
    from .connector import SalesforceConnector

    if settings is None:
        settings = SalesforceSettings()
    elif isinstance(settings, dict):
        settings = SalesforceSettings.model_validate(settings)
    return SalesforceConnector(settings)
