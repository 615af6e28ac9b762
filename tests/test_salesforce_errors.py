"""What the Salesforce connector does when Salesforce says no, says nothing, or says nonsense.

HTTP is mocked with ``responses`` (the real simple-salesforce and requests run above it), so every
error path is exact: which calls were made, how often, with what timeout, and what the user reads.
"""

from __future__ import annotations

import logging

import pytest
import requests
import responses
from pydantic import ValidationError
from responses import registries

from connectors.base import OwnerChange
from connectors.salesforce import SalesforceSettings, connect
from connectors.salesforce.client import Credentials, QuotaGuardError, SalesforceClient
from connectors.salesforce.connector import SalesforceConnector, SalesforceWriteError
from roe_cli.shared.errors import ConfigError, CrmError

INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v59.0"
TOKEN = "00D5e000000AbCdEAZ!AQ0AQH5kz0_7aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ3.aBcDeFgHiJkL"
PAGE = {"totalSize": 1, "done": True, "records": [{
    "attributes": {"type": "User"}, "Id": "005D00000000000001", "Email": "ana@example.com",
    "Name": "Ana Silva", "IsActive": True, "UserRole": {"attributes": {"type": "UserRole"}, "Name": "AE"},
    "ManagerId": None, "Department": "EMEA", "LastModifiedDate": "2026-01-02T03:04:05.000+0000",
    "SystemModstamp": "2026-01-02T03:04:05.000+0000"}]}


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", INSTANCE)
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", TOKEN)
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN", "SALESFORCE_DOMAIN"):
        monkeypatch.delenv(name, raising=False)


def make(sleeps: list | None = None, **overrides) -> SalesforceConnector:
    settings = SalesforceSettings(**{"backoff_seconds": 0.5, **overrides})
    sleep = sleeps.append if sleeps is not None else (lambda _s: None)
    return SalesforceConnector(settings, client=SalesforceClient(settings, Credentials.from_env(), sleep=sleep))


def pull_owners(sf: SalesforceConnector) -> list:
    return list(sf.pull("owner", None, True))


@responses.activate
def test_401_says_to_renew_the_token_and_never_shows_it(caplog):
    caplog.set_level(logging.DEBUG)
    responses.get(f"{API}/query/", status=401, json=[
        {"message": f"Session expired or invalid: {TOKEN}", "errorCode": "INVALID_SESSION_ID"}])
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert err.value.exit_code == 3
    assert "401" in err.value.what and "SALESFORCE_ACCESS_TOKEN" in err.value.todo
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(responses.calls) == 1  # a refusal is not retried
    for text in (str(err.value), caplog.text):
        assert TOKEN not in text and "AQ0AQH5kz0" not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__


@responses.activate
def test_request_limit_exceeded_is_a_clear_stop_not_a_retry():
    responses.get(f"{API}/query/", status=403, json=[
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert err.value.exit_code == 3 and len(responses.calls) == 1
    assert "REQUEST_LIMIT_EXCEEDED" in err.value.what and "used up its API request limit" in err.value.what
    assert "kept" in err.value.todo and "resumes" in err.value.todo


@responses.activate
def test_other_refusals_name_the_permissions_needed():
    responses.get(f"{API}/query/", status=403, json=[
        {"message": "The REST API is not enabled for this Organization.", "errorCode": "API_DISABLED_FOR_ORG"}])
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert "API_DISABLED_FOR_ORG" in err.value.what and "API Enabled" in err.value.todo


@responses.activate(registry=registries.OrderedRegistry)
def test_5xx_answers_are_retried_with_exponential_backoff():
    responses.get(f"{API}/query/", status=500, json=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}])
    responses.get(f"{API}/query/", status=503, body="Service Unavailable", headers={"Retry-After": "3"})
    responses.get(f"{API}/query/", status=502, body="Bad Gateway")
    responses.get(f"{API}/query/", json=PAGE)
    sleeps: list[float] = []
    sf = make(sleeps)
    (page,) = pull_owners(sf)
    assert page.rows[0]["email"] == "ana@example.com" and page.rows[0]["role"] == "AE"
    assert sleeps == [0.5, 3.0, 2.0]  # 0.5 doubling, but Retry-After wins
    assert sf.api_calls() == 4


