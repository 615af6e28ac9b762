"""Plans: proposed owner changes, how they are built, saved, hashed and approved.

A plan is a JSON file (see :func:`Plan.to_json`)::

    {"version": 1, "source": "demo", "created_at": "2026-11-01T09:00:00Z", "created_by": "ana",
     "origin": {"kind": "findings", "rules": ["OWN002"]},
     "changes": [{"object_type": "account", "object_id": "001...", "object_name": "Acme",
                  "field": "owner", "expected": "005...", "expected_email": "old@example.com",
                  "new": "005...", "new_email": "new@example.com",
                  "why": {"kind": "finding", "findings": [{"id": 12, "rule": "OWN002"}]}}],
     "hash": "<sha256>", "approval": null}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of everything in the
plan except ``hash`` and ``approval``: the changes, and the header that makes each built plan
unique (version, source, created_at, created_by, origin). Building the same changes twice gives two
plans, each needing its own approval, so an old approval or journal never covers a new plan.

Approval (``roe approve``) writes ``{"by", "at", "note", "hash"}`` into the file and the same into
the mirror's ``plans`` table. :func:`verify_approval` then requires the hash recomputed from the
file, the file's ``hash``, the approval's ``hash`` and the mirror's row to agree, so a plan edited
after approval, or an approval block written by hand, is refused.

Building a plan only reads the mirror: it never calls the CRM and never writes anything. A plan with
nothing to change is not written at all.
"""

from __future__ import annotations

import csv
import difflib
import getpass
import hashlib
import io
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection, Engine

from ..models import (
    OWNED_TABLES,
    accounts,
    apply_journal,
    contacts,
    findings,
    opportunities,
    owners,
)
from ..models import plans as plans_table
from ..shared.errors import ConfigError, UsageError

PLAN_VERSION = 1
FIELD = "owner"
OBJECT_TYPES = ("account", "contact", "opportunity")
SOURCES = ("salesforce", "hubspot", "demo")

# What people type in a CSV's object_type column: roe's names, plurals, and the CRMs' own names.
OBJECT_ALIASES = {
    "account": "account",
    "accounts": "account",
    "company": "account",
    "companies": "account",
    "contact": "contact",
    "contacts": "contact",
    "opportunity": "opportunity",
    "opportunities": "opportunity",
    "deal": "opportunity",
    "deals": "opportunity",
}

# Rules that never suggest an owner (a person decides): a findings plan cannot use them.

CSV_COLUMNS = ("object_type", "object_id", "new_owner")
RESULTS_COLUMNS = ("object_type", "object_id", "expected", "new", "status", "error", "source",
                   "plan_hash")
_EXCEL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_EXCEL_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?E\+\d+$|^\d+[.,]0+$", re.IGNORECASE)  # 1.23E+11, 123.0
_CHUNK = 500


def utc_text(when: datetime | None = None) -> str:
    """A UTC time as ``2026-11-01T09:00:00Z`` (whole seconds)."""
    when = when or datetime.now(UTC)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.replace(microsecond=0).isoformat() + "Z"


