"""Reading and writing plan files.

Writing is atomic (a crash never leaves half a plan) and the file is ``json.dumps(indent=2)`` of
:meth:`Plan.to_json` plus a newline, UTF-8. Reading is the models' validation plus one more check:
the hash must cover the file as written, so a file whose values roe would read back differently is
refused. The approval is *not* checked here; see :func:`roe_cli.plans.approval.verify_approval`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..shared.errors import ConfigError, RoeError, UsageError
from ..shared.files import atomic_write
from .model import PLAN_VERSION, Approval, Change, Plan, canonical_hash

_CHANGE_KEYS = sorted(Change.model_fields)
_APPROVAL_KEYS = sorted(Approval.model_fields)
_PLAN_KEYS = set(Plan.model_fields) - {"path"}


def plan_text(plan: Plan) -> str:
    """The plan file's text: the plan's JSON, indented, ending with a newline."""
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path`` (atomically: a crash never leaves half a plan)."""
    path = Path(path)
    if not path.parent.exists():
        raise UsageError(f"The folder {path.parent} does not exist.",
                         "Create it, or give -o a path in an existing folder.")
    atomic_write(path, plan_text(plan).encode("utf-8"), mode=0o600)  # names, e-mails, amounts
    return path


def save_new_plan(plan: Plan, path: Path, *, force: bool,
                  recorded: Callable[[str], bool]) -> Path:
    """Save a built plan to ``path``: an existing file only with ``force``, and never a plan that
    was approved or applied (``recorded(hash)`` asks the mirror; its approval and journal name
    it)."""
    if path.exists():
        try:
            old: Plan | None = load_plan(path)
        except RoeError:
            old = None
        if old is not None and (old.approval is not None or recorded(old.hash)):
            raise UsageError(f"{path} is a plan that was approved or applied; roe never "
                             "replaces it (revert and audit trails name it).",
                             "Save the new plan under another name (-o NEW.json).")
        if not force:
            raise UsageError(f"{path} already exists.",
                             "Save the plan under another name, or pass --force to replace "
                             "that file.")
    return save_plan(plan, path)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file. The hash is *not* checked here; see ``verify_approval``."""
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
    unknown = sorted(set(data) - _PLAN_KEYS)
    if unknown:
        raise bad(f"unknown keys {unknown}")
    try:
        plan = Plan.model_validate(data, context={"file": True}).at(path)
    except ValidationError as exc:
        raise bad(_describe(exc, data)) from None
    # The hash must cover the file as written, not our re-serialization of it.
    body = {k: v for k, v in data.items() if k not in ("hash", "approval", "approval_history")}
    body.setdefault("created_by", None)
    if canonical_hash(body) != plan.compute_hash():
        raise bad("it holds values roe cannot read back")
    return plan


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """The first problem of a plan file, in the words roe has always used for it."""
    errors = exc.errors()
    missing = sorted(str(e["loc"][0]) for e in errors if len(e["loc"]) == 1 and e["type"] == "missing")
    if missing:
        return f"missing keys {missing}"
    error = errors[0]
    loc = error["loc"]
    if error["type"] == "duplicate_change":
        return error["msg"]
    if loc[0] == "source":
        return f"unknown source {data['source']!r}"
    if loc[0] == "origin" or loc == ("changes",):
        return "'changes' must be a list and 'origin' an object"
    if loc[0] == "approval":
        return f"the approval must be null or have exactly the keys {_APPROVAL_KEYS}"
    if loc[0] == "changes" and len(loc) >= 2 and isinstance(loc[1], int):
        n = loc[1] + 1
        raw = data["changes"][loc[1]]
        key = loc[2] if len(loc) > 2 else None
        if error["type"] == "seat_field":
            return f"change {n}: {error['msg']}"
        if key is None or error["type"] in ("extra_forbidden", "missing", "change_keys"):
            return f"change {n} must have exactly the keys {_CHANGE_KEYS}"
        if key == "object_type":
            return f"change {n} has an unknown object_type {raw['object_type']!r}"
        if key == "field":
            return f"change {n} changes {raw['field']!r}; roe changes only owners and team seats"
        if key in ("object_id", "new"):
            return f"change {n} needs a non-empty {key}"
        if key == "expected":
            return f"change {n} has a non-text expected owner"
        if key == "why":
            return f"change {n}'s 'why' must be an object"
        return f"change {n}: {key} {error['msg'].lower()}"
    return f"{'.'.join(str(p) for p in loc)}: {error['msg'].lower()}"
