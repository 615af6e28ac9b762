"""Salesforce fields to mirror columns: the connector's whole field mapping, in one place.

Each mirror object type is read from one or more sObjects (``activity`` from Task and Event). A
:class:`SObjectQuery` names the sObject, the fields to select and how one record becomes one mirror
row. Records arrive either as REST JSON (typed values, nested relationships) or as Bulk API 2.0 CSV
(strings, ``""`` for null, dotted relationship columns); :func:`flatten` brings the JSON to the
CSV's flat shape and the converters below accept both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from roe_cli.shared.domains import email_domain, normalize_domain

from ..base import TEAM_OBJECT_ORIGIN
from .settings import SalesforceSettings

COLLECTION_LIMIT = 200  # records per sObject Collections call, Salesforce's maximum
TEAM_KEY = "team"  # an account row's field team members, moved by the connector to its Page

# Mirror object types roe can reassign, and the sObjects behind them.
SOBJECT_BY_TYPE = {"account": "Account", "contact": "Contact", "opportunity": "Opportunity"}

# Key prefixes of the ids a Task or Event can point at.
ACCOUNT_PREFIX, CONTACT_PREFIX, OPPORTUNITY_PREFIX = "001", "003", "006"
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
USER_PREFIX = "005"
_OWNER_PREFIXES = (USER_PREFIX, "00G")  # a user or a queue


@dataclass(frozen=True)
class SObjectQuery:
    """How one sObject is read into one mirror object type."""

    sobject: str
    object_type: str
    fields: tuple[str, ...]
    convert: Callable[[dict], dict | None]  # a flat record -> a mirror row, or None to skip it
    cursor: str = "SystemModstamp"  # the incremental cursor; pages come in its order
    deletable: bool = True  # has IsDeleted: read with queryAll so deletes arrive as rows
    where: str | None = None  # a fixed filter
    subqueries: tuple[str, ...] = field(default=())  # REST only: Bulk API 2.0 has no subqueries


# ---- values ----------------------------------------------------------------------------------
def text(value) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def boolean(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def integer(value) -> int | None:
    if value is None or value == "":
        return None
    return int(float(value))


def number(value) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def latest(values: Iterable[datetime | None]) -> datetime | None:
    """The latest of ``values`` that is known; None when none is."""
    return max((v for v in values if v is not None), default=None)


def timestamp(value) -> datetime | None:
    """A Salesforce dateTime (``2024-01-02T03:04:05.000+0000`` or ``...Z``) as naive UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def day(value) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def soql_datetime(value: datetime) -> str:
    """A naive-UTC time as a SOQL dateTime literal (Salesforce keeps whole seconds)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_sf_id(value) -> bool:
    return isinstance(value, str) and bool(_SF_ID.match(value))


def looks_like_owner_id(value) -> bool:
    return is_sf_id(value) and value[:3] in _OWNER_PREFIXES


def flatten(record: dict, prefix: str = "") -> dict:
    """A REST record in the flat shape of a Bulk API 2.0 CSV row.

    ``{"UserRole": {"Name": "AE"}}`` becomes ``{"UserRole.Name": "AE"}``; a subquery's result
    becomes a list of flat child records under its relationship name (None when it has none).
    """
    out: dict = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "records" in value:
            out[prefix + key] = [flatten(child) for child in value["records"]]
        elif isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def stamp(record: dict, query: SObjectQuery) -> datetime | None:
    return timestamp(record.get(query.cursor))


# ---- the objects -----------------------------------------------------------------------------
def _owner(settings: SalesforceSettings) -> SObjectQuery:
    team = settings.user_team_field
    fields = ("Id", "Email", "Name", "IsActive", "UserRole.Name", "ManagerId",
              *((team,) if team else ()), "LastModifiedDate", "SystemModstamp")

    def convert(r: dict) -> dict:
        return {
            "id": r["Id"],
            "email": text(r.get("Email")),
            "name": text(r.get("Name")),
            "active": boolean(r.get("IsActive")),
            "role": text(r.get("UserRole.Name")),
            "team": text(r.get(team)) if team else None,
            "manager_id": text(r.get("ManagerId")),
            "updated_at": timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp")),
        }

    # Users are deactivated, never deleted: User has no IsDeleted and is read with query.
    return SObjectQuery("User", "owner", fields, convert, deletable=False)


def stage_history_subquery(settings: SalesforceSettings) -> str:
    return (
        "(SELECT CreatedDate FROM Histories WHERE Field = "
        f"'{settings.lifecycle_stage_field}' ORDER BY CreatedDate DESC LIMIT 1)"
    )


def _account(settings: SalesforceSettings) -> SObjectQuery:
    stage = settings.lifecycle_stage_field
    country, state = settings.country_field, settings.state_field
    fields = tuple(dict.fromkeys((
        "Id", "Name", "Website", "OwnerId", "ParentId", country, state, "NumberOfEmployees",
        "AnnualRevenue", "Industry", stage, "CreatedDate", "LastModifiedDate", "SystemModstamp",
        "IsDeleted", *settings.team_fields.values(),
    )))

    def convert(r: dict) -> dict:
        history = r.get("Histories") or []  # the newest stage change, from the subquery
        website = text(r.get("Website"))
        return {
            "id": r["Id"],
            "name": text(r.get("Name")),
            "website": website,
            "domain": normalize_domain(website),
            "owner_id": text(r.get("OwnerId")),
            "parent_id": text(r.get("ParentId")),
            "country": text(r.get(country)),
            "state": text(r.get(state)),
            "employees": integer(r.get("NumberOfEmployees")),
            "annual_revenue": number(r.get("AnnualRevenue")),
            "industry": text(r.get("Industry")),
            "lifecycle_stage": text(r.get(stage)),
            "stage_changed_at": latest(timestamp(h.get("CreatedDate")) for h in history),
            "created_at": timestamp(r.get("CreatedDate")),
            "updated_at": timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp")),
            "deleted": boolean(r.get("IsDeleted")),
            TEAM_KEY: team_members(r, settings.team_fields),
        }

    return SObjectQuery("Account", "account", fields, convert,
                        subqueries=(stage_history_subquery(settings),))


def team_members(r: dict, team_fields: dict[str, str]) -> list[dict]:
    """The members the account's user fields name: one per non-empty field (see ``team_fields``)."""
    members = []
    updated = timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp"))
    for role, name in team_fields.items():
        user = text(r.get(name))
        if user is not None and is_sf_id(user) and user.startswith(USER_PREFIX):  # users only
            members.append({"id": f"{r['Id']}/{name}", "account_id": r["Id"], "user_id": user,
                            "team_role": role, "origin": name, "updated_at": updated})
    return members


