"""`roe whatif`: the findings a proposed rules file would add and remove, nothing stored."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from roe_cli.findings import FIELDS
from roe_cli.rules import REGISTRY

from .conftest import RULES

AS_OF = "2026-11-01"
KEY = ("rule", "source", "object_type", "object_id", "related_user_id")


def proposed_rules(folder: Path) -> Path:
    """The shipped rules with changes that add findings (HND003 sooner), remove some (OWN004
    stricter, OWN001 off), change a severity and add a waiver: each must show, or not, as such."""
    text = RULES.read_text(encoding="utf-8")
    for old, new in (
        ("min_activities = 3", "min_activities = 5"),
        ("max_idle_days = 21", "max_idle_days = 14"),
        ('[rules.OWN001]\nenabled = true', '[rules.OWN001]\nenabled = false'),
        ('[rules.HND002]\nseverity = "medium"', '[rules.HND002]\nseverity = "low"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    text += ('\n[[exceptions]]\nrule = "OWN002"\nobject = "account:001D00000000000001"\n'
             'reason = "Proposed"\napproved_by = "victoria@example.com"\nexpires = 2099-12-31\n')
    path = folder / "rules-next.toml"
    path.write_text(text, encoding="utf-8")
    return path


def identity(item: dict) -> tuple:
    return tuple(item[k] or "" for k in KEY)


def whatif_json(roe, *args: str) -> dict:
    res = roe("whatif", "--as-of", AS_OF, "--format", "json", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_the_same_rules_file_twice_shows_no_change(org, roe) -> None:
    doc = whatif_json(roe, "--rules", str(RULES))
    assert doc["appear"] == [] and doc["disappear"] == []
    assert all(s["appear"] == 0 and s["disappear"] == 0 for s in doc["summary"].values())
    stored = json.loads(roe("findings", "--format", "json").stdout)["findings"]
    assert sum(s["unchanged"] for s in doc["summary"].values()) == len(stored) > 0
    table = roe("whatif", "--as-of", AS_OF, "--rules", str(RULES))
    assert table.exit_code == 0, table.output
    assert "No change" in table.stdout


def test_appear_and_disappear_equal_the_difference_of_two_stored_audits_on_copies(
        org, roe, tmp_path) -> None:
    proposed = proposed_rules(tmp_path)
    copies = {}
    for name, rules in (("current", RULES), ("proposed", proposed)):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(tmp_path / "mirror.db", path)
        url = f"sqlite:///{path}"
        res = roe("audit", "--as-of", AS_OF, "--fail-on", "never", "--format", "json", db=url,
                  rules=rules)
        assert res.exit_code == 0, res.output
        stored = json.loads(res.stdout)
        assert stored["run_id"] is not None  # a real, stored run: what it saw is in the history
        copies[name] = stored["findings"]
    before = {identity(f): f for f in copies["current"]}
    after = {identity(f): f for f in copies["proposed"]}

    doc = whatif_json(roe, "--rules", str(proposed))

    assert doc["appear"] and doc["disappear"]
    assert [identity(f) for f in doc["appear"]] == [identity(f) for f in copies["proposed"]
                                                    if identity(f) not in before]
    assert [identity(f) for f in doc["disappear"]] == [identity(f) for f in copies["current"]
                                                       if identity(f) not in after]
    # the same findings, field for field (but the id the whatif never stored)
    assert doc["appear"] == [{k: after[identity(f)][k] for k in f} for f in doc["appear"]]
    assert doc["disappear"] == [{k: before[identity(f)][k] for k in f} for f in doc["disappear"]]
    for code, counts in doc["summary"].items():
        same = [k for k in after if k in before and k[0] == code]
        assert counts == {
            "appear": sum(1 for f in doc["appear"] if f["rule"] == code),
            "disappear": sum(1 for f in doc["disappear"] if f["rule"] == code),
            "unchanged": len(same),
        }
    assert doc["summary"]["OWN001"]["appear"] == doc["summary"]["OWN001"]["unchanged"] == 0
    assert doc["summary"]["HND003"]["appear"] > 0 and doc["summary"]["OWN004"]["disappear"] > 0


def _stored(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        return {table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("audit_runs", "findings", "waivers")}
    finally:
        con.close()


def test_whatif_stores_nothing_no_run_no_finding_no_waiver(org, roe, tmp_path) -> None:
    before = _stored(tmp_path / "mirror.db")
    assert before["audit_runs"] and before["findings"] and before["waivers"]
    proposed = proposed_rules(tmp_path)
    for args in (["--format", "json"], ["-o", str(tmp_path / "delta.csv")], []):
        res = roe("whatif", "--rules", str(proposed), *args)  # as of now: a later run
        assert res.exit_code == 0, res.output
    after = _stored(tmp_path / "mirror.db")
    assert {t: len(rows) for t, rows in after.items()} == {t: len(r) for t, r in before.items()}
    assert after == before


def test_the_json_has_the_issues_keys_and_findings_in_the_audit_shape_without_ids(
        org, roe, tmp_path) -> None:
    proposed = proposed_rules(tmp_path)
    doc = whatif_json(roe, "--rules", str(proposed))
    assert set(doc) == {"as_of", "current", "proposed", "summary", "by_owner", "appear",
                        "disappear"}
    assert doc["as_of"] == "2026-11-01T00:00:00Z"
    assert doc["current"] == str(RULES) and doc["proposed"] == str(proposed)
    assert list(doc["summary"]) == list(REGISTRY)  # every rule either file runs, in order
    for counts in [*doc["summary"].values(), *doc["by_owner"].values()]:
        assert set(counts) == {"appear", "disappear", "unchanged"}
    for item in doc["appear"] + doc["disappear"]:
        assert list(item) == [f for f in FIELDS if f != "id"]


def test_current_swaps_which_file_is_compared(org, roe, tmp_path) -> None:
    proposed = proposed_rules(tmp_path)
    forward = whatif_json(roe, "--rules", str(proposed))
    backward = whatif_json(roe, "--rules", str(RULES), "--current", str(proposed))
    assert backward["current"] == str(proposed)
    assert [identity(f) for f in backward["appear"]] == [identity(f) for f in forward["disappear"]]
    assert [identity(f) for f in backward["disappear"]] == [identity(f) for f in forward["appear"]]


def test_the_table_shows_the_change_per_rule_and_per_owner(org, roe, tmp_path) -> None:
    proposed = proposed_rules(tmp_path)
    doc = whatif_json(roe, "--rules", str(proposed))
    res = roe("whatif", "--as-of", AS_OF, "--rules", str(proposed))
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    for code, counts in doc["summary"].items():
        row = next(line for line in lines if f" {code} " in line)
        assert f"+{counts['appear']:,}" in row and f"-{counts['disappear']:,}" in row
        assert f" {counts['unchanged']:,} " in row
    assert "Per owner" in res.stdout
    busiest = max(doc["by_owner"].items(), key=lambda oe: oe[1]["appear"] + oe[1]["disappear"])
    row = next(line for line in lines if f" {busiest[0]} " in line)
    assert f"+{busiest[1]['appear']:,}" in row and f"-{busiest[1]['disappear']:,}" in row
    total = sum(c["appear"] for c in doc["summary"].values())
    assert f"{total:,} finding(s) would appear" in res.stdout


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json"])
def test_o_writes_the_delta_with_a_change_column(org, roe, tmp_path, suffix) -> None:
    proposed = proposed_rules(tmp_path)
    doc = whatif_json(roe, "--rules", str(proposed))
    out = tmp_path / f"delta{suffix}"
    res = roe("whatif", "--as-of", AS_OF, "--rules", str(proposed), "-o", str(out))
    assert res.exit_code == 0, res.output
    if suffix == ".csv":
        with out.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    elif suffix == ".json":
        rows = json.loads(out.read_text(encoding="utf-8"))
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(out, read_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        rows = [dict(zip(values[0], row, strict=True)) for row in values[1:]]
    assert list(rows[0])[0] == "change"
    expected = [("appear", identity(f)) for f in doc["appear"]] + \
               [("disappear", identity(f)) for f in doc["disappear"]]
    assert [(r["change"], identity(r)) for r in rows] == expected
    assert f"Wrote {len(expected):,} changed finding(s)" in res.stdout


def test_a_bad_proposed_file_is_refused_before_anything_runs(org, roe, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules.OWN004]\nmin_activitys = 5\n', encoding="utf-8")
    res = roe("whatif", "--rules", str(bad))
    assert res.exit_code == 2
    assert "min_activitys" in res.stderr
    missing = roe("whatif", "--rules", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "No rules file" in missing.stderr


def test_o_dash_puts_only_the_delta_csv_on_stdout_and_the_table_on_stderr(org, roe,
                                                                          tmp_path) -> None:
    proposed = proposed_rules(tmp_path)
    doc = whatif_json(roe, "--rules", str(proposed))
    res = roe("whatif", "--as-of", AS_OF, "--rules", str(proposed), "-o", "-")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert len(rows) == len(doc["appear"]) + len(doc["disappear"])
    assert {r["change"] for r in rows} == {"appear", "disappear"}
    assert "Per owner" in res.stderr and "to standard output (csv)" in res.stderr
