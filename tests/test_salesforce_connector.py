"""The Salesforce connector against the local emulator: the real simple-salesforce over real HTTPS.

What a correct connector must do: mirror the org exactly as the demo loader would, at the minimum
number of API calls; pick up edits, deletes and owner changes incrementally; lose nothing when a
sync dies half-way; retry what is worth retrying and stop cleanly at the org's limits; read and
write owners in Salesforce's batch calls, one result per record, in order.
"""
# The sf_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import math
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from connectors.base import Connector, OwnerChange
from connectors.salesforce import connect
from connectors.salesforce.client import QuotaGuardError
from connectors.salesforce.settings import SalesforceSettings
from roe_cli.demo import load_demo_org
from roe_cli.models import (
    accounts,
    activities,
    contacts,
    opportunities,
    owners,
    ownership_changes,
    sync_state,
)
from roe_cli.shared.errors import CrmError
from roe_cli.sync import sync
from tests.conftest import AS_OF
from tests.emulators.salesforce import sf_emulator  # noqa: F401

SOBJECTS = ("User", "Account", "AccountTeamMember", "Contact", "Opportunity", "Event", "Task",
            "AccountHistory")
TABLES = {"owner": owners, "account": accounts, "contact": contacts, "opportunity": opportunities,
          "activity": activities}


def connector(**overrides):
    """The connector as `roe sync` builds it, with test-sized waits."""
    settings = {"backoff_seconds": 0.0, "bulk_poll_seconds": 0.01, **overrides}
    return connect(settings=SalesforceSettings(**settings))


def snapshot(engine, source: str) -> dict[str, set[tuple]]:
    """Every mirror row of ``source``, all columns but the source (and the history row's serial)."""
    out: dict[str, set[tuple]] = {}
    with engine.connect() as conn:
        for name, table in TABLES.items():
            cols = [c for c in table.c if c.name != "source"]
            rows = set()
            for row in conn.execute(select(*cols).where(table.c.source == source)).mappings():
                row = {k: _seconds(v) for k, v in row.items()}
                if name == "activity" and row["kind"] == "meeting":
                    row["status"] = None  # Salesforce events have no status; the demo says Completed
                rows.add(tuple(sorted(row.items())))
            out[name] = rows
        cols = [c for c in ownership_changes.c if c.name not in ("id", "source")]
        out["ownership_change"] = {
            tuple(map(_seconds, r)) for r in conn.execute(select(*cols).where(ownership_changes.c.source == source))
        }
    return out


def _seconds(value):
    """Salesforce keeps whole seconds; the demo generator sometimes has microseconds."""
    return value.replace(microsecond=0) if isinstance(value, datetime) else value


def minimum_calls(org) -> dict[str, int]:
    """One call per 2,000 records of each sObject (owner history: its Owner rows)."""
    minimum = {s: max(1, math.ceil(org.count(s) / 2000)) for s in SOBJECTS}
    owner_rows = sum(1 for r in org.records["AccountHistory"].values() if r["Field"] == "Owner")
    minimum["AccountHistory"] = max(1, math.ceil(owner_rows / 2000))
    return minimum


def watermark(engine, object_type: str):
    with engine.connect() as conn:
        return conn.execute(
            select(sync_state.c.watermark).where(sync_state.c.source == "salesforce",
                                                 sync_state.c.object == object_type)
        ).scalar_one_or_none()


def test_full_sync_mirrors_the_org_exactly_as_the_demo_loader_does(sf_emulator, engine):
    org = sf_emulator.org
    sf = connector(contact_lifecycle_stage_field="Lifecycle_Stage__c")
    assert isinstance(sf, Connector) and sf.write_batch_size == 200

    report = sync(engine, sf, full=True)
    load_demo_org(engine, accounts=120, seed=42, as_of=AS_OF)

    got, want = snapshot(engine, "salesforce"), snapshot(engine, "demo")
    for name in want:
        assert got[name] == want[name], name
    assert report.objects["contact"].inserted == org.count("Contact")
    assert report.objects["activity"].inserted == org.count("Task") + org.count("Event")
    assert sf_emulator.writes() == []  # a sync never writes to the CRM
    minimum = minimum_calls(org)
    assert dict(sf_emulator.calls_by_sobject()) == minimum
    assert report.api_calls == sum(minimum.values())
    share = f"{org.api_used / 15_000:.1%}"
    assert sf.api_usage_text() == f"{org.api_used:,} of 15,000 requests in the last 24 hours ({share})"


