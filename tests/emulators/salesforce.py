"""A local Salesforce for tests: a real HTTPS server on 127.0.0.1 that the real simple-salesforce
talks to, holding an org built by the demo generator.

It serves what roe uses, the way Salesforce answers it:

* ``GET  /services/data/vXX.X/query/?q=`` and ``queryAll/`` (a SOQL subset: fields, parent
  relationships such as ``UserRole.Name``, the ``Histories`` subquery, WHERE with AND / OR / NOT /
  IN and typed literals, ORDER BY, LIMIT), next pages through ``nextRecordsUrl``, the
  ``Sforce-Query-Options: batchSize=N`` header, ``INVALID_FIELD`` for unknown fields;
* ``POST`` and ``DELETE composite/sobjects`` (create AccountTeamMember rows, delete records by
  ``ids``, 200 a call);
* ``PATCH composite/sobjects`` (sObject Collections, at most 200 records of any mix of types in
  at most 10 chunks of one type, updated in the order listed, ``allOrNone``);
* Bulk API 2.0 query jobs (CSV pages with ``Sforce-Locator`` and ``Sforce-NumberOfRecords``,
  records in no particular order, as Salesforce promises none) and ingest jobs (``update``) with
  successful, failed and unprocessed results;
* ``GET limits/``, the ``Sforce-Limit-Info`` header on every answer and ``REQUEST_LIMIT_EXCEEDED``
  once the org's daily limit is used up, a ``Date`` header from the org's clock, and ``401
  INVALID_SESSION_ID`` for a wrong token.

Tests can count and inspect every request (:attr:`SalesforceEmulator.requests`, :meth:`writes`),
change the org behind roe's back (:meth:`SalesforceOrg.update`, :meth:`~SalesforceOrg.set_owner`,
:meth:`~SalesforceOrg.delete`, :meth:`~SalesforceOrg.create`), make calls fail
(:meth:`SalesforceEmulator.fail`) and make single records refuse updates
(:meth:`SalesforceOrg.refuse_updates`). Updates through the API really change owners and write
AccountHistory the way Salesforce does (an id row and a name row per owner change).

Use the ``sf_emulator`` fixture: it starts a server with a small demo org and points
``SALESFORCE_INSTANCE_URL``, ``SALESFORCE_ACCESS_TOKEN`` and ``REQUESTS_CA_BUNDLE`` at it::

    from tests.emulators.salesforce import sf_emulator  # noqa: F401

    @pytest.mark.parametrize("sf_emulator", [{"accounts": 60, "seed": 3}], indirect=True)
    def test_something(sf_emulator): ...
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import random
import re
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "00D000000000001EAA!AQ0AQEmulatorAccessTokenNotARealOne.xyz"
API_LIMIT = 15_000  # a Developer Edition's daily requests
TRUNCATE_HEADER = "X-Emulator-Truncate"  # internal: the handler cuts this answer short

# ---- the schema ------------------------------------------------------------------------------
# Field types: id, string, boolean, int, double, date, datetime, any (history values).
SCHEMA: dict[str, dict[str, str]] = {
    "UserRole": {"Id": "id", "Name": "string"},
    "User": {
        "Id": "id", "Email": "string", "FirstName": "string", "LastName": "string", "Name": "string",
        "IsActive": "boolean", "UserRoleId": "id", "ManagerId": "id", "Department": "string",
        "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime",
    },
    "Account": {
        "Id": "id", "Name": "string", "Website": "string", "OwnerId": "id", "ParentId": "id",
        "BillingCountry": "string", "BillingState": "string", "BillingCountryCode": "string",
        "BillingStateCode": "string", "NumberOfEmployees": "int", "AnnualRevenue": "double",
        "Industry": "string", "Type": "string", "CreatedDate": "datetime",
        "LastModifiedDate": "datetime", "SystemModstamp": "datetime", "IsDeleted": "boolean",
        # Custom user lookups, for [salesforce] team_fields.
        "CSM__c": "id", "Sales_Engineer__c": "id",
    },
    "AccountTeamMember": {
        "Id": "id", "AccountId": "id", "UserId": "id", "TeamMemberRole": "string",
        "AccountAccessLevel": "string", "OpportunityAccessLevel": "string",
        "CaseAccessLevel": "string", "CreatedDate": "datetime", "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime", "IsDeleted": "boolean",
    },
    "Contact": {
        "Id": "id", "AccountId": "id", "OwnerId": "id", "Email": "string", "FirstName": "string",
        "LastName": "string", "Name": "string", "Title": "string", "Lifecycle_Stage__c": "string",
        "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime",
        "IsDeleted": "boolean",
    },
    "Opportunity": {
        "Id": "id", "AccountId": "id", "OwnerId": "id", "Name": "string", "StageName": "string",
        "Amount": "double", "CloseDate": "date", "IsClosed": "boolean", "IsWon": "boolean",
        "LeadSource": "string",
        "CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime",
        "IsDeleted": "boolean",
    },
    "Task": {
        "Id": "id", "WhoId": "id", "WhatId": "id", "AccountId": "id", "OwnerId": "id",
        "Subject": "string", "ActivityDate": "date", "CompletedDateTime": "datetime",
        "Status": "string", "TaskSubtype": "string", "CreatedDate": "datetime",
        "LastModifiedDate": "datetime", "SystemModstamp": "datetime", "IsDeleted": "boolean",
    },
    "Event": {
        "Id": "id", "WhoId": "id", "WhatId": "id", "AccountId": "id", "OwnerId": "id",
        "Subject": "string", "ActivityDateTime": "datetime", "ActivityDate": "date",
        "DurationInMinutes": "int", "EventSubtype": "string", "CreatedDate": "datetime",
        "LastModifiedDate": "datetime", "SystemModstamp": "datetime", "IsDeleted": "boolean",
    },
    "AccountHistory": {
        "Id": "id", "AccountId": "id", "Field": "string", "DataType": "string", "OldValue": "any",
        "NewValue": "any", "CreatedDate": "datetime", "CreatedById": "id", "IsDeleted": "boolean",
    },
}
# (object, relationship name) -> (related object, foreign key field)
PARENTS = {
    ("User", "UserRole"): ("UserRole", "UserRoleId"),
    ("User", "Manager"): ("User", "ManagerId"),
    ("Account", "Owner"): ("User", "OwnerId"),
    ("Account", "Parent"): ("Account", "ParentId"),
    ("Contact", "Account"): ("Account", "AccountId"),
    ("Contact", "Owner"): ("User", "OwnerId"),
    ("Opportunity", "Account"): ("Account", "AccountId"),
    ("Opportunity", "Owner"): ("User", "OwnerId"),
    ("AccountHistory", "Account"): ("Account", "AccountId"),
    ("AccountTeamMember", "Account"): ("Account", "AccountId"),
    ("AccountTeamMember", "User"): ("User", "UserId"),
}
CHILDREN = {("Account", "Histories"): ("AccountHistory", "AccountId")}
KEY_PREFIX = {"UserRole": "00E", "User": "005", "Account": "001", "Contact": "003",
              "Opportunity": "006", "Task": "00T", "Event": "00U", "AccountHistory": "017",
              "AccountTeamMember": "01M"}
WRITABLE = ("Account", "Contact", "Opportunity", "Task", "Event")
# Account fields whose changes Salesforce records in AccountHistory (field history tracking).
TRACKED = {"OwnerId": "Owner", "Type": "Type"}


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# ---- SOQL ------------------------------------------------------------------------------------
_TOKENS = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
""", re.VERBOSE)


