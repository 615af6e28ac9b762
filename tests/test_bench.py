"""`make bench` (benchmarks/): its orgs, its steps and bench/results.json, at tiny sizes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as bench
from benchmarks import audit_bench, orgs
from benchmarks.audit_floor import digest, roe_digests, run_floor
from benchmarks.ingest import measure
from roe_cli.audit import run_audit
from roe_cli.db import open_database
from roe_cli.demo import load_demo_org
from roe_cli.rulecases import load_case_file
from roe_cli.rulesfile import load_rules

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules.toml"
TABLES = ("accounts", "contacts", "opportunities", "activities", "ownership_changes",
          "account_team_members")


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE source='demo'").fetchone()[0]
                for t in TABLES}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "demo.db"
    engine = open_database(f"sqlite:///{path}")
    load_demo_org(engine, 200, 42)
    engine.dispose()
    return path


def test_an_org_tiled_three_times_has_three_times_every_table_and_roe_agrees_with_its_floor_on_it(
        demo_db, tmp_path):
    db = tmp_path / "tiled.db"
    db.write_bytes(demo_db.read_bytes())
    once = counts(db)
    orgs.tile(db, 3, 600)
    assert counts(db) == {t: 3 * n for t, n in once.items()}
    assert audit_bench.demo_in(db)["loaded"] == 600 == audit_bench.demo_in(db)["accounts"]
    conn = sqlite3.connect(db)
    dangling = conn.execute(  # every copied contact points at an account of its own copy
        "SELECT count(*) FROM contacts c LEFT JOIN accounts a ON a.source=c.source AND a.id=c.account_id "
        "WHERE c.account_id IS NOT NULL AND a.id IS NULL").fetchone()[0]
    team_dangling = conn.execute(  # every copied team row is on an account of its own copy
        "SELECT count(*) FROM account_team_members t LEFT JOIN accounts a ON a.source=t.source "
        "AND a.id=t.account_id WHERE a.id IS NULL").fetchone()[0]
    referrals = conn.execute("SELECT count(*) FROM opportunities WHERE lead_source IS NOT NULL").fetchone()[0]
    conn.close()
    assert dangling == 0 and team_dangling == 0
    assert once["account_team_members"] > 0
    src = sqlite3.connect(demo_db)
    assert referrals == 3 * src.execute(
        "SELECT count(*) FROM opportunities WHERE lead_source IS NOT NULL").fetchone()[0] > 0
    src.close()

    config = load_rules(RULES)
    as_of = audit_bench.demo_in(db)["as_of"]
    from roe_cli.shared.clock import parse_as_of

    floor = run_floor(db, config, parse_as_of(as_of), with_digests=True)
    engine = open_database(f"sqlite:///{db}")
    result = run_audit(engine, config, parse_as_of(as_of))
    stored = roe_digests(engine, result.run_id)
    engine.dispose()
    assert {c: stored.get(c, digest([])) for c in result.rules} == floor.digests
    assert sum(floor.counts.values()) > 0


def test_the_skewed_org_has_one_crowded_account_one_busy_owner_one_shared_domain_and_one_busy_day(
        demo_db, tmp_path):
    skewed = tmp_path / "skewed.db"
    src = sqlite3.connect(demo_db)
    big = src.execute("SELECT id FROM accounts WHERE source='demo' AND deleted=0 ORDER BY id LIMIT 1").fetchone()[0]
    own = src.execute("SELECT count(*) FROM contacts WHERE deleted=0 AND account_id=?", (big,)).fetchone()[0]
    others = src.execute("SELECT count(*) FROM contacts WHERE deleted=0 AND account_id!=?", (big,)).fetchone()[0]
    live_accounts = src.execute("SELECT count(*) FROM accounts WHERE deleted=0").fetchone()[0]
    src.close()

    moved = orgs.skew(demo_db, skewed)

    conn = sqlite3.connect(skewed)
    q = lambda sql, *a: conn.execute(sql, a).fetchone()[0]  # noqa: E731
    assert moved["big_account_contacts_moved"] == min(50_000, others)
    assert q("SELECT count(*) FROM contacts WHERE deleted=0 AND account_id=?", big) == own + min(50_000, others)
    assert q("SELECT count(*) FROM activities GROUP BY owner_id ORDER BY 1 DESC LIMIT 1") >= moved["activities"] // 2
    assert q("SELECT count(*) FROM accounts WHERE domain='shared-by-many.example'") == min(5000, live_accounts)
    assert q("SELECT count(*) FROM activities GROUP BY date(occurred_at) ORDER BY 1 DESC LIMIT 1") \
        >= int(0.6 * moved["activities"])
    conn.close()
    assert counts(skewed) == counts(demo_db)  # moved, never added or removed


def test_ingest_writes_the_same_rows_through_write_page_and_raw_executemany_and_gives_their_ratio():
    result = measure(100, 42)
    from connectors.demo.generator import default_as_of, generate

    generated = sum(len(rows) for chunk in generate(100, 42, default_as_of()) for rows in chunk.rows.values())
    assert result["records"] == generated
    f = result["sqlite"]
    assert f["roe_records_per_second"] > 0 and f["raw_records_per_second"] > 0
    assert f["ratio"] == pytest.approx(f["roe_records_per_second"] / f["raw_records_per_second"], rel=0.01)
    assert f["met"] == (f["ratio"] >= 0.5)


def test_bench_sizes_that_are_not_numbers_stop_the_bench_with_a_message_saying_what_to_give():
    proc = subprocess.run([sys.executable, "-m", "benchmarks"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "BENCH_SIZES": "10k,lots"})
    assert proc.returncode != 0
    assert "is not a list of account counts" in proc.stderr and "10000,100000" in proc.stderr


def test_a_run_where_roe_and_the_floor_disagree_on_a_rule_exits_non_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    real = audit_bench.run_child

    def lying_floor(kind, *args):
        data, wall, rss = real(kind, *args)
        if kind == "floor":
            data["digests"]["OWN001"] = digest([("not", "the", "same")])
        return data, wall, rss

    monkeypatch.setattr(audit_bench, "run_child", lying_floor)
    status = bench.main(["--sizes", "120", "--runs", "1", "--only", "audit",
                         "--results", str(tmp_path / "results.json")])
    assert status == 1
    assert json.loads((tmp_path / "results.json").read_text())["agree"] is False


def test_the_bench_at_two_small_sizes_writes_every_figure_to_results_json(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--runs", "1", "--skip", "api", "--results", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "BENCH_SIZES": "150,300", "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["sizes"] == [150, 300] and r["agree"] is True
    assert {"cores", "ram_gib", "cpu", "python", "sqlite", "sqlalchemy"} <= set(r["machine"])
    for size in ("150", "300"):
        audit = r["audit"][size]
        assert audit["org"]["accounts"] == int(size)
        assert set(audit["rules"]) >= {"OWN001", "OWN003", "HND001"}
        assert all({"floor_seconds", "roe_seconds", "findings"} <= set(v) for v in audit["rules"].values())
        assert audit["roe_peak_rss_mib"] > 0 and audit["floor_seconds"] > 0
        assert r["orgs"][size]["demo"]["counts"]["account"] == int(size)
    assert r["growth"][0]["from"] == 150 and "roe_per_tenfold" in r["growth"][0]
    assert r["skew"]["accounts"] == 300 and r["skew"]["per_record_ratio"] > 0
    assert r["ingest"]["sqlite"]["ratio"] > 0
    conn = sqlite3.connect(tmp_path / "roe-bench" / "demo-300-seed42.db")
    stored = conn.execute("SELECT count(*) FROM findings WHERE status != 'resolved'").fetchone()[0]
    conn.close()
    assert r["export"]["findings"] >= stored > 0
    assert r["export"]["csv"]["bytes"] > 0 and r["export"]["parquet"]["bytes"] > 0
    assert r["export"]["report_html"]["bytes"] > 0 and r["export"]["report_html"]["seconds"] > 0
    assert set(r["plans"]) == {"150", "300"} and r["plans_on_shape"] is True
    assert r["skew"]["plans"] == {"roe": {}, "floor": {}}
    assert "report --html" in proc.stdout
    assert "Summary" in proc.stdout


def test_an_audit_pass_that_runs_past_the_pass_timeout_is_stopped_and_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr(audit_bench, "PASS_TIMEOUT", 0.05)  # any real pass takes longer
    out = tmp_path / "results.json"
    status = bench.main(["--sizes", "120", "--runs", "1", "--only", "audit", "--results", str(out)])
    assert status == 1
    failed = json.loads(out.read_text())["audit_failed"]
    assert failed["accounts"] == 120 and "BENCH_PASS_TIMEOUT" in failed["error"]


def test_a_run_where_one_of_roes_plans_is_off_its_pinned_shape_exits_non_zero_and_names_the_rule(
        tmp_path, monkeypatch, capsys):
    from benchmarks import audit_floor
    from roe_cli.rules import plans_check

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    floor_pins = audit_floor.pinned_shapes()  # the floor keeps its real shapes
    monkeypatch.setattr(audit_floor, "pinned_shapes", lambda: floor_pins)
    # HND002 scans accounts; pinned to nothing, that scan is a plan off its shape.
    monkeypatch.setitem(plans_check.PINNED, "HND002", frozenset())
    out = tmp_path / "results.json"
    status = bench.main(["--sizes", "120", "--runs", "1", "--only", "audit", "--results", str(out)])
    assert status == 1
    r = json.loads(out.read_text())
    assert r["plans"]["120"]["roe"] == {"HND002": ["accounts SCAN"]}
    assert r["plans"]["120"]["floor"] == {} and r["plans_on_shape"] is False and r["agree"] is False
    assert "roe's plan for HND002 is off its pinned shape" in capsys.readouterr().err


def test_a_run_where_one_of_the_floors_plans_is_off_its_pinned_shape_exits_non_zero_and_names_the_rule(
        tmp_path, monkeypatch, capsys):
    from benchmarks import audit_floor

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    real = audit_floor.pinned_shapes()
    # The floor's COV003 reads accounts whole, then seeks their team rows; pinned to the seeks
    # only, the accounts scan is off its shape.
    seeks = "account_team_members SEARCH ix_account_team_members_source_account_id_user_id"
    monkeypatch.setattr(audit_floor, "pinned_shapes",
                        lambda: {**real, "COV003": frozenset({seeks})})
    out = tmp_path / "results.json"
    status = bench.main(["--sizes", "120", "--runs", "1", "--only", "audit", "--results", str(out)])
    assert status == 1
    r = json.loads(out.read_text())
    assert r["plans"]["120"]["floor"] == {"COV003": ["accounts SCAN"]} and r["plans"]["120"]["roe"] == {}
    assert "floor's plan for COV003 is off its pinned shape" in capsys.readouterr().err


def test_a_run_whose_plans_are_all_on_their_pinned_shapes_records_that_and_exits_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    out = tmp_path / "results.json"
    status = bench.main(["--sizes", "120", "--runs", "1", "--only", "audit", "--results", str(out)])
    r = json.loads(out.read_text())
    assert status == 0 and r["plans"]["120"] == {"roe": {}, "floor": {}} and r["plans_on_shape"] is True
    assert {"COV001", "COV002", "COV003"} <= set(r["audit"]["120"]["rules"])


CASES_DIR = ROOT / "tests" / "rule_cases"
COV_CASES = [c for f in ("COV001", "COV002", "COV003")
             for c in load_case_file(CASES_DIR / f"{f}.toml")]


@pytest.mark.parametrize("case", COV_CASES, ids=[f"{c.file.stem}-{c.index}" for c in COV_CASES])
def test_the_floor_finds_exactly_roes_rows_on_every_coverage_rule_case(case, tmp_path):
    """Each rule case of COV001-COV003 (inactive members, team roles through [role_map], a person
    listed twice, deleted rows and accounts...), loaded into a mirror file: the floor's bare SQL
    and roe's rule find the same finding rows, details included."""
    from roe_cli.rulecases import _load_org, case_config

    config = case_config(case, CASES_DIR / "rules.toml")
    db = tmp_path / "case.db"
    engine = open_database(f"sqlite:///{db}")
    _load_org(engine, case, config)
    result = run_audit(engine, config, case.as_of, case.codes)
    stored = roe_digests(engine, result.run_id)
    engine.dispose()
    floor = run_floor(db, config, case.as_of, only=case.codes, with_digests=True)
    assert floor.digests == {c: stored.get(c, digest([])) for c in case.codes}, case.label


