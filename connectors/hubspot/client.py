"""HTTP to HubSpot through hubspot-api-client, paced, retried, counted and redacted.

The library builds a new client and connection pool on every ``hs.crm...._api`` access, sets no
timeout, and hides 429s on GETs behind urllib3's retry. So :class:`HubSpotClient` builds each API
object once, turns urllib3's retries off (every HTTP call is then one call roe counts and paces),
passes ``_request_timeout`` on every call, and retries itself: 429s after ``Retry-After``, 5xx and
network errors with exponential backoff, POSTs (search, batch) included. Responses are read as
raw JSON (``_preload_content=False``), which is faster than the generated models and does not
turn an unexpected 2xx into ``None``.

When HubSpot keeps refusing, or refuses the token, it raises :class:`~roe_cli.shared.errors.CrmError`
(exit code 3) with a message that never holds the token.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from roe_cli.shared.crmtext import summarize_body
from roe_cli.shared.errors import CrmError, redact, register_secret
from roe_cli.shared.net import unreachable

from .ratelimit import Pacer
from .settings import HubSpotSettings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.hubapi.com"
SCOPES_HINT = (
    "Give the private app the scopes roe needs: crm.objects.companies, crm.objects.contacts and "
    "crm.objects.deals (read, and write for apply), crm.objects.owners.read, and the engagement "
    "read scopes (sales-email-read for e-mails)."
)


class HubSpotApiError(CrmError):
    """HubSpot answered with an error roe does not retry (a 4xx other than 401, 403, 429)."""

    def __init__(self, what: str, todo: str | None = None, *, status: int, body: Any = None):
        super().__init__(what, todo)
        self.status = status
        self.body = body


def error_message(body: Any) -> str:
    """HubSpot's own words from an error body, short; an HTML page (maintenance, a proxy) by
    its title."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return redact(summarize_body(body))
    if isinstance(body, dict):
        message = body.get("message") or body.get("category") or json.dumps(body)[:300]
        return redact(str(message)[:300])
    return ""


def give_up_hint(status: int) -> str:
    """What to do when retries did not help, by the last answer's status (0: no answer)."""
    if status == 429:
        return ("HubSpot kept rate-limiting roe: lower requests_per_10s (or searches_per_second) in "
                "the [hubspot] table of rules.toml, or run when other apps of the portal are quieter. "
                "Everything committed so far is kept and the next run resumes from there.")
    if status >= 500:
        return ("HubSpot is having trouble (see status.hubspot.com). Run again later: everything "
                "committed so far is kept and the next run resumes from there.")
    return ("Check HUBSPOT_BASE_URL and the network (a proxy or a firewall), then run again: "
            "the next run resumes from what was committed.")