def parse_utc_text(value: str) -> datetime:
    """The naive UTC datetime of a :func:`utc_text` string."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


# --------------------------------------------------------------------------------------------
# The plan itself


@dataclass
class Change:
    """One owner change: which record, the owner the mirror holds now, the new owner, and why."""

    object_type: str
    object_id: str
    new: str
    expected: str | None
    object_name: str | None = None
    expected_email: str | None = None
    new_email: str | None = None
    why: dict = field(default_factory=dict)
    field: str = FIELD

    @property
    def key(self) -> tuple[str, str]:
        return (self.object_type, self.object_id)

    def to_json(self) -> dict:
        return {
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_name": self.object_name,
            "field": self.field,
            "expected": self.expected,
            "expected_email": self.expected_email,
            "new": self.new,
            "new_email": self.new_email,
            "why": self.why,
        }


_CHANGE_KEYS = set(Change("account", "x", "y", None).to_json())
_PLAN_KEYS = {"version", "source", "created_at", "created_by", "origin", "changes", "hash",
              "approval"}
_APPROVAL_KEYS = {"by", "at", "note", "hash"}


@dataclass
class Plan:
    """A set of owner changes on one source, with its hash and (once approved) its approval."""

    source: str
    changes: list[Change]
    origin: dict
    created_at: str = field(default_factory=utc_text)
    created_by: str | None = None
    approval: dict | None = None
    version: int = PLAN_VERSION
    hash: str = ""
    path: Path | None = None  # where it was read from or saved to; not part of the file

    def body(self) -> dict:
        """Everything the hash covers: the whole plan except ``hash`` and ``approval``."""
        return {
            "version": self.version,
            "source": self.source,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "origin": self.origin,
            "changes": [c.to_json() for c in self.changes],
        }

    def compute_hash(self) -> str:
        return canonical_hash(self.body())

    def seal(self) -> Plan:
        """Set ``hash`` from the current content (done once, when the plan is built)."""
        self.hash = self.compute_hash()
        return self

    def to_json(self) -> dict:
        return {**self.body(), "hash": self.hash, "approval": self.approval}

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "the plan"


def canonical_hash(body: dict) -> str:
    """SHA-256 of the canonical JSON of ``body`` (sorted keys, no whitespace, UTF-8)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path`` (atomically: a crash never leaves half a plan)."""
    path = Path(path)
    if not path.parent.exists():
        raise UsageError(f"The folder {path.parent} does not exist.",
                         "Create it, or give -o a path in an existing folder.")
    text = json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"
    _atomic_write(path, text.encode("utf-8"))
    plan.path = path
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file. The hash is *not* checked here; see :func:`verify_approval`."""
    path = Path(path)
    todo = f"Rebuild it with `roe reassign ... -o {path}`."
    if not path.is_file():
        raise UsageError(f"The plan {path} does not exist.",
                         "Give the path of a plan written by `roe reassign -o` or `roe revert -o`.")
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"The plan {path} is not a roe plan (not valid JSON: {exc}).", todo) from None

    def bad(detail: str) -> ConfigError:
        return ConfigError(f"The plan {path} is not a valid roe plan: {detail}.", todo)

    if not isinstance(data, dict):
        raise bad("it is not a JSON object")
    if data.get("version") != PLAN_VERSION:
        raise bad(f"version {data.get('version')!r} (this roe reads version {PLAN_VERSION})")
    unknown = set(data) - _PLAN_KEYS
    if unknown:
        raise bad(f"unknown keys {sorted(unknown)}")
    missing = {"source", "created_at", "origin", "changes", "hash"} - set(data)
    if missing:
        raise bad(f"missing keys {sorted(missing)}")
    if data["source"] not in SOURCES:
        raise bad(f"unknown source {data['source']!r}")
    if not isinstance(data["changes"], list) or not isinstance(data["origin"], dict):
        raise bad("'changes' must be a list and 'origin' an object")
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for n, raw in enumerate(data["changes"], start=1):
        if not isinstance(raw, dict) or set(raw) != _CHANGE_KEYS:
            raise bad(f"change {n} must have exactly the keys {sorted(_CHANGE_KEYS)}")
        if raw["object_type"] not in OBJECT_TYPES:
            raise bad(f"change {n} has an unknown object_type {raw['object_type']!r}")
        if raw["field"] != FIELD:
            raise bad(f"change {n} changes {raw['field']!r}; roe only changes the owner")
        for key in ("object_id", "new"):
            if not isinstance(raw[key], str) or not raw[key]:
                raise bad(f"change {n} needs a non-empty {key}")
        if raw["expected"] is not None and not isinstance(raw["expected"], str):
            raise bad(f"change {n} has a non-text expected owner")
        if not isinstance(raw["why"], dict):
            raise bad(f"change {n}'s 'why' must be an object")
        change = Change(**raw)
        if change.key in seen:
            raise bad(f"{change.object_type} {change.object_id} appears twice")
        seen.add(change.key)
        changes.append(change)
    approval = data.get("approval")
    if approval is not None and (not isinstance(approval, dict) or set(approval) != _APPROVAL_KEYS):
        raise bad(f"the approval must be null or have exactly the keys {sorted(_APPROVAL_KEYS)}")
    plan = Plan(
        source=data["source"],
        changes=changes,
        origin=data["origin"],
        created_at=str(data["created_at"]),
        created_by=data.get("created_by"),
        approval=approval,
        version=data["version"],
        hash=str(data["hash"]),
        path=path,
    )
    # The hash must cover the file as written, not our re-serialization of it.
    body = {k: v for k, v in data.items() if k not in ("hash", "approval")}
    body.setdefault("created_by", None)
    if canonical_hash(body) != plan.compute_hash():  # pragma: no cover - guarded by the checks above
        raise bad("it holds values roe cannot read back")
    return plan


# --------------------------------------------------------------------------------------------
# Approval


