"""simple-salesforce, made safe for a nightly job: timeouts, retries, a quota guard, clear errors.

simple-salesforce has no timeouts and no retries of its own, and raises its own exception classes.
Every HTTP call it makes (REST, Bulk API 2.0, the SOAP login) goes through one
:class:`GuardedSession`, which adds a timeout, retries 5xx answers, timeouts and dropped
connections with exponential backoff, counts calls, reads the org's API usage from the
``Sforce-Limit-Info`` header and refuses to send once usage passes ``max_api_usage_percent``.
:func:`translate_errors` turns whatever goes wrong into a :class:`CrmError` that says what to do,
with every credential redacted.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import logging
import os
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from roe_cli.shared.crmtext import summarize_body
from roe_cli.shared.errors import ConfigError, CrmError, redact, register_secret

from .hints import code_in, error_detail, hint_for, said
from .settings import SalesforceSettings

if TYPE_CHECKING:
    from simple_salesforce import Salesforce

log = logging.getLogger(__name__)

_LIMIT_INFO = re.compile(r"(?:^|[;\s])api-usage=(\d+)/(\d+)")


class QuotaGuardError(CrmError):
    """The org's API usage passed ``max_api_usage_percent``: roe stopped before the next call."""


# ---- credentials -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    """How to sign in: an access token with its instance URL, or a username and password."""

    instance_url: str | None = None
    access_token: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    domain: str = "login"

    def __repr__(self) -> str:  # never show a secret, even in a debugger or a traceback
        return f"Credentials(instance_url={self.instance_url!r}, username={self.username!r}, domain={self.domain!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """Read the ``SALESFORCE_*`` variables; every secret is registered for redaction first."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = (env.get(name) or "").strip()
            return value or None

        token, password, security = (
            get("SALESFORCE_ACCESS_TOKEN"), get("SALESFORCE_PASSWORD"), get("SALESFORCE_SECURITY_TOKEN")
        )
        for secret in (token, password, security):
            register_secret(secret)
        instance_url, username = get("SALESFORCE_INSTANCE_URL"), get("SALESFORCE_USERNAME")
        domain = (get("SALESFORCE_DOMAIN") or "login").removeprefix("https://").rstrip("/")
        domain = domain.removesuffix(".salesforce.com")
        if token and instance_url:
            return cls(instance_url=_instance_url(instance_url), access_token=token, domain=domain)
        if username and password:
            return cls(username=username, password=password, security_token=security or "", domain=domain)
        missing = []
        if token or instance_url:
            missing.append("SALESFORCE_INSTANCE_URL" if token else "SALESFORCE_ACCESS_TOKEN")
        elif username or password:
            missing.append("SALESFORCE_PASSWORD" if username else "SALESFORCE_USERNAME")
        raise ConfigError(
            "Salesforce credentials are missing"
            + (f" ({', '.join(missing)} is not set)." if missing else "."),
            "Set SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME, "
            "SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN (with SALESFORCE_DOMAIN=test for a sandbox).",
        )


def _instance_url(value: str) -> str:
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if not parts.hostname:
        raise ConfigError(
            f"SALESFORCE_INSTANCE_URL {value!r} names no host.",
            "Set it to your org's URL, e.g. https://acme.my.salesforce.com.",
        )
    if parts.scheme != "https":
        log.warning("SALESFORCE_INSTANCE_URL uses %s; roe talks to Salesforce over https only", parts.scheme)
    return value


