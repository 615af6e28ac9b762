"""The log (issue 15, "The log is empty") and the internal-error paragraph (issue 10).

Every test runs the real CLI on a real SQLite mirror and reads the log file it wrote.
"""
# The hs_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import json
import logging
import re
import stat
import tempfile

import pytest

from tests.conftest import AS_OF, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401
from tests.support.writeback import ANA, make_org

PASSWORD = "S3cretPassw0rd"


@pytest.fixture(autouse=True)
def _close_log_handlers():
    """Each run points the root logger at its own files; close them after the test."""
    yield
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "roe.log"


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def one(path, pattern: str) -> str:
    found = [line for line in lines(path) if re.search(pattern, line)]
    assert len(found) == 1, (pattern, lines(path))
    return found[0]


def test_every_command_logs_its_start_its_counts_and_its_outcome_with_the_exit_code(
        roe, log_path, tmp_path):
    log = ["--log-file", str(log_path)]
    runs = [
        (["demo", "--accounts", "30", "--as-of", "2026-11-01"], "demo", 0),
        (["audit", "--as-of", "2026-11-01", "--fail-on", "high"], "audit", 1),
        (["findings", "--rule", "OWN002"], "findings", 0),
        (["export", "findings", "-o", str(tmp_path / "f.csv")], "export findings", 0),
        (["export", "kpi", "-o", str(tmp_path / "k.csv")], "export kpi", 0),
        (["export", "runs", "-o", str(tmp_path / "r.csv")], "export runs", 0),
        (["waive", "1", "--reason", "known", "--by", "vp@example.com"], "waive", 0),
        (["rules", "--check"], "rules", 0),
        (["db", "status"], "db status", 0),
    ]
    for args, name, code in runs:
        result = roe(*log, *args)
        assert result.exit_code == code, result.output
        start = one(log_path, rf"INFO roe\.run: start: roe .*--log-file \S+ {re.escape(args[0])}")
        assert "(mirror sqlite:///" in start
        assert re.search(rf"roe\.run: end: roe {name}: exit {code} \(.+\) after \d+\.\d\ds$",
                         lines(log_path)[-1])
        log_path.unlink()  # one command's lines at a time

    # The counts: what the demo wrote, the audit found, each export wrote, each rule took.
    roe(*log, "demo", "--accounts", "30", "--as-of", "2026-11-01")
    assert re.search(r"roe\.demo: demo org \(30 accounts, seed 42\) written in \d+\.\d\ds: "
                     r"owner=\d+ account=30 contact=\d+", one(log_path, r"roe\.demo:"))
    roe(*log, "audit", "--as-of", "2026-11-01", "--format", "json", "--fail-on", "never")
    summary = json.loads(roe("findings", "--format", "json").stdout)["summary"]
    line = one(log_path, r"roe\.audit: audit run")
    assert f"open={summary['open']} " in line and f"new={summary['new']} " in line
    assert re.search(r"as of 2026-11-01T00:00:00.* done in \d+\.\d\ds", line)
    assert one(log_path, r"roe\.audit: audit rule OWN002 \(high\): open=\d+ .* in \d+\.\d\ds$")
    roe(*log, "export", "findings", "-o", str(tmp_path / "g.csv"), "--status", "open")
    assert f"export findings: {summary['open']} row(s) to " in one(log_path, r"roe\.export:")


def test_roe_log_names_the_log_file_as_well(roe, log_path):
    result = roe("demo", "--accounts", "20", env={"ROE_LOG": str(log_path)})
    assert result.exit_code == 0
    assert one(log_path, r"roe\.run: end: roe demo: exit 0")
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600  # it names people and deals


def test_verbose_logs_the_run_to_stderr(roe):
    result = roe("-v", "demo", "--accounts", "20")
    assert result.exit_code == 0
    assert "roe: INFO start: roe " in result.stderr
    assert re.search(r"roe: INFO demo org \(20 accounts", result.stderr)
    assert "roe: INFO end: roe demo: exit 0 (done)" in result.stderr


def test_errors_are_logged_with_their_message_and_exit_code_and_printed_once(roe, log_path):
    roe("demo", "--accounts", "20")
    result = roe("--log-file", str(log_path), "findings")  # no audit yet
    assert result.exit_code == 2
    assert result.stderr.count("No audit has run") == 1  # not again through the log handler
    assert one(log_path, r"ERROR roe\.run: UsageError \(exit 2\): No audit has run on this "
                         r"mirror yet, so there are no findings\. Run `roe audit` first\.")
    assert one(log_path, r"end: roe findings: exit 2 \(usage or configuration error\)")

    result = roe("--log-file", str(log_path), "audit", "--no-such-option")
    assert result.exit_code == 2
    assert one(log_path, r"ERROR roe\.run: usage: No such option: --no-such-option")
    assert one(log_path, r"end: roe audit: exit 2")

    missing = log_path.parent / "no-such-folder" / "roe.log"
    result = roe("--log-file", str(missing), "findings")
    assert result.exit_code == 2 and "Cannot open the log file" in result.stderr
    assert "Traceback" not in result.output


