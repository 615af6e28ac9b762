"""CRM error messages that say what happened, with advice that fits the error (issue 10).

Salesforce answers come from ``responses`` (the real simple-salesforce and requests run above
it) or from the Salesforce emulator for Bulk API jobs; HubSpot answers from the HubSpot emulator
over real HTTP.
"""
# The emulator fixtures arrive as arguments named like their imports:
# ruff: noqa: F811

from __future__ import annotations

import logging

import pytest
import responses
from responses import registries

from connectors.hubspot.client import HubSpotApiError, HubSpotClient
from connectors.hubspot.settings import HubSpotSettings
from connectors.salesforce import SalesforceSettings, connect
from connectors.salesforce.client import Credentials, QuotaGuardError, SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from roe_cli.shared.crmtext import summarize_body
from roe_cli.shared.errors import EXIT_CRM, CrmError
from roe_cli.sync import sync
from tests.emulators.hubspot import FAST_SETTINGS, hs_emulator  # noqa: F401
from tests.emulators.salesforce import sf_emulator  # noqa: F401

INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v59.0"
TOKEN = "00D5e000000AbCdEAZ!AQ0AQH5kz0_7aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ3.aBcDeFgHiJkL"
FIELD_HINT = "field settings"


def _user(n: int) -> dict:
    return {"attributes": {"type": "User"}, "Id": f"005D{n:014d}", "Email": f"u{n}@example.com",
            "Name": f"User {n}", "IsActive": True, "UserRole": None, "ManagerId": None,
            "Department": "EMEA", "LastModifiedDate": "2026-01-02T03:04:05.000+0000",
            "SystemModstamp": f"2026-01-02T03:04:{n:02d}.000+0000"}


FIRST = {"totalSize": 2, "done": False, "nextRecordsUrl": "/services/data/v59.0/query/01gX-2000",
         "records": [_user(1)]}
