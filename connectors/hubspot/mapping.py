"""HubSpot's objects and properties, and how they become mirror rows: the one place that knows.

=================  =====================  ================================================
mirror             HubSpot object         notes
=================  =====================  ================================================
owner              owners (v3)            archived owners are inactive; primary team ->
                                          role, another team -> team
account            companies              ``domain``, lifecycle stage and the date it was
                                          entered (``hs_lifecyclestage_<stage>_date``)
contact            contacts               company from ``associatedcompanyid``
opportunity        deals                  company from the deal-to-company association
activity           calls, meetings,       time from ``hs_timestamp``; company, contact and
                   emails, tasks, notes   deal from their associations
ownership_change   ``hubspot_owner_id``   property history; a record's first owner is not a
                   with history           change
=================  =====================  ================================================

Every value inside ``properties`` arrives as a string (or null); times are ISO 8601 (or epoch
milliseconds in some portals) and become naive UTC, the mirror's convention.
"""

from __future__ import annotations

from collections import abc
from datetime import UTC, date, datetime, timedelta

from roe_cli.shared.domains import email_domain, normalize_domain

from .settings import HubSpotSettings

BATCH_LIMIT = 100  # HubSpot's batch read and update take at most 100 inputs

# mirror object type -> HubSpot object type (CRM objects roe reads and writes)
HS_OBJECT = {"account": "companies", "contact": "contacts", "opportunity": "deals"}
MIRROR_OBJECT = {v: k for k, v in HS_OBJECT.items()}
# HubSpot engagement object -> mirror activity kind
ACTIVITY_KIND = {"calls": "call", "meetings": "meeting", "emails": "email", "tasks": "task",
                 "notes": "note"}
ACTIVITY_STATUS = {"calls": "hs_call_status", "meetings": "hs_meeting_outcome",
                   "emails": "hs_email_status", "tasks": "hs_task_status"}
# Activities link to these, in the mirror's columns.
ACTIVITY_LINKS = {"companies": "account_id", "contacts": "contact_id", "deals": "opportunity_id"}

OWNER = "hubspot_owner_id"
OWNER_ASSIGNED = "hubspot_owner_assigneddate"
CREATED = "createdate"
OBJECT_ID = "hs_object_id"
TEAM_KEY = "team"  # an account row's property team members, moved by the connector to its Page


def cursor_property(hs_type: str) -> str:
    """The last-modified property incremental searches filter and sort on."""
    return "lastmodifieddate" if hs_type == "contacts" else "hs_lastmodifieddate"


# ---- value parsing -----------------------------------------------------------------------------


def parse_time(value) -> datetime | None:
    """An ISO 8601 string, a date, or epoch milliseconds as naive UTC; None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC).replace(tzinfo=None)
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


_EPOCH = datetime(1970, 1, 1)


def epoch_ms(value: datetime) -> str:
    """A naive UTC time as HubSpot's filter value: epoch milliseconds, as a string (exact)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str((value - _EPOCH) // timedelta(milliseconds=1))


def parse_date(value) -> date | None:
    dt = parse_time(value)
    return dt.date() if dt else None


