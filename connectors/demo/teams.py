"""The demo org's account teams, and the coverage findings (COV001-COV003) they plant.

Runs over a chunk the builder made, with its own seeded generator, so the rest of the org is the
same with or without teams. It adds ``account_team_member`` rows (Salesforce-style: origin
``AccountTeamMember``, the team role as the CRM names it) and, for a few scenarios, activities by
the account's owner and members; it never changes who owns what, and a member never logs three or
more activities in a window, so OWN004 and the handoff rules see what they saw before.

Background: every live Evangelist account gets its team's CSM (the shipped ``rules.toml`` asks for
an AM and a CSM on evangelists; CSMs are exempt from COV001), and so do half the customers an AM
owns. Scenarios, on "normal" accounts
(tiny orgs get one of each, in order, like the builder's FORCED):

* ``cov001-coasting``: an AE member with no activity on an account its owner works busily.
* ``edge-cov001-share``: the same with the AE doing just a tenth of the window's work, or more.
* ``edge-cov001-exempt``: the team's CSM (exempt) with no activity, on a busy account.
* ``cov002-none``: an SE joins an account whose owner is no AM: shared, no quarterback.
* ``cov002-two``: a second AM (or an AE whose team role is "Account Manager") joins an AM's account.
* ``edge-cov002-inactive``: an AM's account with the CSM, an inactive member as "Account Manager"
  and a deleted team row of another AM: one quarterback.
* ``cov003-gap``: an AM's customer becomes an Evangelist with no CSM.
* ``edge-cov003-mapped``: the same, covered by an AE whose team role is "Customer Success Manager".

The findings are then worked out for every account with a team (or matching a requirement) by
:func:`expected_findings`, the rules' meaning written in plain Python over the chunk's rows, with
the settings below, which ``tests/test_demo.py`` checks against the shipped ``rules.toml``.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .roster import CRM_ROLES, PEOPLE, Person, members, team_of, territory_of
from .scenarios import plant

if TYPE_CHECKING:
    from .builder import Chunk

Row = dict[str, Any]

# The shipped rules.toml's settings of the coverage rules (tests/test_demo.py compares them).
WINDOW_DAYS = 30
MIN_ACTIVITIES = 5
MIN_SHARE = 0.1
EXEMPT_ROLES = ("CSM", "SE")
QUARTERBACK_ROLES = ("AM",)
REQUIREMENTS: tuple[dict[str, Any], ...] = ({"stage": "Evangelist", "roles": ("AM", "CSM")},)

TEAM_SCENARIOS: dict[str, float] = {
    "cov001-coasting": 0.004,
    "edge-cov001-share": 0.003,
    "edge-cov001-exempt": 0.003,
    "cov002-none": 0.004,
    "cov002-two": 0.004,
    "edge-cov002-inactive": 0.003,
    "cov003-gap": 0.004,
    "edge-cov003-mapped": 0.003,
}
ROLE_OF_CRM = {crm: role for role, crm in CRM_ROLES.items()}  # rules.toml's [role_map]
BY_ID = {p.id: p for p in PEOPLE}
DAY = timedelta(days=1)


def add_teams(chunk: Chunk, rng: random.Random, as_of: datetime, forced: bool) -> None:
    """Give the chunk's accounts their teams and record the coverage findings they make."""
    _Teams(chunk, rng, as_of, forced).run()


