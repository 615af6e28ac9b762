"""The one clock and the one way roe writes and reads times.

The mirror stores naive UTC datetimes. Files (plans, approvals, exports, JSON output) carry them as
ISO 8601 text with a ``Z``. Times that users type (``--as-of``, ``--expires``) are ISO 8601 dates or
date-times, UTC when no offset is given.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from .errors import UsageError


def utcnow() -> datetime:
    """The current time as naive UTC, the mirror's convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_naive_utc(when: datetime) -> datetime:
    """``when`` in UTC without its tzinfo (a naive value is taken as UTC already)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when


def utc_text(when: datetime | None = None) -> str:
    """A UTC time as ``2026-11-01T09:00:00Z`` (whole seconds); now when ``when`` is None."""
    return as_naive_utc(when or utcnow()).replace(microsecond=0).isoformat() + "Z"


def iso_or_none(value: object) -> str | None:
    """A datetime as :func:`utc_text`, a date as ``YYYY-MM-DD``, anything else as ``str``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def parse_utc_text(value: str) -> datetime:
    """The naive UTC datetime of an ISO 8601 text such as :func:`utc_text` writes."""
    return as_naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def parse_as_of(value: str) -> datetime:
    """``--as-of`` as naive UTC. A date means its start (00:00 UTC).

    >>> parse_as_of("2026-01-31"), parse_as_of("2026-01-31T10:00:00+02:00")
    (datetime.datetime(2026, 1, 31, 0, 0), datetime.datetime(2026, 1, 31, 8, 0))
    """
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day)
        return parse_utc_text(text)
    except ValueError:
        raise UsageError(
            f"Cannot read the time {value!r}.",
            "Give an ISO 8601 date or date-time, e.g. 2026-03-31 or 2026-03-31T18:00:00+02:00.",
        ) from None


def parse_date(value: str, what: str = "date") -> date:
    """An ISO date a user typed; UsageError naming ``what`` otherwise."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"Cannot read the {what} {value!r}.",
                         "Give an ISO date, e.g. 2027-03-31.") from None
