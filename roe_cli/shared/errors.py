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


_SECRET_PATTERNS = [
    # Bearer and OAuth headers, Salesforce session ids (00D...!...), HubSpot private-app tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=!-]{8,}"),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"),
    re.compile(r"\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}", re.IGNORECASE),
    re.compile(r"(?i)((?:access_token|session_id|sessionid|password|security_token|token)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
]

_registered_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a credential so that :func:`redact` removes it from any text roe prints."""
    if value and len(value) >= 4:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    """Remove credentials from ``text``: every registered secret and anything token-shaped."""
    for secret in sorted(_registered_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text
