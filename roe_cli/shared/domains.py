"""Normalizing websites and e-mail addresses to the domains the duplicate-account rule compares."""

from __future__ import annotations

import re

DEFAULT_FREE_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def normalize_domain(website: str | None) -> str | None:
    """The bare host of a website: lower-case, no scheme, ``www.``, port, path, query or user.

    >>> normalize_domain("HTTPS://www.Acme.com:8443/about?x=1")
    'acme.com'
    >>> normalize_domain("acme.co.uk/") , normalize_domain("  ") , normalize_domain(None)
    ('acme.co.uk', None, None)
    """
    if not website:
        return None
    host = website.strip().lower()
    host = _SCHEME.sub("", host)
    host = re.split(r"[/?#\s]", host, maxsplit=1)[0]
    host = host.rsplit("@", 1)[-1]  # user:password@host
    host = host.split(":", 1)[0]  # port
    host = host.strip(".")
    if host.startswith("www."):
        host = host[4:]
    if not host or "." not in host:
        return None
    return host


def email_domain(email: str | None) -> str | None:
    """The lower-case domain of an e-mail address, or None when it has none.

    >>> email_domain(" Ana@Mail.Example.COM ")
    'mail.example.com'
    """
    if not email or "@" not in email:
        return None
    domain = email.strip().rsplit("@", 1)[1].lower().strip(".")
    return domain or None
