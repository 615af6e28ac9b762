"""Helpers for the write-back tests (``test_writeback*.py``): a small hand-built org, a findings
row, owners in the mirror, a "nothing was written" snapshot, a plan/approve shortcut, and a spy
connector that can die in the middle of an apply.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from roe_cli import plans
from roe_cli.models import (
    accounts,
    apply_journal,
    contacts,
    findings,
    opportunities,
    owners,
    ownership_changes,
)
from roe_cli.models import plans as plans_table

T0 = datetime(2026, 10, 1)
NO_RULES = "no-rules-file.toml"  # the demo needs no connector settings

# Users of the small org: (id, email, active)
ANA, BEN, CLEO, DAN, EVE = ("005A", "005B", "005C", "005D", "005E")
USERS = [
    (ANA, "ana@example.com", True),
    (BEN, "Ben@Example.com", True),
    (CLEO, "cleo@example.com", False),  # left the company
    (DAN, "dan@example.com", True),
    (EVE, "eve@example.com", True),
]


def make_org(engine: Engine, *, source: str = "demo", accounts_n: int = 6,
             ids: dict[str, str] | None = None) -> dict[str, list[str]]:
    """A small org in the mirror. Cleo (inactive) owns accounts 0..2, Ana owns the rest.

    Each account has two contacts (one owned like the account, one by Ben) and two opportunities
    (one open, one closed) owned like the account. ``ids`` maps roe's short ids to the CRM's.
    """
    ids = ids or {}
    def uid(short: str) -> str:
        return ids.get(short, short)

    org: dict[str, list[str]] = {"accounts": [], "contacts": [], "opportunities": []}
    with engine.begin() as conn:
        conn.execute(owners.insert(), [
            {"source": source, "id": uid(i), "email": e, "name": e.split("@")[0].title(),
             "active": a, "role": "Account Executive", "updated_at": T0}
            for i, e, a in USERS
        ])
        acc_rows: list[dict[str, Any]] = []
        con_rows: list[dict[str, Any]] = []
        opp_rows: list[dict[str, Any]] = []
        for n in range(accounts_n):
            owner = uid(CLEO) if n < 3 else uid(ANA)
            acc = ids.get(f"acc{n}", f"001{n:05d}")
            acc_rows.append({"source": source, "id": acc, "name": f"Account {n}", "owner_id": owner,
                             "created_at": T0, "updated_at": T0, "deleted": False})
            for k, c_owner in enumerate((owner, uid(BEN))):
                cid = ids.get(f"con{n}_{k}", f"003{n:05d}{k}")
                con_rows.append({"source": source, "id": cid, "account_id": acc, "owner_id": c_owner,
                                 "name": f"Contact {n}.{k}", "email": f"c{n}{k}@acme{n}.com",
                                 "created_at": T0, "updated_at": T0, "deleted": False})
            for k, closed in enumerate((False, True)):
                oid = ids.get(f"opp{n}_{k}", f"006{n:05d}{k}")
                opp_rows.append({"source": source, "id": oid, "account_id": acc, "owner_id": owner,
                                 "name": f"Deal {n}.{k}", "stage": "Closed Won" if closed else "Proposal",
                                 "is_closed": closed, "is_won": closed, "created_at": T0,
                                 "updated_at": T0, "deleted": False})
        conn.execute(accounts.insert(), acc_rows)
        conn.execute(contacts.insert(), con_rows)
        conn.execute(opportunities.insert(), opp_rows)
    org["accounts"] = [r["id"] for r in acc_rows]
    org["contacts"] = [r["id"] for r in con_rows]
    org["opportunities"] = [r["id"] for r in opp_rows]
    return org


def add_finding(engine: Engine, rule: str, object_type: str, object_id: str, owner_id: str | None,
                suggested: str | None, *, status: str = "open", source: str = "demo",
                related: str = "") -> int:
    with engine.begin() as conn:
        key = conn.execute(findings.insert().values(
            rule=rule, source=source, object_type=object_type, object_id=object_id,
            related_user_id=related, owner_id=owner_id, suggested_owner_id=suggested,
            severity="high", status=status, first_seen=T0, last_seen=T0, details="{}",
        )).inserted_primary_key
    assert key is not None
    return int(key[0])


def owner_of(engine: Engine, object_type: str, object_id: str, source: str = "demo") -> str | None:
    table = {"account": accounts, "contact": contacts, "opportunity": opportunities}[object_type]
    with engine.connect() as conn:
        return conn.execute(select(table.c.owner_id).where(
            table.c.source == source, table.c.id == object_id)).scalar_one()


def set_owner(engine: Engine, object_type: str, object_id: str, owner_id: str | None,
              source: str = "demo") -> None:
    table = {"account": accounts, "contact": contacts, "opportunity": opportunities}[object_type]
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.source == source, table.c.id == object_id)
                     .values(owner_id=owner_id))


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every owner in the mirror plus the write-back tables' row counts: 'nothing was written'."""
    with engine.connect() as conn:
        snap: dict[str, Any] = {
            name: sorted(tuple(r) for r in conn.execute(select(t.c.source, t.c.id, t.c.owner_id)))
            for name, t in (("a", accounts), ("c", contacts), ("o", opportunities))
        }
        for name, t in (("plans", plans_table), ("journal", apply_journal),
                        ("changes", ownership_changes)):
            snap[name] = conn.execute(select(func.count()).select_from(t)).scalar_one()
    return snap


def read_results(path: str | Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def approved(engine: Engine, result: plans.BuildResult, path: Path,
             by: str = "vp@example.com") -> plans.Plan:
    """Save and approve a built plan; return it as loaded back from the file."""
    plans.save_plan(result.plan, path)
    plan = plans.approve_plan(engine, plans.load_plan(path), by, "test")
    plans.save_plan(plan, path)
    return plans.load_plan(path)


class Spy:
    """Wraps a connector: records every record sent, and can die after N write calls."""

    def __init__(self, inner: Any, *, die_after_writes: int | None = None,
                 die_before_write: int | None = None, exc: BaseException | None = None) -> None:
        self.inner = inner
        self.source = inner.source
        self.sent: list[tuple[str, str]] = []
        self.writes = 0
        self.reads = 0
        self.die_after_writes = die_after_writes
        self.die_before_write = die_before_write
        self.exc = exc or Killed()
        if hasattr(inner, "write_batch_size"):
            self.write_batch_size = inner.write_batch_size

    def read_owners(self, object_type: str, ids: list[str]) -> dict[str, str | None]:
        self.reads += 1
        return self.inner.read_owners(object_type, ids)

    def update_owners(self, object_type: str, changes: list[Any]) -> list[Any]:
        if self.die_before_write is not None and self.writes + 1 == self.die_before_write:
            raise self.exc
        self.writes += 1
        out = self.inner.update_owners(object_type, changes)
        self.sent.extend((c.object_type, c.object_id) for c in changes)
        if self.die_after_writes is not None and self.writes == self.die_after_writes:
            raise self.exc
        return out

    def api_calls(self) -> int:
        return self.inner.api_calls()

    def close(self) -> None:
        self.inner.close()


class Killed(BaseException):
    """Stands in for SIGKILL / Ctrl-C in the middle of an apply: nothing after it runs."""
