"""How the core builds the Salesforce connector: settings from ``[salesforce]``, credentials from
``SALESFORCE_*``. simple-salesforce and the HTTP client are imported only when ``connect`` runs,
so reading the settings stays cheap."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from roe_cli.shared.vocab import Source

from ..base import ConnectorFactory, MirrorPort
from .mapping import COLLECTION_LIMIT

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .connector import SalesforceConnector
    from .settings import SalesforceSettings



def settings_model() -> type[SalesforceSettings]:
    from .settings import SalesforceSettings

    return SalesforceSettings


def connect(
    settings: BaseModel | dict[str, Any] | None = None, mirror: MirrorPort | None = None
) -> SalesforceConnector:
    """The Salesforce connector. The mirror is not needed: Salesforce is the CRM.

    Nothing goes over the network until the first pull or write.
    """
    from .connector import SalesforceConnector
    from .settings import SalesforceSettings

    if settings is None:
        settings = SalesforceSettings()
    elif not isinstance(settings, SalesforceSettings):
        settings = SalesforceSettings.model_validate(settings)
    return SalesforceConnector(settings)


def has_credentials() -> bool:
    """Whether SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME and
    SALESFORCE_PASSWORD, are set (their values are never shown)."""

    def present(name: str) -> bool:
        return bool((os.environ.get(name) or "").strip())

    return (present("SALESFORCE_INSTANCE_URL") and present("SALESFORCE_ACCESS_TOKEN")) or (
        present("SALESFORCE_USERNAME") and present("SALESFORCE_PASSWORD"))


FACTORY = ConnectorFactory(
    source=Source.SALESFORCE,
    write_batch_size=COLLECTION_LIMIT,
    settings_model=settings_model,
    connect=connect,
    has_credentials=has_credentials,
)
