"""What Salesforce said in an error answer, and what to do about it by its ``errorCode``.

A hint must fit its error: the field settings of ``[salesforce]`` are worth checking only when
Salesforce says a field (or an object) is wrong, not when a Transaction Security policy, a Bulk
API limit or an expired query cursor stopped the request. Codes not listed here get the advice
of their HTTP status in ``client.crm_error``.
"""

from __future__ import annotations

import re

from roe_cli.shared.crmtext import summarize_body

# Salesforce named a field, an object or the query's shape: a setting may name something wrong.
FIELD_HINT = (
    "Check the field settings in the [salesforce] table of rules.toml (lifecycle_stage_field, "
    "country_field, state_field, user_team_field, contact_lifecycle_stage_field, team_fields) "
    "against the org, "
    "and that the user roe signs in as can see those fields."
)
FIELD_CODES = frozenset({
    "INVALID_FIELD", "INVALID_TYPE", "MALFORMED_QUERY", "INVALID_QUERY_FILTER_OPERATOR",
    "INVALID_FIELD_FOR_INSERT_UPDATE", "NO_SUCH_COLUMN",
})

CODE_HINTS: dict[str, str] = {
    "TXN_SECURITY_METERING_ERROR": (
        "A Transaction Security policy of the org blocked the request. Ask a Salesforce admin to "
        "check Setup > Transaction Security Policies for the user roe signs in as, then run again: "
        "everything committed so far is kept."
    ),
    "LIMIT_EXCEEDED": (
        "The org reached one of Salesforce's limits (for Bulk API 2.0: jobs or batches in 24 "
        "hours, or jobs running at once). Everything committed so far is kept and the next run "
        "resumes from there: run again later, or raise bulk_threshold in the [salesforce] table "
        "of rules.toml so large pulls stay on the REST API."
    ),
    "INVALID_QUERY_LOCATOR": (
        "A query cursor expired before roe asked for its next page (Salesforce drops a cursor "
        "left idle for about 15 minutes, and keeps only a few per user). Run again: the sync "
        "resumes from the last page it committed. If it recurs, check that no other job signs in "
        "as the same user and opens many queries at once."
    ),
    "QUERY_TIMEOUT": (
        "The query ran too long on Salesforce's side. Run again (the sync resumes where it "
        "stopped); if it recurs, lower page_size in the [salesforce] table of rules.toml."
    ),
    "SERVER_UNAVAILABLE": (
        "Salesforce is busy or in maintenance (see status.salesforce.com). Run again later: the "
        "next run resumes where this one stopped."
    ),
}
for _code in FIELD_CODES:
    CODE_HINTS[_code] = FIELD_HINT

_CODE_IN_TEXT = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")


def hint_for(code: str | None) -> str | None:
    """The hint for an ``errorCode``, or None when the code has none of its own."""
    return CODE_HINTS.get(code or "")


def code_in(text: str) -> str | None:
    """The first known ``errorCode`` named in a text (a failed Bulk job's errorMessage)."""
    for match in _CODE_IN_TEXT.finditer(text or ""):
        if match.group(1) in CODE_HINTS:
            return match.group(1)
    return None


def error_detail(exc) -> tuple[str | None, str]:
    """The errorCode and message Salesforce put in an error answer."""
    content = getattr(exc, "content", None)
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), str(content[0].get("message") or "")
    if isinstance(content, dict):
        return content.get("errorCode") or content.get("error"), str(
            content.get("message") or content.get("error_description") or ""
        )
    return None, summarize_body(str(content or ""))


def said(code: str | None, message: str) -> str:
    """``CODE: message``, as much of it as Salesforce gave."""
    return ": ".join(part for part in (code, message) if part) or "no reason given"
