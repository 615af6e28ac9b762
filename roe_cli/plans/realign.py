"""A plan that realigns accounts with their territories' teams (``roe realign --rules NEW.toml``).

Under the proposed rules file, every live owned account whose owner is not a member of the team
of the account's territory (what OWN005 flags) is handed to a member of that team:

- eligible: an active member of the team whose roe role can own the account's stage (HND002's
  ``stage_roles`` when HND002 is on and maps the stage; otherwise any role);
- chosen: the eligible member with the fewest accounts (``balance="pipeline"``: the least open
  pipeline), counting the moves made so far, ties broken by e-mail; the territory's
  ``default_owner``, when eligible, comes first whenever it is not more loaded than the others;
- held: an account with an open opportunity stays with its owner unless ``move_open_deals``;
- unassigned: an account in no territory, or whose territory has no eligible member;
- what follows: the account's live contacts and open opportunities owned by its old owner, as in
  a book transfer (``why.kind = "transfer"``, so apply holds them back if the account drifts).

Accounts are processed in a fixed order (territory order in the file, then account id), so the
same mirror and file always give the same changes. Reads the mirror only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import and_, func, literal, select
from sqlalchemy.engine import Connection, Engine

from ..models import accounts, contacts, opportunities, owners
from ..rulesfile import RulesConfig, load_rules
from ..shared.clock import as_naive_utc, utc_text, utcnow
from ..shared.errors import UsageError
from ..shared.vocab import ObjectType
from .balance import Balance, balance_of
from .directory import pick_source
from .model import BuildResult, Change, Plan

BalanceBy = Literal["accounts", "pipeline"]
ACTIVITY_DAYS = 90


@dataclass(frozen=True)
class Placement:
    """An account realign looked at and did not move: held or unassigned, and why."""

    account_id: str
    name: str | None
    owner_id: str | None
    owner_email: str | None
    territory: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RealignResult(BuildResult):
    """The plan, plus the accounts held and unassigned and the balance before and after."""

    moved: int = 0
    held: list[Placement] = field(default_factory=list)
    unassigned: list[Placement] = field(default_factory=list)
    before: Balance | None = None
    after: Balance | None = None
    balance_by: str = "accounts"


@dataclass
class _Account:
    id: str
    name: str | None
    owner_id: str
    stage: str | None
    ordinal: int | None


def build_realign(engine: Engine, rules: RulesConfig | Path | str, *,
                  move_open_deals: bool = False, balance: BalanceBy = "accounts",
                  source: str | None = None, created_by: str | None = None,
                  as_of: datetime | None = None) -> RealignResult:
    """The realignment plan of the mirror under ``rules`` (a config or a rules file); see above."""
    if balance not in ("accounts", "pipeline"):
        raise UsageError(f"Unknown --balance {balance!r}.", "Use accounts or pipeline.")
    config = rules if isinstance(rules, RulesConfig) else load_rules(Path(rules))
    now = as_naive_utc(as_of) if as_of else utcnow()
    with engine.connect() as conn:
        source = pick_source(conn, source)
        return _Realign(conn, config, source, now, move_open_deals, balance).build(created_by)


class _Realign:
    def __init__(self, conn: Connection, config: RulesConfig, source: str, now: datetime,
                 move_open_deals: bool, balance: BalanceBy) -> None:
        self.conn, self.config, self.source, self.now = conn, config, source, now
        self.move_open_deals, self.balance = move_open_deals, balance
        self.emails: dict[str, str | None] = {}
        self.roles: dict[str, str | None] = {}
        self.active: set[str] = set()
        ids_by_email: dict[str, list[str]] = defaultdict(list)
        for row in conn.execute(select(owners.c.id, owners.c.email, owners.c.active, owners.c.role)
                                .where(owners.c.source == source)):
            self.emails[row.id] = row.email
            self.roles[row.id] = config.role_of(row.email, row.role)
            if row.active:
                self.active.add(row.id)
            if row.email:
                ids_by_email[row.email.strip().lower()].append(row.id)
        self.members: list[set[str]] = []  # per territory: every owner in its team
        for territory in config.territories:
            emails = config.team_members(territory.team)
            self.members.append({i for e in emails for i in ids_by_email.get(e.lower(), ())})
        self.defaults: list[str | None] = []
        for territory in config.territories:
            found = [i for i in ids_by_email.get((territory.default_owner or "").lower(), ())
                     if i in self.active]
            self.defaults.append(found[0] if found else None)
        hnd002 = config.rules.get("HND002")
        stage_roles = getattr(hnd002, "stage_roles", None) if hnd002 and hnd002.enabled else None
        self.stage_roles = {k.strip().lower(): set(v) for k, v in (stage_roles or {}).items()}

    # -- reading the mirror ----------------------------------------------------------------
    def _accounts(self) -> list[_Account]:
        rows = self.conn.execute(
            select(accounts.c.id, accounts.c.name, accounts.c.owner_id, accounts.c.country,
                   accounts.c.state, accounts.c.industry, accounts.c.employees,
                   accounts.c.lifecycle_stage)
            .where(accounts.c.source == self.source, accounts.c.deleted.is_(False),
                   accounts.c.owner_id.is_not(None))
        )
        ordinal = {id(t): n for n, t in enumerate(self.config.territories)}
        out = []
        for r in rows:
            territory = self.config.territory_of(r.country, r.state, r.industry, r.employees)
            out.append(_Account(r.id, r.name, r.owner_id, r.lifecycle_stage,
                                None if territory is None else ordinal[id(territory)]))
        return out

    def _open_deal_accounts(self) -> set[str]:
        o = opportunities
        return set(self.conn.execute(
            select(o.c.account_id).distinct().where(
                o.c.source == self.source, o.c.deleted.is_(False), o.c.is_closed.is_(False),
                o.c.account_id.is_not(None))
        ).scalars())

    def _following(self, table: Any, open_only: bool) -> dict[str, list[tuple[str, str | None, float]]]:
        """Per account: the live records of ``table`` owned by the account's owner."""
        a = accounts
        amount = table.c.amount if table is opportunities else literal(0)
        conds = [table.c.source == self.source, table.c.deleted.is_(False)]
        if open_only:
            conds.append(table.c.is_closed.is_(False))
        out: dict[str, list[tuple[str, str | None, float]]] = defaultdict(list)
        for r in self.conn.execute(
            select(table.c.id, table.c.name, table.c.account_id, amount.label("amount"))
            .join(a, and_(a.c.source == table.c.source, a.c.id == table.c.account_id,
                          a.c.owner_id == table.c.owner_id, a.c.deleted.is_(False)))
            .where(*conds).order_by(table.c.account_id, table.c.id)
        ):
            out[r.account_id].append((r.id, r.name, float(r.amount or 0)))
        return out

    def _totals(self) -> tuple[dict[str, int], dict[str, float], dict[str, int]]:
        """Per owner: live accounts, open pipeline; per account: activities in the last 90 days."""
        from ..rules.context import RuleContext

        a, o = accounts, opportunities
        n_accounts = {r.owner_id: int(r.n) for r in self.conn.execute(
            select(a.c.owner_id, func.count().label("n"))
            .where(a.c.source == self.source, a.c.deleted.is_(False), a.c.owner_id.is_not(None))
            .group_by(a.c.owner_id))}
        pipeline = {r.owner_id: float(r.total or 0) for r in self.conn.execute(
            select(o.c.owner_id, func.sum(o.c.amount).label("total"))
            .where(o.c.source == self.source, o.c.deleted.is_(False), o.c.is_closed.is_(False),
                   o.c.owner_id.is_not(None))
            .group_by(o.c.owner_id))}
        ctx = RuleContext(self.conn, self.now, self.config)
        totals = ctx.activity_totals(self.now - timedelta(days=ACTIVITY_DAYS), self.now)
        per_account = {r.account_id: int(r.n) for r in self.conn.execute(
            select(totals.c.account_id, func.sum(totals.c.n).label("n"))
            .where(totals.c.source == self.source).group_by(totals.c.account_id))}
        return n_accounts, pipeline, per_account

    # -- choosing ----------------------------------------------------------------------------
    def _eligible(self, ordinal: int, stage: str | None) -> list[str]:
        wanted = self.stage_roles.get((stage or "").strip().lower())
        return [i for i in self.members[ordinal] if i in self.active
                and (wanted is None or self.roles.get(i) in wanted)]

    def _choose(self, eligible: list[str], load: dict[str, float], default: str | None) -> str:
        best = min(eligible, key=lambda i: (load.get(i, 0), (self.emails.get(i) or "").lower(), i))
        if default in eligible:
            others = [load.get(i, 0) for i in eligible if i != default]
            if not others or load.get(default, 0) <= min(others):
                return default
        return best

    def build(self, created_by: str | None) -> RealignResult:
        n_accounts, pipeline, account_acts = self._totals()
        activities: dict[str, int] = defaultdict(int)
        owned = self._accounts()
        for acc in owned:
            activities[acc.owner_id] += account_acts.get(acc.id, 0)
        before_accounts, before_pipeline = dict(n_accounts), dict(pipeline)
        before_acts = dict(activities)
        open_deals = self._open_deal_accounts()
        following = {ObjectType.CONTACT: self._following(contacts, open_only=False),
                     ObjectType.OPPORTUNITY: self._following(opportunities, open_only=True)}
        names = self.config.territories
        held: list[Placement] = []
        unassigned: list[Placement] = []
        changes: list[Change] = []
        moved = 0

        def place(acc: _Account, reason: str) -> Placement:
            return Placement(acc.id, acc.name, acc.owner_id, self.emails.get(acc.owner_id),
                             None if acc.ordinal is None else names[acc.ordinal].name, reason)

        candidates = []
        for acc in owned:
            if acc.ordinal is None:
                unassigned.append(place(acc, "in no territory"))
            elif acc.owner_id not in self.members[acc.ordinal]:
                candidates.append(acc)
        candidates.sort(key=lambda acc: (acc.ordinal or 0, acc.id))
        for acc in candidates:
            assert acc.ordinal is not None
            territory = names[acc.ordinal]
            eligible = self._eligible(acc.ordinal, acc.stage)
            if not eligible:
                stage = f" for stage {acc.stage!r}" if acc.stage and self.stage_roles.get(
                    acc.stage.strip().lower()) is not None else ""
                unassigned.append(place(acc, f"no active member of team {territory.team!r}"
                                             f"{stage}"))
                continue
            if acc.id in open_deals and not self.move_open_deals:
                held.append(place(acc, "has an open opportunity (--move-open-deals moves it)"))
                continue
            load: dict[str, float] = (dict(n_accounts) if self.balance == "accounts"
                                      else dict(pipeline))
            new = self._choose(eligible, load, self.defaults[acc.ordinal])
            old = acc.owner_id
            why = {"kind": "transfer", "realign": territory.name, "from": old,
                   "account_id": acc.id}
            changes.append(self._change(ObjectType.ACCOUNT, acc.id, acc.name, old, new, why))
            moved += 1
            n_accounts[new] = n_accounts.get(new, 0) + 1
            n_accounts[old] = n_accounts.get(old, 0) - 1
            activities[new] += account_acts.get(acc.id, 0)
            activities[old] -= account_acts.get(acc.id, 0)
            for kind in (ObjectType.CONTACT, ObjectType.OPPORTUNITY):
                for rec_id, rec_name, amount in following[kind].get(acc.id, ()):
                    changes.append(self._change(kind, rec_id, rec_name, old, new, why))
                    if kind == ObjectType.OPPORTUNITY:
                        pipeline[new] = pipeline.get(new, 0.0) + amount
                        pipeline[old] = pipeline.get(old, 0.0) - amount
        population = {i for members in self.members for i in members if i in self.active}
        before = balance_of(population, self.emails, before_accounts, before_pipeline, before_acts)
        after = balance_of(population, self.emails, n_accounts, pipeline, activities)
        origin = {"kind": "realign", "rules": self.config.path.name,
                  "rules_sha256": self.config.sha256, "balance": self.balance,
                  "move_open_deals": self.move_open_deals, "as_of": utc_text(self.now),
                  "moved": moved, "held": len(held), "unassigned": len(unassigned)}
        plan = Plan.build(self.source, origin, changes, created_by)
        return RealignResult(plan, moved=moved, held=held, unassigned=unassigned, before=before,
                             after=after, balance_by=self.balance)

    def _change(self, kind: ObjectType, object_id: str, name: str | None, old: str, new: str,
                why: dict[str, Any]) -> Change:
        return Change(object_type=kind, object_id=object_id, object_name=name, expected=old,
                      expected_email=self.emails.get(old), new=new, new_email=self.emails.get(new),
                      why=why)
