"""The ``[hubspot]`` table of ``rules.toml``: pacing, retries and which CRM properties roe reads.

Every key has a default, so the table is optional. Credentials never live here: the access token
comes from ``HUBSPOT_ACCESS_TOKEN`` and the base URL from ``HUBSPOT_BASE_URL``.

```toml
[hubspot]
requests_per_10s = 190          # Professional and Enterprise portals
searches_per_second = 4
```
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from roe_cli.shared.vocab import OBJECT_TYPES

_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a HubSpot property's internal name
HUBSPOT_OBJECTS = OBJECT_TYPES  # the objects whose owner roe reads and writes
ACTIVITY_TYPES = ("calls", "meetings", "emails", "tasks", "notes")
DEFAULT_LIFECYCLE_STAGES = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
]


class HubSpotSettings(BaseModel):
    """How roe talks to HubSpot; see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    # ---- pacing and resilience -----------------------------------------------------------
    requests_per_10s: int = Field(
        100,
        ge=1,
        description="Client-side cap on API calls in any 10 seconds (HubSpot: 100 on Free and "
        "Starter, 190 on Professional and Enterprise).",
    )
    searches_per_second: float = Field(
        4,
        gt=0,
        description="Client-side cap on CRM search calls a second (HubSpot allows about 5).",
    )
    timeout_seconds: float = Field(
        30, gt=0, description="Read timeout of every HTTP call, in seconds."
    )
    connect_timeout_seconds: float = Field(
        10, gt=0, description="Connect timeout of every HTTP call, in seconds."
    )
    max_retries: int = Field(
        8,
        ge=0,
        description="Retries of one call after a 429, a 5xx or a network error before roe stops "
        "with exit code 3.",
    )
    backoff_seconds: float = Field(
        1.0, ge=0, description="First wait after a 5xx or network error; doubles each retry."
    )
    max_wait_seconds: float = Field(
        60,
        ge=0,
        description="The longest single wait, whether from Retry-After or from the backoff.",
    )

    # ---- paging ----------------------------------------------------------------------------
    search_page_size: int = Field(
        200, ge=1, le=200, description="Records per search call (HubSpot's maximum is 200)."
    )
    search_result_cap: int = Field(
        10_000,
        ge=200,
        description="How far one search can page (HubSpot: 10,000); roe restarts the search from "
        "the last modification time it saw before reaching it.",
    )
    association_batch_size: int = Field(
        1000,
        ge=1,
        le=1000,
        description="Records per association batch read (HubSpot's maximum is 1,000); also the "
        "most records roe holds per page of deals and activities.",
    )
    history_batch_size: int = Field(
        50,
        ge=1,
        le=50,
        description="Records per batch read with owner history (HubSpot's maximum is 50).",
    )

    # ---- what to read ----------------------------------------------------------------------
    activity_types: list[Literal["calls", "meetings", "emails", "tasks", "notes"]] = Field(
        default_factory=lambda: list(ACTIVITY_TYPES),  # type: ignore[arg-type]
        description="HubSpot engagement objects mirrored as activities.",
    )
    lifecycle_stages: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LIFECYCLE_STAGES),
        description="Internal lifecycle stage values whose entry date roe reads; add custom "
        "stages' internal values here.",
    )
    stage_date_property: str = Field(
        "hs_lifecyclestage_{stage}_date",
        description="The property holding when a record entered a stage; `{stage}` is the "
        "stage's internal value.",
    )
    lifecycle_stage_property: str = Field(
        "lifecyclestage", description="Lifecycle stage property of companies and contacts."
    )
    country_property: str = Field("country", description="Company country property.")
    state_property: str = Field("state", description="Company state or region property.")
    employees_property: str = Field(
        "numberofemployees", description="Company employee count property."
    )
    revenue_property: str = Field("annualrevenue", description="Company annual revenue property.")
    industry_property: str = Field("industry", description="Company industry property.")
    contact_company_property: str = Field(
        "associatedcompanyid",
        description="Contact property holding its primary company's id; empty to read the "
        "contact-to-company association instead (one more call a page).",
    )
    # ---- the KPI export's referral figures (separate block) ---------------------------------
    lead_source_property: str | None = Field(
        "hs_analytics_source",
        pattern=r"^[a-z0-9_]*$",
        description="The deal property read into the mirror as the deal's lead source (the KPI "
        "export's referrals_created and referrals_won): by default Original Source "
        "(hs_analytics_source); empty to read none.",
    )
    referral_values: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["REFERRALS"],
        description="Values of lead_source_property that mean a referral (ignoring case); "
        "Original Source stores Referrals as REFERRALS.",
    )
    # ---- end of the referral block -------------------------------------------------------
    owner_history_objects: list[Literal["account", "contact", "opportunity"]] = Field(
        default_factory=lambda: list(HUBSPOT_OBJECTS),  # type: ignore[arg-type]
        description="Objects whose owner history (`hubspot_owner_id` with history) fills "
        "ownership_changes.",
    )
    owner_history_reassigned_only: bool = Field(
        True,
        description="Read owner history only for records whose owner was assigned after they "
        "were created (`hubspot_owner_assigneddate`); the others have had one owner, which is "
        "not a change.",
    )
    detect_archived: bool = Field(
        True,
        description="On incremental syncs, list archived records to mark them deleted (one more "
        "call per object, plus one per 100 archived records). A --full sync finds them anyway.",
    )


    # ---- account teams ---------------------------------------------------------------------
    team_properties: dict[str, str] = Field(
        default_factory=dict,
        description="Owner-type company properties whose owners belong to the account team, by "
        "team role, such as { CSM = \"csm_owner\" }: read with the companies; each non-empty "
        "value is a member with that team role, and an emptied property removes the member.",
    )

    @field_validator("team_properties")
    @classmethod
    def _team_properties(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for role, name in value.items():
            if not role.strip() or len(role) > 255:
                raise ValueError("team_properties: a team role is empty or longer than 255 "
                                 "characters; name it, such as CSM = \"csm_owner\"")
            if not _PROPERTY_NAME.match(name):
                raise ValueError(f"team_properties: {name!r} (team role {role!r}) is not a "
                                 "property's internal name, such as csm_owner (lower case)")
            if name in seen:
                raise ValueError(f"team_properties: {name!r} is given for both {seen[name]!r} "
                                 f"and {role!r}; give each property one team role")
            seen[name] = role
        return value

    @field_validator("lifecycle_stages")
    @classmethod
    def _lower_stages(cls, stages: list[str]) -> list[str]:
        return [s.strip().lower() for s in stages if s.strip()]

    @field_validator("stage_date_property")
    @classmethod
    def _has_stage(cls, value: str) -> str:
        if "{stage}" not in value:
            raise ValueError("must contain {stage}")
        return value