def approve_plan(engine: Engine, plan: Plan, by: str, note: str | None = None) -> dict:
    """Record the approval of ``plan`` in the mirror and in the plan (the caller saves the file).

    Refuses a plan whose content no longer matches its hash (edited by hand after it was built).
    """
    by = (by or "").strip()
    if not by:
        raise UsageError("An approval needs the approver's name.", "Pass --by NAME (or an e-mail).")
    computed = plan.compute_hash()
    if computed != plan.hash:
        raise ConfigError(
            f"{plan.name} was edited after roe built it: its changes no longer match its hash.",
            "Rebuild the plan with `roe reassign` (use --csv for a hand-picked list) and approve that.",
        )
    if not plan.changes:
        raise UsageError(f"{plan.name} changes nothing.", "There is nothing to approve.")
    now = datetime.now(UTC).replace(microsecond=0)
    approval = {"by": by, "at": utc_text(now), "note": note, "hash": computed}
    row = {
        "source": plan.source,
        "created_at": parse_utc_text(plan.created_at),
        "changes": len(plan.changes),
        "approved_by": by,
        "approved_at": now.replace(tzinfo=None),
        "note": note,
    }
    with engine.begin() as conn:
        exists = conn.execute(
            select(plans_table.c.hash).where(plans_table.c.hash == computed)
        ).first()
        if exists:
            conn.execute(update(plans_table).where(plans_table.c.hash == computed).values(**row))
        else:
            conn.execute(plans_table.insert().values(hash=computed, **row))
    plan.approval = approval
    return approval


def verify_approval(engine: Engine, plan: Plan) -> None:
    """Raise :class:`ConfigError` unless ``plan`` is approved, unchanged, and approved in this mirror."""
    computed = plan.compute_hash()
    rebuild = "Rebuild the plan with `roe reassign`, review it, and approve the new plan."
    if computed != plan.hash or (plan.approval and plan.approval.get("hash") != computed):
        if plan.approval:
            raise ConfigError(f"{plan.name} was changed after it was approved.", rebuild)
        raise ConfigError(
            f"{plan.name} was edited after roe built it: its changes no longer match its hash.",
            rebuild,
        )
    if not plan.approval:
        raise ConfigError(f"{plan.name} is not approved.",
                          f"Review it, then run `roe approve {plan.name} --by NAME`.")
    with engine.connect() as conn:
        row = conn.execute(select(plans_table).where(plans_table.c.hash == computed)).first()
    recorded = (
        row is not None
        and row.approved_by is not None
        and row.approved_by == plan.approval.get("by")
        and row.approved_at is not None
        and utc_text(row.approved_at) == plan.approval.get("at")
    )
    if not recorded:
        raise ConfigError(
            f"The approval in {plan.name} is not recorded in this mirror.",
            f"Approve it with `roe approve {plan.name} --by NAME` against the mirror you apply "
            "from (--db / ROE_DB).",
        )
    if row.source is not None and row.source != plan.source:  # pragma: no cover - hash covers it
        raise ConfigError(f"The approval in {plan.name} is for another source.", rebuild)


# --------------------------------------------------------------------------------------------
# Building plans


class PlanInputError(ConfigError):
    """Input that cannot become a plan; ``problems`` lists each one (``row N: ...``)."""

    def __init__(self, what: str, problems: Sequence[str], todo: str | None = None):
        super().__init__(what, todo)
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [self.what, *(f"  {p}" for p in self.problems)]
        if self.todo:
            lines.append(self.todo)
        return "\n".join(lines)


@dataclass
class BuildResult:
    """A built plan, plus what was left out of it and why (shown to the admin, never silent)."""

    plan: Plan
    unchanged: int = 0  # records that already have the new owner
    skipped: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.plan.changes


@dataclass
class _Owner:
    id: str
    email: str | None
    name: str | None
    active: bool

    @property
    def label(self) -> str:
        return self.email or self.id


class _Directory:
    """The owners of one source, found by id or e-mail (case-insensitive)."""

    def __init__(self, conn: Connection, source: str):
        self.source = source
        self.by_id: dict[str, _Owner] = {}
        self.by_email: dict[str, list[_Owner]] = defaultdict(list)
        for row in conn.execute(
            select(owners.c.id, owners.c.email, owners.c.name, owners.c.active).where(
                owners.c.source == source
            )
        ):
            owner = _Owner(row.id, row.email, row.name, bool(row.active))
            self.by_id[owner.id] = owner
            if owner.email:
                self.by_email[owner.email.strip().lower()].append(owner)

    def find(self, value: str) -> tuple[_Owner | None, str | None]:
        """The owner ``value`` names (an id or an e-mail), or None and why not."""
        value = value.strip()
        if not value:
            return None, "is empty"
        owner = self.by_id.get(normalize_id(self.source, value))
        if owner is None:
            matches = self.by_email.get(value.lower(), [])
            live = [o for o in matches if o.active]
            if len(matches) == 1:
                owner = matches[0]
            elif len(live) == 1:
                owner = live[0]
            elif len(matches) > 1:
                return None, f"{value!r} matches {len(matches)} {self.source} users; give the user id"
        if owner is None:
            return None, (f"{value!r} is not a {self.source} user in the mirror "
                          "(run `roe sync` if the user is new)")
        return owner, None

    def find_active(self, value: str) -> tuple[_Owner | None, str | None]:
        owner, problem = self.find(value)
        if owner is not None and not owner.active:
            return None, f"{value.strip()!r} ({owner.name or owner.id}) is inactive"
        return owner, problem

    def email(self, owner_id: str | None) -> str | None:
        owner = self.by_id.get(owner_id) if owner_id else None
        return owner.email if owner else None