def test_approve_apply_and_revert_log_who_which_plan_when_and_how_many(engine, roe, log_path,
                                                                      tmp_path):
    make_org(engine)
    log = ["--log-file", str(log_path)]
    plan_path = tmp_path / "plan.json"
    assert roe(*log, "reassign", "--transfer-from", ANA, "--to", "dan@example.com",
               "--by", "ops@example.com", "-o", str(plan_path)).exit_code == 0
    plan = json.loads(plan_path.read_text())
    digest, n = plan["hash"], len(plan["changes"])
    assert re.search(rf"roe\.plan: transfer plan {digest} built by ops@example\.com at "
                     rf"{plan['created_at']} in \d+\.\d\ds: {n} change\(s\) \(account=\d+ ",
                     one(log_path, r"roe\.plan:"))

    assert roe(*log, "approve", str(plan_path), "--by", "vp@example.com",
               "--note", "Ana moved").exit_code == 0
    approval = json.loads(plan_path.read_text())["approval"]
    line = one(log_path, r"roe\.approve:")
    assert f"plan {digest} (" in line and f", demo, {n} change(s), built by ops@example.com)" in line
    assert f"approved by vp@example.com at {approval['at']}; note: Ana moved" in line

    assert roe(*log, "apply", str(plan_path), "--results",
               str(tmp_path / "results.csv")).exit_code == 0
    start = one(log_path, r"roe\.apply: apply of plan \S+ \(")
    assert f"apply of plan {digest} (" in start
    assert f"{n} change(s), approved by vp@example.com at {approval['at']}) started by " in start
    done = one(log_path, r"roe\.apply: apply of plan \S+ done")
    assert re.search(rf"done in \d+\.\d\ds: applied={n}; sent={n} settled_earlier=0 ", done)
    assert "results.csv" in done

    assert roe(*log, "revert", str(tmp_path / "results.csv"), "--by", "ops@example.com",
               "-o", str(tmp_path / "revert.json")).exit_code == 0
    reverse = json.loads((tmp_path / "revert.json").read_text())
    line = one(log_path, r"roe\.revert:")
    assert f"revert plan {reverse['hash']} built by ops@example.com at " in line
    assert f"reverting the apply of plan(s) {digest} from results.csv" in line
    assert f": {len(reverse['changes'])} change(s)" in line
    for name in ("reassign", "approve", "apply", "revert"):
        assert one(log_path, rf"end: roe {name}: exit 0 \(done\)")


def test_a_database_password_on_the_command_line_never_reaches_the_log(roe, log_path):
    url = f"postgresql+psycopg://roe:{PASSWORD}@127.0.0.1:9/roe"
    result = roe("--log-file", str(log_path), "findings", db=url)
    assert result.exit_code != 0
    text = log_path.read_text()
    assert "start: roe --db postgresql+psycopg://roe:***@127.0.0.1:9/roe " in text
    assert PASSWORD not in text and PASSWORD not in result.output


@pytest.fixture
def broken_audit(monkeypatch):
    """A bug in the core: the audit raises something roe does not expect (with a token in it)."""
    def boom(*args, **kwargs):
        raise RuntimeError("boom, Bearer abcdefghijklmnopqrstuvwxyz0123")

    monkeypatch.setattr("roe_cli.audit.run_audit", boom)


def test_an_internal_error_is_one_short_paragraph_and_its_traceback_is_in_the_log(
        org, roe, log_path, broken_audit):
    result = roe("--log-file", str(log_path), "audit")
    assert result.exit_code == 70
    assert "Traceback" not in result.output and result.stdout == ""
    paragraph = result.stderr.strip()
    assert "\n" not in paragraph and len(paragraph) < 700
    assert paragraph.startswith("Error: roe audit stopped on an internal error (RuntimeError: boom")
    assert f"in the log file {log_path}" in paragraph and "report it" in paragraph
    assert "abcdefghijklmnopqrstuvwxyz0123" not in paragraph

    text = log_path.read_text()
    assert "ERROR roe.run: internal error in roe audit: RuntimeError: boom" in text
    assert "Traceback (most recent call last)" in text and 'raise RuntimeError("boom' in text
    assert "abcdefghijklmnopqrstuvwxyz0123" not in text
    assert one(log_path, r"end: roe audit: exit 70 \(internal error\)")


def test_without_a_log_file_the_traceback_goes_to_a_private_file_that_the_paragraph_names(
        org, roe, tmp_path, monkeypatch, broken_audit):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = roe("audit")
    assert result.exit_code == 70 and "Traceback" not in result.output
    [crash] = tmp_path.glob("roe-error-*.log")
    assert str(crash) in result.stderr
    assert stat.S_IMODE(crash.stat().st_mode) == 0o600
    text = crash.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
    assert "abcdefghijklmnopqrstuvwxyz0123" not in text


@pytest.mark.parametrize("how", ["-v", "ROE_DEBUG=1"])
def test_verbose_or_roe_debug_shows_the_traceback(org, roe, tmp_path, monkeypatch, broken_audit,
                                                   how):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if how == "-v":
        result = roe("-v", "audit")
    else:
        result = roe("audit", env={"ROE_DEBUG": "1"})
    assert result.exit_code == 70
    assert result.stderr.count("Traceback (most recent call last)") == 1
    assert "stopped on an internal error" in result.stderr
    assert "abcdefghijklmnopqrstuvwxyz0123" not in result.stderr


def test_a_sync_logs_what_it_read_and_wrote_per_object_and_its_api_calls(hs_emulator, roe,
                                                                          log_path, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text() + FAST_SETTINGS_TOML)
    hs_emulator.load_demo(5, seed=1, as_of=AS_OF)
    result = roe("--log-file", str(log_path), "sync", "--source", "hubspot", rules=rules)
    assert result.exit_code == 0, result.output
    companies = len(hs_emulator.live("companies"))
    assert re.search(rf"roe\.sync: sync hubspot account: read={companies} inserted={companies} ",
                     one(log_path, r"roe\.sync: sync hubspot account:"))
    calls = len(hs_emulator.calls())
    assert re.search(rf"roe\.sync: sync hubspot \(incremental\) done in \d+\.\d\ds: {calls} API "
                     r"call\(s\)", one(log_path, r"roe\.sync: sync hubspot \(incremental\)"))
    assert one(log_path, r"end: roe sync: exit 0 \(done\)")
