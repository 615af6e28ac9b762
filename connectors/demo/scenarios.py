"""The demo org's planted scenarios: which rule breaks (and near misses) it plants, how often,
and what a correct audit must report for each.

Each scenario shapes one account (or a cluster of accounts sharing a domain, for OWN003) in
``connectors.demo.builder``; the functions here write down the findings it planted, as
``{rule, object_type, object_id, related_user_id, scenario}`` rows, exactly what an audit of the
org with the shipped ``rules.toml`` must report, no more and no less.
"""

from __future__ import annotations

import random
from typing import Any

from .orgdata import STAGE_OWNER_ROLES
from .roster import PEOPLE, Person, members

Row = dict[str, Any]


# Probability per account of each planted scenario; edges are rarer. Tiny orgs get one of each
# from FORCED, in order, so even `roe demo --accounts 40` breaks every rule.
SCENARIOS: dict[str, float] = {
    "own001-contact-owner": 0.006,
    "own002-inactive-account": 0.004,
    "own002-inactive-contact": 0.004,
    "own002-inactive-sdr-contact": 0.003,
    "own002-inactive-opp": 0.004,
    "own003-split": 0.004,
    "own004-engagement": 0.005,
    "own005-territory": 0.006,
    "own006-opp-owner": 0.006,
    "hnd001-stale": 0.005,
    "hnd002-stage-role": 0.006,
    "hnd003-neglected": 0.006,
    # edges: must not be flagged
    "edge-own003-same-owner": 0.002,
    "edge-own003-free-mail": 0.001,
    "edge-own004-tie": 0.002,
    "edge-own004-se": 0.002,
    "edge-hnd001-fresh": 0.002,
    "edge-hnd001-worked": 0.002,
    "edge-hnd002-grace": 0.002,
    "edge-hnd003-recent": 0.002,
    "edge-deleted-account": 0.002,
}
# Clusters last, so every other scenario has a fixed account index in every org (the shipped
# rules.toml waives the OWN005 one, account 001D00000000000006).
FORCED = [s for s in SCENARIOS if "own003" not in s] + [s for s in SCENARIOS if "own003" in s]
# Scenarios that start a cluster of accounts sharing one domain (OWN003 and its edges).
CLUSTER_SCENARIOS = ("own003-split", "edge-own003-same-owner", "edge-own003-free-mail")

BY_ID = {p.id: p for p in PEOPLE}


def draw_scenario(rng: random.Random) -> str:
    """A scenario drawn with the probabilities of :data:`SCENARIOS`; ``normal`` for the rest."""
    r = rng.random()
    for name, p in SCENARIOS.items():
        if r < p:
            return name
        r -= p
    return "normal"


def split_member_pool(team: str, stage: str, taken: tuple[str, ...]) -> tuple[str, tuple[str, ...], list[Person]]:
    """Who may own a further account of a split OWN003 cluster, and at which stage.

    ``taken`` holds the owners of the cluster so far, its leader's first. Preferred: someone of
    the stage's roles who owns none of them; else the account becomes an AE's deal owned by an AE
    who owns none of them. A cluster of three in a team with two AEs (Rest of World) can have
    taken both, so last comes any AE but the leader's owner: the domain is still split, and
    ``finish_cluster`` plants whatever owners it ends up with. Never empty: every team has two
    active AEs (``tests/test_demo_pools.py`` checks every team, stage and ``taken``).
    """
    roles = STAGE_OWNER_ROLES[stage]
    pool = [p for role in roles for p in members(team, role) if p.id not in taken]
    if pool:
        return stage, roles, pool
    stage, roles = "Opportunity", ("AE",)
    pool = [p for p in members(team, "AE") if p.id not in taken]
    if not pool:
        pool = [p for p in members(team, "AE") if p.id != taken[0]]
    return stage, roles, pool


def plant(planted: list[Row], rule: str, object_type: str, object_id: str, scenario: str,
          related: str = "") -> None:
    planted.append(
        {"rule": rule, "object_type": object_type, "object_id": object_id,
         "related_user_id": related, "scenario": scenario}
    )


def plant_account(planted: list[Row], account: Row, owner: Person, scenario: str, contacts: list[Row],
                  opps: list[Row]) -> None:
    """Record the findings a correct audit must report for ``account``'s scenario."""
    aid = account["id"]
    if scenario == "own001-contact-owner":
        for c in contacts:
            if not c["deleted"] and c["owner_id"] != owner.id and BY_ID[c["owner_id"]].role != "SDR":
                plant(planted, "OWN001", "contact", c["id"], scenario)
    elif scenario == "own002-inactive-account":
        plant(planted, "OWN002", "account", aid, scenario)
        for c in contacts:
            if not c["deleted"] and c["owner_id"] == owner.id:
                plant(planted, "OWN002", "contact", c["id"], scenario)
        for o in opps:
            if not o["deleted"] and not o["is_closed"] and o["owner_id"] == owner.id:
                plant(planted, "OWN002", "opportunity", o["id"], scenario)
    elif scenario in ("own002-inactive-contact", "own002-inactive-sdr-contact"):
        for c in contacts:
            if not c["deleted"] and not BY_ID[c["owner_id"]].active:
                plant(planted, "OWN002", "contact", c["id"], scenario)
                if BY_ID[c["owner_id"]].role != "SDR":
                    plant(planted, "OWN001", "contact", c["id"], scenario)
    elif scenario == "own002-inactive-opp":
        for o in opps:
            if not o["deleted"] and not o["is_closed"] and not BY_ID[o["owner_id"]].active:
                plant(planted, "OWN002", "opportunity", o["id"], scenario)
                plant(planted, "OWN006", "opportunity", o["id"], scenario)
    elif scenario == "own005-territory":
        plant(planted, "OWN005", "account", aid, scenario)
    elif scenario == "own006-opp-owner":
        for o in opps:
            if (not o["deleted"] and not o["is_closed"] and o["owner_id"] != owner.id
                    and BY_ID[o["owner_id"]].role != "SE"):
                plant(planted, "OWN006", "opportunity", o["id"], scenario)
    elif scenario == "hnd001-stale":
        plant(planted, "HND001", "account", aid, scenario)
    elif scenario == "hnd002-stage-role":
        plant(planted, "HND002", "account", aid, scenario)
    elif scenario == "hnd003-neglected":
        plant(planted, "HND003", "account", aid, scenario)

def finish_cluster(planted: list[Row], counted: dict[str, int], cluster: list[Row], kind: str) -> None:
    """Plant OWN003 for the accounts of a split domain not owned by the preferred owner."""
    if kind != "own003-split":
        return
    # most_active: the most activities in the last 365 days (the org has 180), ties to the
    # earliest created account, then the lowest id.
    preferred = min(cluster, key=lambda a: (-counted[a["id"]], a["created_at"], a["id"]))
    if len({a["owner_id"] for a in cluster}) < 2:
        return
    for a in cluster:
        if a["owner_id"] != preferred["owner_id"]:
            plant(planted, "OWN003", "account", a["id"], kind)

