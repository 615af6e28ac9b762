"""Write-back that must be exact (issue 15): approval shows and checks what it signs, revert trusts
only the journal, a transfer moves an account with its children or not at all, files are never
overwritten silently, and Ctrl-C on apply keeps the results of what it did."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import func, select, update

from connectors.demo import DemoConnector
from roe_cli import plans
from roe_cli.models import accounts, plan_approvals
from roe_cli.models import plans as plans_table
from tests.support.writeback import (
    ANA,
    CLEO,
    DAN,
    EVE,
    NO_RULES,
    make_org,
    owner_of,
    read_results,
    snapshot,
)

AUTHOR = "ana@example.com"


def _plan(roe, path: Path, *args: str, by: str = AUTHOR) -> dict:
    result = roe("reassign", *args, "-o", str(path), "--by", by)
    assert result.exit_code == 0, result.output
    return json.loads(path.read_text(encoding="utf-8"))


def _reseal(path: Path, data: dict) -> None:
    """Write ``data`` with its hash recomputed the documented way (canonical JSON of everything
    except hash, approval and approval_history)."""
    data["hash"] = plans.canonical_hash(
        {k: v for k, v in data.items() if k not in ("hash", "approval", "approval_history")})
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


# -- approve ---------------------------------------------------------------------------------------


def test_approve_refuses_a_plan_whose_new_owner_id_was_swapped_but_whose_email_was_kept(
        engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    data = _plan(roe, path, "--transfer-from", CLEO, "--to", DAN)
    assert data["changes"][0]["new_email"] == "dan@example.com"
    data["changes"][0]["new"] = EVE  # the attack: another user's id, Dan's e-mail kept
    _reseal(path, data)
    before = snapshot(engine)

    result = roe("approve", str(path), "--by", "vp@example.com")
    assert result.exit_code == 2, result.output
    assert "does not agree with the mirror" in result.stderr
    assert EVE in result.stderr and "eve@example.com" in result.stderr
    assert "dan@example.com" in result.stderr
    assert "Approved" not in result.stdout
    assert snapshot(engine) == before  # nothing recorded
    assert json.loads(path.read_text())["approval"] is None
    assert roe("apply", str(path), rules=NO_RULES).exit_code == 2
    assert owner_of(engine, "account", data["changes"][0]["object_id"]) == CLEO


def test_approve_refuses_inactive_or_unknown_new_owners_and_mismatched_names(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    pristine = _plan(roe, path, "--transfer-from", ANA, "--to", DAN)

    def refused(edit, message):
        data = json.loads(json.dumps(pristine))
        edit(data["changes"][0])
        _reseal(path, data)
        result = roe("approve", str(path), "--by", "vp@example.com")
        assert result.exit_code == 2, result.output
        assert message in result.stderr

    refused(lambda c: c.update(new=CLEO, new_email="cleo@example.com"), "is inactive")
    refused(lambda c: c.update(new="005ZZZ", new_email=None), "not a demo user in the mirror")
    refused(lambda c: c.update(object_name="Someone Else Inc"), "the mirror 'Account 3'")
    refused(lambda c: c.update(expected_email="eve@example.com"), "current owner id")
    refused(lambda c: c.update(object_id="001NOPE"), "no such account in the mirror")


def test_approve_shows_the_changes_with_names_and_emails_and_totals_per_new_owner(
        engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", CLEO, "--to", DAN)
    result = roe("approve", str(path), "--by", "vp@example.com")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Approved owner changes (demo)" in out
    assert "Account 0" in out and "Contact 0.0" in out and "Deal 0.0" in out
    assert f"Dan <dan@example.com> ({DAN})" in out and f"Cleo <cleo@example.com> ({CLEO})" in out
    assert "By new owner" in out
    totals = next(line for line in out.splitlines()
                  if "Dan <dan@example.com>" in line and line.rstrip().endswith("9 │"))
    assert totals
    assert "Approved" in out and "9 owner change(s)" in out


def test_reapproval_keeps_the_earlier_approval_in_the_plan_file_and_the_mirror(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", CLEO, "--to", DAN)
    assert roe("approve", str(path), "--by", "vp@example.com", "--note", "first").exit_code == 0
    first = json.loads(path.read_text())["approval"]
    result = roe("approve", str(path), "--by", "cfo@example.com", "--note", "second")
    assert result.exit_code == 0, result.output
    assert "approved before by vp@example.com" in result.stdout
    data = json.loads(path.read_text())
    assert data["approval"]["by"] == "cfo@example.com"
    assert data["approval_history"] == [first]
    with engine.connect() as conn:
        rows = conn.execute(select(plan_approvals.c.approved_by, plan_approvals.c.note)
                            .where(plan_approvals.c.plan_hash == data["hash"])
                            .order_by(plan_approvals.c.id)).all()
    assert [tuple(r) for r in rows] == [("vp@example.com", "first"), ("cfo@example.com", "second")]
    assert roe("apply", str(path), rules=NO_RULES).exit_code == 0  # the latest approval counts


def test_the_approver_must_differ_from_the_author_unless_self_approve(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", CLEO, "--to", DAN, by="ana@example.com")
    result = roe("approve", str(path), "--by", "ANA@example.com ")
    assert result.exit_code == 2, result.output
    assert "built by ana@example.com" in result.stderr and "--self-approve" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(plans_table)).scalar_one() == 0
    result = roe("approve", str(path), "--by", "ana@example.com", "--self-approve")
    assert result.exit_code == 0, result.output


# -- results ---------------------------------------------------------------------------------------


def test_the_results_csv_carries_names_and_emails_beside_the_ids(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", CLEO, "--to", DAN, "--objects", "account")
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    assert roe("apply", str(path), rules=NO_RULES).exit_code == 0
    rows = read_results(tmp_path / "plan.results.csv")
    assert list(rows[0])[:8] == ["object_type", "object_id", "expected", "new", "status", "error",
                                 "source", "plan_hash"]
    assert {
        k: rows[0][k] for k in ("object_id", "object_name", "expected", "expected_email",
                                "expected_name", "new", "new_email", "new_name")
    } == {"object_id": "00100000", "object_name": "Account 0", "expected": CLEO,
          "expected_email": "cleo@example.com", "expected_name": "Cleo", "new": DAN,
          "new_email": "dan@example.com", "new_name": "Dan"}


# -- revert ----------------------------------------------------------------------------------------


def _applied(engine, roe, tmp_path, *args: str) -> tuple[Path, Path]:
    path = tmp_path / "plan.json"
    _plan(roe, path, *args)
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    assert roe("apply", str(path), rules=NO_RULES).exit_code == 0
    return path, tmp_path / "plan.results.csv"


def _rewrite(results: Path, edit) -> None:
    with open(results, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        edit(row)
    with open(results, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_an_edited_expected_in_the_results_cannot_redirect_a_revert(engine, roe, tmp_path):
    make_org(engine)
    _, results = _applied(engine, roe, tmp_path, "--transfer-from", ANA, "--to", DAN,
                          "--objects", "account")
    _rewrite(results, lambda r: r.update(expected=EVE))
    out = tmp_path / "revert.json"
    result = roe("revert", str(results), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "differ from the apply journal" in result.stdout
    assert not out.exists()  # every row refused: nothing to change
    assert EVE not in result.stdout.split("Left out")[0]


def test_revert_takes_the_owners_from_the_journal(engine, roe, tmp_path):
    make_org(engine)
    _, results = _applied(engine, roe, tmp_path, "--transfer-from", ANA, "--to", DAN,
                          "--objects", "account")
    revert = plans.build_revert(engine, results)
    assert revert.plan.changes and all((c.expected, c.new) == (DAN, ANA)
                                       for c in revert.plan.changes)


def test_revert_refuses_a_results_file_that_names_no_apply(engine, roe, tmp_path):
    make_org(engine)
    hand = tmp_path / "hand.csv"
    hand.write_text("object_type,object_id,expected,new,status\n"
                    f"account,00100003,{EVE},{ANA},applied\n", encoding="utf-8")
    result = roe("revert", str(hand), "-o", str(tmp_path / "r.json"))
    assert result.exit_code == 2 and "without a plan_hash" in result.stderr
    hand.write_text("object_type,object_id,expected,new,status,error,source,plan_hash\n"
                    f"account,00100003,{EVE},{ANA},applied,,demo,{'a' * 64}\n", encoding="utf-8")
    result = roe("revert", str(hand), "-o", str(tmp_path / "r.json"))
    assert result.exit_code == 2 and "journal does not hold" in result.stderr
    assert not (tmp_path / "r.json").exists()


# -- a transfer is atomic per account --------------------------------------------------------------


def test_a_transfer_holds_back_the_children_of_an_account_that_was_not_moved(engine, roe, tmp_path):
    org = make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", CLEO, "--to", DAN)
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    gone, drifted = org["accounts"][0], org["accounts"][1]
    with engine.begin() as conn:  # one account deleted, one reassigned after planning
        conn.execute(update(accounts).where(accounts.c.id == gone).values(deleted=True))
        conn.execute(update(accounts).where(accounts.c.id == drifted).values(owner_id=EVE))

    result = roe("apply", str(path), rules=NO_RULES)
    assert result.exit_code == 1, result.output
    assert "held back with their account" in result.stdout
    rows = {r["object_id"]: r for r in read_results(tmp_path / "plan.results.csv")}
    for account, state in ((gone, "failed"), (drifted, "drifted")):
        assert rows[account]["status"] == state
        children = [r for r in rows.values() if r["object_type"] != "account"
                    and r["object_id"][3:8] == account[3:8]]
        assert len(children) == 2  # the contact and the open deal Cleo owned on it
        for child in children:
            assert child["status"] == "held", child
            assert f"held back with its account {account}" in child["error"]
            assert owner_of(engine, child["object_type"], child["object_id"]) == CLEO
    moved = [r for r in rows.values() if r["status"] == "applied"]
    assert len(moved) == 3 and all(r["object_id"][3:8] == org["accounts"][2][3:8] for r in moved)
    # A re-run keeps them held (final), sends nothing.
    again = roe("apply", str(path), rules=NO_RULES)
    assert again.exit_code == 1 and "Sent 0 record(s)" in again.stdout
    assert {r["status"] for r in read_results(tmp_path / "plan.results-2.csv")} == \
        {"applied", "held", "failed", "drifted"}


# -- files are never overwritten silently ----------------------------------------------------------


def test_reassign_refuses_an_existing_file_unless_force(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    path.write_text("my notes\n")
    result = roe("reassign", "--transfer-from", CLEO, "--to", DAN, "-o", str(path))
    assert result.exit_code == 2 and "already exists" in result.stderr and "--force" in result.stderr
    assert path.read_text() == "my notes\n"
    result = roe("reassign", "--transfer-from", CLEO, "--to", DAN, "-o", str(path), "--force")
    assert result.exit_code == 0, result.output
    assert plans.load_plan(path).changes


def test_reassign_never_replaces_an_approved_or_applied_plan_even_with_force(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", ANA, "--to", DAN)
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    approved_text = path.read_text()
    result = roe("reassign", "--transfer-from", CLEO, "--to", DAN, "-o", str(path), "--force")
    assert result.exit_code == 2 and "approved or applied" in result.stderr
    assert path.read_text() == approved_text
    # An applied plan whose file lost its approval block is still protected by the mirror.
    assert roe("apply", str(path), rules=NO_RULES).exit_code == 0
    data = json.loads(approved_text)
    data["approval"] = None
    path.write_text(json.dumps(data))
    result = roe("revert", str(tmp_path / "plan.results.csv"), "-o", str(path), "--force")
    assert result.exit_code == 2 and "approved or applied" in result.stderr


def test_each_apply_writes_a_new_results_file(engine, roe, tmp_path):
    make_org(engine)
    path, first = _applied(engine, roe, tmp_path, "--transfer-from", CLEO, "--to", DAN)
    first_bytes = first.read_bytes()
    result = roe("apply", str(path), rules=NO_RULES)
    assert result.exit_code == 0 and "plan.results-2.csv" in result.stdout
    assert first.read_bytes() == first_bytes
    assert roe("apply", str(path), rules=NO_RULES).exit_code == 0
    assert (tmp_path / "plan.results-3.csv").exists()


def test_apply_refuses_results_over_the_plan_or_an_existing_file(engine, roe, tmp_path):
    make_org(engine)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", CLEO, "--to", DAN)
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    plan_text = path.read_text()
    before = snapshot(engine)
    result = roe("apply", str(path), "--results", str(path), rules=NO_RULES)
    assert result.exit_code == 2 and "is the plan itself" in result.stderr
    assert path.read_text() == plan_text and snapshot(engine) == before
    other = tmp_path / "kept.csv"
    other.write_text("keep me\n")
    result = roe("apply", str(path), "--results", str(other), rules=NO_RULES)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert other.read_text() == "keep me\n" and snapshot(engine) == before


# -- Ctrl-C on apply -------------------------------------------------------------------------------


def test_ctrl_c_on_apply_stops_says_how_to_resume_and_writes_what_it_did(
        engine, roe, tmp_path, monkeypatch):
    make_org(engine, accounts_n=12)
    monkeypatch.setattr(DemoConnector, "write_batch_size", 4, raising=False)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", ANA, "--to", DAN, "--objects", "account")
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    original = DemoConnector.update_owners
    calls: list[int] = []

    def interrupted(self, object_type, changes):
        calls.append(len(changes))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, object_type, changes)

    monkeypatch.setattr(DemoConnector, "update_owners", interrupted)
    result = roe("apply", str(path), rules=NO_RULES)
    assert result.exit_code == 130, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Interrupted: 4 of 9 change(s) applied")
    assert f"roe apply {path}" in lines[0] and "only what is missing" in lines[0]
    assert "Traceback" not in result.output
    statuses = [r["status"] for r in read_results(tmp_path / "plan.results.csv")]
    assert statuses == ["applied"] * 4 + ["sending"] * 4 + ["pending"]

    result = roe("apply", str(path), rules=NO_RULES)
    assert result.exit_code == 0, result.output
    assert calls == [4, 4, 4, 1]  # the interrupted batch re-read and sent; nothing twice
    assert {r["status"] for r in read_results(tmp_path / "plan.results-2.csv")} == {"applied"}
    assert all(owner_of(engine, "account", f"001{n:05d}") == DAN for n in range(3, 12))
    assert owner_of(engine, "account", "00100000") == CLEO


_SLOW_APPLY = """
import signal, sys, time
# Ctrl-C as in a terminal, even when this test run was started in the background (a shell then
# starts its jobs with SIGINT ignored, and Python keeps it ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from connectors.demo import DemoConnector
from roe_cli.cli import main

