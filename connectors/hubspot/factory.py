"""How the core builds the HubSpot connector.

Credentials come only from the environment: ``HUBSPOT_ACCESS_TOKEN`` (a private app's access
token) and ``HUBSPOT_BASE_URL`` (default ``https://api.hubapi.com``; any base URL works, a local
test server included). Everything else is in the ``[hubspot]`` table of ``rules.toml``. The HTTP
client is imported only when ``connect`` runs, so reading the settings stays cheap.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from roe_cli.shared.errors import ConfigError
from roe_cli.shared.vocab import Source

from ..base import ConnectorFactory, MirrorPort
from .mapping import BATCH_LIMIT

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .connector import HubSpotConnector
    from .settings import HubSpotSettings

log = logging.getLogger(__name__)



def settings_model() -> type[HubSpotSettings]:
    from .settings import HubSpotSettings

    return HubSpotSettings


def connect(
    settings: BaseModel | dict[str, Any] | None = None, mirror: MirrorPort | None = None
) -> HubSpotConnector:
    """Build the HubSpot connector from the environment and the ``[hubspot]`` settings.

    ``settings`` is a :class:`HubSpotSettings`, the table as a dict, or None for the defaults.
    The mirror is not needed: HubSpot is the source of truth.
    """
    from .client import DEFAULT_BASE_URL, HubSpotClient
    from .connector import HubSpotConnector
    from .settings import HubSpotSettings

    if settings is None:
        settings = HubSpotSettings()
    elif not isinstance(settings, HubSpotSettings):
        settings = HubSpotSettings.model_validate(settings)
    token = (os.environ.get("HUBSPOT_ACCESS_TOKEN") or "").strip()
    if not token:
        raise ConfigError(
            "No HubSpot access token.",
            "Set HUBSPOT_ACCESS_TOKEN to the access token of a HubSpot private app "
            "(Settings > Integrations > Private apps).",
        )
    base_url = (os.environ.get("HUBSPOT_BASE_URL") or DEFAULT_BASE_URL).strip()
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"HUBSPOT_BASE_URL is not a URL: {base_url!r}.",
            "Use https://api.hubapi.com (the default) or your test server's http(s)://host:port.",
        )
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("HUBSPOT_BASE_URL uses plain http: the access token travels unencrypted")
    return HubSpotConnector(HubSpotClient(token, base_url, settings), settings)


def has_credentials() -> bool:
    """Whether HUBSPOT_ACCESS_TOKEN is set (its value is never shown)."""
    return bool((os.environ.get("HUBSPOT_ACCESS_TOKEN") or "").strip())


FACTORY = ConnectorFactory(
    source=Source.HUBSPOT,
    write_batch_size=BATCH_LIMIT,
    settings_model=settings_model,
    connect=connect,
    has_credentials=has_credentials,
)
