"""The connector registry and the layering it keeps: every source has a factory, the core asks
the factory, and connectors never reach into the core (the demo org goes through MirrorPort)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from connectors.base import Connector, MirrorPort, OwnerChange, WriteResult
from connectors.demo.connector import DemoConnector
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings
from connectors.registry import FACTORIES, factory, settings_model
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.settings import SalesforceSettings
from roe_cli.shared.errors import UsageError
from roe_cli.shared.vocab import Source
from roe_cli.sources import MirrorOwners, make_connector

from .conftest import AS_OF

ROOT = Path(__file__).resolve().parent.parent
CLASSES = {Source.SALESFORCE: SalesforceConnector, Source.HUBSPOT: HubSpotConnector,
           Source.DEMO: DemoConnector}


def test_every_source_has_a_factory_that_declares_what_its_connector_does():
    assert set(FACTORIES) == set(Source)
    for source, found in FACTORIES.items():
        assert found.source == source and factory(str(source)) is found
        assert found.write_batch_size == CLASSES[source].write_batch_size
        assert CLASSES[source].source == source


def test_settings_model_replaces_the_probe_of_connector_modules():
    assert settings_model("salesforce") is SalesforceSettings
    assert settings_model("hubspot") is HubSpotSettings
    assert settings_model("demo") is None
    assert all(issubclass(settings_model(s) or BaseModel, BaseModel) for s in Source)


def test_an_unknown_source_says_which_there_are():
    with pytest.raises(UsageError) as err:
        factory("pipedrive")
    assert "Unknown source 'pipedrive'." in str(err.value)
    assert "salesforce, hubspot, demo" in str(err.value)
    with pytest.raises(UsageError):
        make_connector("pipedrive")


def test_the_demo_connector_works_through_the_mirror_port(engine):
    from roe_cli.demo import load_demo_org

    load_demo_org(engine, accounts=40, seed=5, as_of=AS_OF)
    mirror = MirrorOwners(engine)
    assert isinstance(mirror, MirrorPort)
    connector = make_connector("demo", engine=engine)
    assert isinstance(connector, Connector) and isinstance(connector, DemoConnector)
    assert connector.write_batch_size == 200 and connector.api_usage_text() is None

    owners = mirror.owners_of("account", ["nope"])
    assert owners == {}
    ids = list(connector.read_owners("account", _account_ids(engine)))
    active = sorted(mirror.active_owner_ids())
    inactive = "005-no-such-user"
    results = connector.update_owners(
        "account",
        [OwnerChange("account", ids[0], active[0]), OwnerChange("account", ids[1], inactive),
         OwnerChange("account", "001-missing", active[0])],
    )
    assert results == [
        WriteResult("account", ids[0], True),
        WriteResult("account", ids[1], False, f"owner {inactive} is not an active user"),
        WriteResult("account", "001-missing", False, "record not found"),
    ]
    assert connector.read_owners("account", ids[:1]) == {ids[0]: active[0]}
    assert connector.api_calls() == 3  # one read of all ids, one write, one read


def _account_ids(engine) -> list[str]:
    from sqlalchemy import select

    from roe_cli.models import accounts

    with engine.connect() as conn:
        return list(conn.execute(
            select(accounts.c.id).where(accounts.c.deleted.is_(False)).order_by(accounts.c.id)
        ).scalars())


def test_connectors_import_nothing_of_roe_cli_but_shared_at_module_level():
    offenders = []
    for path in sorted((ROOT / "connectors").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module level only
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.startswith("roe_cli") and not n.startswith("roe_cli.shared")]
    assert offenders == []


def test_loading_the_registry_loads_no_crm_client_and_no_core():
    code = (
        "import sys, connectors.registry as r; r.settings_model('salesforce');"
        "bad = [m for m in sys.modules if m in ('simple_salesforce', 'requests', 'urllib3')"
        " or m.startswith(('roe_cli.models', 'roe_cli.sync', 'roe_cli.db', 'sqlalchemy'))"
        " or m.startswith(('connectors.salesforce.c', 'connectors.hubspot.c'))];"
        "print(bad); sys.exit(bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_connector_module_is_over_500_lines():
    paths = [*(ROOT / "connectors").rglob("*.py"),
             *(ROOT / "roe_cli" / name for name in ("sync.py", "demo.py", "db.py", "settings.py",
                                                   "sources.py"))]
    long = [str(p.relative_to(ROOT)) for p in paths if len(p.read_text().splitlines()) > 500]
    assert long == []