original = DemoConnector.update_owners
DemoConnector.write_batch_size = 2

def slow(self, object_type, changes):
    time.sleep(0.4)  # a slow CRM: Ctrl-C lands in the middle of the apply
    out = original(self, object_type, changes)
    print("WROTE", len(changes), file=sys.stderr, flush=True)
    return out

DemoConnector.update_owners = slow
sys.argv = ["roe", *sys.argv[1:]]
main()
"""


def test_a_real_sigint_stops_apply_within_seconds_with_one_line_and_the_results(
        engine, roe, db_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    make_org(engine, accounts_n=40)
    path = tmp_path / "plan.json"
    _plan(roe, path, "--transfer-from", ANA, "--to", DAN, "--objects", "account")
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "ROE_LOG": ""}
    env.pop("ROE_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_APPLY, "--db", db_url, "--rules", NO_RULES, "apply", str(path)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first batch is written
    assert first.startswith("WROTE"), first
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - started < 10  # within seconds, even on a loaded machine
    assert proc.returncode == 130, stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("WROTE")]
    assert len(lines) == 1 and lines[0].startswith("Interrupted: "), stderr
    assert "again to send only what is missing" in lines[0] and "Traceback" not in stderr
    rows = read_results(tmp_path / "plan.results.csv")
    assert {r["status"] for r in rows} <= {"applied", "sending", "pending"}
    assert sum(r["status"] == "pending" for r in rows) > 20  # it stopped early
    for row in rows:  # the results say what the mirror holds (sending: outcome unknown)
        expected = {"applied": {DAN}, "pending": {ANA}, "sending": {ANA, DAN}}[row["status"]]
        assert owner_of(engine, "account", row["object_id"]) in expected

    again = roe("apply", str(path), rules=NO_RULES)
    assert again.exit_code == 0, again.output
    assert {r["status"] for r in read_results(tmp_path / "plan.results-2.csv")} == {"applied"}
