"""The HubSpot connector against the local emulator: the real hubspot-api-client over real HTTP.

Pacing, retries, errors and redaction; the mapping into mirror rows (the mirror after a sync
holds what the demo generator produced, modulo HubSpot's ids); the write side (batch read and
update of owners, 207 partial failures).
"""
# The hs_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import ssl
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from connectors.base import Connector, OwnerChange
from connectors.demo.generator import generate
from connectors.hubspot import HubSpotSettings, connect
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.ratelimit import Pacer, SlidingWindow
from connectors.hubspot.search import SearchStream
from roe_cli.models import accounts, activities, contacts, opportunities, owners, ownership_changes
from roe_cli.shared.errors import EXIT_CRM, EXIT_USAGE, ConfigError, CrmError
from roe_cli.sync import sync
from tests.conftest import AS_OF, RULES
from tests.emulators.hubspot import (  # noqa: F401
    FAST_SETTINGS,
    HubSpotEmulator,
    hs_emulator,
    hs_id,
    iso,
)

ACCOUNTS = 60
SEED = 11


class FakeClock:
    """A clock whose sleep moves time on, so pacing is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def fast(**overrides) -> HubSpotSettings:
    return HubSpotSettings(**{**FAST_SETTINGS, **overrides})


def client_for(emu, clock: FakeClock | None = None, **overrides) -> HubSpotClient:
    clock = clock or FakeClock()
    return HubSpotClient(emu.token, emu.url, fast(**overrides), clock=clock, sleep=clock.sleep)


# ---- settings ------------------------------------------------------------------------------------


def test_settings_defaults_and_the_spec_example():
    s = HubSpotSettings()
    assert (s.requests_per_10s, s.searches_per_second, s.search_page_size) == (100, 4, 200)
    assert s.timeout_seconds > 0 and s.max_retries > 0
    assert HubSpotSettings.model_validate({"requests_per_10s": 190}).requests_per_10s == 190
    for name, info in HubSpotSettings.model_fields.items():
        assert info.description, f"{name} has no description"


def test_settings_refuse_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError, match="extra"):
        HubSpotSettings.model_validate({"requests_per_10": 100})
    with pytest.raises(ValidationError):
        HubSpotSettings(search_page_size=500)
    with pytest.raises(ValidationError, match="stage"):
        HubSpotSettings(stage_date_property="hs_date_entered")


def test_rules_toml_hubspot_table_becomes_settings(tmp_path):
    from roe_cli.rulesfile import load_rules

    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text()
                     + '\n[hubspot]\nrequests_per_10s = 190\nactivity_types = ["calls"]\n')
    config = load_rules(rules)
    assert isinstance(config.hubspot, HubSpotSettings)
    assert config.hubspot.requests_per_10s == 190
    assert config.hubspot.activity_types == ["calls"]


def test_connect_needs_a_token_and_a_url(monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigError) as err:
        connect()
    assert err.value.exit_code == EXIT_USAGE and "HUBSPOT_ACCESS_TOKEN" in str(err.value)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("HUBSPOT_BASE_URL", "api.hubapi.com")
    with pytest.raises(ConfigError, match="HUBSPOT_BASE_URL"):
        connect()


def test_connector_shape(hs_emulator):
    connector = connect(settings={"requests_per_10s": 150})
    assert isinstance(connector, Connector)
    assert connector.source == "hubspot"
    assert connector.write_batch_size == 100
    assert connector.settings.requests_per_10s == 150
    connector.close()


# ---- pacing --------------------------------------------------------------------------------------


def test_sliding_window_waits_for_the_oldest_call_to_leave():
    clock = FakeClock()
    window = SlidingWindow(100, 10.0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        assert window.acquire() == 0
    clock.now += 4.0
    assert window.acquire() == pytest.approx(6.0)  # the first call leaves the window at t0 + 10
    assert clock.sleeps == [6.0]


def test_pacer_limits_searches_to_four_a_second_and_counts_them_as_calls():
    clock = FakeClock()
    pacer = Pacer(100, 4, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(12):
        pacer.acquire(search=True)
    assert clock.now - start == pytest.approx(2.0)  # 4 at once, then 4 a second
    assert len(pacer.general._stamps) == 12
    half = Pacer(100, 0.5, clock=clock, sleep=clock.sleep)
    assert (half.search.limit, half.search.period) == (1, 2.0)


def test_client_paces_real_calls(hs_emulator):
    hs_emulator.load_demo(5, SEED, AS_OF)
    clock = FakeClock()
    client = client_for(hs_emulator, clock, requests_per_10s=5)
    start = clock.now
    for _ in range(12):
        client.owners(archived=False)
    assert client.calls == 12 and len(hs_emulator.calls()) == 12
    assert clock.now - start == pytest.approx(20.0)  # calls 6-10 wait 10 s, 11-12 another 10 s


# ---- retries and refusals ------------------------------------------------------------------------


def test_429_waits_retry_after_and_posts_are_retried(hs_emulator):
    hs_emulator.load_demo(5, SEED, AS_OF)
    hs_emulator.fail_next(2, status=429, retry_after="1", path="/search")
    clock = FakeClock()
    client = client_for(hs_emulator, clock, max_wait_seconds=30)
    data = client.search("companies", {"limit": 10, "properties": ["name"]})
    assert len(data["results"]) == 5
    assert clock.sleeps == [1.0, 1.0]
    searches = hs_emulator.calls("POST", "/search")
    assert [r.status for r in searches] == [429, 429, 200]
    assert client.calls == 3


def test_retry_after_is_capped(hs_emulator):
    hs_emulator.fail_next(1, status=429, retry_after="3600")
    clock = FakeClock()
    client_for(hs_emulator, clock, max_wait_seconds=2).owners(archived=True)
    assert clock.sleeps == [2.0]


def test_server_errors_back_off_exponentially(hs_emulator):
    hs_emulator.fail_next(3, status=503)
    clock = FakeClock()
    client = client_for(hs_emulator, clock, backoff_seconds=0.5, max_wait_seconds=60)
    assert client.owners(archived=False) == {"results": []}
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_hubspot_that_keeps_refusing_stops_with_exit_code_3(hs_emulator):
    hs_emulator.fail_next(100, status=429, retry_after="0")
    client = client_for(hs_emulator, max_retries=3)
    with pytest.raises(CrmError) as err:
        client.search("contacts", {"limit": 1})
    assert err.value.exit_code == EXIT_CRM
    assert "kept refusing" in str(err.value) and "429" in str(err.value)
    assert len(hs_emulator.calls()) == 4  # the call and three retries, no more


def test_daily_limit_stops_at_once(hs_emulator):
    hs_emulator.fail_next(100, status=429, body={"status": "error", "policyName": "DAILY",
                                                 "message": "You have reached your daily limit."})
    with pytest.raises(CrmError, match="daily"):
        client_for(hs_emulator).owners(archived=False)
    assert len(hs_emulator.calls()) == 1


def test_every_call_has_a_timeout(hs_emulator):
    hs_emulator.delay_next(1, 1.5)
    clock = FakeClock()
    client = client_for(hs_emulator, clock, timeout_seconds=0.3)
    assert client.owners(archived=False) == {"results": []}
    assert len(hs_emulator.calls()) == 2  # the slow one timed out and was sent again
    assert client.retries == 1


def test_a_refused_token_never_shows(hs_emulator, caplog):
    bad = "pat-na1-deadbeef-1234-5678-9abc-def012345678"
    client = HubSpotClient(bad, hs_emulator.url, fast())
    with pytest.raises(CrmError) as err:
        client.owners(archived=False)
    text = str(err.value)
    assert "401" in text and "HUBSPOT_ACCESS_TOKEN" in text
    assert bad not in text and "deadbeef" not in text
    assert bad not in caplog.text
    assert len(hs_emulator.calls()) == 1  # a refused token is not retried


def test_tls_is_verified_and_a_private_ca_is_trusted_through_requests_ca_bundle(
        tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    emu = HubSpotEmulator().start(tls=context)
    try:
        emu.load_demo(3, SEED, AS_OF)
        assert emu.url.startswith("https://")
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(CrmError, match="trusted TLS") as err:
            HubSpotClient(emu.token, emu.url, fast()).owners(archived=False)
        assert "REQUESTS_CA_BUNDLE" in str(err.value)
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        client = HubSpotClient(emu.token, emu.url, fast())
        assert len(client.owners(archived=False)["results"]) > 0
        assert len(emu.calls()) == 1  # the untrusted handshake never reached HTTP
    finally:
        emu.stop()


# ---- pulling -------------------------------------------------------------------------------------


def _sync(engine, full=False, **overrides):
    connector = connect(settings=fast(**overrides))
    try:
        return sync(engine, connector, full=full)
    finally:
        connector.close()


def _expected(accounts_n: int, seed: int, as_of: datetime) -> dict[str, dict[str, dict]]:
    """The generator's live rows by object type and HubSpot id, in the mirror's columns."""
    out: dict[str, dict[str, dict]] = {}
    for chunk in generate(accounts_n, seed, as_of):
        for object_type, rows in chunk.rows.items():
            for row in rows:
                if row.get("deleted"):
                    continue  # archived in HubSpot: a fresh mirror never sees them
                key = hs_id(row["id"]) if "id" in row else (row["object_id"], row["changed_at"])
                out.setdefault(object_type, {})[key] = row
    return out


def _ids(value):
    return hs_id(value) if value else None


def _ms(value: datetime | None) -> datetime | None:
    """HubSpot keeps times to the millisecond."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if value else None


