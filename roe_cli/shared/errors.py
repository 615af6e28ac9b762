"""Errors that roe expects, each with what went wrong, what to do, and the exit code it means.

The CLI prints these without a traceback. Anything else is a bug: a short paragraph that names
the log file holding its traceback, and exit code 70.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FINDINGS = 1  # findings at or above --fail-on; for apply, records that failed or drifted
EXIT_USAGE = 2  # a usage or configuration error
EXIT_CRM = 3  # the CRM could not be reached or refused us
EXIT_LOCKED = 4  # another roe run holds the mirror
EXIT_INTERNAL = 70  # a bug in roe (EX_SOFTWARE): one paragraph on stderr, the traceback in the log


class RoeError(Exception):
    """An expected failure: ``what`` went wrong, ``todo`` says what the user can do about it."""

    exit_code = EXIT_USAGE

    def __init__(self, what: str, todo: str | None = None):
        self.what = redact(what)
        self.todo = redact(todo) if todo else None
        super().__init__(self.what)

    def __str__(self) -> str:
        return self.what if not self.todo else f"{self.what}\n{self.todo}"


class ConfigError(RoeError):
    """A bad setting, rules file, plan or input file."""


class UsageError(RoeError):
    """A command used wrongly."""


class CrmError(RoeError):
    """The CRM could not be reached, or refused us (auth, limits, server errors)."""

    exit_code = EXIT_CRM


class LockedError(RoeError):
    """Another roe run is working on this mirror."""

    exit_code = EXIT_LOCKED


# A value that looks like a credential, not a word: 8+ characters of a token's alphabet with a
# letter and a digit in them (``Session``, ``expired`` or ``invalid`` are words; ``AQ0AQH5kz0_...``
# or ``a1b2c3d4`` are not).
_TOKEN_SHAPED = r"(?=[^\s\"'&,;}]*[0-9])(?=[^\s\"'&,;}]*[A-Za-z])[A-Za-z0-9._~+/=!%$#*^-]{8,}"
# The names a credential goes by in a form, a query string, a header or JSON. Never part of a longer
# word: the CRM's ``INVALID_SESSION_ID: Session expired`` names an error, not a session id.
_KEYS = (r"(?<![A-Za-z0-9_])(?:access_token|refresh_token|client_secret|session_id|sessionid|"
         r"password|passwd|security_token|api_key|apikey|hapikey|token)")

_SECRET_PATTERNS = [
    # A password in a URL (``postgresql://roe:S3cret@host/db``): everything between the user's
    # colon and the last ``@`` before the host, as SQLAlchemy reads it.
    re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?:[^\s@]|@(?=[^\s@]*@))+(@)"),
    # Bearer and OAuth headers, Salesforce session ids (00D...!...), HubSpot private-app tokens
    re.compile(r"(?i)(bearer\s+)" + _TOKEN_SHAPED),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"),
    re.compile(r"\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}", re.IGNORECASE),
    # ``password=...`` in a form or a query string: machine text, whatever the value.
    re.compile(r"(?i)(" + _KEYS + r"=)[^\s\"'&,;}]+"),
    # ``"access_token": "..."`` in JSON: a quoted key, a quoted value.
    re.compile(r"(?i)(\"" + _KEYS + r"\"\s*:\s*\")[^\"]+(\")"),
    # ``token: ...`` in prose: only a token-shaped value, so the CRM's own words stay.
    re.compile(r"(?i)(" + _KEYS + r"[\"']?\s*:\s*[\"']?)" + _TOKEN_SHAPED),
]

_registered_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a credential so that :func:`redact` removes it from any text roe prints."""
    if value and len(value) >= 4:
        _registered_secrets.add(value)


def register_url_secrets(url: str) -> None:
    """Register the password of a database URL, as written and percent-decoded.

    An unencoded ``@`` makes the password ambiguous (SQLAlchemy ends it at the first ``@`` and
    takes the rest for the host): every ``@``-separated piece is registered too.
    """
    from urllib.parse import unquote

    match = _URL_PASSWORD.match(url.strip())
    if match:
        password = match.group(1)
        for piece in {password, *password.split("@")}:
            register_secret(piece)
            register_secret(unquote(piece))


# scheme://user:PASSWORD@host..., the password up to the last "@" (SQLAlchemy's reading).
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:(.+)@[^@]*$")


def redact(text: str) -> str:
    """Remove credentials from ``text``: every registered secret, passwords in URLs and values
    shaped like tokens. The CRM's own words stay (``INVALID_SESSION_ID: Session expired``)."""
    for secret in sorted(_registered_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(lambda m: m.group(1) + "***" + m.group(2), text)
        elif pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text
