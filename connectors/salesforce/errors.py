"""What went wrong with Salesforce, in words: :func:`crm_error` turns whatever simple-salesforce
or requests raised into a :class:`CrmError` that says what happened and what to do (the advice
fits the error code, see :mod:`.hints`), with every credential redacted; :func:`translate_errors`
applies it to a block.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from roe_cli.shared.crmtext import summarize_body
from roe_cli.shared.errors import CrmError, redact
from roe_cli.shared.net import unreachable

from .hints import code_in, error_detail, hint_for, said

if TYPE_CHECKING:
    from .client import GuardedSession

log = logging.getLogger("connectors.salesforce.client")


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
    refused = unreachable(exc)
    if refused is not None:
        host = urlsplit(getattr(getattr(exc, "request", None), "url", None) or "").netloc
        at = f" at {host}" if host else ""
        return CrmError(
            f"Cannot reach Salesforce{at} ({refused}) while {action}{tries}.",
            "Check SALESFORCE_INSTANCE_URL (or SALESFORCE_DOMAIN), the network, a proxy or "
            "firewall between roe and Salesforce, then run again.",
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return CrmError(
            f"Salesforce's answers were cut short while {action}{tries} (the connection dropped "
            "in the middle of an answer).",
            "Run again: the next run resumes where this one stopped. If it keeps happening, check "
            "the network or proxy between roe and Salesforce.",
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