def test_mirror_holds_what_the_generator_made(hs_emulator, engine):
    """Everything the rules read, field by field, modulo HubSpot's numeric ids."""
    hs_emulator.load_demo(ACCOUNTS, SEED, AS_OF)
    report = _sync(engine, full=True)
    expected = _expected(ACCOUNTS, SEED, AS_OF)
    with engine.connect() as conn:
        got = {
            "owner": {r.id: r for r in conn.execute(select(owners))},
            "account": {r.id: r for r in conn.execute(select(accounts))},
            "contact": {r.id: r for r in conn.execute(select(contacts))},
            "opportunity": {r.id: r for r in conn.execute(select(opportunities))},
            "activity": {r.id: r for r in conn.execute(select(activities))},
        }
        changes = list(conn.execute(select(ownership_changes)))
    for object_type in got:
        assert set(got[object_type]) == set(expected[object_type]), object_type
        assert report.objects[object_type].read == len(expected[object_type])
    for oid, want in expected["owner"].items():
        row = got["owner"][oid]
        assert (row.email, row.name, row.active, row.role, row.team) == (
            want["email"], want["name"], want["active"], want["role"], want["team"])
    for aid, want in expected["account"].items():
        row = got["account"][aid]
        assert (row.name, row.website, row.domain, row.owner_id, row.parent_id, row.country,
                row.state, row.employees, row.annual_revenue, row.industry, row.lifecycle_stage,
                row.stage_changed_at, row.created_at, row.deleted) == (
            want["name"], want["website"], want["domain"], _ids(want["owner_id"]),
            _ids(want["parent_id"]), want["country"], want["state"], want["employees"],
            want["annual_revenue"], want["industry"], want["lifecycle_stage"].lower(),
            want["stage_changed_at"], want["created_at"], False), aid
    for cid, want in expected["contact"].items():
        row = got["contact"][cid]
        assert (row.account_id, row.owner_id, row.email, row.email_domain, row.name, row.title,
                row.lifecycle_stage, row.created_at, row.updated_at) == (
            _ids(want["account_id"]), _ids(want["owner_id"]), want["email"], want["email_domain"],
            want["name"], want["title"], want["lifecycle_stage"], want["created_at"],
            want["updated_at"]), cid
    for oid, want in expected["opportunity"].items():
        row = got["opportunity"][oid]
        assert (row.account_id, row.owner_id, row.name, row.amount, row.close_date, row.is_closed,
                row.is_won, row.created_at, row.updated_at) == (
            _ids(want["account_id"]), _ids(want["owner_id"]), want["name"], want["amount"],
            want["close_date"], want["is_closed"], want["is_won"], want["created_at"],
            want["updated_at"]), oid
    for aid, want in expected["activity"].items():
        row = got["activity"][aid]
        assert (row.kind, row.account_id, row.contact_id, row.opportunity_id, row.owner_id,
                row.occurred_at, row.status, row.updated_at) == (
            want["kind"], _ids(want["account_id"]), _ids(want["contact_id"]),
            _ids(want["opportunity_id"]), _ids(want["owner_id"]), _ms(want["occurred_at"]),
            want["status"], _ms(want["updated_at"])), aid
    want_changes = {(_ids(c["object_id"]), _ids(c["old_owner_id"]), _ids(c["new_owner_id"]),
                     c["changed_at"]) for c in expected["ownership_change"].values()}
    assert {(c.object_id, c.old_owner_id, c.new_owner_id, c.changed_at) for c in changes
            if c.origin == "crm-history"} == want_changes
    assert all(c.object_type == "account" for c in changes)
    assert hs_emulator.writes() == []  # a sync never writes to the CRM