# ---- the HTTP session ------------------------------------------------------------------------
class GuardedSession(requests.Session):
    """A requests session with a timeout on every call, retries, a call count and a quota guard."""

    def __init__(self, settings: SalesforceSettings, sleep=time.sleep):
        super().__init__()
        self.settings = settings
        self.calls = 0
        self.usage: tuple[int, int] | None = None  # (used, limit) from Sforce-Limit-Info
        self.server_time: datetime | None = None  # the Date header of the latest answer (naive UTC)
        self.attempts = 0  # attempts of the latest call, for error messages
        self._sleep = sleep

    def request(self, method, url, *args, **kwargs):  # noqa: D102 - see the class docstring
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.settings.timeout_seconds
        path = urlsplit(url).path
        attempt = 0
        while True:
            self.guard()
            attempt += 1
            self.attempts = attempt
            self.calls += 1
            started = time.monotonic()
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.exceptions.SSLError:
                raise  # a certificate problem does not go away by asking again
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                if attempt > self.settings.retries:
                    raise
                wait = self._backoff(attempt, None)
                log.warning("%s %s: %s; retry %d of %d in %.1fs", method, path,
                            type(exc).__name__, attempt, self.settings.retries, wait)
                self._sleep(wait)
                continue
            self._observe(response)
            log.debug("%s %s -> %s in %.2fs", method, path, response.status_code, time.monotonic() - started)
            if not self._retryable(path, response.status_code) or attempt > self.settings.retries:
                return response
            wait = self._backoff(attempt, response.headers.get("Retry-After"))
            log.warning("%s %s: HTTP %s; retry %d of %d in %.1fs", method, path,
                        response.status_code, attempt, self.settings.retries, wait)
            response.close()
            self._sleep(wait)

    @staticmethod
    def _retryable(path: str, status: int) -> bool:
        # A failed SOAP login is an HTTP 500 fault: asking again only risks locking the user out.
        if status == 500 and "/services/Soap/" in path:
            return False
        return status >= 500

    def guard(self) -> None:
        """Refuse to send once the org's API usage is at or past ``max_api_usage_percent``."""
        if self.usage is None:
            return
        used, limit = self.usage
        if limit and used * 100 >= self.settings.max_api_usage_percent * limit:
            raise QuotaGuardError(
                f"Stopped before the next Salesforce call: the org has used {used:,} of its "
                f"{limit:,} API requests for the rolling 24 hours ({used / limit:.1%}), at or past "
                f"max_api_usage_percent = {self.settings.max_api_usage_percent:g} in the "
                "[salesforce] table of rules.toml.",
                "Everything committed so far is kept and the next run resumes from there. Run again "
                "when the org's usage has come down, or raise max_api_usage_percent.",
            )

    def _observe(self, response: requests.Response) -> None:
        info = response.headers.get("Sforce-Limit-Info")
        match = _LIMIT_INFO.search(info or "")
        if match:
            self.usage = (int(match.group(1)), int(match.group(2)))
        date = response.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                self.server_time = parsedate_to_datetime(date).astimezone(UTC).replace(tzinfo=None)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        cap = self.settings.backoff_max_seconds
        if retry_after and retry_after.strip().isdigit():
            return min(cap, float(retry_after))
        return min(cap, self.settings.backoff_seconds * 2 ** (attempt - 1))


