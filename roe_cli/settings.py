"""Where roe finds its database and its rules: options first, then the environment, then defaults."""

from __future__ import annotations

import os
from pathlib import Path

from .shared.errors import register_url_secrets

DEFAULT_DB = "roe.db"
DEFAULT_RULES = "rules.toml"


def database_url(value: str | None) -> str:
    """Turn ``--db`` / ``ROE_DB`` (a file path or any SQLAlchemy URL) into an SQLAlchemy URL.

    >>> database_url("postgresql+psycopg://roe@localhost/roe")
    'postgresql+psycopg://roe@localhost/roe'
    """
    if value is None:
        value = os.environ.get("ROE_DB")
    if value is not None and not value.strip():
        from .shared.errors import UsageError

        raise UsageError("--db / ROE_DB is empty, so there is no mirror to work on.",
                         "Give the mirror's path or URL (e.g. --db roe.db), or leave the option "
                         "out for ./roe.db.")
    value = value or DEFAULT_DB
    if "://" in value:
        register_url_secrets(value)  # its password never shows in a message or a log
        return value
    return "sqlite:///" + str(Path(value).expanduser().resolve())


def rules_path(value: str | Path | None) -> Path:
    """The rules file from ``--rules`` / ``ROE_RULES``, default ``rules.toml`` in the current folder."""
    return Path(value or os.environ.get("ROE_RULES") or DEFAULT_RULES).expanduser()


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or None for another database or an in-memory one."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url in (prefix, prefix + ":memory:"):
        return None
    return Path(url[len(prefix):].split("?", 1)[0])