def test_activity_watermark_waits_for_the_slowest_engagement_type(hs_emulator):
    """Five engagement types share one watermark: each page's is where all of them have got to."""
    hs_emulator.load_demo(25, SEED, AS_OF)
    connector = connect(settings=fast(search_page_size=50, association_batch_size=50))
    pages = list(connector.pull("activity", None, True))
    marks = [p.watermark for p in pages if p.watermark is not None]
    assert marks == sorted(marks) and len(marks) > 3
    modified = sorted(
        (datetime.fromisoformat(r.props["hs_lastmodifieddate"]).replace(tzinfo=None), r.id)
        for kind in ("calls", "meetings", "emails", "tasks") for r in hs_emulator.live(kind))
    seen: set[str] = set()
    for page in pages:
        seen.update(row["id"] for row in page.rows)
        if page.watermark is not None:
            # Every activity modified before the watermark has been read by then.
            older = {rid for when, rid in modified if when < page.watermark}
            assert older <= seen
    assert seen == {rid for _, rid in modified}
    connector.close()


def _stamped_contacts(emu, groups: list[int]) -> list[str]:
    """Contacts modified in groups: ``[3, 12, 1]`` is 3 at one time, 12 at the next, then 1."""
    ids = []
    for n, size in enumerate(groups):
        at = iso(datetime(2026, 10, 1) + timedelta(minutes=n))
        ids += [emu.add("contacts", {"email": f"g{n}-{i}@example.org"}, at=at) for i in range(size)]
    return ids