LAST = {"totalSize": 2, "done": True, "records": [_user(2)]}
MAINTENANCE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Salesforce &mdash; Down for Maintenance</title>
<style>body { font-family: sans-serif; } .banner { color: #032d60; padding: 2em; }</style></head>
<body><div class="banner"><h1>We'll be back soon</h1><p>Scheduled maintenance is under way.
Please try again later.</p></div><script>window.dataLayer = window.dataLayer || [];</script></body></html>"""


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", INSTANCE)
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", TOKEN)
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN", "SALESFORCE_DOMAIN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def password_env(monkeypatch):
    for name in ("SALESFORCE_ACCESS_TOKEN", "SALESFORCE_INSTANCE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SALESFORCE_USERNAME", "roe@acme.example")
    monkeypatch.setenv("SALESFORCE_PASSWORD", "pw-Sup3rSecret!")
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", "SecTok9876543210")
    monkeypatch.setenv("SALESFORCE_DOMAIN", "test")


def make(**overrides) -> SalesforceConnector:
    settings = SalesforceSettings(**{"backoff_seconds": 0.0, **overrides})
    return SalesforceConnector(settings, client=SalesforceClient(settings, Credentials.from_env(),
                                                                 sleep=lambda _s: None))


def pull_owners(sf: SalesforceConnector) -> list:
    return list(sf.pull("owner", None, True))


# ---- Salesforce: the hint fits the errorCode -------------------------------------------------


@pytest.mark.parametrize("status", [400, 403])
@responses.activate
def test_a_transaction_security_block_names_the_policy_not_the_field_settings(token_env, status):
    responses.get(f"{API}/query/", status=status, json=[{
        "errorCode": "TXN_SECURITY_METERING_ERROR",
        "message": "We can't complete the action because a security policy blocked it."}])
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert err.value.exit_code == EXIT_CRM
    assert "TXN_SECURITY_METERING_ERROR" in err.value.what and "security policy blocked" in err.value.what
    assert "Transaction Security" in err.value.todo
    assert FIELD_HINT not in err.value.todo and "lifecycle_stage_field" not in err.value.todo


@responses.activate(registry=registries.OrderedRegistry)
def test_an_expired_query_locator_says_the_cursor_expired_and_the_sync_resumes(token_env):
    responses.get(f"{API}/query/", json=FIRST)
    responses.get(f"{API}/query/01gX-2000", status=400, json=[{
        "errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert "INVALID_QUERY_LOCATOR" in err.value.what
    assert "cursor expired" in err.value.todo and "resumes" in err.value.todo
    assert FIELD_HINT not in err.value.todo


@responses.activate
def test_a_bad_field_keeps_the_field_settings_hint_and_an_unknown_400_does_not_get_it(token_env):
    responses.get(f"{API}/query/", status=400, json=[{
        "errorCode": "INVALID_FIELD", "message": "No such column 'Team__c' on entity 'User'."}])
    with pytest.raises(CrmError) as err:
        pull_owners(make(user_team_field="Team__c"))
    assert FIELD_HINT in err.value.todo and "user_team_field" in err.value.todo
    responses.replace(responses.GET, f"{API}/query/", status=400, json=[{
        "errorCode": "JSON_PARSER_ERROR", "message": "Unexpected character"}])
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert "JSON_PARSER_ERROR: Unexpected character" in err.value.what
    assert FIELD_HINT not in err.value.todo


def test_limit_exceeded_on_a_bulk_job_says_which_limit_not_the_field_settings(sf_emulator, engine):
    sf_emulator.fail(status=400, method="POST", path="/jobs/query", times=5, body=[{
        "errorCode": "LIMIT_EXCEEDED", "message": "Max number of concurrent Bulk API 2.0 query jobs reached."}])
    settings = SalesforceSettings(backoff_seconds=0.0, bulk_poll_seconds=0.01, page_size=200,
                                  bulk_threshold=100)
    with pytest.raises(CrmError) as err:
        sync(engine, connect(settings=settings), full=True)
    assert "LIMIT_EXCEEDED" in err.value.what and "Bulk API 2.0" in err.value.what
    assert "Bulk API 2.0" in err.value.todo and "bulk_threshold" in err.value.todo
    assert FIELD_HINT not in err.value.todo


# ---- Salesforce: an HTML page is its status and title ---------------------------------------


@responses.activate
def test_a_salesforce_maintenance_page_is_summarized_as_its_status_and_title(token_env):
    responses.get(f"{API}/query/", status=503, body=MAINTENANCE, content_type="text/html")
    with pytest.raises(CrmError) as err:
        pull_owners(make(retries=1))
    what = err.value.what
    assert "HTTP 503" in what and "an HTML page titled 'Salesforce — Down for Maintenance'" in what
    assert "<" not in what and "font-family" not in what and "dataLayer" not in what
    assert len(what) < 200


def test_an_html_page_without_a_title_is_named_by_its_heading_and_text_is_one_short_line():
    assert summarize_body("<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>") == (
        "an HTML page titled '502 Bad Gateway'")
    assert summarize_body(b"<HTML><BODY>oops</BODY></HTML>") == "an HTML page without a title"
    assert summarize_body("Service\n  Unavailable ") == "Service Unavailable"
    assert len(summarize_body("x" * 1000)) == 300


# ---- Salesforce: the quota guard ---------------------------------------------------------


@responses.activate
def test_the_quota_guard_prints_its_share_with_one_decimal(token_env):
    responses.get(f"{API}/query/", json=FIRST, headers={"Sforce-Limit-Info": "api-usage=14950/15000"})
    sf = make(max_api_usage_percent=99)
    with pytest.raises(QuotaGuardError) as err:
        pull_owners(sf)
    assert "14,950 of its 15,000" in err.value.what and "(99.7%)" in err.value.what
    assert "100%" not in err.value.what
    assert sf.api_usage_text() == "14,950 of 15,000 requests in the last 24 hours (99.7%)"


# ---- Salesforce: a session that expires mid-sync ---------------------------------------------

LOGIN = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body>
<loginResponse><result><serverUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D5e000000AbCd</serverUrl>
<sessionId>00D5e000000AbCd!AQ0AQ{session}</sessionId></result></loginResponse>
</soapenv:Body></soapenv:Envelope>"""
SOAP = "https://test.salesforce.com/services/Soap/u/59.0"
EXPIRED = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]