def test_an_unchanged_org_costs_one_call_per_sobject(sf_emulator, engine):
    sync(engine, connector(), full=True)
    sf_emulator.clear_log()
    report = sync(engine, connector())
    assert dict(sf_emulator.calls_by_sobject()) == {s: 1 for s in SOBJECTS}
    assert all(o.inserted == 0 and o.deleted == 0 for o in report.objects.values())
    # each query asks only for what changed since the watermark, minus the overlap
    contact_query = next(r.soql for r in sf_emulator.requests if r.sobject == "Contact")
    since = (watermark(engine, "contact") - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"SystemModstamp >= {since}" in contact_query
    assert all("/queryAll/" in r.path for r in sf_emulator.requests
               if r.sobject not in ("User", "AccountHistory"))


def test_edits_deletes_and_owner_changes_reach_the_next_incremental_sync(sf_emulator, engine):
    org = sf_emulator.org
    sync(engine, connector(), full=True)
    with engine.connect() as conn:
        live = conn.execute(select(accounts.c.id, accounts.c.owner_id).where(
            accounts.c.deleted.is_(False)).order_by(accounts.c.id)).all()
        contact_id = conn.execute(select(contacts.c.id).where(contacts.c.deleted.is_(False))
                                  .order_by(contacts.c.id)).scalars().first()
    moved, renamed, restaged = live[10], live[11], live[12]
    new_owner = next(u["Id"] for u in org.records["User"].values()
                     if u["IsActive"] and u["Id"] != moved.owner_id)
    org.set_owner("account", moved.id, new_owner)
    org.update("Account", renamed.id, Name="Renamed Corp", Website="https://WWW.Renamed.example:443/x")
    stage = "Lead" if org.get("Account", restaged.id)["Type"] != "Lead" else "Customer"
    org.update("Account", restaged.id, Type=stage)
    restaged_at = org.now()
    org.delete("Contact", contact_id)
    task_id = next(iter(org.records["Task"]))
    org.update("Task", task_id, Status="Deferred")
    opp_id = org.create("Opportunity", AccountId=renamed.id, OwnerId=renamed.owner_id, Name="Late deal",
                        StageName="Prospecting", IsClosed=False, IsWon=False, CloseDate=AS_OF.date())

    report = sync(engine, connector())

    with engine.connect() as conn:
        def one(table, record_id):
            return conn.execute(select(table).where(table.c.source == "salesforce",
                                                    table.c.id == record_id)).mappings().one()

        assert one(accounts, moved.id)["owner_id"] == new_owner
        assert one(accounts, renamed.id)["domain"] == "renamed.example"
        assert one(accounts, restaged.id)["lifecycle_stage"] == stage
        assert one(accounts, restaged.id)["stage_changed_at"] == restaged_at
        assert one(contacts, contact_id)["deleted"] is True
        assert one(activities, task_id)["status"] == "Deferred"
        assert one(opportunities, opp_id)["name"] == "Late deal"
        changes = conn.execute(select(ownership_changes).where(
            ownership_changes.c.object_id == moved.id)).mappings().all()
    # AccountHistory's id row (not its name row) and the owner difference the sync observed
    assert sorted((c["origin"], c["old_owner_id"], c["new_owner_id"]) for c in changes) == [
        ("crm-history", moved.owner_id, new_owner), ("observed", moved.owner_id, new_owner)]
    assert report.objects["contact"].deleted == 1
    assert report.objects["opportunity"].inserted == 1
    assert report.objects["account"].owner_changes == 1
    assert report.objects["ownership_change"].inserted == 1


def test_a_full_sync_reconciles_records_emptied_from_the_recycle_bin(sf_emulator, engine):
    org = sf_emulator.org
    sync(engine, connector(), full=True)
    purged = next(r["Id"] for r in org.records["Opportunity"].values() if not r["IsDeleted"])
    org.purge("Opportunity", purged)  # gone even for queryAll: no IsDeleted row will ever come

    def deleted() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(opportunities.c.deleted).where(opportunities.c.id == purged)).scalar()

    sync(engine, connector())
    assert deleted() is False  # an incremental sync cannot know
    report = sync(engine, connector(), full=True)
    assert deleted() is True and report.objects["opportunity"].deleted >= 1