def _account_team_member(settings: SalesforceSettings) -> SObjectQuery:
    fields = ("Id", "AccountId", "UserId", "TeamMemberRole", "CreatedDate", "SystemModstamp",
              "IsDeleted")

    def convert(r: dict) -> dict:
        return {
            "id": r["Id"],
            "account_id": r["AccountId"],
            "user_id": r["UserId"],
            "team_role": text(r.get("TeamMemberRole")),
            "origin": TEAM_OBJECT_ORIGIN,
            "created_at": timestamp(r.get("CreatedDate")),
            "updated_at": timestamp(r.get("SystemModstamp")),
            "deleted": boolean(r.get("IsDeleted")),
        }

    return SObjectQuery("AccountTeamMember", "account_team_member", fields, convert)


def _contact(settings: SalesforceSettings) -> SObjectQuery:
    stage = settings.contact_lifecycle_stage_field
    fields = ("Id", "AccountId", "OwnerId", "Email", "Name", "Title", *((stage,) if stage else ()),
              "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")

    def convert(r: dict) -> dict:
        email = text(r.get("Email"))
        row = {
            "id": r["Id"],
            "account_id": text(r.get("AccountId")),
            "owner_id": text(r.get("OwnerId")),
            "email": email,
            "email_domain": email_domain(email),
            "name": text(r.get("Name")),
            "title": text(r.get("Title")),
            "created_at": timestamp(r.get("CreatedDate")),
            "updated_at": timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp")),
            "deleted": boolean(r.get("IsDeleted")),
        }
        if stage:  # otherwise leave whatever the mirror holds
            row["lifecycle_stage"] = text(r.get(stage))
        return row

    return SObjectQuery("Contact", "contact", fields, convert)


def _opportunity(settings: SalesforceSettings) -> SObjectQuery:
    lead_source = settings.lead_source_field
    fields = ("Id", "AccountId", "OwnerId", "Name", "StageName", "Amount", "CloseDate", "IsClosed",
              "IsWon", *((lead_source,) if lead_source else ()), "CreatedDate", "LastModifiedDate",
              "SystemModstamp", "IsDeleted")

    def convert(r: dict) -> dict:
        row = {
            "id": r["Id"],
            "account_id": text(r.get("AccountId")),
            "owner_id": text(r.get("OwnerId")),
            "name": text(r.get("Name")),
            "stage": text(r.get("StageName")),
            "amount": number(r.get("Amount")),
            "close_date": day(r.get("CloseDate")),
            "is_closed": boolean(r.get("IsClosed")),
            "is_won": boolean(r.get("IsWon")),
            "created_at": timestamp(r.get("CreatedDate")),
            "updated_at": timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp")),
            "deleted": boolean(r.get("IsDeleted")),
        }
        if lead_source:  # otherwise leave whatever the mirror holds
            row["lead_source"] = text(r.get(lead_source))
        return row

    return SObjectQuery("Opportunity", "opportunity", fields, convert)