def test_no_module_of_the_benchmarks_is_over_500_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "benchmarks").glob("*.py")}
    assert max(sizes.values()) <= 500, sizes


def test_each_tile_copy_reads_the_first_tile_by_a_rowid_range_not_by_scanning_every_copy_so_far(demo_db):
    conn = sqlite3.connect(demo_db)
    try:
        last = conn.execute("SELECT max(rowid) FROM activities").fetchone()[0]
        sql = orgs.tile_sql(conn, "activities", 7, last)
        select = sql[sql.index(" SELECT ") + 1:]
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + select))
    finally:
        conn.close()
    assert "INTEGER PRIMARY KEY (rowid<?)" in plan, plan


def test_a_pass_reports_its_own_peak_memory_not_the_high_water_mark_of_the_bench_that_started_it():
    """Linux carries a parent's ru_maxrss over into a child at exec: a pass started by a bench
    that had grown big reported the bench's size. VmHWM starts afresh at exec."""
    ballast = bytearray(600 * 1024 * 1024)  # this process grows to over 600 MiB, touched
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    code = ("import json, resource; from benchmarks.audit_bench import peak_rss_mib, maxrss_mib; "
            "print(json.dumps([peak_rss_mib(), "
            "maxrss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    own, inherited = json.loads(out.stdout)
    del ballast
    assert inherited > 600  # the kernel's figure this bench no longer trusts
    assert own < 200  # a bare interpreter with the bench module imported