def test_pages_come_in_cursor_order_with_the_mirror_s_column_names(sf_emulator, engine):
    sf = connector(page_size=200)
    pages = list(sf.pull("contact", None, True))
    assert len(pages) > 2 and all(len(p.rows) <= 200 for p in pages)
    marks = [p.watermark for p in pages]
    assert marks == sorted(marks) and all(isinstance(m, datetime) and m.tzinfo is None for m in marks)
    for page in pages:
        assert page.watermark == max(r["updated_at"] for r in page.rows)  # LastModifiedDate = SystemModstamp here
        for row in page.rows:
            assert set(row) <= {c.name for c in contacts.c} - {"source"}

    # Activities come from Event then Task under one watermark: only Task's ordered pages move it,
    # and the Task query is bounded by the server's time at the pull's first answer.
    sf_emulator.clear_log()
    pages = list(sf.pull("activity", None, True))
    kinds = [{r["kind"] == "meeting" for r in p.rows} for p in pages if p.rows]
    first_task = next(i for i, k in enumerate(kinds) if k == {False})
    assert all(p.watermark is None for p in pages[:first_task])
    assert all(p.watermark is not None for p in pages[first_task:])
    task_query = next(r.soql for r in sf_emulator.requests if r.sobject == "Task")
    horizon = sf_emulator.org.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"SystemModstamp <= {horizon}" in task_query and "ORDER BY SystemModstamp ASC, Id ASC" in task_query


@pytest.mark.parametrize("sf_emulator", [{"accounts": 210, "seed": 5}], indirect=True)
def test_large_pulls_continue_with_bulk_api_2_and_give_the_same_mirror(sf_emulator, engine, tmp_path):
    from roe_cli.db import open_database

    rest_engine = open_database(f"sqlite:///{tmp_path / 'rest.db'}")
    sync(rest_engine, connector(page_size=200), full=True)
    rest_calls = sf_emulator.calls_by_sobject()
    sf_emulator.clear_log()

    report = sync(engine, connector(page_size=200, bulk_threshold=100, bulk_page_size=400), full=True)

    # stage_changed_at included: Bulk API 2.0 has no subqueries, so it comes from a stage-history job
    assert snapshot(engine, "salesforce") == snapshot(rest_engine, "salesforce")
    bulk_calls = sf_emulator.calls_by_sobject()
    jobs = [r for r in sf_emulator.requests if r.method == "POST" and r.path.endswith("/jobs/query")]
    assert {"Account", "Contact", "Opportunity", "Task", "Event"} <= {r.sobject for r in jobs}
    stage_jobs = [r for r in jobs if r.sobject == "AccountHistory" and "Field = 'Type'" in r.soql]
    assert len(stage_jobs) == 1
    for job in jobs:
        assert "ORDER BY" not in job.soql and "SELECT" in job.soql
        if job not in stage_jobs:  # the stage history is read whole
            assert "Id > '" in job.soql  # continues after the REST page's last record
    assert bulk_calls["Task"] < rest_calls["Task"]
    assert report.objects["contact"].read == sf_emulator.org.count("Contact")  # no record twice
    assert sf_emulator.writes() == []
    # unordered bulk pages move no watermark; the final page does, once all is committed
    assert watermark(engine, "task") is None
    assert watermark(engine, "activity") == watermark(rest_engine, "activity")


def test_a_sync_that_dies_half_way_loses_nothing_and_resumes(sf_emulator, engine):
    # The second Contact page fails on every attempt: the sync stops with exit code 3.
    sf_emulator.fail(status=500, path="/queryAll/01g", soql="FROM Contact", times=2)
    with pytest.raises(CrmError) as err:
        sync(engine, connector(page_size=200, retries=1), full=True)
    assert err.value.exit_code == 3 and "HTTP 500" in err.value.what and "after 2 attempts" in err.value.what
    with engine.connect() as conn:
        kept = conn.execute(select(contacts.c.updated_at).where(contacts.c.source == "salesforce")).scalars().all()
        assert conn.execute(select(accounts.c.id)).all()  # the objects before it are complete
    assert len(kept) == 200  # the first page, committed
    assert watermark(engine, "contact") == max(kept)

    sync(engine, connector(page_size=200))  # the next run resumes from the watermark

    load_demo_org(engine, accounts=120, seed=42, as_of=AS_OF)
    got, want = snapshot(engine, "salesforce"), snapshot(engine, "demo")
    for name in want:
        if name == "contact":  # lifecycle_stage is not read without contact_lifecycle_stage_field
            want[name] = {tuple((k, None if k == "lifecycle_stage" else v) for k, v in row) for row in want[name]}
        assert got[name] == want[name], name


