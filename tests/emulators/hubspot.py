"""A local HubSpot for tests: a real HTTP server on 127.0.0.1 speaking the CRM API roe uses.

It holds an org built by the demo generator (``load_demo``), converted to HubSpot's shape: numeric
ids (``001D00000000000006`` -> ``"6"``, per object type), owners with their CRM role as primary
team and their territory as a second team, inactive people as archived owners, lifecycle stages
as HubSpot's lowercase internal values, deleted records as archived ones, and the planted findings
translated to the same ids. The real hubspot-api-client talks to it over HTTP.

Endpoints: ``GET /crm/v3/owners/``, ``GET /crm/v3/objects/{type}`` (list, archived too),
``POST /crm/v3/objects/{type}/search`` (filters, one sort, 200 a page, 400 past 10,000 results),
``POST /crm/v3/objects/{type}/batch/read`` (100, or 50 with history) and ``.../batch/update``
(100; 207 with ``errors`` for bad records), ``POST /crm/v4/associations/{from}/{to}/batch/read``
(1,000). Everything else is a 404.

Tests change the org behind roe's back (``update``, ``set_owner``, ``archive``, ``add``; each
bumps the last-modified date), inject faults (``refuse_every(3)``, ``fail_next(2, 500)``,
``delay_next``, ``truncate_next``), and read the request log (``requests``, ``writes()``) to count calls.

Use it through the ``hs_emulator`` fixture::

    from tests.emulators.hubspot import hs_emulator  # noqa: F401

    def test_something(hs_emulator):
        planted = hs_emulator.load_demo(accounts=100, seed=3, as_of=AS_OF)
        ...  # HUBSPOT_ACCESS_TOKEN and HUBSPOT_BASE_URL point at it
"""

from __future__ import annotations

import bisect
import json
import ssl
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "pat-na1-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OBJECT_TYPES = ("companies", "contacts", "deals", "calls", "meetings", "emails", "tasks", "notes")
KIND_TYPE = {"call": "calls", "meeting": "meetings", "email": "emails", "task": "tasks",
             "note": "notes", "event": "meetings"}
STATUS_PROPERTY = {"calls": "hs_call_status", "meetings": "hs_meeting_outcome",
                   "emails": "hs_email_status", "tasks": "hs_task_status"}
MIRROR_TYPE = {"account": "companies", "contact": "contacts", "opportunity": "deals"}
OWNER = "hubspot_owner_id"
ASSIGNED = "hubspot_owner_assigneddate"
# Association type ids as HubSpot defines them (the primary ones where there is one).
ASSOCIATION_TYPE = {("deals", "companies"): 5, ("contacts", "companies"): 1,
                    ("calls", "companies"): 182, ("calls", "contacts"): 194, ("calls", "deals"): 206,
                    ("meetings", "companies"): 188, ("meetings", "contacts"): 200,
                    ("meetings", "deals"): 212, ("emails", "companies"): 186,
                    ("emails", "contacts"): 198, ("emails", "deals"): 210,
                    ("tasks", "companies"): 192, ("tasks", "contacts"): 204, ("tasks", "deals"): 216,
                    ("notes", "companies"): 190, ("notes", "contacts"): 202, ("notes", "deals"): 214}

# Settings that make the connector fast against the emulator: no pacing, no waiting.
FAST_SETTINGS = {
    "requests_per_10s": 1_000_000,
    "searches_per_second": 1_000_000,
    "backoff_seconds": 0.0,
    "max_wait_seconds": 1.0,
    "timeout_seconds": 10,
}
FAST_SETTINGS_TOML = "\n[hubspot]\n" + "".join(f"{k} = {v}\n" for k, v in FAST_SETTINGS.items())


def hs_id(demo_id: str | None) -> str | None:
    """The HubSpot id of a demo id: its number (``001D00000000000006`` -> ``"6"``)."""
    return str(int(demo_id[4:])) if demo_id else None


def iso(value: datetime | date | None) -> str | None:
    """HubSpot's time format: ISO 8601 UTC with milliseconds and a Z."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _sort_key(value: Any):
    """Property values compare as numbers (times as epoch ms) when they can, else as text."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        return (0, float(text))
    except ValueError:
        pass
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        try:
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return (0, round(dt.timestamp() * 1000, 3))
        except ValueError:
            pass
    return (1, text.lower())


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0