@dataclass
class ParsedQuery:
    sobject: str
    fields: list[str]
    subqueries: list[ParsedQuery] = field(default_factory=list)
    where: tuple | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None
    relationship: str | None = None  # a subquery's child relationship name


def _literal_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(UTC).replace(tzinfo=None)


class _Parser:
    def __init__(self, text: str):
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKENS.match(text, pos)
            if not m:
                raise SoqlError("MALFORMED_QUERY", f"unexpected character at {pos}: {text[pos:pos + 20]!r}")
            pos = m.end()
            if m.lastgroup != "ws":
                self.tokens.append((m.lastgroup, m.group()))
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.pos += 1
        return token

    def word(self, *expected: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in expected:
            self.pos += 1
            return True
        return False

    def expect_word(self, word: str) -> None:
        if not self.word(word):
            raise SoqlError("MALFORMED_QUERY", f"expecting {word}, found {self.peek()}")

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token == ("punct", char):
            self.pos += 1
            return True
        return False

    def query(self, nested: bool = False) -> ParsedQuery:
        self.expect_word("SELECT")
        fields: list[str] = []
        subqueries: list[ParsedQuery] = []
        while True:
            if self.punct("("):
                subqueries.append(self.query(nested=True))
                if not self.punct(")"):
                    raise SoqlError("MALFORMED_QUERY", "unclosed subquery")
            else:
                kind, value = self.take()
                if kind != "word":
                    raise SoqlError("MALFORMED_QUERY", f"unexpected {value!r} in SELECT")
                fields.append(value)
            if not self.punct(","):
                break
        self.expect_word("FROM")
        kind, sobject = self.take()
        if kind != "word":
            raise SoqlError("MALFORMED_QUERY", "expecting an object after FROM")
        query = ParsedQuery(sobject, fields, subqueries)
        if self.word("WHERE"):
            query.where = self.disjunction()
        if self.word("ORDER"):
            self.expect_word("BY")
            while True:
                kind, name = self.take()
                descending = self.word("DESC")
                if not descending:
                    self.word("ASC")
                if self.word("NULLS"):
                    self.word("FIRST", "LAST")
                query.order.append((name, descending))
                if not self.punct(","):
                    break
        if self.word("LIMIT"):
            query.limit = int(self.take()[1])
        if not nested and self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token {self.peek()[1]!r}")
        return query

    def disjunction(self) -> tuple:
        parts = [self.conjunction()]
        while self.word("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conjunction(self) -> tuple:
        parts = [self.negation()]
        while self.word("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def negation(self) -> tuple:
        if self.word("NOT"):
            return ("not", self.primary())
        return self.primary()

    def primary(self) -> tuple:
        if self.punct("("):
            inner = self.disjunction()
            if not self.punct(")"):
                raise SoqlError("MALFORMED_QUERY", "unbalanced parentheses")
            return inner
        kind, name = self.take()
        if kind != "word":
            raise SoqlError("MALFORMED_QUERY", f"expecting a field, found {name!r}")
        negate = self.word("NOT")
        if self.word("IN"):
            if not self.punct("("):
                raise SoqlError("MALFORMED_QUERY", "expecting ( after IN")
            values = [self.literal()]
            while self.punct(","):
                values.append(self.literal())
            if not self.punct(")"):
                raise SoqlError("MALFORMED_QUERY", "unclosed IN list")
            return ("notin" if negate else "in", name, values)
        if negate:
            raise SoqlError("MALFORMED_QUERY", "expecting IN after NOT")
        kind, op = self.take()
        if kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"expecting an operator after {name}, found {op!r}")
        return ("cmp", "!=" if op == "<>" else op, name, self.literal())

    def literal(self) -> tuple[str, object]:
        kind, text = self.take()
        if kind == "string":
            return ("string", re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "datetime":
            return ("datetime", _literal_datetime(text))
        if kind == "date":
            return ("date", date.fromisoformat(text))
        if kind == "number":
            return ("number", float(text) if "." in text else int(text))
        if kind == "word" and text.lower() in ("true", "false"):
            return ("boolean", text.lower() == "true")
        if kind == "word" and text.lower() == "null":
            return ("null", None)
        raise SoqlError("MALFORMED_QUERY", f"unexpected value {text!r}")


_LITERAL_FOR_TYPE = {"datetime": "datetime", "date": "date", "boolean": "boolean",
                     "int": "number", "double": "number", "string": "string", "id": "string"}


# ---- the org ---------------------------------------------------------------------------------
class SalesforceOrg:
    """The org's data and clock, thread-safe. Records are dicts of API field names to Python values
    (naive UTC datetimes); an update replaces the dict, so open query cursors keep their snapshot."""

    def __init__(self, now: datetime | None = None, *, api_limit: int = API_LIMIT, api_used: int = 0):
        self.records: dict[str, dict[str, dict]] = {name: {} for name in SCHEMA}
        self.lock = threading.RLock()
        self.clock = (now or datetime(2026, 1, 1)).replace(microsecond=0)
        self.api_limit = api_limit
        self.api_used = api_used
        self.planted: list[dict] = []  # what the demo generator planted, for audit tests
        self.as_of: datetime | None = None
        self._ids = itertools.count(1)
        self._refusals: dict[str, tuple[str, str]] = {}
        self._roles: dict[str, str] = {}
        # sObjects this org does not have (e.g. AccountTeamMember when account teams are off):
        # queries on them fail with INVALID_TYPE, as Salesforce answers.
        self.unavailable: set[str] = set()

    # -- time and ids
    def now(self) -> datetime:
        return self.clock

    def tick(self) -> datetime:
        """Move the clock one second on and return it: every write gets its own time."""
        with self.lock:
            self.clock += timedelta(seconds=1)
            return self.clock

    def advance(self, **delta) -> datetime:
        with self.lock:
            self.clock += timedelta(**delta)
            return self.clock

    def new_id(self, sobject: str) -> str:
        """A fresh 18-character id: a unique 15-character id and Salesforce's case checksum."""
        return _with_checksum(f"{KEY_PREFIX[sobject]}E{next(self._ids):011d}")

    # -- reading
    def get(self, sobject: str, record_id: str) -> dict | None:
        return self.records[sobject].get(record_id)

    def owner_of(self, sobject: str, record_id: str) -> str | None:
        record = self.get(_sobject(sobject), record_id)
        return record.get("OwnerId") if record else None

    def count(self, sobject: str, include_deleted: bool = True) -> int:
        return sum(1 for r in self.records[sobject].values() if include_deleted or not r.get("IsDeleted"))

    def user_name(self, user_id: str | None) -> str | None:
        user = self.records["User"].get(user_id or "")
        return user["Name"] if user else None

    # -- writing (also used by the API handlers)
    def insert(self, sobject: str, fields: dict) -> str:
        """Put a record in as it is (times included): for seeding."""
        with self.lock:
            record = {name: None for name in SCHEMA[sobject]}
            if "IsDeleted" in record:
                record["IsDeleted"] = False
            # Salesforce keeps whole seconds
            record.update({k: v.replace(microsecond=0) if isinstance(v, datetime) else v
                           for k, v in fields.items()})
            record.setdefault("Id", self.new_id(sobject))
            record["Id"] = record["Id"] or self.new_id(sobject)
            self.records[sobject][record["Id"]] = record
            return record["Id"]

    def create(self, sobject: str, **fields) -> str:
        """A new record, as if a user created it now."""
        with self.lock:
            now = self.tick()
            record_id = self.insert(sobject, {"CreatedDate": now, "LastModifiedDate": now,
                                              "SystemModstamp": now, **fields})
            if sobject == "Account":
                self.add_history(record_id, "created", None, None, now)
            return record_id

    def update(self, sobject: str, record_id: str, **fields) -> dict:
        """Change a record as a user would: new modification times, history for tracked fields."""
        sobject = _sobject(sobject)
        with self.lock:
            old = self.records[sobject][record_id]
            unknown = set(fields) - set(SCHEMA[sobject])
            if unknown:
                raise KeyError(f"{sobject} has no field {sorted(unknown)}")
            now = self.tick()
            new = {**old, **fields, "LastModifiedDate": now, "SystemModstamp": now}
            if sobject == "Account":
                for name, label in TRACKED.items():
                    if name in fields and fields[name] != old.get(name):
                        if name == "OwnerId":
                            self.add_owner_change(record_id, old.get(name), fields[name], now)
                        else:
                            self.add_history(record_id, label, old.get(name), fields[name], now)
            self.records[sobject][record_id] = new
            return new

    def set_owner(self, sobject: str, record_id: str, owner_id: str) -> dict:
        """Change an owner behind roe's back (``sobject`` may be a mirror type such as ``account``)."""
        return self.update(sobject, record_id, OwnerId=owner_id)

    def delete(self, sobject: str, record_id: str, cascade: bool = True) -> None:
        """Move a record to the recycle bin (queryAll still returns it, with IsDeleted true).

        Deleting an account deletes its contacts and opportunities, as Salesforce does.
        """
        sobject = _sobject(sobject)
        with self.lock:
            now = self.tick()
            old = self.records[sobject][record_id]
            self.records[sobject][record_id] = {**old, "IsDeleted": True, "SystemModstamp": now}
            if cascade and sobject == "Account":
                for child in ("Contact", "Opportunity", "AccountTeamMember"):
                    for rid, rec in list(self.records[child].items()):
                        if rec.get("AccountId") == record_id and not rec["IsDeleted"]:
                            self.records[child][rid] = {**rec, "IsDeleted": True, "SystemModstamp": now}

    def purge(self, sobject: str, record_id: str) -> None:
        """Empty a record from the recycle bin: gone even for queryAll."""
        with self.lock:
            del self.records[_sobject(sobject)][record_id]

    def add_history(self, account_id: str, field_name: str, old, new, at: datetime, data_type="Text") -> None:
        self.insert("AccountHistory", {
            "AccountId": account_id, "Field": field_name, "DataType": data_type, "OldValue": old,
            "NewValue": new, "CreatedDate": at, "CreatedById": None,
        })

    def add_owner_change(self, account_id: str, old: str | None, new: str, at: datetime) -> None:
        """Salesforce's two rows for one owner change: the user ids, then the users' names."""
        self.add_history(account_id, "Owner", old, new, at, data_type="EntityId")
        self.add_history(account_id, "Owner", self.user_name(old), self.user_name(new), at)

    def refuse_updates(self, record_id: str, code: str = "UNABLE_TO_LOCK_ROW",
                       message: str = "unable to obtain exclusive access to this record") -> None:
        """Make every later API update of this record fail with ``code``."""
        self._refusals[record_id] = (code, message)

    def check_update(self, sobject: str, record_id: str | None, fields: dict) -> tuple[str, str] | None:
        """Why Salesforce would refuse this update: ``(statusCode, message)``, or None."""
        if sobject not in WRITABLE:
            return ("INVALID_TYPE", f"sObject type '{sobject}' is not supported")
        record = self.records[sobject].get(record_id or "")
        if record is None:
            return ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if record.get("IsDeleted"):
            return ("ENTITY_IS_DELETED", "entity is deleted")
        for name in fields:
            if name not in SCHEMA[sobject] or name in ("Id", "CreatedDate", "LastModifiedDate",
                                                        "SystemModstamp", "IsDeleted"):
                return ("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {name}")
        if "OwnerId" in fields:
            user = self.records["User"].get(fields["OwnerId"] or "")
            if user is None:
                return ("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {fields['OwnerId']}")
            if not user["IsActive"]:
                return ("INACTIVE_OWNER_OR_USER",
                        f"operation performed with inactive user [{fields['OwnerId']}] as owner of {sobject.lower()}")
        if record_id in self._refusals:
            return self._refusals[record_id]
        return None

    # -- seeding from the demo generator
    @classmethod
    def from_demo(cls, accounts: int = 120, seed: int = 42, as_of: datetime | None = None) -> SalesforceOrg:
        """The demo generator's org, in Salesforce's shape; ``planted`` holds its planted findings."""
        from connectors.demo.generator import default_as_of

        as_of = as_of or default_as_of()
        org = cls(now=as_of + timedelta(hours=1))
        org.as_of = as_of
        for object_type, row in _demo_rows(accounts, seed, as_of):
            if object_type == "planted":
                org.planted.append(dict(row))
            else:
                getattr(org, f"_load_{object_type}")(row)
        return org

    def _role_id(self, name: str | None) -> str | None:
        if not name:
            return None
        if name not in self._roles:
            self._roles[name] = self.insert("UserRole", {"Name": name})
        return self._roles[name]

    def _load_owner(self, row: dict) -> None:
        first, _, last = (row["name"] or "").partition(" ")
        self.insert("User", {
            "Id": row["id"], "Email": row["email"], "FirstName": first, "LastName": last,
            "Name": row["name"], "IsActive": row["active"], "UserRoleId": self._role_id(row["role"]),
            "ManagerId": row["manager_id"], "Department": row["team"],
            "CreatedDate": row["updated_at"] - timedelta(days=400),
            "LastModifiedDate": row["updated_at"], "SystemModstamp": row["updated_at"],
        })

    def _load_account(self, row: dict) -> None:
        self.insert("Account", {
            "Id": row["id"], "Name": row["name"], "Website": row["website"], "OwnerId": row["owner_id"],
            "ParentId": row["parent_id"], "BillingCountry": row["country"], "BillingState": row["state"],
            "BillingCountryCode": row["country"], "BillingStateCode": row["state"],
            "NumberOfEmployees": row["employees"], "AnnualRevenue": row["annual_revenue"],
            "Industry": row["industry"], "Type": row["lifecycle_stage"],
            "CreatedDate": row["created_at"], "LastModifiedDate": row["updated_at"],
            "SystemModstamp": row["updated_at"], "IsDeleted": row["deleted"],
        })
        self.add_history(row["id"], "created", None, None, row["created_at"])
        if row["stage_changed_at"] is not None:
            self.add_history(row["id"], "Type", None, row["lifecycle_stage"], row["stage_changed_at"])

    def _load_account_team_member(self, row: dict) -> None:
        self.insert("AccountTeamMember", {
            "Id": row["id"], "AccountId": row["account_id"], "UserId": row["user_id"],
            "TeamMemberRole": row["team_role"], "CreatedDate": row["created_at"],
            "LastModifiedDate": row["updated_at"], "SystemModstamp": row["updated_at"],
            "IsDeleted": row["deleted"],
        })

    def _load_contact(self, row: dict) -> None:
        first, _, last = (row["name"] or "").partition(" ")
        self.insert("Contact", {
            "Id": row["id"], "AccountId": row["account_id"], "OwnerId": row["owner_id"],
            "Email": row["email"], "FirstName": first, "LastName": last, "Name": row["name"],
            "Title": row["title"], "Lifecycle_Stage__c": row["lifecycle_stage"],
            "CreatedDate": row["created_at"], "LastModifiedDate": row["updated_at"],
            "SystemModstamp": row["updated_at"], "IsDeleted": row["deleted"],
        })

    def _load_opportunity(self, row: dict) -> None:
        self.insert("Opportunity", {
            "Id": row["id"], "AccountId": row["account_id"], "OwnerId": row["owner_id"],
            "Name": row["name"], "StageName": row["stage"], "Amount": row["amount"],
            "CloseDate": row["close_date"], "IsClosed": row["is_closed"], "IsWon": row["is_won"],
            "LeadSource": row.get("lead_source"),
            "CreatedDate": row["created_at"], "LastModifiedDate": row["updated_at"],
            "SystemModstamp": row["updated_at"], "IsDeleted": row["deleted"],
        })

    def _load_activity(self, row: dict) -> None:
        what = row["account_id"] or row["opportunity_id"]
        account = row["account_id"]
        if row["opportunity_id"]:
            opp = self.records["Opportunity"].get(row["opportunity_id"])
            account = opp["AccountId"] if opp else None
        if row["contact_id"]:
            contact = self.records["Contact"].get(row["contact_id"])
            account = contact["AccountId"] if contact else account
        common = {
            "Id": row["id"], "WhoId": row["contact_id"], "WhatId": what, "AccountId": account,
            "OwnerId": row["owner_id"], "ActivityDate": row["occurred_at"].date(),
            "CreatedDate": row["occurred_at"], "LastModifiedDate": row["updated_at"],
            "SystemModstamp": row["updated_at"], "IsDeleted": row["deleted"],
        }
        if row["kind"] == "meeting":
            self.insert("Event", {**common, "Subject": "Meeting", "EventSubtype": "Event",
                                  "ActivityDateTime": row["occurred_at"], "DurationInMinutes": 30})
        else:
            subtype = {"call": "Call", "email": "Email"}.get(row["kind"], "Task")
            self.insert("Task", {
                **common, "Subject": subtype, "TaskSubtype": subtype, "Status": row["status"],
                # a plain task has only its due date; calls and e-mails know their time
                "CompletedDateTime": row["occurred_at"] if row["kind"] in ("call", "email") else None,
            })

    def _load_ownership_change(self, row: dict) -> None:
        self.add_owner_change(row["object_id"], row["old_owner_id"], row["new_owner_id"], row["changed_at"])

    # -- SOQL
    def parse(self, soql: str) -> ParsedQuery:
        query = _Parser(soql).query()
        self._check(query, query.sobject)
        return query

    def _check(self, query: ParsedQuery, sobject: str) -> None:
        if sobject not in SCHEMA or sobject in self.unavailable:
            raise SoqlError("INVALID_TYPE", f"sObject type '{sobject}' is not supported. If you are "
                            "attempting to use a custom object, be sure to append the '__c' after "
                            "the entity name. Please reference your WSDL or the describe call for "
                            "the appropriate names.")
        for name in query.fields:
            self.field_type(sobject, name)
        for sub in query.subqueries:
            child = CHILDREN.get((sobject, sub.sobject))
            if child is None:
                raise SoqlError("INVALID_TYPE", f"Didn't understand relationship '{sub.sobject}' in FROM part of query call.")
            sub.relationship = sub.sobject
            sub.sobject = child[0]
            self._check(sub, child[0])
        for name, _ in query.order:
            self.field_type(sobject, name)
        if query.where is not None:
            self._check_condition(query.where, sobject)

    def field_type(self, sobject: str, path: str) -> str:
        head, _, rest = path.partition(".")
        if rest:
            parent = PARENTS.get((sobject, head))
            if parent is None:
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{head}' in field path. No such column '{head}' on entity '{sobject}'.")
            return self.field_type(parent[0], rest)
        if head not in SCHEMA[sobject]:
            raise SoqlError("INVALID_FIELD", f"No such column '{head}' on entity '{sobject}'. If you are "
                            "attempting to use a custom field, be sure to append the '__c' after the custom field name.")
        return SCHEMA[sobject][head]

    def _check_condition(self, node: tuple, sobject: str) -> None:
        kind = node[0]
        if kind in ("and", "or"):
            for part in node[1]:
                self._check_condition(part, sobject)
        elif kind == "not":
            self._check_condition(node[1], sobject)
        else:
            name = node[2] if kind == "cmp" else node[1]
            literals = [node[3]] if kind == "cmp" else node[2]
            ftype = self.field_type(sobject, name)
            want = _LITERAL_FOR_TYPE.get(ftype)
            for literal_kind, _ in literals:
                if want and literal_kind not in (want, "null"):
                    quoted = " and should not be enclosed in quotes" if literal_kind == "string" else ""
                    raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type {ftype}{quoted}")

    def value(self, record: dict | None, sobject: str, path: str):
        head, _, rest = path.partition(".")
        if record is None:
            return None
        if rest:
            related_object, key = PARENTS[(sobject, head)]
            return self.value(self.records[related_object].get(record.get(key) or ""), related_object, rest)
        return record.get(head)

    def matches(self, node: tuple | None, record: dict, sobject: str) -> bool:
        if node is None:
            return True
        kind = node[0]
        if kind == "and":
            return all(self.matches(part, record, sobject) for part in node[1])
        if kind == "or":
            return any(self.matches(part, record, sobject) for part in node[1])
        if kind == "not":
            return not self.matches(node[1], record, sobject)
        if kind in ("in", "notin"):
            value = self.value(record, sobject, node[1])
            found = any(_same(value, v) for _, v in node[2])
            return found if kind == "in" else not found
        _, op, name, (_, literal) = node
        value = self.value(record, sobject, name)
        if op in ("=", "!="):
            equal = _same(value, literal)
            return equal if op == "=" else not equal
        if value is None or literal is None:
            return False
        return {"<": value < literal, "<=": value <= literal, ">": value > literal,
                ">=": value >= literal}[op]

    def select(self, query: ParsedQuery, include_deleted: bool, sobject: str | None = None,
               pool: Iterable[dict] | None = None) -> list[dict]:
        """The records a query matches, in its order (a snapshot: dicts are never changed in place)."""
        sobject = sobject or query.sobject
        has_deleted = "IsDeleted" in SCHEMA[sobject]
        with self.lock:
            candidates = list(self.records[sobject].values() if pool is None else pool)
        found = [r for r in candidates
                 if (include_deleted or not has_deleted or not r["IsDeleted"])
                 and self.matches(query.where, r, sobject)]
        for name, descending in reversed(query.order):
            found.sort(key=lambda r, n=name: _sort_key(self.value(r, sobject, n)), reverse=descending)
        if query.limit is not None:
            found = found[: query.limit]
        return found

    def to_json(self, record: dict, query: ParsedQuery, version: str, children=None) -> dict:
        sobject = query.sobject
        out: dict = {"attributes": {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record['Id']}"}}
        for name in query.fields:
            self._put_json(out, record, sobject, name, version)
        for sub in query.subqueries:
            pool = (children or {}).get(sub.relationship, {}).get(record["Id"], [])
            rows = self.select(sub, include_deleted=False, pool=pool)
            out[sub.relationship] = None if not rows else {
                "totalSize": len(rows), "done": True,
                "records": [self.to_json(r, sub, version) for r in rows],
            }
        return out

    def _put_json(self, out: dict, record: dict | None, sobject: str, path: str, version: str) -> None:
        head, _, rest = path.partition(".")
        if not rest:
            out[head] = _json_value(record.get(head) if record else None)
            return
        related_object, key = PARENTS[(sobject, head)]
        related = self.records[related_object].get((record or {}).get(key) or "")
        if related is None:
            out[head] = None
            return
        nested = out.get(head) or {"attributes": {"type": related_object, "url": f"/services/data/v{version}/sobjects/{related_object}/{related['Id']}"}}
        self._put_json(nested, related, related_object, rest, version)
        out[head] = nested

    def children_of(self, query: ParsedQuery, parents: list[dict]) -> dict:
        """Child records per subquery relationship and parent id, for one page of parents."""
        out: dict = {}
        ids = {r["Id"] for r in parents}
        for sub in query.subqueries:
            child_object, key = CHILDREN[(query.sobject, sub.relationship)]
            grouped: dict[str, list[dict]] = {}
            with self.lock:
                for child in self.records[child_object].values():
                    if child.get(key) in ids:
                        grouped.setdefault(child[key], []).append(child)
            out[sub.relationship] = grouped
        return out


def _sobject(name: str) -> str:
    return {"account": "Account", "contact": "Contact", "opportunity": "Opportunity",
            "owner": "User", "user": "User", "task": "Task", "event": "Event"}.get(name, name)


def _same(value, literal) -> bool:
    """SOQL equality: strings ignore case; a 15-character id names its 18-character record."""
    if isinstance(value, str) and isinstance(literal, str):
        if len(value) == 18 and len(literal) == 15:
            return value[:15] == literal
        return value.casefold() == literal.casefold()
    return value == literal


def _with_checksum(base: str) -> str:
    """Salesforce's 18-character form of a 15-character id (a case checksum of each 5 characters)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(base[start:start + 5]) if "A" <= ch <= "Z")
        suffix += alphabet[bits]
    return base + suffix


def _sort_key(value):
    return (0,) if value is None else (1, value)


def _json_value(value):
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@functools.lru_cache(maxsize=8)
def _demo_rows_cached(accounts: int, seed: int, as_of: datetime) -> tuple:
    from connectors.demo.generator import generate

    out = []
    for chunk in generate(accounts, seed, as_of):
        for object_type in ("owner", "account", "account_team_member", "contact", "opportunity",
                            "activity", "ownership_change"):
            out.extend((object_type, row) for row in chunk.rows.get(object_type, ()))
        out.extend(("planted", p) for p in chunk.planted)
    return tuple(out)


def _demo_rows(accounts: int, seed: int, as_of: datetime):
    return _demo_rows_cached(accounts, seed, as_of)


# ---- the HTTP side ---------------------------------------------------------------------------
@dataclass
class LoggedRequest:
    """One request the emulator served."""

    method: str
    path: str
    params: dict[str, list[str]]
    body: str
    status: int = 0
    sobject: str | None = None  # the sObject the call was about, when there is one
    soql: str | None = None

    @property
    def is_write(self) -> bool:
        if self.method in ("PATCH", "PUT", "DELETE"):
            return not re.search(r"/jobs/query/[^/]+$", self.path)  # aborting a query job is no write
        return self.method == "POST" and ("/jobs/ingest" in self.path
                                          or self.path.rstrip("/").endswith("composite/sobjects"))


@dataclass
class _Fault:
    method: str | None
    path: str | None
    soql: str | None
    status: int
    body: object
    times: int
    delay: float
    headers: dict
    truncate: bool = False


@dataclass
class _Cursor:
    query: ParsedQuery
    records: list[dict]  # the snapshot taken when the query ran
    soql: str
    kind: str  # query or queryAll
    batch: int


@dataclass
class _Job:
    id: str
    kind: str  # query or ingest
    sobject: str
    operation: str
    state: str
    records: list = field(default_factory=list)  # query: matched records
    query: ParsedQuery | None = None
    data: str = ""
    results: dict = field(default_factory=dict)
    created: datetime | None = None


class SalesforceEmulator:
    """The server around a :class:`SalesforceOrg`; see the module docstring."""

    def __init__(self, org: SalesforceOrg, *, token: str = TOKEN, shuffle_bulk: bool = True):
        self.org = org
        self.token = token
        self.shuffle_bulk = shuffle_bulk
        self.requests: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        self._cursors: dict[str, _Cursor] = {}
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_bundle: Path | None = None

    # -- life cycle
    def start(self) -> SalesforceEmulator:
        ca, server_context, bundle = _tls()
        self.ca_bundle = bundle
        self._server = _Server(("127.0.0.1", 0), _Handler, self, server_context)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sf-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SalesforceEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The environment that points roe (and requests) at this emulator."""
        return {"SALESFORCE_INSTANCE_URL": self.url, "SALESFORCE_ACCESS_TOKEN": self.token,
                "REQUESTS_CA_BUNDLE": str(self.ca_bundle)}

    # -- for tests
    def fail(self, *, status: int = 500, method: str | None = None, path: str | None = None,
             soql: str | None = None, body=None, times: int = 1, delay: float = 0.0,
             headers: dict | None = None, truncate: bool = False) -> None:
        """Make the next ``times`` matching requests fail with ``status`` (after ``delay`` seconds).

        ``path`` and ``soql`` match substrings (SOQL also of a query's next pages and bulk job).
        With ``status=0`` the request is only delayed, then served normally (for timeouts); with
        ``truncate`` too, the answer is cut short: its full Content-Length, half its body, then
        the connection closes.
        """
        self._faults.append(_Fault(method, path, soql, status, body, times, delay, headers or {},
                                   truncate))

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def calls(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        return [r for r in list(self.requests)
                if (method is None or r.method == method) and (path is None or path in r.path)]

    def writes(self) -> list[LoggedRequest]:
        """Requests that change the org (sObject Collections, ingest jobs)."""
        return [r for r in list(self.requests) if r.is_write]

    def calls_by_sobject(self) -> Counter:
        return Counter(r.sobject or "-" for r in list(self.requests))

    # -- dispatch (called from handler threads)
    def serve(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, dict, bytes]:
        parts = urlsplit(raw_path)
        params = parse_qs(parts.query)
        entry = LoggedRequest(method, parts.path, params, body.decode("utf-8", "replace"))
        entry.soql = (params.get("q") or [None])[0]
        with self._lock:
            self.requests.append(entry)
        self._attribute(entry)
        fault = self._take_fault(entry)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                payload = fault.body if fault.body is not None else [{"message": "injected failure", "errorCode": "UNKNOWN_EXCEPTION"}]
                data = payload if isinstance(payload, bytes) else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                entry.status = fault.status
                return fault.status, {"Content-Type": "application/json", **self._limit_header(), **fault.headers}, data
        status, out_headers, data = self._route(method, parts.path, params, headers, body, entry)
        entry.status = status
        if fault is not None and fault.truncate:
            out_headers = {**out_headers, TRUNCATE_HEADER: "1"}
        return status, out_headers, data

    def _attribute(self, entry: LoggedRequest) -> None:
        if entry.soql:
            outer = re.sub(r"\([^()]*\)", "", entry.soql)
            m = re.search(r"\bFROM\s+([A-Za-z_]+)", outer, re.IGNORECASE)
            entry.sobject = m.group(1) if m else None
            return
        m = re.search(r"/(?:query|queryAll)/([^/-]+)-\d+$", entry.path)
        if m and m.group(1) in self._cursors:
            cursor = self._cursors[m.group(1)]
            entry.sobject, entry.soql = cursor.query.sobject, cursor.soql
            return
        m = re.search(r"/jobs/(?:query|ingest)/([^/]+)", entry.path)
        if m and m.group(1) in self._jobs:
            job = self._jobs[m.group(1)]
            entry.sobject = job.sobject
            entry.soql = job.data if job.kind == "query" else None
            return
        if entry.path.endswith("/jobs/query") and entry.body:
            try:
                soql = json.loads(entry.body).get("query") or ""
            except ValueError:
                return
            entry.soql = soql
            m = re.search(r"\bFROM\s+([A-Za-z_]+)", re.sub(r"\([^()]*\)", "", soql), re.IGNORECASE)
            entry.sobject = m.group(1) if m else None
        elif entry.path.endswith("/jobs/ingest") and entry.body:
            try:
                entry.sobject = json.loads(entry.body).get("object")
            except ValueError:
                return
        elif "composite/sobjects" in entry.path and entry.body:
            try:
                records = json.loads(entry.body).get("records") or []
                kinds = dict.fromkeys(r["attributes"]["type"] for r in records)
                entry.sobject = "+".join(kinds) if kinds else None  # e.g. Account+Contact
            except (ValueError, KeyError, IndexError, TypeError):
                return

    def _take_fault(self, entry: LoggedRequest) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times <= 0:
                    continue
                if fault.method and fault.method != entry.method:
                    continue
                if fault.path and fault.path not in entry.path:
                    continue
                if fault.soql and fault.soql not in (entry.soql or ""):
                    continue
                fault.times -= 1
                return fault
        return None

    def _limit_header(self) -> dict:
        return {"Sforce-Limit-Info": f"api-usage={self.org.api_used}/{self.org.api_limit}"}

    def _json(self, status: int, payload, extra: dict | None = None) -> tuple[int, dict, bytes]:
        data = b"" if payload is None else json.dumps(payload).encode()
        return status, {"Content-Type": "application/json;charset=UTF-8", **self._limit_header(), **(extra or {})}, data

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict, bytes]:
        return self._json(status, [{"message": message, "errorCode": code}])

    def _route(self, method, path, params, headers, body, entry) -> tuple[int, dict, bytes]:
        m = re.match(r"^/services/data/v(\d+\.\d)/(.*)$", path)
        if not m:
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        version, rest = m.group(1), m.group(2).rstrip("/")
        if headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self.org.lock:
            if self.org.api_used >= self.org.api_limit:
                return self._error(403, "REQUEST_LIMIT_EXCEEDED", f"TotalRequests Limit exceeded. ({self.org.api_used}/{self.org.api_limit})")
            self.org.api_used += 1
        try:
            if method == "GET" and rest in ("query", "queryAll"):
                return self._query(params, rest == "queryAll", headers, version, entry)
            if method == "GET" and re.fullmatch(r"(query|queryAll)/[^/]+", rest):
                return self._query_more(rest.split("/", 1)[1], version)
            if method == "GET" and rest == "limits":
                used, limit = self.org.api_used, self.org.api_limit
                return self._json(200, {"DailyApiRequests": {"Max": limit, "Remaining": limit - used},
                                        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000}})
            if method == "PATCH" and rest == "composite/sobjects":
                return self._collections(body)
            if method == "POST" and rest == "composite/sobjects":
                return self._create_collection(body)
            if method == "DELETE" and rest == "composite/sobjects":
                return self._delete_collection(params)
            if rest.startswith("jobs/query"):
                return self._bulk_query(method, rest, params, body)
            if rest.startswith("jobs/ingest"):
                return self._bulk_ingest(method, rest, body)
        except SoqlError as exc:
            return self._error(400, exc.code, exc.message)
        return self._error(404, "NOT_FOUND", "The requested resource does not exist")

    # -- REST query
    def _query(self, params, include_deleted, headers, version, entry) -> tuple[int, dict, bytes]:
        soql = (params.get("q") or [""])[0]
        query = self.org.parse(soql)
        records = self.org.select(query, include_deleted)
        batch = 2000
        options = headers.get("Sforce-Query-Options") or ""
        m = re.search(r"batchSize=(\d+)", options)
        if m:
            batch = max(200, min(2000, int(m.group(1))))
        key = f"01g{next(self.org._ids):015d}"
        cursor = _Cursor(query, records, soql, "queryAll" if include_deleted else "query", batch)
        with self._lock:
            self._cursors[key] = cursor
        return self._query_page(key, 0, version)

    def _query_more(self, locator: str, version: str) -> tuple[int, dict, bytes]:
        key, _, offset = locator.partition("-")
        if key not in self._cursors or not offset.isdigit():
            return self._error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._query_page(key, int(offset), version)

    def _query_page(self, key: str, offset: int, version: str) -> tuple[int, dict, bytes]:
        cursor = self._cursors[key]
        query, records, batch = cursor.query, cursor.records, cursor.batch
        page = records[offset: offset + batch]
        children = self.org.children_of(query, page) if query.subqueries else None
        done = offset + batch >= len(records)
        payload = {"totalSize": len(records), "done": done,
                   "records": [self.org.to_json(r, query, version, children) for r in page]}
        if not done:
            payload["nextRecordsUrl"] = f"/services/data/v{version}/{cursor.kind}/{key}-{offset + batch}"
        return self._json(200, payload)

    # -- sObject Collections
    def _collection_body(self, body: bytes) -> tuple[dict, tuple[int, dict, bytes] | None]:
        """A Collections call's JSON body with its ``records`` list, or the error Salesforce
        answers to a body that is not JSON or holds more than 200 records."""
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return {}, self._error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        payload["records"] = payload.get("records") or []
        if len(payload["records"]) > 200:
            return payload, self._error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
        return payload, None

    def _collections(self, body: bytes) -> tuple[int, dict, bytes]:
        payload, refused = self._collection_body(body)
        if refused:
            return refused
        records = payload["records"]
        # Records of several types are processed in chunks of consecutive records of one type
        # ({a1, a2, c1, a3} is three chunks), at most 10 chunks a call, as Salesforce documents.
        types = [(r.get("attributes") or {}).get("type") for r in records]
        chunks = sum(1 for n, t in enumerate(types) if n == 0 or t != types[n - 1])
        if chunks > 10:
            return self._error(400, "INVALID_BATCH_REQUEST", "Cannot have more than 10 chunks in a "
                               "single operation. Please rearrange the data to reduce chunking.")
        all_or_none = bool(payload.get("allOrNone"))
        plans = []
        with self.org.lock:
            for record in records:
                sobject = (record.get("attributes") or {}).get("type")
                record_id = record.get("id") or record.get("Id")
                fields = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
                plans.append((sobject, record_id, fields, self.org.check_update(sobject, record_id, fields)))
            failed = any(problem for *_, problem in plans)
            results = []
            for sobject, record_id, fields, problem in plans:
                if problem or (all_or_none and failed):
                    code, message = problem or ("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                                "Record rolled back because not all records were valid and the request was using AllOrNone header")
                    results.append({"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]})
                else:
                    self.org.update(sobject, record_id, **fields)
                    results.append({"id": record_id, "success": True, "errors": []})
        return self._json(200, results)

    def _create_collection(self, body: bytes) -> tuple[int, dict, bytes]:
        """POST composite/sobjects: create up to 200 records (AccountTeamMember rows here; UserId
        and AccountId are set on create only), ``allOrNone`` as asked."""
        payload, refused = self._collection_body(body)
        if refused:
            return refused
        records = payload["records"]
        results = []
        with self.org.lock:
            checked = [(r, self._create_problem(r)) for r in records]
            failed = any(p for _, p in checked)
            for record, problem in checked:
                if problem or (payload.get("allOrNone") and failed):
                    code, message = problem or ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back")
                    results.append({"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]})
                    continue
                sobject = record["attributes"]["type"]
                fields = {k: v for k, v in record.items() if k != "attributes"}
                results.append({"id": self.org.create(sobject, **fields), "success": True, "errors": []})
        return self._json(200, results)

    def _create_problem(self, record: dict) -> tuple[str, str] | None:
        sobject = (record.get("attributes") or {}).get("type")
        if sobject != "AccountTeamMember" or sobject in self.org.unavailable:
            return ("INVALID_TYPE", f"sObject type '{sobject}' is not supported")
        unknown = [k for k in record if k != "attributes" and k not in SCHEMA[sobject]]
        if unknown or "Id" in record:
            return ("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {(unknown or ['Id'])[0]}")
        account = self.org.records["Account"].get(record.get("AccountId") or "")
        if account is None or account["IsDeleted"]:
            return ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        user = self.org.records["User"].get(record.get("UserId") or "")
        if user is None or not user["IsActive"]:
            return ("INACTIVE_OWNER_OR_USER", "operation performed with inactive user")
        for other in self.org.records[sobject].values():
            if not other["IsDeleted"] and other["AccountId"] == account["Id"] and other["UserId"] == user["Id"]:
                return ("DUPLICATE_VALUE", "duplicate value found: the user is already on this account team")
        return None

    def _delete_collection(self, params) -> tuple[int, dict, bytes]:
        """DELETE composite/sobjects?ids=...: up to 200 records to the recycle bin."""
        ids = [i for i in ((params.get("ids") or [""])[0]).split(",") if i]
        if len(ids) > 200:
            return self._error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
        results = []
        with self.org.lock:
            for record_id in ids:
                sobject = next((name for name, prefix in KEY_PREFIX.items() if record_id.startswith(prefix)), None)
                record = self.org.records[sobject].get(record_id) if sobject else None
                if record is None or record.get("IsDeleted") or sobject not in ("AccountTeamMember", *WRITABLE):
                    results.append({"id": record_id, "success": False, "errors": [
                        {"statusCode": "ENTITY_IS_DELETED" if record else "INVALID_CROSS_REFERENCE_KEY",
                         "message": "entity is deleted" if record else "invalid cross reference id", "fields": []}]})
                    continue
                self.org.delete(sobject, record_id)
                results.append({"id": record_id, "success": True, "errors": []})
        return self._json(200, results)

    # -- Bulk API 2.0
    def _new_job(self, kind: str, sobject: str, operation: str, **extra) -> _Job:
        job = _Job(id=f"750E{next(self.org._ids):014d}", kind=kind, sobject=sobject, operation=operation,
                   state="UploadComplete" if kind == "query" else "Open", created=self.org.now(), **extra)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def _job_info(self, job: _Job) -> dict:
        info = {"id": job.id, "operation": job.operation, "object": job.sobject, "state": job.state,
                "createdDate": _json_value(job.created), "contentType": "CSV", "apiVersion": 59.0,
                "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if job.kind == "ingest" and job.results:
            info["numberRecordsProcessed"] = len(job.results["successful"]) + len(job.results["failed"])
            info["numberRecordsFailed"] = len(job.results["failed"])
        if job.kind == "query" and job.state == "JobComplete":
            info["numberRecordsProcessed"] = len(job.records)
        return info

    def _bulk_query(self, method, rest, params, body) -> tuple[int, dict, bytes]:
        parts = rest.split("/")
        if method == "POST" and len(parts) == 2:
            spec = json.loads(body or b"{}")
            operation = spec.get("operation")
            if operation not in ("query", "queryAll"):
                return self._error(400, "INVALIDJOB", f"unknown operation {operation!r}")
            query = self.org.parse(spec.get("query") or "")
            if query.subqueries:
                return self._error(400, "INVALIDJOB", "Bulk API 2.0 does not support nested queries")
            records = self.org.select(query, include_deleted=operation == "queryAll")
            if self.shuffle_bulk:  # Bulk API 2.0 promises no order: make sure nobody relies on one
                random.Random(len(self._jobs)).shuffle(records)
            job = self._new_job("query", query.sobject, operation, records=records, query=query,
                                data=spec.get("query"))
            return self._json(200, self._job_info(job))
        job = self._jobs.get(parts[2]) if len(parts) > 2 else None
        if job is None or job.kind != "query":
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        if method == "GET" and len(parts) == 3:
            if job.state == "UploadComplete":
                job.state = "JobComplete"
            return self._json(200, self._job_info(job))
        if method == "PATCH" and len(parts) == 3:
            job.state = "Aborted"
            return self._json(200, self._job_info(job))
        if method == "DELETE" and len(parts) == 3:
            del self._jobs[job.id]
            return self._json(204, None)
        if method == "GET" and parts[3:] == ["results"]:
            size = int((params.get("maxRecords") or ["50000"])[0])
            offset = int((params.get("locator") or ["0"])[0] or 0)
            page = job.records[offset: offset + size]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(job.query.fields)
            for record in page:
                writer.writerow([_csv_value(self.org.value(record, job.sobject, f)) for f in job.query.fields])
            following = offset + size
            locator = str(following) if following < len(job.records) else "null"
            return 200, {"Content-Type": "text/csv", "Sforce-Locator": locator,
                         "Sforce-NumberOfRecords": str(len(page)), **self._limit_header()}, out.getvalue().encode()
        return self._error(404, "NOT_FOUND", "The requested resource does not exist")

    def _bulk_ingest(self, method, rest, body) -> tuple[int, dict, bytes]:
        parts = rest.split("/")
        if method == "POST" and len(parts) == 2:
            spec = json.loads(body or b"{}")
            sobject, operation = spec.get("object"), spec.get("operation")
            if sobject not in WRITABLE or operation != "update":
                return self._error(400, "INVALIDJOB", f"the emulator supports update of {', '.join(WRITABLE)}")
            job = self._new_job("ingest", sobject, operation)
            return self._json(200, self._job_info(job))
        job = self._jobs.get(parts[2]) if len(parts) > 2 else None
        if job is None or job.kind != "ingest":
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        if method == "PUT" and parts[3:] == ["batches"]:
            if job.state != "Open":
                return self._error(400, "INVALIDJOB", "job is not open")
            job.data += body.decode("utf-8")
            return 201, {"Content-Length": "0", **self._limit_header()}, b""
        if method == "PATCH" and len(parts) == 3:
            state = json.loads(body or b"{}").get("state")
            if state == "UploadComplete" and job.state == "Open":
                self._process_ingest(job)
            elif state == "Aborted":
                job.state = "Aborted"
            return self._json(200, self._job_info(job))
        if method == "GET" and len(parts) == 3:
            return self._json(200, self._job_info(job))
        if method == "DELETE" and len(parts) == 3:
            del self._jobs[job.id]
            return self._json(204, None)
        if method == "GET" and len(parts) == 4:
            kind = parts[3].lower()
            key = {"successfulresults": "successful", "failedresults": "failed",
                   "unprocessedrecords": "unprocessed"}.get(kind)
            if key is None:
                return self._error(404, "NOT_FOUND", "The requested resource does not exist")
            rows = job.results.get(key, [])
            header = job.results.get("header", [])
            prefix = {"successful": ["sf__Id", "sf__Created"], "failed": ["sf__Id", "sf__Error"],
                      "unprocessed": []}[key]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(prefix + header)
            writer.writerows(rows)
            return 200, {"Content-Type": "text/csv", **self._limit_header()}, out.getvalue().encode()
        return self._error(404, "NOT_FOUND", "The requested resource does not exist")

    def _process_ingest(self, job: _Job) -> None:
        reader = csv.DictReader(io.StringIO(job.data))
        header = list(reader.fieldnames or [])
        successful, failed = [], []
        with self.org.lock:
            for row in reader:
                record_id = row.get("Id")
                fields = {k: (v or None) for k, v in row.items() if k != "Id"}
                problem = self.org.check_update(job.sobject, record_id, fields)
                original = [row.get(h, "") for h in header]
                if problem:
                    failed.append(["", f"{problem[0]}:{problem[1]}:--", *original])
                else:
                    self.org.update(job.sobject, record_id, **fields)
                    successful.append([record_id, "false", *original])
        job.results = {"header": header, "successful": successful, "failed": failed, "unprocessed": []}
        job.state = "JobComplete"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, emulator: SalesforceEmulator, context: ssl.SSLContext):
        super().__init__(address, handler)
        self.emulator = emulator
        self.context = context

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread.
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(request, client_address)
        finally:
            try:
                request.close()
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def date_time_string(self, timestamp=None):
        # Salesforce's clock is the org's clock: roe bounds queries by this header.
        return format_datetime(self.server.emulator.org.now().replace(tzinfo=UTC), usegmt=True)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, data = self.server.emulator.serve(self.command, self.path, self.headers, body)
        except Exception as exc:  # a bug in the emulator: answer like Salesforce's own 500
            status, headers = 500, {"Content-Type": "application/json"}
            data = json.dumps([{"errorCode": "UNKNOWN_EXCEPTION", "message": f"emulator: {exc!r}"}]).encode()
        try:
            self.send_response(status)
            truncate = headers.pop(TRUNCATE_HEADER, None) is not None
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if truncate:  # a connection dropped mid-answer
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if data and self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


@functools.lru_cache(maxsize=1)
def _tls() -> tuple[object, ssl.SSLContext, Path]:
    """One certificate authority per test session; its certificate is what requests must trust."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    folder = Path(tempfile.mkdtemp(prefix="roe-sf-emulator-"))
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return ca, context, bundle


def start_emulator(accounts: int = 120, seed: int = 42, as_of: datetime | None = None, **kwargs) -> SalesforceEmulator:
    """A running emulator holding the demo org of ``accounts`` accounts (stop it when done)."""
    org = SalesforceOrg.from_demo(accounts, seed, as_of)
    return SalesforceEmulator(org, **kwargs).start()


@pytest.fixture
def sf_emulator(request, monkeypatch):
    """A running emulator with a demo org; the environment points roe at it.

    Parametrize indirectly to choose the org: ``{"accounts": 60, "seed": 3, "as_of": datetime(...)}``
    (defaults: 120 accounts, seed 42, as_of 2026-11-01, the tests' AS_OF).
    """
    options = dict(getattr(request, "param", None) or {})
    options.setdefault("as_of", datetime(2026, 11, 1))
    emulator = start_emulator(**options)
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN", "SALESFORCE_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield emulator
    finally:
        emulator.stop()


__all__ = ["SalesforceEmulator", "SalesforceOrg", "LoggedRequest", "SoqlError", "sf_emulator",
           "start_emulator", "TOKEN"]