def test_5xx_answers_and_timeouts_are_retried(sf_emulator, engine):
    sf_emulator.fail(status=503, soql="FROM Account", times=1)
    sf_emulator.fail(status=0, delay=0.6, soql="FROM Opportunity", times=1)  # answers too late
    sf = connector(timeout_seconds=0.3, retries=2)
    report = sync(engine, sf, full=True)
    assert report.objects["account"].read == 120
    assert report.objects["opportunity"].read == sf_emulator.org.count("Opportunity")
    assert len([r for r in sf_emulator.requests if r.sobject == "Account"]) == 2
    assert len([r for r in sf_emulator.requests if r.sobject == "Opportunity"]) == 2
    assert report.api_calls == sum(minimum_calls(sf_emulator.org).values()) + 2


def test_request_limit_exceeded_stops_cleanly_and_keeps_what_was_committed(sf_emulator, engine):
    sf_emulator.fail(status=403, soql="FROM Contact", times=5, body=[
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    with pytest.raises(CrmError) as err:
        sync(engine, connector(), full=True)
    assert err.value.exit_code == 3
    assert "REQUEST_LIMIT_EXCEEDED" in err.value.what and "kept" in err.value.todo
    assert len([r for r in sf_emulator.requests if r.sobject == "Contact"]) == 1  # never retried
    with engine.connect() as conn:
        assert len(conn.execute(select(accounts.c.id)).all()) == 120
        assert not conn.execute(select(contacts.c.id)).all()
    assert watermark(engine, "account") is not None and watermark(engine, "contact") is None


def test_the_quota_guard_stops_before_the_org_runs_dry(sf_emulator, engine):
    org = sf_emulator.org
    org.api_limit, org.api_used = 10_000, 8_995  # the fifth call brings usage to 90%
    with pytest.raises(QuotaGuardError) as err:
        sync(engine, connector(max_api_usage_percent=90), full=True)
    assert err.value.exit_code == 3
    assert "9,000 of its 10,000" in err.value.what and "max_api_usage_percent" in err.value.what
    assert org.api_used == 9_000 and len(sf_emulator.requests) == 5
    # Event pages went into the mirror but, Task still unread, the activity watermark stayed put.
    assert watermark(engine, "opportunity") is not None and watermark(engine, "activity") is None

    org.api_used = 0
    sync(engine, connector(max_api_usage_percent=90))
    with engine.connect() as conn:
        assert len(conn.execute(select(activities.c.id)).all()) == org.count("Task") + org.count("Event")


def test_a_misnamed_field_setting_says_which_setting_to_fix(sf_emulator, engine):
    with pytest.raises(CrmError) as err:
        list(connector(lifecycle_stage_field="Lifecycle_Stage__c").pull("account", None, True))
    assert "INVALID_FIELD" in err.value.what and "Lifecycle_Stage__c" in err.value.what
    assert "lifecycle_stage_field" in err.value.todo


def test_read_owners_batches_ids_into_short_queries(sf_emulator):
    org = sf_emulator.org
    live = [r for r in org.records["Contact"].values() if not r["IsDeleted"]][:650]
    gone = next(r for r in org.records["Contact"].values() if r["IsDeleted"])
    new = org.create("Contact", AccountId=live[0]["AccountId"], OwnerId=live[0]["OwnerId"], LastName="New")
    ids = [r["Id"] for r in live] + [gone["Id"], "003E00000000999AAA", "not-an-id'; DROP"]
    ids.append(new[:15])  # a 15-character id is answered under itself

    owners_now = connector(read_batch_size=300).read_owners("contact", ids)

    assert owners_now == {r["Id"]: r["OwnerId"] for r in live} | {new[:15]: live[0]["OwnerId"]}
    queries = sf_emulator.calls("GET", "/query")
    assert len(queries) == math.ceil((len(live) + 3) / 300) >= 2  # well-formed ids, 300 a query
    assert all("/queryAll/" not in q.path for q in queries)  # deleted records are not current
    # Salesforce answers 414 past about 16 KB of URI; 300 ids stay near half of that
    assert max(len(urlencode({"q": q.soql})) for q in queries) < 10_000


def test_update_owners_uses_collections_and_reports_each_record_in_order(sf_emulator):
    org = sf_emulator.org
    users = list(org.records["User"].values())
    active = [u["Id"] for u in users if u["IsActive"]]
    inactive = next(u["Id"] for u in users if not u["IsActive"])
    accts = [r for r in org.records["Account"].values() if not r["IsDeleted"]]
    deleted = next(r["Id"] for r in org.records["Account"].values() if r["IsDeleted"])
    org.refuse_updates(accts[3]["Id"])
    changes = [
        OwnerChange("account", accts[0]["Id"], active[1]),
        OwnerChange("account", accts[1]["Id"], inactive),
        OwnerChange("account", deleted, active[2]),
        OwnerChange("account", "bad id", active[2]),
        OwnerChange("account", accts[3]["Id"], active[3]),
        OwnerChange("account", accts[2]["Id"], active[4]),
    ]
    history_before = len(org.records["AccountHistory"])

    results = connector().update_owners("account", changes)

    assert [(r.object_id, r.ok) for r in results] == [
        (accts[0]["Id"], True), (accts[1]["Id"], False), (deleted, False), ("bad id", False),
        (accts[3]["Id"], False), (accts[2]["Id"], True)]
    assert "INACTIVE_OWNER_OR_USER" in results[1].error and "ENTITY_IS_DELETED" in results[2].error
    assert "UNABLE_TO_LOCK_ROW" in results[4].error and results[0].error is None
    assert org.owner_of("account", accts[0]["Id"]) == active[1]
    assert org.owner_of("account", accts[2]["Id"]) == active[4]
    assert org.owner_of("account", accts[1]["Id"]) == accts[1]["OwnerId"]
    assert len(org.records["AccountHistory"]) == history_before + 4  # an id row and a name row each
    (call,) = sf_emulator.writes()
    assert call.method == "PATCH" and call.path.endswith("/composite/sobjects")
    assert '"allOrNone": false' in call.body and call.body.count('"OwnerId"') == 5


def test_update_owners_sends_200_records_a_call(sf_emulator):
    org = sf_emulator.org
    owner = next(u["Id"] for u in org.records["User"].values() if u["IsActive"])
    targets = [r["Id"] for r in org.records["Contact"].values() if not r["IsDeleted"]][:450]
    results = connector().update_owners("contact", [OwnerChange("contact", i, owner) for i in targets])
    assert all(r.ok for r in results) and [r.object_id for r in results] == targets
    assert [c.body.count('"OwnerId"') for c in sf_emulator.writes()] == [200, 200, 50]
    assert all(org.owner_of("contact", i) == owner for i in targets)


def test_large_owner_updates_go_through_one_bulk_ingest_job(sf_emulator):
    org = sf_emulator.org
    users = list(org.records["User"].values())
    owner = next(u["Id"] for u in users if u["IsActive"])
    inactive = next(u["Id"] for u in users if not u["IsActive"])
    targets = [r["Id"] for r in org.records["Opportunity"].values() if not r["IsDeleted"]][:30]
    changes = [OwnerChange("opportunity", i, inactive if n % 10 == 3 else owner) for n, i in enumerate(targets)]

    results = connector(bulk_write_threshold=20).update_owners("opportunity", changes)

    assert [r.object_id for r in results] == targets
    assert [r.ok for r in results] == [n % 10 != 3 for n in range(30)]
    assert all("INACTIVE_OWNER_OR_USER" in r.error for r in results if not r.ok)
    assert all(org.owner_of("opportunity", c.object_id) == owner for c in changes if c.new_owner_id == owner)
    writes = sf_emulator.writes()
    assert [w.method for w in writes] == ["POST", "PUT", "PATCH"]  # create, upload, close: one job
    assert all("/jobs/ingest" in w.path for w in writes)
