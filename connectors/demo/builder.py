"""The demo org's background: accounts with their contacts, opportunities, activities and
ownership history, one chunk of about a thousand accounts at a time.

The background obeys every rule: owners fit their account's territory and stage, activity keeps up
with open deals and handoffs, domains are unique. Each account also gets a scenario
(``connectors.demo.scenarios``) that may bend it to break, or nearly break, one rule. Every time
keeps at least two days away from a rule's boundary. Each chunk draws from its own seeded
generator, so the same ``(seed, as_of, start)`` gives the same chunk in any process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from roe_cli.shared.domains import email_domain, normalize_domain

from .orgdata import (
    ACTIVITY_KINDS,
    ACTIVITY_LINKS,
    ADJ,
    COUNTRIES,
    FIRST_NAMES,
    FREE_MAIL,
    INDUSTRIES,
    LAST_NAMES,
    NOUN,
    OPEN_STAGES,
    STAGE_OWNER_ROLES,
    STAGES,
    STATES,
    SUFFIX,
    TITLES,
    TLD,
    pick,
)
from .roster import (
    BY_FIRST,
    PEOPLE,
    TERRITORIES,
    Person,
    Territory,
    members,
    team_of,
    territory_of,
)
from .scenarios import (
    CLUSTER_SCENARIOS,
    FORCED,
    Row,
    draw_scenario,
    finish_cluster,
    plant,
    plant_account,
    split_member_pool,
)
from .settings import lead_source_for
from .teams import add_teams

DAY = timedelta(days=1)

@dataclass
class Chunk:
    """Normalized rows by object type (mirror column names, no ``source``) and planted findings."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    planted: list[dict] = field(default_factory=list)
    scenarios: dict[str, str] = field(default_factory=dict)  # account id -> its scenario

    def add(self, object_type: str, row: dict) -> None:
        self.rows.setdefault(object_type, []).append(row)



def build_chunk(seed: int, as_of: datetime, start: int, count: int) -> Chunk:
    """Accounts ``start`` to ``start + count`` of the org, with everything that hangs off them."""
    rng = random.Random(f"roe-demo:{seed}:{start}")
    chunk = _Builder(rng, as_of, start, count).build()
    add_teams(chunk, random.Random(f"roe-demo-teams:{seed}:{start}"), as_of, forced=start == 0)
    return chunk