@dataclass
class Fault:
    status: int = 429
    every: int | None = None  # every n-th matching request
    count: int | None = None  # the next n matching requests
    retry_after: str | None = "0"
    body: dict | None = None
    html: str | None = None  # answer with this HTML page instead (a maintenance page, a proxy)
    delay: float = 0.0  # seconds to wait before answering (status 0: then answer normally)
    path: str | None = None  # only requests whose path contains this
    seen: int = 0
    truncate: bool = False  # answer normally, but send half the body and close the connection


@dataclass
class Record:
    id: str
    props: dict[str, str | None]
    created: str
    archived: bool = False
    archived_at: str | None = None
    history: list[tuple[str | None, str]] = field(default_factory=list)  # (owner, when), oldest first
    assoc: dict[str, list[str]] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)  # cached sort keys

    @property
    def number(self) -> int:
        return int(self.id)

    def key(self, prop: str):
        if prop not in self.keys:
            self.keys[prop] = _sort_key(self.value(prop))
        return self.keys[prop]

    def value(self, prop: str):
        if prop == "hs_object_id":
            return self.id
        return self.props.get(prop)


class HubSpotEmulator:
    """See the module docstring."""

    def __init__(self, token: str = TOKEN, search_cap: int = 10_000):
        self.token = token
        self.search_cap = search_cap
        self.records: dict[str, dict[str, Record]] = {t: {} for t in OBJECT_TYPES}
        self.owners: dict[str, dict] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.planted: set[tuple[str, str, str, str]] = set()
        self.as_of: datetime | None = None
        self._top: dict[str, int] = {}  # the highest id per object type
        self._indexes: dict[tuple[str, str], tuple[list, list[Record]]] = {}
        self.scheme = "http"
        self.daily_limit = 250_000  # reported in X-HubSpot-RateLimit-Daily(-Remaining)
        self.whole_batch_400 = False  # answer a batch update with a bad record by a 400 for all
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- the server --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the emulator first"
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self, tls: ssl.SSLContext | None = None) -> HubSpotEmulator:
        """Serve on an ephemeral port of 127.0.0.1: plain HTTP, or HTTPS with ``tls``."""
        emulator = self

        class Handler(_Handler):
            emu = emulator

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- the request log ---------------------------------------------------------------------
    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or path in r.path)]

    def writes(self) -> list[Request]:
        """Requests that change data: batch updates, and any PATCH, PUT or DELETE."""
        return [r for r in self.calls()
                if r.method in ("PATCH", "PUT", "DELETE")
                or r.path.endswith(("/batch/update", "/batch/create", "/batch/archive",
                                    "/batch/upsert"))]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    # ---- faults ------------------------------------------------------------------------------
    def refuse_every(self, n: int, status: int = 429, retry_after: str | None = "0",
                     path: str | None = None, body: dict | None = None) -> None:
        """Refuse every n-th request (429 with Retry-After by default)."""
        self.faults.append(Fault(status, every=n, retry_after=retry_after, path=path, body=body))

    def fail_next(self, count: int, status: int = 500, retry_after: str | None = None,
                  path: str | None = None, body: dict | None = None, html: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``body``, or an ``html`` page)."""
        self.faults.append(Fault(status, count=count, retry_after=retry_after, path=path, body=body,
                                 html=html))

    def delay_next(self, count: int, seconds: float, path: str | None = None) -> None:
        self.faults.append(Fault(0, count=count, delay=seconds, path=path))

    def truncate_next(self, count: int, path: str | None = None) -> None:
        """Cut the next ``count`` answers short: the full Content-Length, half the body, then the
        connection closes (a proxy or a network that dropped mid-answer)."""
        self.faults.append(Fault(0, count=count, path=path, truncate=True))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _fault_for(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path and fault.path not in path:
                    continue
                if fault.count is not None:
                    if fault.seen < fault.count:
                        fault.seen += 1
                        return fault
                    continue
                fault.seen += 1
                if fault.every and fault.seen % fault.every == 0:
                    return fault
        return None

    # ---- the org -----------------------------------------------------------------------------
    def load_demo(self, accounts: int, seed: int = 42, as_of: datetime | None = None,
                  ) -> set[tuple[str, str, str, str]]:
        """Fill the emulator with a demo org; return the planted findings in HubSpot ids."""
        from connectors.demo.generator import default_as_of, generate
        from connectors.demo.teams import planted_without_teams

        self.as_of = as_of or default_as_of()
        for chunk in generate(accounts, seed, self.as_of):
            with self.lock:
                for row in chunk.rows.get("owner", []):
                    self._load_owner(row)
                for row in chunk.rows.get("account", []):
                    self._load_account(row)
                for row in chunk.rows.get("ownership_change", []):
                    self._load_owner_change(row)
                for row in chunk.rows.get("contact", []):
                    self._load_contact(row)
                for row in chunk.rows.get("opportunity", []):
                    self._load_deal(row)
                for row in chunk.rows.get("activity", []):
                    self._load_activity(row)
                # The emulator serves no account teams (yet): the COV findings of owners alone.
                for p in planted_without_teams(chunk, self.as_of):
                    related = p["related_user_id"]
                    self.planted.add((p["rule"], p["object_type"], hs_id(p["object_id"]),
                                      related if related.startswith("role:") else hs_id(related) or ""))
        return set(self.planted)

    def _load_owner(self, row: dict) -> None:
        oid = hs_id(row["id"])
        first, _, last = (row["name"] or "").partition(" ")
        teams = []
        if row.get("role"):
            teams.append({"id": str(zlib.crc32(row["role"].encode()) % 10**8), "name": row["role"],
                          "primary": True})
        if row.get("team"):
            teams.append({"id": str(zlib.crc32(row["team"].encode()) % 10**8), "name": row["team"],
                          "primary": False})
        self.owners[oid] = {
            "id": oid, "email": row["email"], "type": "PERSON", "firstName": first,
            "lastName": last, "userId": 9000 + int(oid) if row["active"] else None,
            "userIdIncludingInactive": 9000 + int(oid), "teams": teams,
            "createdAt": iso(row["updated_at"]), "updatedAt": iso(row["updated_at"]),
            "archived": not row["active"],
        }

    def _put(self, hs_type: str, rid: str, props: dict, created: datetime, deleted: bool,
             modified: datetime, owner: str | None) -> Record:
        props = {k: v for k, v in props.items() if v is not None}
        cursor = "lastmodifieddate" if hs_type == "contacts" else "hs_lastmodifieddate"
        props.update({"createdate": iso(created), cursor: iso(modified)})
        if owner:
            props[OWNER] = owner
            if hs_type in ("companies", "contacts", "deals"):
                props[ASSIGNED] = iso(created)
        record = Record(rid, props, iso(created), archived=deleted,
                        archived_at=iso(modified) if deleted else None,
                        history=[(owner, iso(created))] if owner else [])
        self.records[hs_type][rid] = record
        self._top[hs_type] = max(self._top.get(hs_type, 0), int(rid))
        self.changed(hs_type)
        return record

    def _load_account(self, row: dict) -> None:
        stage = (row["lifecycle_stage"] or "").lower() or None
        props = {
            "name": row["name"], "domain": row["domain"], "website": row["website"],
            "hs_parent_company_id": hs_id(row["parent_id"]), "country": row["country"],
            "state": row["state"],
            "numberofemployees": str(row["employees"]) if row["employees"] is not None else None,
            "annualrevenue": repr(row["annual_revenue"]) if row["annual_revenue"] is not None else None,
            "industry": row["industry"], "lifecyclestage": stage,
        }
        if stage and row["stage_changed_at"]:
            props[f"hs_lifecyclestage_{stage}_date"] = iso(row["stage_changed_at"])
        self._put("companies", hs_id(row["id"]), props, row["created_at"], row["deleted"],
                  row["updated_at"], hs_id(row["owner_id"]))

    def _load_owner_change(self, row: dict) -> None:
        record = self.records[MIRROR_TYPE[row["object_type"]]][hs_id(row["object_id"])]
        when = iso(row["changed_at"])
        first = record.history[0][1] if record.history else record.created
        record.history = [(hs_id(row["old_owner_id"]), first), (hs_id(row["new_owner_id"]), when)]
        record.props[ASSIGNED] = when
        cursor = "lastmodifieddate" if "lastmodifieddate" in record.props else "hs_lastmodifieddate"
        record.props[cursor] = max(record.props[cursor], when)  # a change modifies the record
        record.keys.clear()
        self.changed(MIRROR_TYPE[row["object_type"]])

    def _load_contact(self, row: dict) -> None:
        first, _, last = (row["name"] or "").partition(" ")
        props = {
            "email": row["email"], "firstname": first or None, "lastname": last or None,
            "jobtitle": row["title"], "lifecyclestage": row["lifecycle_stage"],
            "associatedcompanyid": hs_id(row["account_id"]),
        }
        record = self._put("contacts", hs_id(row["id"]), props, row["created_at"], row["deleted"],
                           row["updated_at"], hs_id(row["owner_id"]))
        if row["account_id"]:
            record.assoc["companies"] = [hs_id(row["account_id"])]

    def _load_deal(self, row: dict) -> None:
        props = {
            "dealname": row["name"], "dealstage": row["stage"].lower().replace(" ", ""),
            "pipeline": "default",
            "amount": repr(row["amount"]) if row["amount"] is not None else None,
            "closedate": iso(row["close_date"]),
            "hs_is_closed": str(bool(row["is_closed"])).lower(),
            "hs_is_closed_won": str(bool(row["is_won"])).lower(),
            # Original Source: the demo's referral lead sources as HubSpot's REFERRALS
            "hs_analytics_source": None if not row.get("lead_source") else
            "REFERRALS" if "referral" in row["lead_source"].lower() else "OFFLINE",
        }
        record = self._put("deals", hs_id(row["id"]), props, row["created_at"], row["deleted"],
                           row["updated_at"], hs_id(row["owner_id"]))
        if row["account_id"]:
            record.assoc["companies"] = [hs_id(row["account_id"])]

    def _load_activity(self, row: dict) -> None:
        hs_type = KIND_TYPE[row["kind"]]
        props = {"hs_timestamp": iso(row["occurred_at"])}
        if hs_type in STATUS_PROPERTY:
            props[STATUS_PROPERTY[hs_type]] = row["status"]
        record = self._put(hs_type, hs_id(row["id"]), props, row["updated_at"], row["deleted"],
                           row["updated_at"], hs_id(row["owner_id"]))
        for column, to_type in (("account_id", "companies"), ("contact_id", "contacts"),
                                ("opportunity_id", "deals")):
            if row[column]:
                record.assoc[to_type] = [hs_id(row[column])]

    # ---- changes behind roe's back -------------------------------------------------------------
    def now(self) -> str:
        return iso(utcnow())

    def _touch(self, hs_type: str, record: Record, at: str | None) -> None:
        cursor = "lastmodifieddate" if hs_type == "contacts" else "hs_lastmodifieddate"
        record.props[cursor] = at or self.now()
        record.keys.clear()
        self.changed(hs_type)

    def update(self, hs_type: str, rid: str, at: str | None = None, **props: str | None) -> None:
        """Change properties of a record (an owner change keeps its history)."""
        with self.lock:
            record = self.records[hs_type][str(rid)]
            when = at or self.now()
            for name, value in props.items():
                if name == OWNER:
                    self._set_owner(record, value, when)
                elif value is None:
                    record.props.pop(name, None)
                else:
                    record.props[name] = str(value)
            self._touch(hs_type, record, when)

    def set_owner(self, hs_type: str, rid: str, owner_id: str | None, at: str | None = None) -> None:
        self.update(hs_type, rid, at=at, **{OWNER: owner_id})

    def _set_owner(self, record: Record, owner_id: str | None, when: str) -> None:
        owner_id = str(owner_id) if owner_id else None
        if record.props.get(OWNER) == owner_id:
            return
        if owner_id:
            record.props[OWNER] = owner_id
        else:
            record.props.pop(OWNER, None)
        record.props[ASSIGNED] = when
        record.history.append((owner_id, when))

    def update_many(self, hs_type: str, ids: Iterable[str], at: str | None = None,
                    **props: str | None) -> int:
        n = 0
        for rid in ids:
            self.update(hs_type, rid, at=at, **props)
            n += 1
        return n

    def archive(self, hs_type: str, rid: str) -> None:
        with self.lock:
            record = self.records[hs_type][str(rid)]
            record.archived = True
            record.archived_at = self.now()
            self.changed(hs_type)

    def add(self, hs_type: str, props: dict[str, str | None], assoc: dict[str, list[str]] | None = None,
            at: str | None = None) -> str:
        """Create a record; returns its id."""
        with self.lock:
            table = self.records[hs_type]
            rid = str(self._top.get(hs_type, 0) + 1)
            self._top[hs_type] = int(rid)
            when = at or self.now()
            cursor = "lastmodifieddate" if hs_type == "contacts" else "hs_lastmodifieddate"
            values = {k: str(v) for k, v in props.items() if v is not None}
            values.setdefault("createdate", when)
            values[cursor] = when
            record = Record(rid, values, values["createdate"], assoc=dict(assoc or {}))
            if values.get(OWNER):
                values.setdefault(ASSIGNED, values["createdate"])
                record.history = [(values[OWNER], values["createdate"])]
            table[rid] = record
            self.changed(hs_type)
            return rid

    def changed(self, hs_type: str) -> None:
        """Forget the search indexes of ``hs_type``: call after changing records directly."""
        self._indexes = {k: v for k, v in self._indexes.items() if k[0] != hs_type}

    def _index(self, hs_type: str, prop: str) -> tuple[list, list[Record]]:
        """Live records with a value for ``prop``, sorted by it (then id), and their keys."""
        key = (hs_type, prop)
        if key not in self._indexes:
            rows = sorted(((r.key(prop), r.number, r) for r in self.records[hs_type].values()
                           if not r.archived and r.key(prop) is not None),
                          key=lambda t: (t[0], t[1]))
            self._indexes[key] = ([t[0] for t in rows], [t[2] for t in rows])
        return self._indexes[key]

    def live(self, hs_type: str) -> list[Record]:
        with self.lock:
            return [r for r in self.records[hs_type].values() if not r.archived]

    # ---- the API -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               ) -> tuple[int, dict, dict[str, str]]:
        parts = [p for p in path.split("/") if p]
        with self.lock:
            if method == "GET" and parts[:3] == ["crm", "v3", "owners"] and len(parts) == 3:
                return self._owners(query)
            if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
                hs_type = parts[3]
                if hs_type not in self.records:
                    return _error(404, f"Unknown object type {hs_type}")
                rest = parts[4:]
                if method == "GET" and not rest:
                    return self._list(hs_type, query)
                if method == "POST" and rest == ["search"]:
                    return self._search(hs_type, body)
                if method == "POST" and rest == ["batch", "read"]:
                    return self._batch_read(hs_type, body)
                if method == "POST" and rest == ["batch", "update"]:
                    return self._batch_update(hs_type, body)
            if (method == "POST" and parts[:3] == ["crm", "v4", "associations"]
                    and parts[5:] == ["batch", "read"]):
                return self._associations(parts[3], parts[4], body)
        return _error(404, f"No route for {method} {path}")

    def _owners(self, query):
        archived = _flag(query, "archived")
        limit = min(int(_one(query, "limit") or 100), 500)
        after = int(_one(query, "after") or 0)
        owners = sorted((o for o in self.owners.values() if o["archived"] == archived),
                        key=lambda o: int(o["id"]))
        page = owners[after: after + limit]
        out: dict = {"results": [dict(o) for o in page]}
        if after + limit < len(owners):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out, {}

    def _shape(self, hs_type: str, record: Record, properties: Iterable[str] | None) -> dict:
        cursor = "lastmodifieddate" if hs_type == "contacts" else "hs_lastmodifieddate"
        names = list(properties or []) or ["createdate", cursor]
        props = {name: record.value(name) for name in names}
        props["hs_object_id"] = record.id
        out = {"id": record.id, "properties": props, "createdAt": record.created,
               "updatedAt": record.props.get(cursor), "archived": record.archived}
        if record.archived:
            out["archivedAt"] = record.archived_at
        return out

    def _list(self, hs_type, query):
        archived = _flag(query, "archived")
        limit = int(_one(query, "limit") or 10)
        if limit > 100:
            return _error(400, "limit must be at most 100")
        after = int(_one(query, "after") or 0)
        records = sorted((r for r in self.records[hs_type].values() if r.archived == archived),
                         key=lambda r: int(r.id))
        props = query.get("properties")
        page = records[after: after + limit]
        out: dict = {"results": [self._shape(hs_type, r, props) for r in page]}
        if after + limit < len(records):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out, {}

    def _search(self, hs_type, body):
        body = body or {}
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return _error(400, "limit must be at most 200", "VALIDATION_ERROR")
        after = int(body.get("after") or 0)
        if after + limit > self.search_cap:
            return _error(400, f"Paging past {self.search_cap} search results is not allowed.",
                          "VALIDATION_ERROR")
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            return _error(400, "Only one sort is allowed.", "VALIDATION_ERROR")
        tests = [_compile(g) for g in groups]
        matches = self._ranged_search(hs_type, groups, sorts, tests)
        if matches is None:
            matches = [r for r in self.records[hs_type].values()
                       if not r.archived and (not tests or any(t(r) for t in tests))]
            _sort(matches, sorts)
        page = matches[after: after + limit]
        out: dict = {"total": len(matches),
                     "results": [self._shape(hs_type, r, body.get("properties")) for r in page]}
        if after + limit < len(matches):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out, {}

    def _ranged_search(self, hs_type, groups, sorts, tests) -> list[Record] | None:
        """Matches of one filter group bounded on the ascending sort property, through an index.

        The same answer as the plain scan, only faster on large object types; None when the
        search does not have that shape.
        """
        if len(groups) != 1 or len(sorts) != 1 or not isinstance(sorts[0], dict):
            return None
        name = sorts[0]["propertyName"]
        if sorts[0].get("direction", "ASCENDING") != "ASCENDING":
            return None
        filters = groups[0].get("filters") or []
        if name == "hs_object_id":
            return self._one_value_by_id(hs_type, filters, tests[0])
        bounds = [f for f in groups[0].get("filters") or []
                  if f.get("propertyName") == name and f.get("operator") in ("GT", "GTE", "EQ")]
        if not bounds:
            return None
        keys, records = self._index(hs_type, name)
        lo, hi = 0, len(keys)
        for f in bounds:
            want = _sort_key(f.get("value"))
            if want is None:
                return None
            if f["operator"] == "GT":
                lo = max(lo, bisect.bisect_right(keys, want))
            else:
                lo = max(lo, bisect.bisect_left(keys, want))
            if f["operator"] == "EQ":
                hi = min(hi, bisect.bisect_right(keys, want))
        if len(bounds) == len(groups[0].get("filters") or []):
            return records[lo:hi]  # the bounds were the whole filter
        test = tests[0]
        return [r for r in records[lo:hi] if test(r)]

    def _one_value_by_id(self, hs_type, filters, test) -> list[Record] | None:
        """Records with one value of a property, by id: how roe pages through a bulk update."""
        equal = next((f for f in filters if f.get("operator") == "EQ"
                      and f.get("propertyName") != "hs_object_id"), None)
        if equal is None:
            return None
        keys, records = self._index(hs_type, equal["propertyName"])
        want = _sort_key(equal.get("value"))
        if want is None:
            return None
        same = records[bisect.bisect_left(keys, want): bisect.bisect_right(keys, want)]
        others = []
        for f in filters:
            if f is equal:
                continue
            if f.get("propertyName") == "hs_object_id" and f.get("operator") in ("GT", "GTE"):
                numbers = [r.number for r in same]  # the index keeps them in id order
                edge = bisect.bisect_right if f["operator"] == "GT" else bisect.bisect_left
                same = same[edge(numbers, int(float(f["value"]))):]
            else:
                others.append(f)
        return [r for r in same if test(r)] if others else same

    def _batch_read(self, hs_type, body):
        inputs = (body or {}).get("inputs") or []
        with_history = (body or {}).get("propertiesWithHistory") or []
        cap = 50 if with_history else 100
        if len(inputs) > cap:
            return _error(400, f"Batch read takes at most {cap} inputs", "VALIDATION_ERROR")
        archived = bool((body or {}).get("archived"))
        results, missing = [], []
        for item in inputs:
            record = self.records[hs_type].get(str(item.get("id")))
            if record is None or record.archived != archived:
                missing.append(str(item.get("id")))
                continue
            shaped = self._shape(hs_type, record, (body or {}).get("properties"))
            if with_history:
                shaped["propertiesWithHistory"] = {
                    name: [{"value": value or "", "timestamp": when, "sourceType": "CRM_UI"}
                           for value, when in reversed(record.history)]
                    for name in with_history if name == OWNER
                }
            results.append(shaped)
        return _batch_answer(hs_type, results, [("OBJECT_NOT_FOUND", missing)])

    def _batch_update(self, hs_type, body):
        inputs = (body or {}).get("inputs") or []
        if len(inputs) > 100:
            return _error(400, "Batch update takes at most 100 inputs", "VALIDATION_ERROR")
        missing, invalid, good = [], [], []
        for item in inputs:
            rid = str(item.get("id"))
            record = self.records[hs_type].get(rid)
            props = item.get("properties") or {}
            if record is None or record.archived:
                missing.append(rid)
            elif OWNER in props and props[OWNER] and (
                    str(props[OWNER]) not in self.owners or self.owners[str(props[OWNER])]["archived"]):
                invalid.append(rid)
            else:
                good.append((record, props))
        if self.whole_batch_400 and invalid:
            return _error(400, "Property values were not valid: hubspot_owner_id",
                          "VALIDATION_ERROR")
        when = self.now()
        results = []
        for record, props in good:
            for name, value in props.items():
                if name == OWNER:
                    self._set_owner(record, value, when)
                elif value is None or value == "":
                    record.props.pop(name, None)
                else:
                    record.props[name] = str(value)
            self._touch(hs_type, record, when)
            results.append(self._shape(hs_type, record, list(props)))
        return _batch_answer(hs_type, results, [("OBJECT_NOT_FOUND", missing),
                                                ("VALIDATION_ERROR", invalid)])

    def _associations(self, from_type, to_type, body):
        inputs = (body or {}).get("inputs") or []
        if len(inputs) > 1000:
            return _error(400, "Batch read takes at most 1000 inputs", "VALIDATION_ERROR")
        if from_type not in self.records or to_type not in self.records:
            return _error(400, f"Unknown association {from_type} -> {to_type}")
        type_id = ASSOCIATION_TYPE.get((from_type, to_type), 1)
        results, errors = [], []
        for item in inputs:
            rid = str(item.get("id"))
            record = self.records[from_type].get(rid)
            targets = (record.assoc.get(to_type) if record else None) or []
            if not targets:
                errors.append({"status": "error", "category": "NO_ASSOCIATIONS_FOUND",
                               "message": f"No {to_type} are associated with {from_type} {rid}.",
                               "context": {"fromObjectId": [rid]}})
                continue
            results.append({"from": {"id": rid}, "to": [
                {"toObjectId": int(t), "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": type_id,
                     "label": "Primary" if type_id in (1, 5) else None}]}
                for t in targets]})
        out = {"status": "COMPLETE", "results": results, "startedAt": self.now(),
               "completedAt": self.now()}
        if errors:
            out.update(numErrors=len(errors), errors=errors)
            return 207, out, {}
        return 200, out, {}


def _batch_answer(hs_type: str, results: list, problems: list[tuple[str, list[str]]]):
    now = iso(utcnow())
    out: dict = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
    errors = []
    for category, ids in problems:
        if not ids:
            continue
        message = ("Could not get some objects, they may be deleted or not exist."
                   if category == "OBJECT_NOT_FOUND" else
                   f"{OWNER}: not a valid, active owner id")
        errors.append({"status": "error", "category": category, "message": message,
                       "context": {"ids": ids}})
    if errors:
        out.update(numErrors=len(errors), errors=errors)
        return 207, out, {}
    return 200, out, {}


def _error(status: int, message: str, category: str = "ERROR") -> tuple[int, dict, dict]:
    return status, {"status": "error", "message": message, "category": category,
                    "correlationId": "00000000-0000-0000-0000-000000000000"}, {}


def _one(query: dict, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _flag(query: dict, name: str) -> bool:
    return (_one(query, name) or "false").lower() == "true"


def _sort(records: list[Record], sorts: list) -> None:
    """HubSpot's one sort, ties by id; records without the property last."""
    if not sorts:
        records.sort(key=lambda r: r.number)
        return
    sort = sorts[0]
    if isinstance(sort, str):
        name, descending = sort.lstrip("-"), sort.startswith("-")
    else:
        name, descending = sort["propertyName"], sort.get("direction") == "DESCENDING"
    present = [r for r in records if r.key(name) is not None]
    absent = [r for r in records if r.key(name) is None]
    present.sort(key=lambda r: (r.key(name), r.number), reverse=descending)
    records[:] = present + sorted(absent, key=lambda r: r.number)


