"""Each deal's lead source, pulled from both CRMs into `opportunities.lead_source` (Salesforce
`[salesforce] lead_source_field`, HubSpot `[hubspot] lead_source_property`), and the KPI
export's referral figures on the synced mirror."""
# The emulator fixtures arrive as arguments named like their imports:
# ruff: noqa: F811

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from connectors.salesforce import connect
from connectors.salesforce.settings import SalesforceSettings
from roe_cli.models import opportunities
from roe_cli.sync import sync
from tests.conftest import AS_OF, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401
from tests.emulators.salesforce import sf_emulator  # noqa: F401
from tests.support.rules import edited, write


def lead_sources(engine, source: str) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(opportunities.c.id, opportunities.c.lead_source)
                                 .where(opportunities.c.source == source)).all())


def sf_connector(**overrides):
    return connect(settings=SalesforceSettings(backoff_seconds=0.0, bulk_poll_seconds=0.01, **overrides))


def test_salesforce_lead_source_lands_in_the_mirror_and_counts_referrals(sf_emulator, engine, roe, tmp_path):
    sync(engine, sf_connector(), full=True)
    org = sf_emulator.org.records["Opportunity"]
    want = {rid: r.get("LeadSource") for rid, r in org.items()}
    assert lead_sources(engine, "salesforce") == want
    assert {"Partner Referral", "Employee Referral", "Web"} <= set(want.values())
    # The KPI export counts the deals whose LeadSource is one of the default referral values.
    target = tmp_path / "kpi.csv"
    res = roe("export", "kpi", "-o", str(target), "--period", "quarter")
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(target, encoding="utf-8-sig")
    live = [r for r in org.values() if not r["IsDeleted"] and r["OwnerId"]]
    referrals = [r for r in live if r.get("LeadSource") in ("Partner Referral", "Employee Referral")]
    assert frame["opportunities_created"].sum() == len(live)
    assert frame["referrals_created"].sum() == len(referrals) > 0
    assert frame["referrals_won"].sum() == sum(bool(r["IsWon"]) for r in referrals) > 0


def test_salesforce_without_a_lead_source_field_asks_for_none(sf_emulator, engine):
    sync(engine, sf_connector(lead_source_field=""), full=True)  # empty: read none
    soql = [c.soql for c in sf_emulator.calls() if c.soql and "FROM Opportunity" in c.soql]
    assert soql and all("LeadSource" not in q for q in soql)
    assert set(lead_sources(engine, "salesforce").values()) == {None}


def test_hubspot_original_source_lands_in_the_mirror_and_counts_referrals(hs_emulator, roe, engine, tmp_path):
    hs_emulator.load_demo(60, seed=7, as_of=AS_OF)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + FAST_SETTINGS_TOML)
    res = roe("sync", "--source", "hubspot", rules=rules)
    assert res.exit_code == 0, res.output
    deals = hs_emulator.records["deals"]
    want = {rid: r.props.get("hs_analytics_source") for rid, r in deals.items() if not r.archived}
    assert lead_sources(engine, "hubspot") == want
    assert {"REFERRALS", "OFFLINE"} <= set(want.values())
    target = tmp_path / "kpi.parquet"
    res = roe("export", "kpi", "-o", str(target), "--period", "month", rules=rules)
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(target)
    assert frame["referrals_created"].sum() == sum(
        1 for rid, v in want.items() if v == "REFERRALS") > 0
    # Another referral value in rules.toml changes what counts.
    other = tmp_path / "rules-offline.toml"
    other.write_text(rules.read_text().replace("[hubspot]\n", '[hubspot]\nreferral_values = ["offline"]\n', 1))
    res = roe("export", "kpi", "-o", str(target), "--period", "month", rules=other)
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(target)["referrals_created"].sum() == sum(1 for v in want.values() if v == "OFFLINE")


def test_bad_lead_source_settings_are_refused_with_the_key_named(roe, tmp_path):
    for table in ('[salesforce]\nlead_source_field = "LeadSource FROM User--"\n',
                  '[salesforce]\nreferral_values = [""]\n',
                  '[hubspot]\nlead_source_property = "Original Source"\n'):
        path = write(tmp_path, edited("[settings]\n", table + "\n[settings]\n"))
        res = roe("rules", "--check", rules=path)
        assert res.exit_code == 2, (table, res.output)
        assert ("lead_source" in res.stderr or "referral_values" in res.stderr), res.stderr