def _json_body(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


class HubSpotClient:
    """The HubSpot calls roe makes; each method returns the parsed JSON of one HTTP call."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        settings: HubSpotSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        from hubspot import HubSpot

        register_secret(token)
        self.settings = settings or HubSpotSettings()
        self.host = (base_url or DEFAULT_BASE_URL).rstrip("/")
        no_retries = urllib3.Retry(
            total=0, connect=0, read=0, redirect=0, status=0, other=0,
            raise_on_redirect=False, raise_on_status=False,
        )
        extra = {}
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        if ca_bundle:  # a private CA (a TLS proxy, a test server), as requests would trust it
            extra["ssl_ca_cert"] = ca_bundle
        hs = HubSpot(access_token=token, host=self.host, retry=no_retries, **extra)
        # Each access builds a new ApiClient and pool: take each API object once.
        self._search_api = hs.crm.objects.search_api
        self._batch_api = hs.crm.objects.batch_api
        self._basic_api = hs.crm.objects.basic_api
        self._owners_api = hs.crm.owners.owners_api
        self._associations_api = hs.crm.associations.v4.batch_api
        self._apis = [self._search_api, self._batch_api, self._basic_api, self._owners_api,
                      self._associations_api]
        self._sleep = sleep
        self.pacer = Pacer(self.settings.requests_per_10s, self.settings.searches_per_second,
                           clock=clock, sleep=sleep)
        self._timeout = (self.settings.connect_timeout_seconds, self.settings.timeout_seconds)
        self.calls = 0  # every HTTP request sent, retries included
        self.retries = 0
        self.answered = False  # HubSpot has sent an HTTP answer (any status) this run
        self.server_time: datetime | None = None  # HubSpot's clock at the last response
        self.first_server_time: datetime | None = None  # ... and at the first one
        self.daily_limit: int | None = None  # from X-HubSpot-RateLimit-Daily(-Remaining)
        self.daily_remaining: int | None = None

    # ---- the calls -------------------------------------------------------------------------
    def search(self, hs_type: str, body: dict) -> dict:
        """``POST /crm/v3/objects/{type}/search``: up to 200 records, 10,000 in all."""
        return self._call(
            f"POST /crm/v3/objects/{hs_type}/search",
            lambda **kw: self._search_api.do_search(hs_type, body, **kw),
            search=True,
        )[1]

    def list_archived(self, hs_type: str, after: str | None = None) -> dict:
        """``GET /crm/v3/objects/{type}?archived=true``: archived records, 100 a page."""
        kwargs: dict = {"limit": 100, "archived": True, "properties": ["hs_object_id"]}
        if after:
            kwargs["after"] = after
        return self._call(
            f"GET /crm/v3/objects/{hs_type}?archived=true",
            lambda **kw: self._basic_api.get_page(hs_type, **kwargs, **kw),
        )[1]

    def batch_read(self, hs_type: str, body: dict) -> dict:
        """``POST /crm/v3/objects/{type}/batch/read``; 207 (some ids missing) is a success."""
        return self._call(
            f"POST /crm/v3/objects/{hs_type}/batch/read",
            lambda **kw: self._batch_api.read(hs_type, body, **kw),
        )[1]

    def read_live(self, hs_type: str, ids: list[str], properties: list[str],
                  batch: int) -> dict[str, dict]:
        """``{id: properties}`` of the records among ``ids`` that exist and are not archived, by
        batch reads of ``batch`` ids (a batch where none exists answers 404: nothing of it)."""
        out: dict[str, dict] = {}
        for start in range(0, len(ids), batch):
            body = {"inputs": [{"id": i} for i in ids[start : start + batch]],
                    "properties": properties, "archived": False}
            try:
                data = self.batch_read(hs_type, body)
            except HubSpotApiError as exc:
                if exc.status == 404:  # none of them exists
                    continue
                raise
            for record in data.get("results") or []:
                if not record.get("archived"):
                    out[str(record["id"])] = record.get("properties") or {}
        return out

    def batch_update(self, hs_type: str, inputs: list[dict]) -> tuple[int, dict]:
        """``POST /crm/v3/objects/{type}/batch/update``: (200 or 207, body)."""
        return self._call(
            f"POST /crm/v3/objects/{hs_type}/batch/update",
            lambda **kw: self._batch_api.update(hs_type, {"inputs": inputs}, **kw),
            write=True,
        )

    def owners(self, archived: bool, after: str | None = None, limit: int = 100) -> dict:
        """``GET /crm/v3/owners/``: active owners, or (``archived``) only the archived ones."""
        kwargs: dict = {"limit": limit, "archived": archived}
        if after:
            kwargs["after"] = after
        return self._call(
            f"GET /crm/v3/owners/?archived={str(archived).lower()}",
            lambda **kw: self._owners_api.get_page(**kwargs, **kw),
        )[1]

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict:
        """``POST /crm/v4/associations/{from}/{to}/batch/read`` for up to 1,000 ids."""
        body = {"inputs": [{"id": i} for i in ids]}
        return self._call(
            f"POST /crm/v4/associations/{from_type}/{to_type}/batch/read",
            lambda **kw: self._associations_api.get_page(from_type, to_type, body, **kw),
        )[1]

    def close(self) -> None:
        for api in self._apis:
            try:
                api.api_client.rest_client.pool_manager.clear()
            except AttributeError:  # pragma: no cover - a library layout change
                pass

    # ---- the machinery ---------------------------------------------------------------------
    def _call(self, what: str, invoke: Callable[..., Any], search: bool = False,
              write: bool = False) -> tuple[int, dict]:
        """One call, retried on network errors, 429 and 5xx. A ``write`` that reached HubSpot
        but got no whole answer (a timeout, a connection dropped mid-answer) is not sent again:
        HubSpot may have carried it out, and a re-run of the apply checks before it writes."""
        s = self.settings
        attempt = 0
        last_status = 0  # the last HTTP status that failed (0: no answer at all)
        while True:
            self.pacer.acquire(search=search)
            self.calls += 1
            raw: bytes | None = None  # the answer's body, once read whole
            try:
                resp = invoke(_request_timeout=self._timeout, _preload_content=False)
            except Exception as exc:  # noqa: BLE001 - sorted by status below
                status = getattr(exc, "status", None)
                if _tls_failure(exc):
                    raise CrmError(
                        f"Could not make a trusted TLS connection to {self.host} ({what}).",
                        "Check HUBSPOT_BASE_URL; for a server with a private certificate "
                        "authority, point REQUESTS_CA_BUNDLE at that authority's certificate.",
                    ) from None
                if status is None and not isinstance(exc, urllib3.exceptions.HTTPError | OSError):
                    raise
                if status is None or status == 0:
                    self._check_reachable(what, exc, attempt)
                else:
                    self.answered = True
                if write and not status and _maybe_sent(exc):
                    raise self._unconfirmed(what, exc) from None
                last_status = status or 0
                wait, reason = self._verdict(what, exc, last_status, attempt)
            else:
                self.answered = True
                try:
                    raw = resp.data
                except (urllib3.exceptions.HTTPError, OSError) as exc:  # cut short mid-answer
                    if write:
                        raise self._unconfirmed(what, exc) from None
                    last_status = 0
                    wait, _ = self._verdict(what, exc, 0, attempt)
                    reason = f"an answer cut short ({type(exc).__name__})"
                finally:
                    resp.release_conn()
            if raw is not None:
                self._note_time(resp.headers)
                self._note_limits(resp.headers)
                try:
                    payload = json.loads(raw) if raw else {}
                except ValueError as exc:
                    said = redact(summarize_body(raw, 120)) if raw else ""
                    raise CrmError(
                        f"HubSpot sent a response roe cannot read for {what} "
                        f"(HTTP {resp.status}{': ' + said if said else ''}).",
                        "Check HUBSPOT_BASE_URL: it must point at the HubSpot API, not at a login "
                        "page or a proxy.") from exc
                return resp.status, payload
            attempt += 1
            if attempt > s.max_retries:
                verb = "kept refusing" if last_status == 429 else "kept failing"
                raise CrmError(f"HubSpot {verb} {what} ({reason}); gave up after {attempt} attempts.",
                               give_up_hint(last_status))
            self.retries += 1
            log.warning("HubSpot %s on %s; retrying in %.1fs (attempt %d of %d)",
                        reason, what, wait, attempt + 1, s.max_retries + 1)
            if wait > 0:
                self._sleep(wait)

    def _check_reachable(self, what: str, exc: Exception, attempt: int) -> None:
        """Raise at once when nothing answers at the host (connection refused, unknown name):
        before HubSpot ever answered this run, retrying with rate-limit waits cannot help. Once
        it has answered, a refusal may be a blip: two retries, then the same error."""
        refused = unreachable(exc)
        if refused is None or (self.answered and attempt < min(2, self.settings.max_retries)):
            return
        raise CrmError(
            f"Cannot reach HubSpot at {self.host} ({refused}) for {what}.",
            "Check HUBSPOT_BASE_URL (unset means https://api.hubapi.com), the network, a proxy "
            "or firewall between roe and HubSpot, then run again.",
        )

    @staticmethod
    def _unconfirmed(what: str, exc: BaseException) -> CrmError:
        return CrmError(
            f"HubSpot did not confirm {what} ({type(exc).__name__}): it may have carried out some "
            "or all of it, so roe did not send it again.",
            "Run the same `roe apply` again: it reads the owners in HubSpot first and sends only "
            "what is not there yet.",
        )

    def _verdict(self, what: str, exc: Exception, status: int, attempt: int) -> tuple[float, str]:
        """How long to wait before retrying ``exc``, or raise when retrying cannot help."""
        s = self.settings
        backoff = min(s.max_wait_seconds, s.backoff_seconds * (2 ** attempt))
        headers = getattr(exc, "headers", None) or {}
        self._note_time(headers)
        body = _json_body(getattr(exc, "body", None))
        if status == 0:  # no HTTP answer: connection refused, reset, timed out
            return backoff, f"network error ({type(exc).__name__})"
        if status == 429:
            policy = str(body.get("policyName", "")) if isinstance(body, dict) else ""
            if policy.upper() == "DAILY":
                raise CrmError(
                    "HubSpot's daily API limit for this portal is used up (429 DAILY).",
                    "Run again after midnight in the portal's time zone, or raise the limit.",
                )
            retry_after = _seconds(headers.get("Retry-After"))
            wait = retry_after if retry_after is not None else max(1.0, backoff)
            return min(wait, s.max_wait_seconds), "429 Too Many Requests"
        if status >= 500:
            said = error_message(body)
            return backoff, f"{status} server error" + (f": {said}" if said else "")
        message = error_message(body)
        if status == 401:
            raise CrmError(
                f"HubSpot refused the access token (401 Unauthorized): {message}",
                "Set HUBSPOT_ACCESS_TOKEN to a current private-app access token of this portal.",
            )
        if status == 403:
            raise CrmError(f"HubSpot refused {what} (403 Forbidden): {message}", SCOPES_HINT)
        raise HubSpotApiError(f"HubSpot answered {status} to {what}: {message}",
                              status=status, body=body)

    def _note_limits(self, headers) -> None:
        try:
            limit = headers.get("X-HubSpot-RateLimit-Daily")
            remaining = headers.get("X-HubSpot-RateLimit-Daily-Remaining")
            if limit is not None and remaining is not None:
                self.daily_limit, self.daily_remaining = int(limit), int(remaining)
        except (TypeError, ValueError):
            pass

    def _note_time(self, headers) -> None:
        value = headers.get("Date") if headers else None
        if not value:
            return
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        self.server_time = when
        if self.first_server_time is None:
            self.first_server_time = when


def _maybe_sent(exc: BaseException) -> bool:
    """Whether the request may have reached HubSpot: anything but a failure to connect."""
    reason = getattr(exc, "reason", None) or exc
    return not isinstance(reason, urllib3.exceptions.NewConnectionError
                          | urllib3.exceptions.ConnectTimeoutError | ConnectionRefusedError)


def _tls_failure(exc: BaseException) -> bool:
    """A certificate or TLS handshake problem: retrying will not fix it."""
    if isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError):
        return True
    reason = getattr(exc, "reason", None)
    if isinstance(reason, urllib3.exceptions.SSLError | ssl.SSLError):
        return True
    return getattr(exc, "status", None) == 0 and "SSLError" in str(reason or "")


def _seconds(value) -> float | None:
    """A ``Retry-After`` value in seconds (HubSpot sends seconds; dates are allowed too)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo or UTC)).total_seconds())
