"""Parsing the times users type: ISO 8601 dates and date-times, UTC when no offset is given."""

from __future__ import annotations

from datetime import UTC, date, datetime

from .shared.errors import UsageError


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
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"Cannot read the time {value!r}.",
            "Give an ISO 8601 date or date-time, e.g. 2026-03-31 or 2026-03-31T18:00:00+02:00.",
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_date(value: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"Cannot read the {what} {value!r}.", "Give an ISO date, e.g. 2027-03-31.") from None
