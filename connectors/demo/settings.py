"""The demo org has no ``rules.toml`` table: ``roe demo`` takes its size, seed and date as
options, and the connector needs nothing but the mirror. The factory's ``settings_model`` is
therefore None, and a ``[demo]`` table is not read."""

from __future__ import annotations

import zlib

SETTINGS_TABLE: str | None = None

LEAD_SOURCES: tuple[str, ...] = ("Web", "Partner Referral", "Employee Referral", "Trade Show",
                                 "Outbound", "Advertisement")
"""The lead sources the demo org gives its opportunities (Salesforce's LeadSource style)."""

REFERRAL_VALUES: tuple[str, ...] = ("Partner Referral", "Employee Referral")
"""The demo org's lead sources that mean a referral (the KPI export's ``referrals_*`` columns)."""


def lead_source_for(opportunity_id: str) -> str:
    """The demo lead source of an opportunity, from a hash of its id (the org's random stream
    is left as it was): about one deal in five is a referral."""
    n = zlib.crc32(opportunity_id.encode()) % 10
    return LEAD_SOURCES[1] if n == 0 else LEAD_SOURCES[2] if n == 1 else LEAD_SOURCES[(0, 3, 4, 5)[n % 4]]
