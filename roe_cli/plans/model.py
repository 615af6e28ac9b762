"""The plan model: frozen records of owner changes, and the canonical hash that seals them.

A plan is a JSON file (see :meth:`Plan.to_json`)::

    {"version": 1, "source": "demo", "created_at": "2026-11-01T09:00:00Z", "created_by": "ana",
     "origin": {"kind": "findings", "rules": ["OWN002"]},
     "changes": [{"object_type": "account", "object_id": "001...", "object_name": "Acme",
                  "field": "owner", "expected": "005...", "expected_email": "old@example.com",
                  "new": "005...", "new_email": "new@example.com",
                  "why": {"kind": "finding", "findings": [{"id": 12, "rule": "OWN002"}]}}],
     "hash": "<sha256>", "approval": null, "approval_history": []}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of everything in the
plan except ``hash``, ``approval`` and ``approval_history`` (the earlier approvals a re-approval
replaced, oldest first; the mirror keeps the same history): the changes, and the header that makes each built plan
unique (version, source, created_at, created_by, origin). Building the same changes twice gives two
plans, each needing its own approval, so an old approval or journal never covers a new plan.

The models are frozen: a plan is built once and sealed (:meth:`Plan.build`); approving it gives a
new plan (:meth:`Plan.approved`). The field order of each model is the key order of the file.
Validation (types, unknown and missing keys, a record listed twice) is the models' own; see
:mod:`roe_cli.plans.planfile` for reading a file and its messages.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from ..shared.clock import utc_text
from ..shared.vocab import ObjectType, Source

PLAN_VERSION: Literal[1] = 1
FIELD: Literal["owner"] = "owner"
# An account team seat (``roe reassign --team-seats``): object_type SEAT, field SEAT_FIELD, the
# object_id the mirror's member id, expected/new the users; why names the account and the member's
# origin and team role. Plans without seats keep the file and hash they always had.
SEAT: Literal["account_team_member"] = "account_team_member"
SEAT_FIELD: Literal["team_seat"] = "team_seat"
RESULTS_COLUMNS = ("object_type", "object_id", "expected", "new", "status", "error", "source",
                   "plan_hash", "object_name", "expected_email", "new_email", "expected_name",
                   "new_name")

_FROZEN = ConfigDict(frozen=True, extra="forbid")

NonEmptyText = Annotated[StrictStr, Field(min_length=1)]


def canonical_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``body`` (sorted keys, no whitespace, UTF-8)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Change(BaseModel):
    """One owner change (or team seat move): which record, the owner the mirror holds now, the
    new owner, and why."""

    model_config = _FROZEN

    object_type: ObjectType | Literal["account_team_member"]
    object_id: NonEmptyText
    object_name: str | None
    field: Literal["owner", "team_seat"] = FIELD
    expected: StrictStr | None
    expected_email: str | None
    new: NonEmptyText
    new_email: str | None
    why: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _every_key_in_a_file(cls, data: Any, info: ValidationInfo) -> Any:
        """A change read from a file names every key, ``field`` included (no defaults there)."""
        if info.context and info.context.get("file") and isinstance(data, dict) \
                and set(data) != set(cls.model_fields):
            raise PydanticCustomError("change_keys", "a change must name every key")
        return data

    @model_validator(mode="after")
    def _seat_field(self) -> Change:
        """A team seat changes the seat's user; every other record its owner."""
        if (self.object_type == SEAT) != (self.field == SEAT_FIELD):
            raise PydanticCustomError("seat_field", "an account_team_member change changes "
                                      "the team_seat, every other change the owner")
        return self

    @property
    def is_seat(self) -> bool:
        return self.object_type == SEAT

    @property
    def key(self) -> tuple[str, str]:
        return (self.object_type, self.object_id)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Approval(BaseModel):
    """Who approved a plan, when (``utc_text``), why, and the hash they approved."""

    model_config = _FROZEN

    by: str
    at: str
    note: str | None
    hash: str


class Plan(BaseModel):
    """A set of owner changes on one source, with its hash and (once approved) its approval."""

    model_config = _FROZEN

    version: Literal[1] = PLAN_VERSION
    source: Source
    created_at: str = Field(default_factory=utc_text)
    created_by: str | None = None
    origin: dict[str, Any]
    changes: tuple[Change, ...]
    hash: str = ""
    approval: Approval | None = None
    approval_history: tuple[Approval, ...] = ()
    path: Path | None = Field(default=None, exclude=True)  # where it was read from; not in the file

    @model_validator(mode="after")
    def _each_record_once(self) -> Plan:
        seen: set[tuple[str, str]] = set()
        for change in self.changes:
            if change.key in seen:
                raise PydanticCustomError("duplicate_change", "{what} appears twice",
                                          {"what": f"{change.object_type} {change.object_id}"})
            seen.add(change.key)
        return self

    @classmethod
    def build(cls, source: str, origin: dict[str, Any], changes: Iterable[Change],
              created_by: str | None = None) -> Plan:
        """A new plan, sealed: its ``hash`` computed from its content (``created_by``: the OS user)."""
        plan = cls(source=Source(source), origin=origin, changes=tuple(changes),
                   created_by=created_by or _os_user())
        return plan.model_copy(update={"hash": plan.compute_hash()})

    def body(self) -> dict[str, Any]:
        """Everything the hash covers: the whole plan except ``hash`` and ``approval``."""
        return self.model_dump(mode="json", exclude={"hash", "approval", "approval_history", "path"})

    def compute_hash(self) -> str:
        return canonical_hash(self.body())

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"path"})

    def approved(self, approval: Approval) -> Plan:
        """This plan approved by ``approval``; an earlier approval moves to the history."""
        history = self.approval_history + ((self.approval,) if self.approval else ())
        return self.model_copy(update={"approval": approval, "approval_history": history})

    def at(self, path: Path) -> Plan:
        """This plan, known to live in the file ``path``."""
        return self.model_copy(update={"path": path})

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "the plan"


@dataclass
class BuildResult:
    """A built plan, plus what was left out of it and why (shown to the admin, never silent)."""

    plan: Plan
    unchanged: int = 0  # records that already have the new owner
    skipped: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.plan.changes


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is fine
        return None