class _Builder:
    """Builds one chunk of accounts. Methods named after scenarios shape one account each."""

    def __init__(self, rng: random.Random, as_of: datetime, start: int, count: int) -> None:
        self.rng = rng
        self.as_of = as_of
        self.start = start
        self.count = count
        self.chunk = Chunk()
        self.accounts: list[dict] = []
        self.counted: dict[str, int] = {}  # account id -> activities that count for it

    # ---- small helpers -------------------------------------------------------------------
    def ago(self, lo_days: float, hi_days: float) -> datetime:
        """A time between ``lo_days`` and ``hi_days`` before as_of, to the second."""
        seconds = self.rng.uniform(lo_days * 86400, hi_days * 86400)
        return self.as_of - timedelta(seconds=int(seconds))

    def plant(self, rule: str, object_type: str, object_id: str, scenario: str, related: str = "") -> None:
        plant(self.chunk.planted, rule, object_type, object_id, scenario, related)

    def person(self, team: str, roles: tuple[str, ...], exclude: tuple[str, ...] = (),
               active: bool | None = True) -> Person:
        pool = [p for role in roles for p in members(team, role, active) if p.id not in exclude]
        if not pool:  # a small team: anyone else in it
            pool = [p for p in members(team, None, active) if p.id not in exclude]
        return self.rng.choice(pool)

    def geography(
        self, want_team: str | None = None, want_territory_min: int | None = None
    ) -> tuple[str, str | None, int | None, Territory | None]:
        """Country, state, employees; resampled until they fall in ``want_team`` when asked."""
        for _ in range(1000):
            country = pick(self.rng, COUNTRIES)
            state = self.rng.choice(STATES[country]) if country in STATES else None
            employees = None if self.rng.random() < 0.03 else int(min(60000, max(3, self.rng.lognormvariate(5, 1.6))))
            territory = territory_of(country, state, employees)
            if want_team is None or team_of(territory) == want_team:
                return country, state, employees, territory
        raise AssertionError(f"no geography for team {want_team}")  # pragma: no cover

    # ---- the chunk -----------------------------------------------------------------------
    def build(self) -> Chunk:
        cluster: list[dict] = []
        cluster_kind = ""
        cluster_left = 0
        forced = list(FORCED) if self.start == 0 else []
        for offset in range(self.count):
            index = self.start + offset
            if cluster_left > 0:
                scenario = cluster_kind + "-member"
                cluster_left -= 1
            elif forced:
                scenario = forced.pop(0)
            else:
                scenario = draw_scenario(self.rng)
            if scenario in CLUSTER_SCENARIOS:
                cluster = []
                cluster_kind = scenario
                cluster_left = 1 if scenario != "own003-split" else self.rng.choice((1, 2))
            account = self.account(index, scenario, cluster)
            if scenario.startswith(("own003", "edge-own003")):
                cluster.append(account)
                if cluster_left == 0:
                    finish_cluster(self.chunk.planted, self.counted, cluster, cluster_kind)
                    cluster = []
        if cluster:  # the chunk ended inside a cluster
            finish_cluster(self.chunk.planted, self.counted, cluster, cluster_kind)
        return self.chunk

    def account(self, index: int, scenario: str, cluster: list[Row]) -> Row:
        rng = self.rng
        leader = cluster[0] if cluster else None
        team_wanted = None
        stage = pick(rng, STAGES)
        inactive_owner: Person | None = None
        if scenario == "own002-inactive-account":
            inactive_owner = rng.choice([p for p in PEOPLE if not p.active])
            team_wanted = inactive_owner.team
            stage = {"SDR": "Lead", "AE": "Opportunity", "AM": "Customer"}[inactive_owner.role]
        elif scenario in ("own004-engagement", "edge-own004-tie", "edge-own004-se", "hnd001-stale",
                          "edge-hnd001-fresh", "edge-hnd001-worked", "hnd002-stage-role", "edge-hnd002-grace"):
            stage = "Customer"
        elif scenario in ("own006-opp-owner", "hnd003-neglected", "edge-hnd003-recent", "own002-inactive-opp"):
            stage = "Opportunity"
        elif scenario == "edge-deleted-account":
            inactive_owner = rng.choice([p for p in PEOPLE if not p.active])
            team_wanted = inactive_owner.team
        if leader is not None:
            team_wanted = leader["_team"]
            if scenario == "edge-own003-same-owner-member":
                stage = leader["lifecycle_stage"]
        if scenario in ("edge-own004-se", "own004-engagement", "edge-own004-tie", "own005-territory"):
            team_wanted = rng.choice([t.team for t in TERRITORIES])  # in a territory, with an SE
        country, state, employees, territory = self.geography(team_wanted)
        team = team_of(territory)

        roles = STAGE_OWNER_ROLES[stage]
        if scenario in ("hnd002-stage-role", "edge-hnd002-grace"):
            owner = self.person(team, ("AE",))
        elif inactive_owner is not None:
            owner = inactive_owner
        elif scenario == "own005-territory":
            other = rng.choice([t for t in [*TERRITORIES] if t.team != team]).team
            owner = self.person(other, roles)
        elif scenario == "edge-own003-same-owner-member":
            assert leader is not None  # a member scenario always follows its leader
            owner = BY_FIRST[leader["_owner_first"]]
        elif leader is not None and scenario == "own003-split-member":
            stage, roles, pool = split_member_pool(team, stage, tuple(a["owner_id"] for a in cluster))
            owner = rng.choice(pool)
        else:
            owner = self.person(team, roles)

        aid = f"001D{index:014d}"
        adj, noun, suffix = rng.choice(ADJ), rng.choice(NOUN), rng.choice(SUFFIX)
        name = f"{adj}{noun} {rng.choice(INDUSTRIES).split()[0]} {suffix}"
        slug = f"{adj}{noun}-{_base36(index)}".lower()
        domain_guess = f"{slug}.{rng.choice(TLD)}"
        website: str | None = rng.choice(
            [f"https://www.{domain_guess}", f"http://{domain_guess}/", f"www.{domain_guess}",
             f"https://{domain_guess}/en/home", domain_guess.upper()]
        )
        contact_domain = domain_guess
        if leader is not None or scenario.startswith(("own003", "edge-own003")):
            base = leader["_cluster_domain"] if leader else domain_guess
            if scenario.startswith("edge-own003-free-mail"):
                base = "gmail.com"
            website = rng.choice([f"https://www.{base}/", f"http://{base}:8080/contact", base.upper(), f"www.{base}"])
            contact_domain = base
            if leader is not None and scenario == "own003-split-member" and rng.random() < 0.5:
                website = None  # its domain comes from its contacts' e-mail addresses
        elif rng.random() < 0.06:
            website = None
        elif rng.random() < 0.01:
            website = f"https://{rng.choice(FREE_MAIL)}"  # a sole trader's free-mail "website"
            contact_domain = rng.choice(FREE_MAIL)

        created = self.ago(200, 2500)
        stage_changed = None if rng.random() < 0.05 else self.ago(20, 600)
        if scenario == "edge-hnd002-grace":
            stage_changed = self.ago(3, 10)
        account = {
            "id": aid,
            "name": name,
            "website": website,
            "domain": normalize_domain(website),
            "owner_id": owner.id,
            "parent_id": None,
            "country": country,
            "state": state,
            "employees": employees,
            "annual_revenue": float(round((employees or 10) * rng.uniform(80_000, 250_000), -3)),
            "industry": rng.choice(INDUSTRIES),
            "lifecycle_stage": stage,
            "stage_changed_at": stage_changed,
            "created_at": created,
            "updated_at": self.ago(1, 30),
            "deleted": scenario == "edge-deleted-account",
        }
        if self.accounts and rng.random() < 0.04:
            account["parent_id"] = rng.choice(self.accounts)["id"]
        self.chunk.add("account", account)
        self.chunk.scenarios[aid] = scenario
        self.accounts.append(account)
        meta = {**account, "_team": team, "_owner_first": owner.first.lower(), "_cluster_domain": contact_domain}

        # Ownership history: who owned it when, so activities can follow the owner.
        handoff_at = None
        previous: Person | None = None
        if scenario in ("hnd001-stale", "edge-hnd001-worked"):
            handoff_at = self.ago(9, 20)
        elif scenario == "edge-hnd001-fresh":
            handoff_at = self.ago(3, 5)
        elif scenario == "normal" and rng.random() < 0.2:
            handoff_at = self.ago(35, 170)
        if handoff_at is not None:
            previous = self.person(team, ("AE",) if stage == "Customer" else roles, exclude=(owner.id,), active=None)
            self.chunk.add("ownership_change", {
                "object_type": "account", "object_id": aid, "old_owner_id": previous.id,
                "new_owner_id": owner.id, "changed_at": handoff_at, "origin": "crm-history",
            })

        contacts = self.contacts(account, owner, team, scenario, contact_domain)
        opps = self.opportunities(account, owner, team, scenario)
        self.activities(account, owner, team, scenario, contacts, opps, handoff_at, previous)
        plant_account(self.chunk.planted, account, owner, scenario, contacts, opps)
        return meta

    def contacts(self, account: Row, owner: Person, team: str, scenario: str, domain: str) -> list[Row]:
        rng = self.rng
        rows = []
        deleted_account = account["deleted"]
        for k in range(rng.randint(2, 8)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if rng.random() < 0.2 and not scenario.startswith("own003-split-member"):
                email = f"{first.lower()}.{k}@{rng.choice(FREE_MAIL)}"
            else:
                email = f"{first.lower()}.{_ascii(last)}@{domain}"
            contact_owner = owner
            if scenario != "own002-inactive-account" and rng.random() < 0.1:
                contact_owner = self.person(team, ("SDR",))  # SDRs may own contacts (allowed)
            row = {
                "id": f"003D{_suffix(account['id'])}{k:04d}",
                "account_id": account["id"],
                "owner_id": contact_owner.id,
                "email": email,
                "email_domain": email_domain(email),
                "name": f"{first} {last}",
                "title": rng.choice(TITLES),
                "lifecycle_stage": account["lifecycle_stage"].lower(),
                "created_at": account["created_at"] + rng.randint(1, 100) * DAY,
                "updated_at": self.ago(1, 60),
                "deleted": deleted_account or rng.random() < 0.02,
            }
            rows.append(row)
        if scenario == "own003-split-member" and not account["website"]:
            rows[0]["deleted"] = False
            rows[0]["email"] = f"buyer@{domain}"
            rows[0]["email_domain"] = domain
        live = [r for r in rows if not r["deleted"]]
        if not live:
            rows[0]["deleted"] = deleted_account
            live = [rows[0]] if not deleted_account else []
        if scenario == "own001-contact-owner":
            target = rng.choice(live)
            target["owner_id"] = self.person(team, ("AE", "AM"), exclude=(owner.id,)).id
            # a deleted contact with a wrong owner must not be flagged
            ghost = dict(target, id=target["id"][:-4] + "9999", deleted=True)
            rows.append(ghost)
        elif scenario == "own002-inactive-contact":
            rng.choice(live)["owner_id"] = rng.choice([p for p in PEOPLE if not p.active and p.role != "SDR"]).id
        elif scenario == "own002-inactive-sdr-contact":
            rng.choice(live)["owner_id"] = rng.choice([p for p in PEOPLE if not p.active and p.role == "SDR"]).id
        for row in rows:
            self.chunk.add("contact", row)
        return rows

    def opportunities(self, account: Row, owner: Person, team: str, scenario: str) -> list[Row]:
        rng = self.rng
        stage = account["lifecycle_stage"]
        specs: list[bool] = []  # is_open per opportunity
        if stage == "Opportunity":
            specs = [True] * rng.randint(1, 2) + [False] * rng.randint(0, 2)
        elif stage == "Customer":
            specs = [False] * rng.randint(1, 3)
            if rng.random() < 0.3 and not scenario.startswith(("own004", "edge-own004", "hnd001", "edge-hnd001")):
                specs.append(True)
        elif stage == "Evangelist":
            specs = [False] * rng.randint(1, 2)
        if scenario == "own002-inactive-opp":
            specs.append(True)
        rows = []
        ses = members(team, "SE")
        for k, is_open in enumerate(specs):
            opp_owner = owner
            if is_open and ses and scenario != "own002-inactive-account" and rng.random() < 0.15:
                opp_owner = rng.choice(ses)  # SEs may own open deals (allowed)
            elif not is_open and rng.random() < 0.1:
                opp_owner = rng.choice([p for p in PEOPLE if p.role == "AE"])  # closed: never flagged
            won = (not is_open) and (stage != "Opportunity" or rng.random() < 0.3)
            created = self.ago(20, 700)
            row = {
                "id": f"006D{_suffix(account['id'])}{k:04d}",
                "account_id": account["id"],
                "owner_id": opp_owner.id,
                "name": f"{account['name']} - {'Expansion' if stage == 'Customer' else 'New Business'}",
                "stage": rng.choice(OPEN_STAGES) if is_open else ("Closed Won" if won else "Closed Lost"),
                "amount": float(rng.randrange(5_000, 500_000, 500)),
                "close_date": (self.as_of + rng.randint(-300, 120) * DAY).date() if not is_open
                else (self.as_of + rng.randint(10, 150) * DAY).date(),
                "is_closed": not is_open,
                "is_won": won,
                "created_at": created,
                "updated_at": self.ago(1, 19),
                "deleted": account["deleted"] or (rng.random() < 0.02 and not (is_open and k == 0)),
            }
            row["lead_source"] = lead_source_for(row["id"])
            rows.append(row)
        if scenario == "own002-inactive-opp":
            rows[-1]["owner_id"] = rng.choice([p for p in PEOPLE if not p.active and p.role == "AE"]).id
            rows[-1]["deleted"] = False
        elif scenario == "own006-opp-owner":
            target = next(r for r in rows if not r["is_closed"] and not r["deleted"])
            target["owner_id"] = self.person(team, ("AE",), exclude=(owner.id,)).id
        for row in rows:
            self.chunk.add("opportunity", row)
        return rows

    def activities(self, account: Row, owner: Person, team: str, scenario: str, contacts: list[Row],
                   opps: list[Row],
                   handoff_at: datetime | None, previous: Person | None) -> None:
        """About 20 activities over 180 days, by whoever owned the account at the time."""
        rng = self.rng
        aid = account["id"]
        live_opps = [o for o in opps if not o["deleted"]]
        has_open = any(not o["is_closed"] for o in live_opps)
        seq = 0
        counted = 0

        def add(owner_id: str, when: datetime, link: str = "any") -> None:
            nonlocal seq, counted
            kind = pick(rng, ACTIVITY_KINDS)
            if kind == "task":
                when = datetime(when.year, when.month, when.day)  # due date only: 00:00 UTC
            row = {
                "id": f"{'00U' if kind == 'meeting' else '00T'}D{_suffix(aid)}{seq:04d}",
                "kind": kind, "account_id": None, "contact_id": None, "opportunity_id": None,
                "owner_id": owner_id, "occurred_at": when, "status": "Completed",
                "updated_at": when, "deleted": rng.random() < 0.01 and link == "any",
            }
            seq += 1
            choice = link if link != "any" else pick(rng, ACTIVITY_LINKS)
            live = True
            if choice == "contact" and contacts:
                target = rng.choice(contacts)
                row["contact_id"] = target["id"]
                live = not target["deleted"]
            elif choice == "opportunity" and opps:
                target = rng.choice(opps)
                row["opportunity_id"] = target["id"]
                live = not target["deleted"]
            else:
                row["account_id"] = aid
            if link != "any":  # guaranteed activities must count
                row["account_id"], row["contact_id"], row["opportunity_id"] = aid, None, None
                live = True
            if live and not row["deleted"] and not account["deleted"]:
                counted += 1
            self.chunk.add("activity", row)

        # Who may log background activity, and from how many days ago it may start.
        quiet_days = 1.0  # background activity stops this many days before as_of
        if scenario in ("own004-engagement", "edge-own004-tie", "edge-own004-se", "hnd001-stale",
                        "edge-hnd001-fresh", "edge-hnd001-worked"):
            quiet_days = 32
        elif scenario == "hnd003-neglected":
            quiet_days = rng.uniform(24, 60)
        elif scenario == "edge-hnd003-recent":
            quiet_days = 17
        elif scenario == "own002-inactive-account":
            quiet_days = 5

        for _ in range(rng.randint(10, 30)):
            when = self.ago(quiet_days, 180)
            who = owner.id
            if handoff_at is not None and when < handoff_at:
                assert previous is not None  # a handoff has a previous owner
                who = previous.id
            elif handoff_at is not None and scenario != "normal":
                continue  # the new owner has done nothing since the handoff
            add(who, when)

        if handoff_at is not None and scenario == "normal":
            add(owner.id, min(handoff_at + rng.uniform(1, 10) * DAY, self.as_of - 2 * DAY), "account")
        if scenario == "edge-hnd001-worked":
            assert handoff_at is not None  # the scenario is a handoff
            add(owner.id, handoff_at + (self.as_of - handoff_at) * rng.uniform(0.2, 0.7), "account")
        if scenario == "edge-hnd003-recent":
            add(owner.id, self.ago(17, 17.5), "account")
        elif scenario == "own002-inactive-account":
            add(owner.id, self.ago(5, 15), "account")
        elif has_open and scenario != "hnd003-neglected":
            add(owner.id, self.ago(2, 18), "account")

        if scenario == "own004-engagement":
            engaged = self.person(team, ("AE",), exclude=(owner.id,))
            for _ in range(rng.randint(4, 6)):
                add(engaged.id, self.ago(2, 25), "account")
            self.plant("OWN004", "account", aid, scenario, engaged.id)
        elif scenario == "edge-own004-tie":
            engaged = self.person(team, ("AE",), exclude=(owner.id,))
            for _ in range(3):
                add(engaged.id, self.ago(2, 25), "account")
                add(owner.id, self.ago(2, 25), "account")
        elif scenario == "edge-own004-se":
            se = members(team, "SE")[0]
            for _ in range(5):
                add(se.id, self.ago(2, 25), "account")

        # SEs help on open deals; they are exempt from the engagement rule.
        ses = members(team, "SE")
        if has_open and ses and rng.random() < 0.3:
            open_opps = [o for o in live_opps if not o["is_closed"]]
            for _ in range(rng.randint(1, 4)):
                add(ses[0].id, self.ago(1, 60), "account" if not open_opps else "any")
        self.counted[aid] = counted


def _suffix(account_id: str) -> str:
    return account_id[-10:]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _ascii(text: str) -> str:
    table = str.maketrans({"ü": "u", "í": "i", "á": "a", "é": "e", "'": ""})
    return text.lower().translate(table)