@responses.activate(registry=registries.OrderedRegistry)
def test_a_401_mid_sync_with_a_password_signs_in_again_once_and_goes_on(password_env, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post(SOAP, body=LOGIN.format(session="FirstSessionAbcdef0123456789"), content_type="text/xml")
    responses.get(f"{API}/query/", json=FIRST)
    responses.get(f"{API}/query/01gX-2000", status=401, json=EXPIRED)
    responses.post(SOAP, body=LOGIN.format(session="SecondSessionAbcdef0123456789"), content_type="text/xml")
    responses.get(f"{API}/query/01gX-2000", json=LAST)
    pages = pull_owners(make())
    assert [row["id"] for page in pages for row in page.rows] == ["005D00000000000001", "005D00000000000002"]
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "GET", "POST", "GET"]
    assert responses.calls[2].request.headers["Authorization"].endswith("FirstSessionAbcdef0123456789")
    assert responses.calls[4].request.headers["Authorization"].endswith("SecondSessionAbcdef0123456789")
    assert responses.calls[4].request.headers["Sforce-Query-Options"] == "batchSize=2000"  # the same call again
    for secret in ("pw-Sup3rSecret!", "SecTok9876543210", "FirstSession", "SecondSession"):
        assert secret not in caplog.text


@responses.activate(registry=registries.OrderedRegistry)
def test_a_401_right_after_signing_in_again_stops_without_a_third_login(password_env):
    responses.post(SOAP, body=LOGIN.format(session="FirstSessionAbcdef0123456789"), content_type="text/xml")
    responses.get(f"{API}/query/", status=401, json=EXPIRED)
    responses.post(SOAP, body=LOGIN.format(session="SecondSessionAbcdef0123456789"), content_type="text/xml")
    responses.get(f"{API}/query/", status=401, json=EXPIRED)
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert len(responses.calls) == 4
    assert err.value.exit_code == EXIT_CRM
    assert "HTTP 401 INVALID_SESSION_ID" in err.value.what
    assert "SALESFORCE_USERNAME" in err.value.todo and "SALESFORCE_ACCESS_TOKEN" not in err.value.todo


# ---- HubSpot ------------------------------------------------------------------------------


def client_for(emu, **overrides) -> HubSpotClient:
    return HubSpotClient(emu.token, emu.url, HubSpotSettings(**{**FAST_SETTINGS, **overrides}),
                         sleep=lambda _s: None)


def test_a_hubspot_5xx_outage_says_hubspot_has_trouble_not_to_lower_the_request_rate(hs_emulator):
    hs_emulator.fail_next(100, status=503)
    with pytest.raises(CrmError) as err:
        client_for(hs_emulator, max_retries=2).owners(archived=False)
    assert err.value.exit_code == EXIT_CRM
    assert "kept failing" in err.value.what and "503 server error" in err.value.what
    assert "status.hubspot.com" in err.value.todo and "resumes" in err.value.todo
    assert "requests_per_10s" not in err.value.todo


def test_hubspot_rate_limits_that_persist_do_advise_lowering_the_request_rate(hs_emulator):
    hs_emulator.fail_next(100, status=429, retry_after="0")
    with pytest.raises(CrmError) as err:
        client_for(hs_emulator, max_retries=2).owners(archived=False)
    assert "kept refusing" in err.value.what and "429" in err.value.what
    assert "requests_per_10s" in err.value.todo


def test_a_hubspot_html_error_page_is_summarized_as_its_status_and_title(hs_emulator):
    page = MAINTENANCE.replace("Salesforce &mdash; Down for Maintenance", "502 Bad Gateway")
    hs_emulator.fail_next(100, status=502, html=page)
    with pytest.raises(CrmError) as err:
        client_for(hs_emulator, max_retries=1).owners(archived=False)
    assert "502 server error: an HTML page titled '502 Bad Gateway'" in err.value.what
    assert "<" not in err.value.what and "font-family" not in err.value.what
    hs_emulator.clear_faults()
    hs_emulator.fail_next(1, status=404, html="<html><head><title>Not Found</title></head><body>x</body></html>")
    with pytest.raises(HubSpotApiError) as api_err:
        client_for(hs_emulator).owners(archived=False)
    assert api_err.value.what.endswith("404 to GET /crm/v3/owners/?archived=false: an HTML page titled 'Not Found'")


def test_a_hubspot_html_page_with_status_200_is_named_not_parsed(hs_emulator):
    hs_emulator.fail_next(1, status=200, html="<html><head><title>Sign in - Corporate Proxy</title></head>"
                                              "<body><form></form></body></html>")
    with pytest.raises(CrmError) as err:
        client_for(hs_emulator).owners(archived=False)
    assert "cannot read" in err.value.what
    assert "HTTP 200: an HTML page titled 'Sign in - Corporate Proxy'" in err.value.what