def parse_float(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_int(value) -> int | None:
    number = parse_float(value)
    return int(number) if number is not None else None


def parse_bool(value) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def text(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def crm_id(value) -> str | None:
    """A HubSpot id held in a property (owner, company): a number; empty means none."""
    value = text(value)
    return value.split(".", 1)[0] if value else None


class Mapping:
    """Which properties to ask for, and how a HubSpot record becomes a mirror row."""

    def __init__(self, settings: HubSpotSettings):
        self.settings = settings

    # ---- what to ask for -----------------------------------------------------------------
    def stage_date(self, stage: str) -> str:
        return self.settings.stage_date_property.format(stage=stage)

    def properties(self, hs_type: str) -> list[str]:
        s = self.settings
        base = [cursor_property(hs_type), CREATED, OWNER]
        if hs_type == "companies":
            props = base + [OWNER_ASSIGNED, "name", "domain", "website", "hs_parent_company_id",
                            s.country_property, s.state_property, s.employees_property,
                            s.revenue_property, s.industry_property, s.lifecycle_stage_property]
            props += [self.stage_date(stage) for stage in s.lifecycle_stages]
            props += list(s.team_properties.values())
        elif hs_type == "contacts":
            props = base + [OWNER_ASSIGNED, "email", "firstname", "lastname", "jobtitle",
                            s.lifecycle_stage_property]
            if s.contact_company_property:
                props.append(s.contact_company_property)
        elif hs_type == "deals":
            props = base + [OWNER_ASSIGNED, "dealname", "dealstage", "amount", "closedate",
                            "hs_is_closed", "hs_is_closed_won"]
            if s.lead_source_property:
                props.append(s.lead_source_property)
        else:
            props = base + ["hs_timestamp"]
            if hs_type in ACTIVITY_STATUS:
                props.append(ACTIVITY_STATUS[hs_type])
        return list(dict.fromkeys(props))

    def associations(self, hs_type: str) -> list[str]:
        """Object types whose associations a page of ``hs_type`` needs (one call each)."""
        if hs_type == "deals":
            return ["companies"]
        if hs_type == "contacts":
            return [] if self.settings.contact_company_property else ["companies"]
        if hs_type in ACTIVITY_KIND:
            return list(ACTIVITY_LINKS)
        return []

    # ---- rows ----------------------------------------------------------------------------
    @staticmethod
    def modified(hs_type: str, record: dict) -> datetime | None:
        props = record.get("properties") or {}
        return parse_time(props.get(cursor_property(hs_type))) or parse_time(record.get("updatedAt"))

    @staticmethod
    def created(record: dict) -> datetime | None:
        props = record.get("properties") or {}
        return parse_time(props.get(CREATED)) or parse_time(record.get("createdAt"))

    def row(self, hs_type: str, record: dict,
            links: abc.Mapping[str, str | None] | None = None) -> dict:
        """The mirror row of one HubSpot record; ``links`` holds associated ids by HubSpot type."""
        links = links or {}
        if hs_type == "companies":
            return self.account_row(record)
        if hs_type == "contacts":
            return self.contact_row(record, links)
        if hs_type == "deals":
            return self.opportunity_row(record, links)
        return self.activity_row(hs_type, record, links)

    def account_row(self, record: dict) -> dict:
        s = self.settings
        p = record.get("properties") or {}
        stage = text(p.get(s.lifecycle_stage_property))
        stage = stage.lower() if stage else None
        website = text(p.get("website"))
        return {
            "id": str(record["id"]),
            "name": text(p.get("name")),
            "website": website,
            "domain": normalize_domain(text(p.get("domain"))) or normalize_domain(website),
            "owner_id": crm_id(p.get(OWNER)),
            "parent_id": crm_id(p.get("hs_parent_company_id")),
            "country": text(p.get(s.country_property)),
            "state": text(p.get(s.state_property)),
            "employees": parse_int(p.get(s.employees_property)),
            "annual_revenue": parse_float(p.get(s.revenue_property)),
            "industry": text(p.get(s.industry_property)),
            "lifecycle_stage": stage,
            "stage_changed_at": parse_time(p.get(self.stage_date(stage))) if stage else None,
            "created_at": self.created(record),
            "updated_at": self.modified("companies", record),
            "deleted": False,
            TEAM_KEY: self.team_members(record),
        }

    def team_members(self, record: dict) -> list[dict]:
        """The members the company's owner properties name (``team_properties``), one per
        non-empty property; id ``'<company id>/<property>'``."""
        p = record.get("properties") or {}
        company = str(record["id"])
        updated = self.modified("companies", record)
        members = []
        for role, name in self.settings.team_properties.items():
            user = crm_id(p.get(name))
            if user is not None and user.isdigit():  # an owner id; anything else is no owner
                members.append({"id": f"{company}/{name}", "account_id": company,
                                "user_id": user, "team_role": role, "origin": name,
                                "updated_at": updated})
        return members

    def contact_row(self, record: dict, links: abc.Mapping[str, str | None]) -> dict:
        s = self.settings
        p = record.get("properties") or {}
        email = text(p.get("email"))
        name = " ".join(x for x in (text(p.get("firstname")), text(p.get("lastname"))) if x)
        stage = text(p.get(s.lifecycle_stage_property))
        company = (crm_id(p.get(s.contact_company_property)) if s.contact_company_property
                   else links.get("companies"))
        return {
            "id": str(record["id"]),
            "account_id": company,
            "owner_id": crm_id(p.get(OWNER)),
            "email": email,
            "email_domain": email_domain(email),
            "name": name or None,
            "title": text(p.get("jobtitle")),
            "lifecycle_stage": stage.lower() if stage else None,
            "created_at": self.created(record),
            "updated_at": self.modified("contacts", record),
            "deleted": False,
        }

    def opportunity_row(self, record: dict, links: abc.Mapping[str, str | None]) -> dict:
        p = record.get("properties") or {}
        stage = text(p.get("dealstage"))
        is_closed = parse_bool(p.get("hs_is_closed"))
        is_won = parse_bool(p.get("hs_is_closed_won"))
        if is_closed is None:  # portals without the calculated properties
            is_closed = (stage or "").lower() in ("closedwon", "closedlost")
        if is_won is None:
            is_won = (stage or "").lower() == "closedwon"
        row = {
            "id": str(record["id"]),
            "account_id": links.get("companies"),
            "owner_id": crm_id(p.get(OWNER)),
            "name": text(p.get("dealname")),
            "stage": stage,
            "amount": parse_float(p.get("amount")),
            "close_date": parse_date(p.get("closedate")),
            "is_closed": is_closed,
            "is_won": is_won,
            "created_at": self.created(record),
            "updated_at": self.modified("deals", record),
            "deleted": False,
        }
        if self.settings.lead_source_property:  # otherwise leave whatever the mirror holds
            row["lead_source"] = text(p.get(self.settings.lead_source_property))
        return row

    def activity_row(self, hs_type: str, record: dict, links: abc.Mapping[str, str | None]) -> dict:
        p = record.get("properties") or {}
        status = ACTIVITY_STATUS.get(hs_type)
        return {
            "id": str(record["id"]),
            "kind": ACTIVITY_KIND[hs_type],
            "account_id": links.get("companies"),
            "contact_id": links.get("contacts"),
            "opportunity_id": links.get("deals"),
            "owner_id": crm_id(p.get(OWNER)),
            "occurred_at": parse_time(p.get("hs_timestamp")),
            "status": text(p.get(status)) if status else None,
            "updated_at": self.modified(hs_type, record),
            "deleted": False,
        }

    @staticmethod
    def owner_row(owner: dict) -> dict:
        """An owner from ``/crm/v3/owners/``: archived means inactive (the id stays)."""
        teams = owner.get("teams") or []
        primary = next((t for t in teams if t.get("primary")), None)
        other = next((t for t in teams if t is not primary), None)
        name = " ".join(x for x in (text(owner.get("firstName")), text(owner.get("lastName"))) if x)
        return {
            "id": str(owner["id"]),
            "email": text(owner.get("email")),
            "name": name or None,
            "active": not owner.get("archived", False),
            "role": text(primary.get("name")) if primary else None,
            "team": text(other.get("name")) if other else None,
            "manager_id": None,  # HubSpot has no manager on owners
            "updated_at": parse_time(owner.get("updatedAt")),
        }

    @staticmethod
    def history_rows(object_type: str, record: dict) -> list[dict]:
        """Owner changes from ``propertiesWithHistory.hubspot_owner_id``, oldest first."""
        versions = ((record.get("propertiesWithHistory") or {}).get(OWNER)) or []
        timeline = sorted(
            ((parse_time(v.get("timestamp")), crm_id(v.get("value"))) for v in versions),
            key=lambda pair: pair[0] or datetime.min,
        )
        rows = []
        for (_, old), (when, new) in zip(timeline, timeline[1:], strict=False):
            if when is None or old == new:
                continue
            rows.append({
                "object_type": object_type,
                "object_id": str(record["id"]),
                "old_owner_id": old,
                "new_owner_id": new,
                "changed_at": when,
                "origin": "crm-history",
            })
        return rows

    def needs_history(self, record: dict, since: datetime | None) -> bool:
        """Whether a record's owner may have changed since ``since`` (any time when None)."""
        p = record.get("properties") or {}
        assigned = parse_time(p.get(OWNER_ASSIGNED))
        if assigned is None:
            return crm_id(p.get(OWNER)) is not None  # no assigned date: ask, to be safe
        if since is not None and assigned < since:
            return False
        if self.settings.owner_history_reassigned_only:
            created = self.created(record)
            return created is None or (assigned - created).total_seconds() > 60
        return True