class _Teams:
    def __init__(self, chunk: Chunk, rng: random.Random, as_of: datetime, forced: bool) -> None:
        self.chunk, self.rng, self.as_of = chunk, rng, as_of
        self.pending = list(TEAM_SCENARIOS) if forced else []
        self.scenario: dict[str, str] = {}
        self.seq: dict[str, int] = defaultdict(int)

    # ---- rows ------------------------------------------------------------------------------
    def member(self, account: Row, person: Person, team_role: str | None, deleted: bool = False) -> None:
        aid = account["id"]
        k = self.seq[aid]
        self.seq[aid] += 1
        when = self.as_of - timedelta(seconds=int(self.rng.uniform(40, 400) * 86400))
        self.chunk.add("account_team_member", {
            "id": f"01MD{aid[-10:]}{k:04d}", "account_id": aid, "user_id": person.id,
            "team_role": team_role, "origin": "AccountTeamMember", "created_at": when,
            "updated_at": when, "deleted": deleted,
        })

    def work(self, account: Row, who: str, n: int) -> None:
        """``n`` activities by ``who`` on the account, well inside the window (2 to 28 days ago)."""
        aid = account["id"]
        for _ in range(n):
            k = self.seq["act:" + aid]
            self.seq["act:" + aid] += 1
            when = self.as_of - timedelta(seconds=int(self.rng.uniform(2, 28) * 86400))
            self.chunk.add("activity", {
                "id": f"00TD{aid[-10:]}{9000 + k:04d}", "kind": self.rng.choice(("call", "email")),
                "account_id": aid, "contact_id": None, "opportunity_id": None, "owner_id": who,
                "occurred_at": when, "status": "Completed", "updated_at": when, "deleted": False,
            })

    # ---- scenarios -------------------------------------------------------------------------
    def run(self) -> None:
        accounts = self.chunk.rows.get("account", [])
        scenarios = self.chunk.scenarios
        for account in accounts:
            if account["deleted"] or scenarios.get(account["id"]) != "normal":
                continue
            name = self.choose(account)
            if name is not None:
                self.scenario[account["id"]] = scenarios[account["id"]] = name
                getattr(self, name.replace("-", "_"))(account, _team(account), BY_ID[account["owner_id"]])
        for account in accounts:
            # Evangelists get their CSM, unless planted without one; half the customers an AM
            # owns have one too (exempt from COV001, no second quarterback: nothing to flag).
            aid, stage = account["id"], account["lifecycle_stage"]
            wanted = (stage == "Evangelist" and self.scenario.get(aid) not in ("cov003-gap", "edge-cov003-mapped"))
            if (stage == "Customer" and aid not in self.scenario and scenarios.get(aid) == "normal"
                    and BY_ID[account["owner_id"]].role == "AM" and self.rng.random() < 0.5):
                wanted = True
            csm = [p for p in members(_team(account), "CSM") if p.id != account["owner_id"]]
            if wanted and csm and not account["deleted"]:
                self.member(account, csm[0], CRM_ROLES["CSM"])
        for row in expected_findings(self.chunk, self.as_of):
            plant(self.chunk.planted, row["rule"], "account", row["account_id"],
                  self.scenario.get(row["account_id"], "background-team"), row["related"])

    def fits(self, name: str, account: Row) -> bool:
        owner = BY_ID[account["owner_id"]]
        team = _team(account)
        if not owner.active:
            return False
        others = [p for p in members(team, "AE") if p.id != owner.id]
        if name in ("cov001-coasting", "edge-cov001-share"):
            return bool(others)
        if name == "edge-cov001-exempt":
            return any(p.id != owner.id for p in members(team, "CSM"))
        if name == "cov002-none":
            return owner.role != "AM" and bool(members(team, "SE"))
        if name == "cov002-two":
            return owner.role == "AM" and bool(others or [p for p in members(team, "AM") if p.id != owner.id])
        if name == "edge-cov002-inactive":
            return owner.role == "AM" and bool(members(team, "CSM"))
        if name in ("cov003-gap", "edge-cov003-mapped"):
            return owner.role == "AM" and account["lifecycle_stage"] in ("Customer", "Evangelist") and (
                name == "cov003-gap" or bool(others))
        raise AssertionError(name)  # pragma: no cover

    def choose(self, account: Row) -> str | None:
        for name in self.pending:
            if self.fits(name, account):
                self.pending.remove(name)
                return name
        r = self.rng.random()
        for name, p in TEAM_SCENARIOS.items():
            if r < p:
                return name if self.fits(name, account) else None
            r -= p
        return None

    def cov001_coasting(self, account: Row, team: str, owner: Person) -> None:
        ae = self.rng.choice([p for p in members(team, "AE") if p.id != owner.id])
        self.member(account, ae, CRM_ROLES["AE"])
        self.work(account, owner.id, 6)

    def edge_cov001_share(self, account: Row, team: str, owner: Person) -> None:
        ae = self.rng.choice([p for p in members(team, "AE") if p.id != owner.id])
        self.member(account, ae, CRM_ROLES["AE"])
        self.work(account, owner.id, 6)
        before = _window_total(self.chunk, account["id"], self.as_of)
        # the fewest activities that make a tenth or more of the window (never more than the
        # owner's six, so OWN004 stays quiet): n / (before + n) >= 0.1
        self.work(account, ae.id, min(6, max(1, math.ceil(before / 9))))

    def edge_cov001_exempt(self, account: Row, team: str, owner: Person) -> None:
        csm = next(p for p in members(team, "CSM") if p.id != owner.id)
        self.member(account, csm, CRM_ROLES["CSM"])
        self.work(account, owner.id, 6)

    def cov002_none(self, account: Row, team: str, owner: Person) -> None:
        self.member(account, members(team, "SE")[0], CRM_ROLES["SE"])

    def cov002_two(self, account: Row, team: str, owner: Person) -> None:
        ams = [p for p in members(team, "AM") if p.id != owner.id]
        second = ams[0] if ams else self.rng.choice([p for p in members(team, "AE") if p.id != owner.id])
        self.member(account, second, CRM_ROLES["AM"])

    def edge_cov002_inactive(self, account: Row, team: str, owner: Person) -> None:
        self.member(account, next(p for p in members(team, "CSM") if p.id != owner.id), CRM_ROLES["CSM"])
        self.member(account, self.rng.choice([p for p in PEOPLE if not p.active]), CRM_ROLES["AM"])
        others = [p for p in PEOPLE if p.role == "AM" and p.active and p.id != owner.id]
        self.member(account, self.rng.choice(others), CRM_ROLES["AM"], deleted=True)

    def _evangelist(self, account: Row) -> None:
        account["lifecycle_stage"] = "Evangelist"  # unmapped in HND002: no other rule cares
        for contact in self.chunk.rows.get("contact", []):
            if contact["account_id"] == account["id"]:
                contact["lifecycle_stage"] = "evangelist"

    def cov003_gap(self, account: Row, team: str, owner: Person) -> None:
        self._evangelist(account)

    def edge_cov003_mapped(self, account: Row, team: str, owner: Person) -> None:
        self._evangelist(account)
        ae = self.rng.choice([p for p in members(team, "AE") if p.id != owner.id])
        self.member(account, ae, CRM_ROLES["CSM"])


