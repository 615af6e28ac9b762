"""The demo generator never draws from an empty pool, at any size or seed.

`roe demo --accounts 1000000` used to stop at about 734,000 accounts (seed 42) and 396,000 (seed 7)
with "Cannot choose from an empty sequence": a split OWN003 cluster of three accounts in the Rest
of World team (two AEs) whose first two owners were both AEs left no AE for the third. Such a
cluster comes up about once in half a million accounts, so these tests do not wait for chance:
they enumerate every input of the builder's owner pools, force split clusters on every account
of many chunks and seeds, and rebuild the two chunks that failed.
"""

from __future__ import annotations

import itertools
import random

import pytest

from connectors.demo import builder
from connectors.demo.builder import build_chunk
from connectors.demo.orgdata import STAGE_OWNER_ROLES, STAGES
from connectors.demo.roster import PEOPLE, TEAMS
from connectors.demo.scenarios import split_member_pool

from .conftest import AS_OF


def _team_people(team: str) -> list:
    return [p for p in PEOPLE if p.team == team and p.role not in ("MGR", "EXEC")]


def test_every_further_account_of_a_split_cluster_has_an_owner_in_every_team_stage_and_cluster():
    for team in TEAMS:
        people = _team_people(team)
        for stage in STAGES:
            # taken: the leader's owner, then the owners of up to two members before this one
            for size in (1, 2, 3):
                for taken in itertools.product(people, repeat=size):
                    ids = tuple(p.id for p in taken)
                    new_stage, roles, pool = split_member_pool(team, stage, ids)
                    assert pool, (team, stage, [p.first for p in taken])
                    assert all(p.active and p.team == team and p.role in roles for p in pool)
                    assert roles == STAGE_OWNER_ROLES[new_stage]
                    assert ids[0] not in {p.id for p in pool}  # the domain stays split


# Every (roles, exclude one person) the builder asks ``person`` for, active and any.
_PERSON_ROLES = [*STAGE_OWNER_ROLES.values(), ("AE",), ("SDR",), ("AE", "AM")]


def test_every_person_the_builder_asks_for_exists_in_every_team_whoever_is_excluded():
    b = builder._Builder(random.Random(0), AS_OF, 0, 0)
    for team in TEAMS:
        for roles, active in itertools.product(_PERSON_ROLES, (True, None)):
            for excluded in [None, *_team_people(team)]:
                exclude = (excluded.id,) if excluded else ()
                chosen = b.person(team, roles, exclude=exclude, active=active)
                assert chosen.team == team and chosen.id not in exclude


@pytest.mark.parametrize("seed", range(16))
def test_chunks_made_only_of_split_clusters_build_for_many_seeds_and_starts(monkeypatch, seed):
    monkeypatch.setattr(builder, "draw_scenario", lambda rng: "own003-split")
    for start in (1000, 250_000, 733_000, 999_000):
        chunk = build_chunk(seed, AS_OF, start, 400)
        assert len(chunk.rows["account"]) == 400
        ids = {a["id"] for a in chunk.rows["account"]}
        assert all(p["object_id"] in ids for p in chunk.planted if p["object_type"] == "account")


@pytest.mark.parametrize(("seed", "start"), [(42, 734_000), (7, 396_000)])
def test_the_chunks_that_stopped_a_million_account_demo_build(seed, start):
    chunk = build_chunk(seed, AS_OF, start, 1000)
    assert len(chunk.rows["account"]) == 1000
    assert any(p["rule"] == "OWN003" for p in chunk.planted)
