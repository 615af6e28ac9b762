"""The ``[salesforce]`` table of ``rules.toml``: which fields to read, and how hard to push the org.

Credentials never live here; they come from the environment only (see ``client.Credentials``).
Every setting has a default, so an org that uses the standard fields needs no table at all.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# An API field name: letters, digits and underscores (custom fields end in __c). Checked so that a
# setting can never inject SOQL.
_FIELD_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
_FIELD_RE = re.compile(_FIELD_NAME)


class SalesforceSettings(BaseModel):
    """Settings of the Salesforce connector, validated from the ``[salesforce]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_version: str = Field(
        "59.0",
        pattern=r"^[0-9]{2,3}\.0$",
        description="The Salesforce REST API version to use, such as 59.0 (Bulk API 2.0 queries need 47.0 or later).",
    )
    lifecycle_stage_field: str = Field(
        "Type",
        pattern=_FIELD_NAME,
        description=(
            "The Account field that holds the lifecycle stage the HND002 rule reads: a standard field "
            "such as Type or a custom one such as Lifecycle_Stage__c. The stage's age "
            "(stage_changed_at) comes from its AccountHistory rows, so turn on field history "
            "tracking for it; without history the stage counts as old."
        ),
    )
    contact_lifecycle_stage_field: str | None = Field(
        None,
        pattern=_FIELD_NAME,
        description="A Contact field with the contact's lifecycle stage, if the org has one (not read when unset).",
    )
    country_field: str = Field(
        "BillingCountry",
        pattern=_FIELD_NAME,
        description=(
            "The Account field compared with the territories' `country` lists. Use BillingCountryCode "
            "when the org has State and Country picklists and rules.toml lists ISO codes."
        ),
    )
    state_field: str = Field(
        "BillingState",
        pattern=_FIELD_NAME,
        description="The Account field compared with the territories' `state` lists (BillingStateCode with picklists).",
    )
    user_team_field: str | None = Field(
        "Department",
        pattern=_FIELD_NAME,
        description="The User field stored as the owner's team in the mirror; unset to read none.",
    )
    # ---- the KPI export's referral figures (separate block) ---------------------------------
    lead_source_field: str | None = Field(
        "LeadSource",
        pattern=_FIELD_NAME,
        description=(
            "The Opportunity field read into the mirror as the deal's lead source (the KPI "
            "export's referrals_created and referrals_won); empty to read none."
        ),
    )
    referral_values: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["Employee Referral", "External Referral", "Partner Referral"],
        description=(
            "Values of lead_source_field that mean the deal came from a referral (ignoring case)."
        ),
    )

    @field_validator("lead_source_field", mode="before")
    @classmethod
    def _empty_reads_none(cls, value: object) -> object:
        return None if value == "" else value
    # ---- end of the referral block -------------------------------------------------------

    timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="How long to wait for Salesforce to connect and to answer each HTTP call, in seconds.",
    )
    retries: int = Field(
        4,
        ge=0,
        le=10,
        description="How many times a call that failed with a 5xx answer, a timeout or a dropped connection is retried.",
    )
    backoff_seconds: float = Field(
        1.0,
        ge=0,
        description="The wait before the first retry, in seconds; it doubles with each further retry.",
    )
    backoff_max_seconds: float = Field(
        30.0,
        ge=0,
        description="The longest wait between two retries, in seconds (a Retry-After answer is honoured up to this).",
    )
    page_size: int = Field(
        2000,
        ge=200,
        le=2000,
        description="Records per REST query page (Salesforce allows 200 to 2,000); each page is one mirror transaction.",
    )
    bulk_threshold: int = Field(
        25_000,
        ge=1,
        description=(
            "A pull that matches more records than this (typically the first or a --full sync of "
            "Contact, Task or Event) takes its first page from the REST query API and the rest from "
            "one Bulk API 2.0 query job, which needs far fewer API calls."
        ),
    )
    bulk_page_size: int = Field(
        50_000,
        ge=1,
        description="Records per Bulk API 2.0 result download; bounds the memory a bulk pull needs.",
    )
    bulk_poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How often to ask whether a Bulk API 2.0 job has finished, in seconds.",
    )
    bulk_write_threshold: int = Field(
        1000,
        ge=1,
        description=(
            "Owner updates with more changes than this go through one Bulk API 2.0 ingest job; "
            "smaller ones through sObject Collections calls of 200 records."
        ),
    )
    read_batch_size: int = Field(
        300,
        ge=1,
        le=600,
        description="Record ids per query when reading current owners, so that no URL grows past Salesforce's limit.",
    )
    max_api_usage_percent: float = Field(
        90.0,
        gt=0,
        le=100,
        description=(
            "Quota guard: stop cleanly (exit code 3, nothing committed is lost) once the org has "
            "used this share of its rolling 24-hour API request limit, leaving room for other integrations."
        ),
    )


    # ---- account teams ---------------------------------------------------------------------
    team_fields: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "User lookup fields on Account whose users belong to the account team, by team role, "
            "such as { CSM = \"CSM__c\" }: read with the accounts; each non-empty value is a member "
            "with that team role, and an emptied field removes the member. AccountTeamMember rows "
            "are read as well when the org has account teams."
        ),
    )

    @field_validator("team_fields")
    @classmethod
    def _team_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return check_team_fields(value, "team_fields", "Account field's API name, such as CSM__c")


def check_team_fields(value: dict[str, str], key: str, what: str) -> dict[str, str]:
    """Team roles must be non-empty words and each field an API name (it goes into queries)."""
    seen: dict[str, str] = {}
    for role, name in value.items():
        if not role.strip() or len(role) > 255:
            raise ValueError(f"{key}: a team role is empty or longer than 255 characters; name "
                             "it, such as CSM = ...")
        if not _FIELD_RE.match(name):
            raise ValueError(f"{key}: {name!r} (team role {role!r}) is not an {what}")
        if name.lower() in seen:
            raise ValueError(f"{key}: {name!r} is given for both {seen[name.lower()]!r} and "
                             f"{role!r}; give each field one team role")
        seen[name.lower()] = role
    return value