def _links(r: dict) -> dict:
    """What a Task or Event is about. Only direct links count: an activity on a contact counts
    for the account through that contact while it lives, so Salesforce's derived AccountId is
    deliberately not used."""
    what, who = text(r.get("WhatId")), text(r.get("WhoId"))
    return {
        "account_id": what if what and what.startswith(ACCOUNT_PREFIX) else None,
        "contact_id": who if who and who.startswith(CONTACT_PREFIX) else None,
        "opportunity_id": what if what and what.startswith(OPPORTUNITY_PREFIX) else None,
    }


_TASK_KINDS = {"call": "call", "email": "email", "listemail": "email"}


def _task(settings: SalesforceSettings) -> SObjectQuery:
    fields = ("Id", "WhoId", "WhatId", "OwnerId", "ActivityDate", "CompletedDateTime", "Status",
              "TaskSubtype", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")

    def convert(r: dict) -> dict:
        # When it happened: the completion time when Salesforce has one; a task with only a due
        # date (ActivityDate) counts at 00:00 UTC of that date.
        occurred = timestamp(r.get("CompletedDateTime"))
        due = day(r.get("ActivityDate")) if occurred is None else None
        if occurred is None and due is not None:
            occurred = datetime(due.year, due.month, due.day)
        if occurred is None:
            occurred = timestamp(r.get("CreatedDate"))
        subtype = (text(r.get("TaskSubtype")) or "").lower()
        return {
            "id": r["Id"],
            "kind": _TASK_KINDS.get(subtype, "task"),
            **_links(r),
            "owner_id": text(r.get("OwnerId")),
            "occurred_at": occurred,
            "status": text(r.get("Status")),
            "updated_at": timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp")),
            "deleted": boolean(r.get("IsDeleted")),
        }

    return SObjectQuery("Task", "activity", fields, convert)


def _event(settings: SalesforceSettings) -> SObjectQuery:
    fields = ("Id", "WhoId", "WhatId", "OwnerId", "ActivityDateTime", "ActivityDate",
              "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")

    def convert(r: dict) -> dict:
        occurred = timestamp(r.get("ActivityDateTime"))
        due = day(r.get("ActivityDate")) if occurred is None else None
        if occurred is None and due is not None:  # an all-day event
            occurred = datetime(due.year, due.month, due.day)
        return {
            "id": r["Id"],
            "kind": "meeting",
            **_links(r),
            "owner_id": text(r.get("OwnerId")),
            "occurred_at": occurred or timestamp(r.get("CreatedDate")),
            "status": None,
            "updated_at": timestamp(r.get("LastModifiedDate") or r.get("SystemModstamp")),
            "deleted": boolean(r.get("IsDeleted")),
        }

    return SObjectQuery("Event", "activity", fields, convert)


def _owner_history(settings: SalesforceSettings) -> SObjectQuery:
    fields = ("Id", "AccountId", "Field", "OldValue", "NewValue", "CreatedDate")

    def convert(r: dict) -> dict | None:
        # Salesforce writes two rows per owner change: one with the user ids, one with their
        # names. Keep the id row; a record's first owner is no change, so it has no row here.
        old, new = text(r.get("OldValue")), text(r.get("NewValue"))
        if not looks_like_owner_id(new) or (old is not None and not looks_like_owner_id(old)):
            return None
        return {
            "object_type": "account",
            "object_id": r["AccountId"],
            "old_owner_id": old,
            "new_owner_id": new,
            "changed_at": timestamp(r.get("CreatedDate")),
            "origin": "crm-history",
        }

    # History rows are never modified: CreatedDate is their cursor.
    return SObjectQuery("AccountHistory", "ownership_change", fields, convert,
                        cursor="CreatedDate", deletable=False, where="Field = 'Owner'")


def queries_for(object_type: str, settings: SalesforceSettings) -> list[SObjectQuery]:
    """The sObjects behind one mirror object type, in the order they are read.

    Activities read Event before Task: Task is usually the larger, and only the last sObject of a
    type can move the watermark page by page (see ``SalesforceConnector.pull``).
    """
    builders = {
        "owner": (_owner,),
        "account": (_account,),
        "account_team_member": (_account_team_member,),
        "contact": (_contact,),
        "opportunity": (_opportunity,),
        "activity": (_event, _task),
        "ownership_change": (_owner_history,),
    }
    if object_type not in builders:
        raise ValueError(f"unknown object type {object_type!r}")
    return [build(settings) for build in builders[object_type]]