def test_search_pages_through_ties_longer_than_a_page_and_reads_each_record_once(hs_emulator):
    ids = _stamped_contacts(hs_emulator, [3, 12, 1, 1, 7, 5, 5, 1])
    client = client_for(hs_emulator)
    stream = SearchStream(client, "contacts", "lastmodifieddate", ["email"], None, page_size=5)
    got = []
    while not stream.drained:
        got += [r["id"] for r in stream.take(1)]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    assert stream.calls <= 3 * len(ids) // 5  # ties longer than a page are re-read by id
    assert stream.max_seen == datetime(2026, 10, 1, 0, 7)


def test_search_never_skips_a_record_that_changes_while_roe_pages(hs_emulator):
    """Offset paging loses a record when an earlier one moves to the end; keyset paging does not."""
    ids = _stamped_contacts(hs_emulator, [1] * 12)
    client = client_for(hs_emulator)
    stream = SearchStream(client, "contacts", "lastmodifieddate", ["email"], None, page_size=4)
    got = [r["id"] for r in stream.take(1)]
    hs_emulator.update("contacts", ids[0], jobtitle="moved to the end")  # already read
    hs_emulator.update("contacts", ids[1], jobtitle="moved to the end")
    while not stream.drained:
        got += [r["id"] for r in stream.take(1)]
    assert set(got) == set(ids)
    assert got[-2:] == [ids[0], ids[1]]  # read again, with their change


def test_history_is_read_only_for_reassigned_records(hs_emulator, engine):
    hs_emulator.load_demo(ACCOUNTS, SEED, AS_OF)
    _sync(engine, full=True)
    reads = [r for r in hs_emulator.calls("POST", "/crm/v3/objects/")
             if r.path.endswith("/batch/read")]
    reassigned = [r for r in hs_emulator.live("companies") if len(r.history) > 1]
    assert reassigned
    asked = [i["id"] for r in reads for i in r.body["inputs"]]
    assert sorted(asked) == sorted(r.id for r in reassigned)
    assert all(r.path == "/crm/v3/objects/companies/batch/read" for r in reads)
    assert all(len(r.body["inputs"]) <= 50 for r in reads)


