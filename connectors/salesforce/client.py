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

from roe_cli.shared.errors import ConfigError, CrmError, register_secret
from roe_cli.shared.net import unreachable

from .errors import translate_errors
from .hints import error_detail, said
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
_WRITES = frozenset({"PATCH", "PUT", "DELETE"})  # sObject Collections, Bulk ingest uploads


def _is_write(method: str, path: str) -> bool:
    """A call that changes records: sObject Collections (a POST there creates), ingest uploads."""
    return method.upper() in _WRITES or (method.upper() == "POST"
                                         and path.rstrip("/").endswith("composite/sobjects"))


def _maybe_sent(exc: BaseException) -> bool:
    """Whether a failed request may have reached Salesforce: anything but a failure to connect."""
    return not isinstance(exc, requests.exceptions.ConnectTimeout) and not (
        isinstance(exc, requests.exceptions.ConnectionError)
        and not isinstance(exc, requests.exceptions.ReadTimeout)
        and "NewConnectionError" in repr(exc))


class GuardedSession(requests.Session):
    """A requests session with a timeout on every call, retries, a call count and a quota guard."""

    def __init__(self, settings: SalesforceSettings, sleep=time.sleep):
        super().__init__()
        self.settings = settings
        self.calls = 0
        self.usage: tuple[int, int] | None = None  # (used, limit) from Sforce-Limit-Info
        self.server_time: datetime | None = None  # the Date header of the latest answer (naive UTC)
        self.attempts = 0  # attempts of the latest call, for error messages
        self.answered = False  # Salesforce has sent an HTTP answer (any status) this run
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
            # ChunkedEncodingError: the answer was cut short (a dropped connection mid-body)
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if attempt > self.settings.retries or (
                        _is_write(method, path) and _maybe_sent(exc)):
                    # A write that may have reached Salesforce is never sent twice: the apply
                    # stops, and its re-run reads the owners before it writes.
                    raise
                # nothing listening, or no such host, before Salesforce ever answered: asking
                # again with waits cannot help; once it has answered, a refusal may be a blip
                if unreachable(exc) and (not self.answered or attempt > 2):
                    raise
                wait = self._backoff(attempt, None)
                log.warning("%s %s: %s; retry %d of %d in %.1fs", method, path,
                            type(exc).__name__, attempt, self.settings.retries, wait)
                self._sleep(wait)
                continue
            self.answered = True
            self._observe(response)
            log.debug("%s %s -> %s in %.2fs", method, path, response.status_code, time.monotonic() - started)
            if not self._retryable(path, response.status_code) or attempt > self.settings.retries \
                    or (method.upper() == "POST" and path.rstrip("/").endswith("composite/sobjects")):
                return response  # a create that failed may have created: never sent twice
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

    def create_collection(self, records: list[dict], *, action: str) -> list[dict]:
        """One sObject Collections POST: create at most 200 records, ``allOrNone`` false."""
        answer = self._rest(action, lambda sf: sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}))
        return self._one_each(answer, len(records), action)

    def delete_collection(self, ids: list[str], *, action: str) -> list[dict]:
        """One sObject Collections DELETE: delete at most 200 records, ``allOrNone`` false."""
        answer = self._rest(action, lambda sf: sf.restful(
            "composite/sobjects", method="DELETE",
            params={"ids": ",".join(ids), "allOrNone": "false"}))
        return self._one_each(answer, len(ids), action)

    @staticmethod
    def _one_each(answer: Any, count: int, action: str) -> list[dict]:
        if not isinstance(answer, list) or len(answer) != count:
            raise CrmError(
                f"Salesforce answered {action} with "
                f"{len(answer) if isinstance(answer, list) else 'no'} results for {count} records.",
                "Nothing can be said about these records: run `roe apply` again, it reads them "
                "before it writes.")
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

    def limits(self) -> dict:
        """``GET limits/``: the org's limits (the daily API requests among them), one call."""
        sf = self.sf
        with translate_errors("reading the org's limits", self.session):
            answer = sf.limits()
        if "DailyApiRequests" in (answer or {}):
            daily = answer["DailyApiRequests"]
            with contextlib.suppress(KeyError, TypeError, ValueError):
                limit, remaining = int(daily["Max"]), int(daily["Remaining"])
                self.session.usage = (limit - remaining, limit)
        return answer

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