def _compile(group: dict):
    """A filter group as a test of one record (all its filters must hold)."""
    filters = [(f["propertyName"], f.get("operator", "EQ"), _sort_key(f.get("value")),
                _sort_key(f.get("highValue")), {_sort_key(v) for v in f.get("values") or []})
               for f in group.get("filters") or []]
    return lambda record: all(_holds(record, *f) for f in filters)


def _holds(record: Record, name: str, op: str, want, high, values) -> bool:
    have = record.key(name)
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if op in ("IN", "NOT_IN"):
        return (have in values) == (op == "IN")
    if have is None or want is None or want[0] != have[0]:
        return op == "NEQ"
    if op == "BETWEEN":
        return high is not None and want <= have <= high
    compare = {"EQ": have == want, "NEQ": have != want, "GT": have > want,
               "GTE": have >= want, "LT": have < want, "LTE": have <= want}
    return compare.get(op, False)


class _Handler(BaseHTTPRequestHandler):
    emu: HubSpotEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _serve(self, method: str) -> None:
        emu = self.emu
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Request(method, url.path, query, body)
        with emu.lock:
            emu.requests.append(request)
        auth = self.headers.get("Authorization") or ""
        presented = auth.removeprefix("Bearer ").strip()
        if presented != emu.token:
            # Like some proxies do, echo what was presented: roe must never print it.
            request.status = 401
            self._send(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                             "message": f"Authentication failed for token {presented}."})
            return
        fault = emu._fault_for(url.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                request.status = fault.status
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                if fault.html is not None:
                    self._send_bytes(fault.status, fault.html.encode(), "text/html; charset=utf-8", headers)
                    return
                payload = fault.body or {
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit."
                    if fault.status == 429 else "Internal error",
                    "errorType": "RATE_LIMIT" if fault.status == 429 else "ERROR",
                    "policyName": "TEN_SECONDLY_ROLLING" if fault.status == 429 else None,
                }
                self._send(fault.status, payload, headers)
                return
        try:
            status, payload, headers = emu.handle(method, url.path, query, body)
        except Exception as exc:  # noqa: BLE001 - a bug in the emulator: say so, as a 500
            status, payload, headers = 500, {"status": "error", "message": repr(exc)}, {}
        request.status = status
        self._send(status, payload, headers, truncate=fault is not None and fault.truncate)

    def _send(self, status: int, payload: dict, headers: dict | None = None,
              truncate: bool = False) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self._send_bytes(status, data, "application/json;charset=utf-8", headers, truncate=truncate)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict | None = None,
                    truncate: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        used = len(self.emu.requests)
        self.send_header("X-HubSpot-RateLimit-Daily", str(self.emu.daily_limit))
        self.send_header("X-HubSpot-RateLimit-Daily-Remaining",
                         str(max(0, self.emu.daily_limit - used)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if truncate:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def do_GET(self):  # noqa: N802
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_PATCH(self):  # noqa: N802
        self._serve("PATCH")

    def do_PUT(self):  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self):  # noqa: N802
        self._serve("DELETE")


@pytest.fixture
def hs_emulator(monkeypatch):
    """A running, empty HubSpot emulator; HUBSPOT_ACCESS_TOKEN and HUBSPOT_BASE_URL point at it.

    Fill it with ``hs_emulator.load_demo(accounts, seed, as_of)``.
    """
    emu = HubSpotEmulator().start()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", emu.token)
    monkeypatch.setenv("HUBSPOT_BASE_URL", emu.url)
    try:
        yield emu
    finally:
        emu.stop()


__all__ = ["FAST_SETTINGS", "FAST_SETTINGS_TOML", "TOKEN", "HubSpotEmulator", "hs_emulator",
           "hs_id", "iso"]