@responses.activate
def test_5xx_that_persists_ends_as_exit_code_3_after_the_retries():
    responses.get(f"{API}/query/", status=500, json=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}])
    with pytest.raises(CrmError) as err:
        pull_owners(make(retries=2))
    assert len(responses.calls) == 3
    assert "HTTP 500" in err.value.what and "after 3 attempts" in err.value.what
    assert "resumes" in err.value.todo


@responses.activate
def test_timeouts_are_retried_and_every_call_has_one():
    responses.get(f"{API}/query/", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(CrmError) as err:
        pull_owners(make(retries=1, timeout_seconds=7))
    assert len(responses.calls) == 2
    assert all(call.request.req_kwargs["timeout"] == 7 for call in responses.calls)
    assert "did not answer within 7 seconds" in err.value.what and "timeout_seconds" in err.value.todo


@responses.activate
def test_writes_and_reads_carry_the_timeout_too():
    responses.get(f"{API}/query/", json={"totalSize": 1, "done": True, "records": [
        {"attributes": {"type": "Account"}, "Id": "001D00000000000001", "OwnerId": "005D00000000000001"}]})
    responses.patch(f"{API}/composite/sobjects", json=[{"id": "001D00000000000001", "success": True, "errors": []}])
    sf = make(timeout_seconds=12)
    assert sf.read_owners("account", ["001D00000000000001"]) == {"001D00000000000001": "005D00000000000001"}
    (result,) = sf.update_owners("account", [OwnerChange("account", "001D00000000000001", "005D00000000000002")])
    assert result.ok
    assert [c.request.req_kwargs["timeout"] for c in responses.calls] == [12, 12]


@responses.activate
def test_an_unreachable_org_says_what_to_check():
    responses.get(f"{API}/query/", body=requests.exceptions.ConnectionError("Name or service not known"))
    with pytest.raises(CrmError) as err:
        pull_owners(make(retries=0))
    assert "Could not reach Salesforce" in err.value.what and "SALESFORCE_INSTANCE_URL" in err.value.todo


@pytest.mark.parametrize("body", ["<html><body>Down for maintenance</body></html>", '{"unexpected": true}', "[1, 2"])
@responses.activate
def test_an_answer_that_is_no_query_result_is_an_error_not_a_crash(body):
    responses.get(f"{API}/query/", body=body, status=200, content_type="application/json")
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert "could not read" in err.value.what and err.value.exit_code == 3


@responses.activate
def test_a_bad_field_setting_is_named():
    responses.get(f"{API}/queryAll/", status=400, json=[{"errorCode": "INVALID_FIELD",
                                                          "message": "No such column 'Stage__c' on entity 'Account'."}])
    with pytest.raises(CrmError) as err:
        list(make(lifecycle_stage_field="Stage__c").pull("account", None, True))
    assert "Stage__c" in err.value.what and "lifecycle_stage_field" in err.value.todo


@responses.activate
def test_the_quota_guard_refuses_to_send_once_usage_passes_the_limit():
    more = {**PAGE, "done": False, "nextRecordsUrl": "/services/data/v59.0/query/01gX-2000"}
    responses.get(f"{API}/query/", json=more, headers={"Sforce-Limit-Info": "api-usage=951/1000"})
    sf = make(max_api_usage_percent=95)
    with pytest.raises(QuotaGuardError) as err:
        pull_owners(sf)
    assert len(responses.calls) == 1  # the second page was never asked for
    assert err.value.exit_code == 3 and "951 of its 1,000" in err.value.what
    assert sf.api_usage_text() == "951 of 1,000 requests in the last 24 hours (95.1%)"


def test_a_failed_collection_call_keeps_the_results_of_the_calls_before_it():
    ok = [{"id": f"001D{n:014d}", "success": True, "errors": []} for n in range(200)]
    changes = [OwnerChange("account", f"001D{n:014d}", "005D00000000000002") for n in range(250)]
    sf = make(retries=0)
    with responses.RequestsMock(registry=registries.OrderedRegistry) as mock:
        mock.patch(f"{API}/composite/sobjects", json=ok)
        mock.patch(f"{API}/composite/sobjects", status=500, json=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "x"}])
        with pytest.raises(SalesforceWriteError) as err:
            sf.update_owners("account", changes)
        assert len(mock.calls) == 2 and mock.calls[1].request.body.count(b'"OwnerId"') == 50
    assert err.value.exit_code == 3 and len(err.value.results) == 200
    assert all(r.ok for r in err.value.results)