def normalize_id(source: str, value: str) -> str:
    """A CRM id as the mirror stores it: Salesforce 15-character ids become their 18-character form."""
    value = value.strip()
    if source == "salesforce" and len(value) == 15 and value.isalnum():
        suffix = ""
        for start in (0, 5, 10):
            bits = sum(1 << i for i, ch in enumerate(value[start : start + 5]) if ch.isupper())
            suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
        return value + suffix
    return value


@dataclass
class _Record:
    id: str
    owner_id: str | None
    name: str | None
    deleted: bool


_NAME = {"account": accounts.c.name, "contact": contacts.c.name, "opportunity": opportunities.c.name}


def _load_records(conn: Connection, source: str, object_type: str,
                  ids: Iterable[str]) -> dict[str, _Record]:
    table = OWNED_TABLES[object_type]
    ids = list(dict.fromkeys(ids))
    out: dict[str, _Record] = {}
    for start in range(0, len(ids), _CHUNK):
        for row in conn.execute(
            select(table.c.id, table.c.owner_id, _NAME[object_type], table.c.deleted).where(
                table.c.source == source, table.c.id.in_(ids[start : start + _CHUNK])
            )
        ):
            out[row.id] = _Record(row.id, row.owner_id, row.name, bool(row.deleted))
    return out


def _sources_in_mirror(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(owners.c.source).distinct()).scalars())


def _pick_source(conn: Connection, source: str | None, candidates: Iterable[str] | None = None,
                 what: str = "The mirror holds") -> str:
    """``source`` if given, else the only source among ``candidates`` (default: the mirror's)."""
    if source:
        if source not in SOURCES:
            raise UsageError(f"Unknown source {source!r}.", f"Use one of: {', '.join(SOURCES)}.")
        return source
    found = sorted(set(candidates) if candidates is not None else _sources_in_mirror(conn))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError("The mirror holds no CRM data.",
                         "Run `roe sync --source ...` (or `roe demo`) first.")
    raise UsageError(f"{what} several sources ({', '.join(found)}); a plan covers one source.",
                     "Pass --source salesforce, hubspot or demo.")


def _new_plan(source: str, origin: dict, created_by: str | None) -> Plan:
    return Plan(source=source, changes=[], origin=origin, created_by=created_by or _os_user())


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is fine
        return None


def build_from_findings(engine: Engine, rules: Sequence[str], *, source: str | None = None,
                        created_by: str | None = None) -> BuildResult:
    """A plan from open findings' suggested owners for the rule codes in ``rules`` (or ``all``).

    Each object gets the suggestion of the findings that flag it; objects whose findings suggest
    different owners, whose suggested owner is inactive or unknown, or that are gone from the mirror
    are left out and listed in ``skipped``. ``expected`` is the mirror's current owner.
    """
    from ..rules import REGISTRY

    codes = _rule_codes(rules, REGISTRY)
    with engine.connect() as conn:
        query = select(findings).where(
            findings.c.status == "open",
            findings.c.rule.in_(codes),
            findings.c.suggested_owner_id.is_not(None),
            findings.c.suggested_owner_id != "",
        )
        if source:
            query = query.where(findings.c.source == source)
        rows = conn.execute(query.order_by(findings.c.id)).all()
        source = _pick_source(conn, source, {r.source for r in rows} if rows else None,
                              "The findings span" if rows else "The mirror holds")
        plan = _new_plan(source, {"kind": "findings", "rules": codes}, created_by)
        result = BuildResult(plan)
        directory = _Directory(conn, source)
        wanted: dict[tuple[str, str], list] = {}
        for row in rows:
            wanted.setdefault((row.object_type, row.object_id), []).append(row)
        records = {
            t: _load_records(conn, source, t, [i for (tt, i) in wanted if tt == t]) for t in OBJECT_TYPES
        }
    for (object_type, object_id), flagged in wanted.items():
        label = f"{object_type} {object_id}"
        refs = ", ".join(f"{f.rule} #{f.id}" for f in flagged)
        suggestions = {f.suggested_owner_id for f in flagged}
        if len(suggestions) > 1:
            names = ", ".join(sorted(directory.email(s) or s for s in suggestions))
            result.skipped.append(f"{label}: the findings {refs} suggest different owners ({names}); "
                                  "decide with --csv")
            continue
        record = records.get(object_type, {}).get(object_id)
        if record is None or record.deleted:
            result.skipped.append(f"{label} ({refs}): no longer in the mirror")
            continue
        owner, problem = directory.find_active(next(iter(suggestions)))
        if owner is None:
            result.skipped.append(f"{label} ({refs}): the suggested owner {problem}")
            continue
        if record.owner_id == owner.id:
            result.unchanged += 1
            continue
        plan.changes.append(Change(
            object_type=object_type, object_id=object_id, object_name=record.name,
            expected=record.owner_id, expected_email=directory.email(record.owner_id),
            new=owner.id, new_email=owner.email,
            why={"kind": "finding", "findings": [{"id": f.id, "rule": f.rule} for f in flagged]},
        ))
    plan.seal()
    return result