# ---- errors ----------------------------------------------------------------------------------
def crm_error(exc: BaseException, action: str, session: GuardedSession | None = None) -> CrmError:
    """A :class:`CrmError` for whatever simple-salesforce or requests raised while doing ``action``."""
    from simple_salesforce.exceptions import (
        SalesforceAuthenticationFailed,
        SalesforceError,
        SalesforceExpiredSession,
        SalesforceMalformedRequest,
        SalesforceOperationError,
        SalesforceRefusedRequest,
        SalesforceResourceNotFound,
    )

    if isinstance(exc, CrmError):
        return exc
    attempts = session.attempts if session else 1
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    timeout = session.settings.timeout_seconds if session else None
    if isinstance(exc, SalesforceAuthenticationFailed):
        code, message = error_detail(exc)
        return CrmError(
            f"Salesforce login failed while {action}: {message or code or 'no reason given'}.",
            "Check SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN (reset it "
            "in Salesforce: Settings > Reset My Security Token), and SALESFORCE_DOMAIN (login, test "
            "for a sandbox, or your My Domain).",
        )
    if isinstance(exc, SalesforceError) and not isinstance(exc, SalesforceAuthenticationFailed):
        code, message = error_detail(exc)
        hint = hint_for(code)
        if hint is not None:  # the code says what happened better than the status does
            return CrmError(
                f"Salesforce answered HTTP {exc.status} while {action}{tries} ({said(code, message)}).", hint
            )
    if isinstance(exc, SalesforceExpiredSession):
        code, message = error_detail(exc)
        return CrmError(
            f"Salesforce refused the credentials while {action} (HTTP 401 {said(code, message)}).",
            "The access token expired or is wrong: get a new one and set SALESFORCE_ACCESS_TOKEN "
            "(and check SALESFORCE_INSTANCE_URL names the org that issued it).",
        )
    if isinstance(exc, SalesforceRefusedRequest):
        code, message = error_detail(exc)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return CrmError(
                f"Salesforce refused the request while {action}: the org has used up its API "
                f"request limit (REQUEST_LIMIT_EXCEEDED: {message}).",
                "Everything committed so far is kept and the next run resumes from there. Run again "
                "once the rolling 24-hour usage has come down (Setup > System Overview shows it), or "
                "lower max_api_usage_percent so roe stops earlier next time.",
            )
        return CrmError(
            f"Salesforce refused the request while {action} (HTTP 403 {said(code, message)}).",
            "The user roe signs in as needs the API Enabled permission and read access to users, "
            "accounts, contacts, opportunities, tasks, events and account history (edit access to "
            "owners for apply).",
        )
    if isinstance(exc, SalesforceMalformedRequest):
        code, message = error_detail(exc)
        return CrmError(
            f"Salesforce rejected the request while {action} (HTTP 400 {said(code, message)}).",
            "Salesforce's words above say what it could not accept. Run again; if it persists, "
            "report them with the log (--log-file) of the run.",
        )
    if isinstance(exc, SalesforceResourceNotFound):
        code, message = error_detail(exc)
        return CrmError(
            f"Salesforce answered 'not found' while {action} ({said(code, message)}).",
            "Check SALESFORCE_INSTANCE_URL and api_version in the [salesforce] table of rules.toml.",
        )
    if isinstance(exc, SalesforceError):
        code, message = error_detail(exc)
        return CrmError(
            f"Salesforce answered HTTP {exc.status} while {action}{tries} ({said(code, message)}).",
            "Salesforce may be having trouble (see status.salesforce.com). Run again later: the next "
            "run resumes where this one stopped.",
        )
    if isinstance(exc, SalesforceOperationError):
        text = summarize_body(str(exc))
        return CrmError(
            f"A Salesforce Bulk API 2.0 job failed while {action}: {text}.",
            hint_for(code_in(text)) or "Run again later: the next run resumes where this one stopped. If it keeps failing, "
            "raise bulk_threshold in the [salesforce] table of rules.toml to stay on the REST API.",
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return CrmError(
            f"Could not verify Salesforce's TLS certificate while {action}: {exc}.",
            "Check SALESFORCE_INSTANCE_URL. For a test server or a TLS-inspecting proxy, point "
            "REQUESTS_CA_BUNDLE at the certificate authority to trust.",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return CrmError(
            f"Salesforce did not answer within {timeout:g} seconds while {action}{tries}.",
            "Run again later: the next run resumes where this one stopped. On a slow org or "
            "network, raise timeout_seconds in the [salesforce] table of rules.toml.",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return CrmError(
            f"Could not reach Salesforce while {action}{tries}: {exc}.",
            "Check SALESFORCE_INSTANCE_URL (or SALESFORCE_DOMAIN) and the network, then run again.",
        )
    if isinstance(exc, ValueError | KeyError | TypeError | IndexError | csv.Error):
        # Only library calls run inside translate_errors: these mean an answer we cannot read.
        return CrmError(
            f"Salesforce sent an answer roe could not read while {action} "
            f"({type(exc).__name__}: {str(exc)[:200]}).",
            "Run again; if it persists, check that SALESFORCE_INSTANCE_URL points at the org's API "
            "and not at a login page or a proxy.",
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return CrmError(f"The call to Salesforce failed while {action}: {exc}.", "Run again later.")
    raise exc


@contextlib.contextmanager
def translate_errors(action: str, session: GuardedSession | None = None) -> Iterator[None]:
    """Turn library errors raised inside the block into a redacted :class:`CrmError`."""
    try:
        yield
    except CrmError:
        raise
    except Exception as exc:  # noqa: BLE001 - crm_error re-raises what it does not know
        error = crm_error(exc, action, session)
        log.info("Salesforce error while %s: %s", action, redact(f"{type(exc).__name__}: {exc}"))
        raise error from None


# ---- the client ------------------------------------------------------------------------------
class SalesforceClient:
    """The few Salesforce calls the connector makes, each with its errors translated."""

    def __init__(self, settings: SalesforceSettings, credentials: Credentials, sleep=time.sleep):
        self.settings = settings
        self.credentials = credentials
        self.session = GuardedSession(settings, sleep=sleep)
        self._sf: Salesforce | None = None

    @property
    def sf(self):
        """The simple-salesforce client, signed in on first use."""
        if self._sf is None:
            from simple_salesforce import Salesforce

            creds = self.credentials
            with translate_errors("signing in to Salesforce", self.session):
                if creds.access_token:
                    self._sf = Salesforce(
                        session_id=creds.access_token, instance_url=creds.instance_url,
                        version=self.settings.api_version, session=self.session,
                    )
                else:
                    self._sf = Salesforce(
                        username=creds.username, password=creds.password,
                        security_token=creds.security_token, domain=creds.domain,
                        version=self.settings.api_version, session=self.session,
                    )
                    # simple-salesforce would sign in again on a 401 by itself, up to four times
                    # a call, dropping the call's headers and leaving the new session unregistered
                    # as a secret: _rest does it instead, once.
                    self._sf._salesforce_login_partial = None
            register_secret(self._sf.session_id)
        return self._sf

    @property
    def calls(self) -> int:
        return self.session.calls

    @property
    def usage(self) -> tuple[int, int] | None:
        return self.session.usage

    @property
    def server_time(self) -> datetime | None:
        return self.session.server_time

    def _query_headers(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}

    def _rest(self, action: str, call: Callable[[Salesforce], Any]) -> Any:
        """``call(sf)`` with its errors translated. A session signed in with a username and
        password can expire in the middle of a long sync: on a 401, sign in again once and
        repeat the call (a 401 means Salesforce did nothing with it)."""
        from simple_salesforce.exceptions import SalesforceExpiredSession

        with translate_errors(action, self.session):
            try:
                return call(self.sf)
            except SalesforceExpiredSession:
                if self.credentials.access_token or not self.credentials.password:
                    raise  # a token cannot be renewed here: crm_error says to get a new one
                log.info("Salesforce session expired while %s; signing in again", action)
                self._sf = None
        sf = self.sf  # signs in again, its own errors translated
        with translate_errors(action, self.session):
            try:
                return call(sf)
            except SalesforceExpiredSession as exc:
                code, message = error_detail(exc)
                raise CrmError(
                    f"Salesforce refused a session it had just opened while {action} "
                    f"(HTTP 401 {said(code, message)}).",
                    "Check in Salesforce that the user of SALESFORCE_USERNAME is active and not "
                    "frozen, and that its profile's session and login IP settings let it use the API.",
                ) from None

    def query_pages(
        self, soql: str, *, include_deleted: bool, action: str
    ) -> Generator[dict[str, Any], None, None]:
        """The pages of a SOQL query (``queryAll`` with deleted records), one call each."""
        page = self._rest(action, lambda sf: _query_page(
            sf.query(soql, include_deleted=include_deleted, headers=self._query_headers())))
        while True:
            yield page
            if page["done"]:
                return
            page = self._rest(action, functools.partial(self._query_more, page["nextRecordsUrl"]))

    def _query_more(self, url: str, sf: Salesforce) -> dict[str, Any]:
        return _query_page(sf.query_more(url, identifier_is_url=True, headers=self._query_headers()))

    def bulk_query(self, sobject: str, soql: str, *, include_deleted: bool, action: str) -> Iterator[str]:
        """The CSV result pages of one Bulk API 2.0 query job."""
        handler = getattr(self.sf.bulk2, sobject)
        run = handler.query_all if include_deleted else handler.query
        with translate_errors(action, self.session):
            pages = run(soql, max_records=self.settings.bulk_page_size,
                        wait=self.settings.bulk_poll_seconds)
        while True:
            with translate_errors(action, self.session):
                try:
                    text = next(pages)
                except StopIteration:
                    return
            yield text

    def update_collection(self, records: list[dict], *, action: str) -> list[dict]:
        """One sObject Collections PATCH (at most 200 records, ``allOrNone`` false)."""
        answer = self._rest(action, lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}))
        if not isinstance(answer, list) or len(answer) != len(records):
            raise CrmError(
                f"Salesforce answered {action} with {len(answer) if isinstance(answer, list) else 'no'} "
                f"results for {len(records)} records.",
                "Nothing can be said about these records: re-read their owners before trying again.",
            )
        return answer

    def bulk_update(self, sobject: str, records: list[dict], *, action: str) -> list[dict[str, list[dict]]]:
        """One Bulk API 2.0 ingest job per 100 MB of records; the per-record results of each."""
        handler = getattr(self.sf.bulk2, sobject)
        with translate_errors(action, self.session):
            jobs = handler.update(records=records, wait=self.settings.bulk_poll_seconds)
        results = []
        for job in jobs:
            job_id = job["job_id"]
            with translate_errors(action, self.session):
                results.append({
                    "successful": _csv_rows(handler.get_successful_records(job_id)),
                    "failed": _csv_rows(handler.get_failed_records(job_id)),
                    "unprocessed": _csv_rows(handler.get_unprocessed_records(job_id)),
                })
        return results

    def close(self) -> None:
        self.session.close()


def _query_page(page) -> dict[str, Any]:
    """A query answer, checked: a ValueError when it is no query result page at all."""
    if not isinstance(page, Mapping) or not isinstance(page.get("records"), list) or "done" not in page:
        raise ValueError("the answer is not a query result page")
    if not page["done"] and not isinstance(page.get("nextRecordsUrl"), str):
        raise ValueError("the query result page says there is more but not where")
    return dict(page)


def _csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text or "")))