def test_missing_credentials_are_a_configuration_error(monkeypatch):
    monkeypatch.delenv("SALESFORCE_INSTANCE_URL")
    with pytest.raises(ConfigError) as err:
        connect()
    assert err.value.exit_code == 2 and "SALESFORCE_INSTANCE_URL is not set" in err.value.what
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    with pytest.raises(ConfigError) as err:
        connect()
    assert "SALESFORCE_USERNAME" in err.value.todo


_LOGIN_OK = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body>
<loginResponse><result><serverUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D5e000000AbCd</serverUrl>
<sessionId>00D5e000000AbCd!AQ0AQSessionFromPasswordLogin1234567890abcdef</sessionId></result></loginResponse>
</soapenv:Body></soapenv:Envelope>"""
_LOGIN_FAULT = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>
<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>
<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>
<sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage>
</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


@pytest.fixture
def password_env(monkeypatch):
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    monkeypatch.delenv("SALESFORCE_INSTANCE_URL")
    monkeypatch.setenv("SALESFORCE_USERNAME", "roe@acme.example")
    monkeypatch.setenv("SALESFORCE_PASSWORD", "pw-Sup3rSecret!")
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", "SecTok9876543210")
    monkeypatch.setenv("SALESFORCE_DOMAIN", "test")


@responses.activate
def test_password_login_signs_in_at_the_domain_and_keeps_secrets_out_of_the_log(password_env, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post("https://test.salesforce.com/services/Soap/u/59.0", body=_LOGIN_OK, content_type="text/xml")
    responses.get(f"{API}/query/", json=PAGE)
    (page,) = pull_owners(make())
    assert page.rows[0]["id"] == "005D00000000000001"
    login, query = responses.calls
    assert "roe@acme.example" in login.request.body
    assert query.request.headers["Authorization"].endswith("SessionFromPasswordLogin1234567890abcdef")
    for secret in ("pw-Sup3rSecret!", "SecTok9876543210", "SessionFromPasswordLogin"):
        assert secret not in caplog.text


@responses.activate
def test_a_failed_login_is_not_retried_and_says_what_to_check(password_env, caplog):
    responses.post("https://test.salesforce.com/services/Soap/u/59.0", status=500, body=_LOGIN_FAULT,
                   content_type="text/xml")
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert len(responses.calls) == 1  # retrying a bad password would lock the user out
    assert "login failed" in err.value.what and "Invalid username" in err.value.what
    assert "SALESFORCE_SECURITY_TOKEN" in err.value.todo
    assert "pw-Sup3rSecret!" not in str(err.value) + caplog.text


def test_settings_are_documented_defaulted_and_strict():
    for name, info in SalesforceSettings.model_fields.items():
        assert info.description, name
        assert not info.is_required(), name
    assert SalesforceSettings().lifecycle_stage_field == "Type"
    with pytest.raises(ValidationError):
        SalesforceSettings.model_validate({"lifecycle_stage_feild": "Type"})  # a typo is an error
    with pytest.raises(ValidationError):
        SalesforceSettings(lifecycle_stage_field="Type' OR Name != '")  # no SOQL through a setting
    with pytest.raises(ValidationError):
        SalesforceSettings(page_size=5000)
    assert connect(settings={"bulk_threshold": 10}).settings.bulk_threshold == 10


@responses.activate
def test_a_record_with_an_unreadable_value_is_an_error_not_a_crash():
    broken = {**PAGE, "records": [{**PAGE["records"][0], "SystemModstamp": "yesterday-ish"}]}
    responses.get(f"{API}/query/", json=broken)
    with pytest.raises(CrmError) as err:
        pull_owners(make())
    assert "User record roe could not read" in err.value.what and "yesterday-ish" in err.value.what