def _team(account: Row) -> str:
    return team_of(territory_of(account["country"], account["state"], account["employees"]))


def _counted(chunk: Chunk, as_of: datetime) -> dict[str, list[Row]]:
    """Live activities in the window (after as_of - WINDOW_DAYS, not after as_of) by account, each
    counted for the account it is linked to (directly, or through a live contact or deal)."""
    live_contacts = {c["id"]: c["account_id"] for c in chunk.rows.get("contact", []) if not c["deleted"]}
    live_deals = {o["id"]: o["account_id"] for o in chunk.rows.get("opportunity", []) if not o["deleted"]}
    start = as_of - WINDOW_DAYS * DAY
    by_account: dict[str, list[Row]] = defaultdict(list)
    for act in chunk.rows.get("activity", []):
        if act["deleted"] or not start < act["occurred_at"] <= as_of:
            continue
        targets = {act["account_id"], live_contacts.get(act["contact_id"] or ""),
                   live_deals.get(act["opportunity_id"] or "")} - {None}
        for aid in targets:
            by_account[aid].append(act)
    return by_account


def _window_total(chunk: Chunk, aid: str, as_of: datetime) -> int:
    return len(_counted(chunk, as_of).get(aid, []))


def _role(person: Person, team_role: str | None) -> str:
    return ROLE_OF_CRM.get(team_role or "") or person.role


def planted_without_teams(chunk: Chunk, as_of: datetime) -> list[Row]:
    """The chunk's planted findings as an audit sees them when the mirror holds no account team
    (a CRM emulator that does not serve teams): the COV findings worked out with owners alone."""
    kept = [p for p in chunk.planted if not p["rule"].startswith("COV")]
    for row in expected_findings(chunk, as_of, teams=False):
        plant(kept, row["rule"], "account", row["account_id"], "no-team-synced", row["related"])
    return kept


def expected_findings(chunk: Chunk, as_of: datetime, teams: bool = True) -> list[Row]:
    """What COV001-COV003 must report for the chunk's accounts, as ``{rule, account_id, related}``
    (with ``teams=False``: as if the mirror held no team rows)."""
    rows: dict[str, list[Row]] = defaultdict(list)
    for row in chunk.rows.get("account_team_member", []) if teams else []:
        if not row["deleted"]:
            rows[row["account_id"]].append(row)
    counted = _counted(chunk, as_of)
    out: list[Row] = []
    for account in chunk.rows.get("account", []):
        if account["deleted"]:
            continue
        aid = account["id"]
        roles: dict[str, set[str]] = defaultdict(set)  # active member -> roles
        owner = BY_ID.get(account["owner_id"])
        if owner is not None and owner.active:
            roles[owner.id].add(owner.role)
        for row in rows[aid]:
            person = BY_ID[row["user_id"]]
            if person.active:
                roles[person.id].add(_role(person, row["team_role"]))
        if len(roles) >= 2:
            acts = counted.get(aid, [])
            if len(acts) >= MIN_ACTIVITIES:
                for user, user_roles in roles.items():
                    mine = sum(1 for a in acts if a["owner_id"] == user)
                    if not user_roles & set(EXEMPT_ROLES) and mine / len(acts) < MIN_SHARE:
                        out.append({"rule": "COV001", "account_id": aid, "related": user})
            quarterbacks = [u for u, r in roles.items() if r & set(QUARTERBACK_ROLES)]
            if len(quarterbacks) != 1:
                out.append({"rule": "COV002", "account_id": aid, "related": ""})
        have = set().union(*roles.values()) if roles else set()
        missing: set[str] = set()
        for req in REQUIREMENTS:
            if (account["lifecycle_stage"] or "").lower() == req["stage"].lower():
                missing |= set(req["roles"]) - have
        out += [{"rule": "COV003", "account_id": aid, "related": f"role:{r}"} for r in sorted(missing)]
    return out