def _rule_codes(rules: Sequence[str], registry) -> list[str]:
    codes = [c.strip().upper() for c in rules if c and c.strip()]
    if not codes:
        raise UsageError("No rule codes given.", "Pass --findings OWN002,OWN001 (or --findings all).")
    if "ALL" in codes:
        return [c for c, rule in registry.items() if rule.suggests_owner]
    for code in codes:
        if code not in registry:
            close = difflib.get_close_matches(code, list(registry), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise UsageError(f"Unknown rule code {code!r}.{hint}",
                             f"Use rule codes from `roe rules`: {', '.join(registry)}.")
        if not registry[code].suggests_owner:
            raise UsageError(f"{code} suggests no owner: a person decides who should own those records.",
                             "Put your decisions in a CSV and use --csv FILE.")
    return list(dict.fromkeys(codes))


def build_transfer(engine: Engine, from_owner: str, to_owner: str, *,
                   objects: Sequence[str] = OBJECT_TYPES, source: str | None = None,
                   created_by: str | None = None) -> BuildResult:
    """A plan that moves one owner's book to another.

    The book is the accounts ``from_owner`` owns, with their contacts and open opportunities that
    ``from_owner`` also owns; ``objects`` narrows it to some of those object types. ``to_owner`` must
    be active; ``from_owner`` may be inactive (the usual case: a rep who left).
    """
    objects = _object_types(objects)
    with engine.connect() as conn:
        if not source:
            in_mirror = _sources_in_mirror(conn)
            sources = [s for s in in_mirror if _Directory(conn, s).find(from_owner)[0]]
            if not sources and len(in_mirror) > 1:
                raise UsageError(f"--transfer-from {from_owner!r} is not a user in the mirror "
                                 f"({', '.join(in_mirror)}).",
                                 "Give a user id or e-mail from the mirror (run `roe sync` if new).")
            source = _pick_source(conn, None, sources or None, f"{from_owner!r} is a user in")
        source = _pick_source(conn, source)
        directory = _Directory(conn, source)
        old, problem = directory.find(from_owner)
        if old is None:
            raise UsageError(f"--transfer-from {problem}.", "Give a user id or e-mail from the mirror.")
        new, problem = directory.find_active(to_owner)
        if new is None:
            raise UsageError(f"--to {problem}.", "The new owner must be an active user of the CRM.")
        if old.id == new.id:
            raise UsageError("--transfer-from and --to name the same user.", "Give two different users.")
        plan = _new_plan(
            source,
            {"kind": "transfer", "from": old.id, "from_email": old.email, "to": new.id,
             "to_email": new.email, "objects": list(objects)},
            created_by,
        )
        book = select(accounts.c.id).where(
            accounts.c.source == source, accounts.c.owner_id == old.id, accounts.c.deleted.is_(False)
        )
        queries = {
            "account": select(accounts.c.id, accounts.c.name, accounts.c.id.label("account_id"))
            .where(accounts.c.source == source, accounts.c.owner_id == old.id,
                   accounts.c.deleted.is_(False))
            .order_by(accounts.c.id),
            "contact": select(contacts.c.id, contacts.c.name, contacts.c.account_id).where(
                contacts.c.source == source, contacts.c.owner_id == old.id,
                contacts.c.deleted.is_(False), contacts.c.account_id.in_(book.scalar_subquery()),
            ).order_by(contacts.c.account_id, contacts.c.id),
            "opportunity": select(opportunities.c.id, opportunities.c.name,
                                  opportunities.c.account_id).where(
                opportunities.c.source == source, opportunities.c.owner_id == old.id,
                opportunities.c.deleted.is_(False), opportunities.c.is_closed.is_(False),
                opportunities.c.account_id.in_(book.scalar_subquery()),
            ).order_by(opportunities.c.account_id, opportunities.c.id),
        }
        for object_type in OBJECT_TYPES:
            if object_type not in objects:
                continue
            for row in conn.execute(queries[object_type]):
                plan.changes.append(Change(
                    object_type=object_type, object_id=row.id, object_name=row.name,
                    expected=old.id, expected_email=old.email, new=new.id, new_email=new.email,
                    why={"kind": "transfer", "from": old.id, "account_id": row.account_id},
                ))
    plan.seal()
    return BuildResult(plan)


def _object_types(objects: Sequence[str]) -> tuple[str, ...]:
    picked = []
    for raw in objects:
        name = OBJECT_ALIASES.get(raw.strip().lower())
        if name is None:
            raise UsageError(f"Unknown object type {raw.strip()!r} in --objects.",
                             f"Use a comma-separated list of {', '.join(OBJECT_TYPES)}.")
        picked.append(name)
    if not picked:
        raise UsageError("--objects is empty.", f"Use a comma-separated list of {', '.join(OBJECT_TYPES)}.")
    return tuple(t for t in OBJECT_TYPES if t in picked)


# --------------------------------------------------------------------------------------------
# CSV input


def read_csv_rows(path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows (with their row numbers; the header is row 1) of a CSV.

    UTF-8 only, with or without the BOM Excel writes; a ``;`` or tab separated file (Excel in some
    locales) is read as well. Raises :class:`PlanInputError` for an unreadable, empty or non-UTF-8
    file.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise UsageError(f"The file {path} does not exist.", "Check the path.")
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PlanInputError(f"{name} cannot be read:", [
            "row 1: the file is UTF-16, not UTF-8 (Excel: Save As 'CSV UTF-8')"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise PlanInputError(f"{name} cannot be read:", [
            f"row {row}: the file is not UTF-8 (Excel: Save As 'CSV UTF-8')"]) from None
    if not text.strip():
        raise PlanInputError(f"{name} cannot be read:", ["the file is empty"])
    first_line = text.splitlines()[0]
    delimiter = ","
    if "," not in first_line:
        for candidate in (";", "\t"):
            if candidate in first_line:
                delimiter = candidate
                break
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    try:
        for number, values in enumerate(csv.reader(io.StringIO(text, newline=""),
                                                   delimiter=delimiter), start=1):
            if header is None:
                header = values
                continue
            if not any(v.strip() for v in values):
                continue
            rows.append((number, values))
    except csv.Error as exc:
        raise PlanInputError(f"{name} cannot be read:", [f"row {number}: {exc}"]) from None
    return header or [], rows


def _header_problems(header: list[str], required: Sequence[str],
                     optional: Sequence[str] = ()) -> tuple[dict[str, int], list[str]]:
    """Column positions by name, and the header's problems (missing, unknown, repeated columns)."""
    problems = []
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    known = (*required, *optional)
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in positions:
            problems.append(f"row 1: the column {name!r} appears twice")
        elif name in known:
            positions[name] = index
        else:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"row 1: unknown column {header[index].strip()!r}{hint}; "
                            f"the columns are {', '.join(known)}")
    missing = [c for c in required if c not in positions]
    if missing:
        problems.insert(0, f"row 1: missing column{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} (the header must name {', '.join(required)})")
    return positions, problems


def _cell(values: list[str], positions: dict[str, int], column: str) -> str:
    index = positions.get(column)
    if index is None or index >= len(values):
        return ""
    value = values[index].strip()
    # Undo the Excel neutralization roe writes into its own CSVs ('=..., '-..., ...).
    if value.startswith("'") and value[1:2] in _EXCEL_TRIGGERS:
        value = value[1:]
    return value


def build_from_csv(engine: Engine, path: str | Path, *, source: str | None = None,
                   created_by: str | None = None) -> BuildResult:
    """A plan from a CSV of ``object_type, object_id, new_owner`` (owners by id or e-mail).

    Every problem in the file is collected, with its row number, and raised at once as a
    :class:`PlanInputError`; nothing is planned unless the whole file is good. Records that already
    have the new owner are counted in ``unchanged``; a record listed twice with the same owner once.
    """
    path = Path(path)
    header, rows = read_csv_rows(path)
    positions, problems = _header_problems(header, CSV_COLUMNS)
    if any("missing column" in p for p in problems):
        raise PlanInputError(f"{path.name} has {_count(problems, 'problem')}:", problems,
                             _CSV_TODO)
    if not rows:
        problems.append("the file has a header but no rows")
        raise PlanInputError(f"{path.name} has {_count(problems, 'problem')}:", problems, _CSV_TODO)
    with engine.connect() as conn:
        source = _pick_source(conn, source)
        directory = _Directory(conn, source)
        parsed: list[tuple[int, str, str, str]] = []  # row, object_type, object_id, new_owner
        for number, values in rows:
            if len(values) > len(header):
                problems.append(f"row {number}: {len(values)} values, but the header has "
                                f"{len(header)} columns")
                continue
            raw_type = _cell(values, positions, "object_type")
            object_id = normalize_id(source, _cell(values, positions, "object_id"))
            new_owner = _cell(values, positions, "new_owner")
            object_type = OBJECT_ALIASES.get(raw_type.lower())
            row_problems = []
            if object_type is None:
                row_problems.append(
                    f"row {number}: object_type {raw_type!r} is not one of {', '.join(OBJECT_TYPES)}"
                    if raw_type else f"row {number}: object_type is empty")
            if not object_id:
                row_problems.append(f"row {number}: object_id is empty")
            if not new_owner:
                row_problems.append(f"row {number}: new_owner is empty")
            for column, value in (("object_id", object_id), ("new_owner", new_owner)):
                if _EXCEL_NUMBER.match(value):
                    row_problems.append(
                        f"row {number}: {column} {value!r} looks like an id Excel turned into a "
                        "number; format the column as Text and export again")
                    if column == "object_id":
                        object_id = ""
                    else:
                        new_owner = ""
            problems.extend(row_problems)
            parsed.append((number, object_type or "", object_id, new_owner))
        records = {
            t: _load_records(conn, source, t, [p[2] for p in parsed if p[1] == t and p[2]])
            for t in OBJECT_TYPES
        }
    plan = _new_plan(source, {"kind": "csv", "file": path.name}, created_by)
    result = BuildResult(plan)
    first_row: dict[tuple[str, str], tuple[int, str]] = {}
    for number, object_type, object_id, new_owner in parsed:
        owner = None
        if new_owner:
            owner, problem = directory.find_active(new_owner)
            if owner is None:
                problems.append(f"row {number}: new owner {problem}")
        if not object_type or not object_id:
            continue
        record = records[object_type].get(object_id)
        if record is None:
            problems.append(f"row {number}: no {object_type} {object_id!r} in the {source} mirror "
                            "(check the id; run `roe sync` if it is new)")
            continue
        if record.deleted:
            problems.append(f"row {number}: {object_type} {object_id} is deleted in the CRM")
            continue
        if owner is None:
            continue
        earlier = first_row.get((object_type, object_id))
        if earlier is not None:
            if earlier[1] != owner.id:
                problems.append(
                    f"row {number}: {object_type} {object_id} is also on row {earlier[0]} with a "
                    f"different new owner ({directory.email(earlier[1]) or earlier[1]} there, "
                    f"{owner.label} here)")
            else:
                result.skipped.append(f"row {number}: {object_type} {object_id} repeats row "
                                      f"{earlier[0]} (same new owner); planned once")
            continue
        first_row[(object_type, object_id)] = (number, owner.id)
        if record.owner_id == owner.id:
            result.unchanged += 1
            continue
        plan.changes.append(Change(
            object_type=object_type, object_id=object_id, object_name=record.name,
            expected=record.owner_id, expected_email=directory.email(record.owner_id),
            new=owner.id, new_email=owner.email, why={"kind": "csv", "row": number},
        ))
    if problems:
        raise PlanInputError(f"{path.name} has {_count(problems, 'problem')}; nothing was planned:",
                             _by_row(problems), _CSV_TODO)
    plan.seal()
    return result


_CSV_TODO = ("Fix the file and run the command again. Columns: object_type (account, contact, "
             "opportunity), object_id, new_owner (a user id or e-mail); UTF-8.")


def _count(items: Sequence, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _by_row(problems: list[str]) -> list[str]:
    def key(problem: str) -> int:
        if problem.startswith("row "):
            head = problem[4:].split(":", 1)[0]
            if head.isdigit():
                return int(head)
        return 0

    return sorted(problems, key=key)  # stable: a row's problems keep their order


# --------------------------------------------------------------------------------------------
# Revert


def build_revert(engine: Engine, results_path: str | Path, *, source: str | None = None,
                 created_by: str | None = None) -> BuildResult:
    """The plan that undoes an apply, from its results CSV: each ``applied`` row goes back.

    For each applied row the change is ``expected = new`` and ``new = expected``. Rows whose record
    changed again since (the mirror no longer holds the applied owner), whose old owner is inactive
    or unknown, who had no owner before, or that this mirror's apply journal does not show as
    applied, are left out and listed in ``skipped``. The plan needs its own approval.
    """
    path = Path(results_path)
    header, rows = read_csv_rows(path)
    positions, problems = _header_problems(
        header, ("object_type", "object_id", "expected", "new", "status"),
        ("error", "source", "plan_hash"))
    if problems:
        raise PlanInputError(f"{path.name} is not a roe results file:", problems,
                             "Give the results CSV that `roe apply` wrote (<plan>.results.csv).")
    sources = {_cell(v, positions, "source") for _, v in rows} - {""}
    if len(sources) > 1:
        raise UsageError(f"{path.name} mixes sources ({', '.join(sorted(sources))}).",
                         "Revert each source's results file on its own.")
    applied = [(n, v) for n, v in rows if _cell(v, positions, "status") == "applied"]
    with engine.connect() as conn:
        if sources and source and source not in sources:
            raise UsageError(f"{path.name} is from {next(iter(sources))}, not {source}.",
                             "Drop --source, or give the right results file.")
        source = _pick_source(conn, source or (next(iter(sources)) if sources else None))
        directory = _Directory(conn, source)
        plan_hashes = sorted({_cell(v, positions, "plan_hash") for _, v in applied} - {""})
        journal: set[tuple[str, str, str, str | None]] = set()
        if plan_hashes:
            for row in conn.execute(
                select(apply_journal.c.plan_hash, apply_journal.c.object_type,
                       apply_journal.c.object_id, apply_journal.c.new).where(
                    and_(apply_journal.c.plan_hash.in_(plan_hashes),
                         apply_journal.c.status == "applied", apply_journal.c.source == source)
                )
            ):
                journal.add(tuple(row))
        by_type: dict[str, list[str]] = defaultdict(list)
        for _, values in applied:
            t = OBJECT_ALIASES.get(_cell(values, positions, "object_type").lower())
            if t:
                by_type[t].append(_cell(values, positions, "object_id"))
        records = {t: _load_records(conn, source, t, ids) for t, ids in by_type.items()}
    plan = _new_plan(source, {"kind": "revert", "results": path.name,
                              "plans": plan_hashes}, created_by)
    result = BuildResult(plan)
    seen: set[tuple[str, str]] = set()
    for number, values in applied:
        object_type = OBJECT_ALIASES.get(_cell(values, positions, "object_type").lower())
        object_id = _cell(values, positions, "object_id")
        old = _cell(values, positions, "expected")
        applied_owner = _cell(values, positions, "new")
        plan_hash = _cell(values, positions, "plan_hash")
        label = f"row {number}: {object_type or 'record'} {object_id}"
        if object_type is None or not object_id or not applied_owner:
            result.skipped.append(f"{label}: not a complete results row")
            continue
        if (object_type, object_id) in seen:
            result.skipped.append(f"{label}: listed twice; reverted once")
            continue
        seen.add((object_type, object_id))
        if plan_hash and (plan_hash, object_type, object_id, applied_owner) not in journal:
            result.skipped.append(f"{label}: this mirror's apply journal does not show it applied")
            continue
        if not old:
            result.skipped.append(f"{label}: it had no owner before, and an owner cannot be removed")
            continue
        record = records.get(object_type, {}).get(object_id)
        if record is None or record.deleted:
            result.skipped.append(f"{label}: no longer in the mirror")
            continue
        if record.owner_id != applied_owner:
            now = directory.email(record.owner_id) or record.owner_id
            result.skipped.append(f"{label}: changed again since the apply (now {now})")
            continue
        owner, problem = directory.find_active(old)
        if owner is None:
            result.skipped.append(f"{label}: the previous owner {problem}")
            continue
        plan.changes.append(Change(
            object_type=object_type, object_id=object_id, object_name=record.name,
            expected=applied_owner, expected_email=directory.email(applied_owner),
            new=owner.id, new_email=owner.email,
            why={"kind": "revert", "plan": plan_hash or None, "row": number},
        ))
    plan.seal()
    return result


# --------------------------------------------------------------------------------------------
# Reporting helpers


def plan_totals(plan: Plan) -> tuple[Counter, Counter]:
    """Counts of changes by object type and by new owner (e-mail, else id)."""
    by_object = Counter(c.object_type for c in plan.changes)
    by_owner = Counter(c.new_email or c.new for c in plan.changes)
    return by_object, by_owner


def why_text(change: Change) -> str:
    """A short reason for a change, for tables: ``OWN002 #12``, ``row 3``, ``transfer``."""
    why = change.why or {}
    kind = why.get("kind")
    if kind == "finding":
        return ", ".join(f"{f.get('rule')} #{f.get('id')}" for f in why.get("findings", []))
    if kind == "csv":
        return f"CSV row {why.get('row')}"
    if kind == "transfer":
        return "transfer"
    if kind == "revert":
        return f"revert row {why.get('row')}"
    return kind or ""


def excel_safe(value: object) -> str:
    """A cell value that Excel shows as text, never runs as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_EXCEL_TRIGGERS) else text