# ---- writing -------------------------------------------------------------------------------------


def test_read_owners_in_batches_of_100_skips_archived_and_missing(hs_emulator):
    hs_emulator.load_demo(ACCOUNTS, SEED, AS_OF)
    live = hs_emulator.live("contacts")
    archived = [r for r in hs_emulator.records["contacts"].values() if r.archived]
    assert archived
    ids = [r.id for r in live[:150]] + [archived[0].id, "999999999"]
    connector = connect(settings=fast())
    owners_now = connector.read_owners("contact", ids)
    assert owners_now == {r.id: r.props.get("hubspot_owner_id") for r in live[:150]}
    reads = hs_emulator.calls("POST", "/crm/v3/objects/contacts/batch/read")
    assert [len(r.body["inputs"]) for r in reads] == [100, 52]
    assert hs_emulator.writes() == []


def test_update_owners_reports_each_record_and_handles_207(hs_emulator):
    hs_emulator.load_demo(ACCOUNTS, SEED, AS_OF)
    active = [o["id"] for o in hs_emulator.owners.values() if not o["archived"]]
    inactive = [o["id"] for o in hs_emulator.owners.values() if o["archived"]]
    companies = hs_emulator.live("companies")
    gone = next(r for r in hs_emulator.records["companies"].values() if r.archived)
    changes = [OwnerChange("account", r.id, active[i % len(active)])
               for i, r in enumerate(companies[:45])]
    changes.insert(7, OwnerChange("account", companies[50].id, inactive[0]))  # not a valid owner
    changes.insert(20, OwnerChange("account", gone.id, active[0]))  # archived record
    changes.insert(30, OwnerChange("account", "987654321", active[0]))  # no such record
    connector = connect(settings=fast())
    results = connector.update_owners("account", changes)
    assert [r.object_id for r in results] == [c.object_id for c in changes]
    failed = {r.object_id: r.error for r in results if not r.ok}
    assert set(failed) == {companies[50].id, gone.id, "987654321"}
    assert "owner" in failed[companies[50].id]
    for change in changes:
        if change.object_id not in failed:
            record = hs_emulator.records["companies"][change.object_id]
            assert record.props["hubspot_owner_id"] == change.new_owner_id
    assert hs_emulator.records["companies"][companies[50].id].props["hubspot_owner_id"] != inactive[0]
    assert len(hs_emulator.writes()) == 1


def test_update_owners_sends_100_a_call(hs_emulator):
    hs_emulator.load_demo(ACCOUNTS, SEED, AS_OF)
    owner = next(o["id"] for o in hs_emulator.owners.values() if not o["archived"])
    contacts_ = hs_emulator.live("contacts")[:230]
    connector = connect(settings=fast())
    results = connector.update_owners("contact", [OwnerChange("contact", r.id, owner)
                                                  for r in contacts_])
    assert all(r.ok for r in results) and len(results) == 230
    assert [len(r.body["inputs"]) for r in hs_emulator.writes()] == [100, 100, 30]


def test_a_batch_refused_as_a_whole_is_retried_record_by_record(hs_emulator):
    hs_emulator.load_demo(ACCOUNTS, SEED, AS_OF)
    hs_emulator.whole_batch_400 = True
    active = next(o["id"] for o in hs_emulator.owners.values() if not o["archived"])
    inactive = next(o["id"] for o in hs_emulator.owners.values() if o["archived"])
    deals = hs_emulator.live("deals")[:4]
    changes = [OwnerChange("opportunity", d.id, active) for d in deals]
    changes[2] = OwnerChange("opportunity", deals[2].id, inactive)
    results = connect(settings=fast()).update_owners("opportunity", changes)
    assert [r.ok for r in results] == [True, True, False, True]
    assert "400" in results[2].error
    assert len(hs_emulator.writes()) == 5  # the batch, then each record alone


def test_the_connector_is_a_plain_object(hs_emulator):
    connector = connect(settings=fast())
    assert isinstance(connector, HubSpotConnector)
    assert connector.api_calls() == 0
    with pytest.raises(ValueError):
        connector.update_owners("activity", [])
