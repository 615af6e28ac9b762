"""``roe whatif``: the findings a proposed rules file would add and remove, before it is adopted.

Both rules files run on the same mirror, as of the same time, each as a dry-run audit
(:func:`~roe_cli.audit.run_audit` with ``store=False``: the run, its findings' history and the
``[[exceptions]]`` it mirrors into the waivers are written inside a transaction that is rolled
back), so the mirror is left exactly as it was. The two sets of findings are compared by a
finding's identity, as in the history: (rule, source, object type, object id, related user).
A finding both runs see is *unchanged*, even when its severity, owner or waiver differ.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from .audit import check_as_of, run_audit
from .export.writers import Column, ExportResult, format_for, write_rows
from .findings import FIELDS
from .logsetup import area_log
from .rules import REGISTRY
from .rulesfile import RulesConfig, load_rules
from .shared.clock import iso_or_none, utcnow

CHANGES = ("appear", "disappear", "unchanged")
ITEM_FIELDS = tuple(f for f in FIELDS if f != "id")
"""A finding in ``appear`` / ``disappear``: the fields of ``roe audit --format json`` but its id."""
NO_OWNER = "(no owner)"

Key = tuple[str, str, str, str, str]


def identity(item: dict[str, Any]) -> Key:
    """A finding's identity: (rule, source, object type, object id, related user)."""
    return (item["rule"], item["source"], item["object_type"], item["object_id"],
            item["related_user_id"] or "")


def owner_of(item: dict[str, Any]) -> str:
    """Who a finding is counted under: its owner's e-mail, else the owner id."""
    return str(item.get("owner_email") or item.get("owner_id") or NO_OWNER)


@dataclass
class WhatIf:
    """The comparison of the current and the proposed rules on one mirror."""

    as_of: datetime
    current: str  # the rules files, as given
    proposed: str
    appear: list[dict[str, Any]] = field(default_factory=list)
    disappear: list[dict[str, Any]] = field(default_factory=list)
    # per rule code (registry order) and per owner: {"appear": n, "disappear": n, "unchanged": n}
    rules: dict[str, dict[str, int]] = field(default_factory=dict)
    by_owner: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def total(self, change: str) -> int:
        return sum(r[change] for r in self.rules.values())

    @property
    def changed(self) -> bool:
        return bool(self.appear or self.disappear)

    def document(self) -> dict[str, Any]:
        """The ``--format json`` document."""
        return {
            "as_of": iso_or_none(self.as_of),
            "current": self.current,
            "proposed": self.proposed,
            "summary": self.rules,
            "by_owner": self.by_owner,
            "appear": [{k: item[k] for k in ITEM_FIELDS} for item in self.appear],
            "disappear": [{k: item[k] for k in ITEM_FIELDS} for item in self.disappear],
        }

    def rows(self) -> Iterator[dict[str, Any]]:
        """The delta for ``-o``: each finding that appears, then each that disappears, with a
        ``change`` column first."""
        for change, items in (("appear", self.appear), ("disappear", self.disappear)):
            for item in items:
                yield {"change": change, **item}


def _count(table: dict[str, dict[str, int]], key: str, change: str) -> None:
    entry = table.setdefault(key, dict.fromkeys(CHANGES, 0))
    entry[change] += 1


def compare(current: list[dict[str, Any]], proposed: list[dict[str, Any]],
            codes: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                       dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Appear, disappear, per-rule and per-owner counts of two runs' findings (each in the
    order the runs listed them). ``codes``: the rules to report, even with nothing to count."""
    before = {identity(item) for item in current}
    after = {identity(item) for item in proposed}
    rules = {code: dict.fromkeys(CHANGES, 0) for code in codes}
    by_owner: dict[str, dict[str, int]] = {}
    appear = [item for item in proposed if identity(item) not in before]
    disappear = [item for item in current if identity(item) not in after]
    for item in proposed:
        change = "unchanged" if identity(item) in before else "appear"
        _count(rules, item["rule"], change)
        _count(by_owner, owner_of(item), change)
    for item in disappear:
        _count(rules, item["rule"], "disappear")
        _count(by_owner, owner_of(item), "disappear")
    order = {code: i for i, code in enumerate(REGISTRY)}
    rules = dict(sorted(rules.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    return appear, disappear, rules, dict(sorted(by_owner.items()))


def load_pair(current: Path, proposed: Path,
              as_of: datetime | None = None) -> tuple[RulesConfig, RulesConfig]:
    """Both rules files, validated, once ``as_of`` is checked: before the mirror is opened."""
    if as_of is not None:
        check_as_of(as_of)
    return load_rules(current), load_rules(proposed)


def delta_columns() -> list[Column]:
    """The columns of ``-o``: ``change``, a finding's JSON fields but its id, then the owner's
    and the account's names."""
    kinds = {"details": "json"}
    return [Column("change"), *(Column(f, kinds.get(f, "str")) for f in ITEM_FIELDS),
            Column("owner_name"), Column("account_name")]


def write_delta(result: WhatIf, path: str | Path) -> ExportResult:
    """Write the findings that appear and disappear to ``path`` (csv, xlsx, json... by its
    extension), atomically."""
    return write_rows(path, format_for(path, None), delta_columns(), result.rows(),
                      sheet="whatif")


def run_whatif(engine: Engine, current: RulesConfig, proposed: RulesConfig,
               as_of: datetime | None = None, *, current_name: str | None = None,
               proposed_name: str | None = None) -> WhatIf:
    """Run ``current`` and ``proposed`` on the mirror as of ``as_of`` (default now), storing
    nothing, and compare their findings."""
    started = time.perf_counter()
    now = as_of or utcnow()
    before = run_audit(engine, current, now, store=False)
    after = run_audit(engine, proposed, now, store=False)
    codes = [code for code in REGISTRY if code in before.rules or code in after.rules]
    appear, disappear, rules, by_owner = compare(before.items or [], after.items or [], codes)
    result = WhatIf(as_of=now, current=current_name or str(current.path),
                    proposed=proposed_name or str(proposed.path), appear=appear,
                    disappear=disappear, rules=rules, by_owner=by_owner,
                    seconds=time.perf_counter() - started)
    area_log("whatif").info(
        "whatif %s -> %s as of %s in %.2fs: appear=%d disappear=%d unchanged=%d",
        result.current, result.proposed, now.isoformat(), result.seconds, len(appear),
        len(disappear), result.total("unchanged"))
    return result


__all__ = ["CHANGES", "ITEM_FIELDS", "WhatIf", "compare", "delta_columns", "identity", "load_pair", "owner_of", "run_whatif", "write_delta"]
