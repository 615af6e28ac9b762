"""The smaller promises of issue 15: no empty success on a typo, `-o -`, `--version`, a lock
message in words, ISO 8601 dates in findings' details, and a CRM nobody answers for reported as
unreachable at once."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import time

import pytest
from sqlalchemy import and_, func, select

from roe_cli.db import run_lock
from roe_cli.models import accounts, owners

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a typo is not an all-clear -------------------------------------------------------------------


def test_findings_for_an_owner_the_mirror_does_not_know_is_exit_2_with_did_you_mean(org, roe):
    doc = json.loads(roe("findings", "--format", "json").stdout)
    email = next(f["owner_email"] for f in doc["findings"] if f["owner_email"])
    typo = email.replace("@", "@@", 1)
    result = roe("findings", "--owner", typo)
    assert result.exit_code == 2, result.output
    assert f"No owner '{typo}'" in result.stderr and f"did you mean '{email}'" in result.stderr
    assert result.stdout == ""
    assert roe("findings", "--owner", email.upper()).exit_code == 0  # e-mails match in any case


def test_export_findings_for_an_unknown_owner_or_source_is_exit_2_and_writes_nothing(org, roe, tmp_path):
    out = tmp_path / "f.csv"
    result = roe("export", "findings", "-o", str(out), "--owner", "nobody@nowhere.example")
    assert result.exit_code == 2 and "No owner 'nobody@nowhere.example'" in result.stderr
    result = roe("export", "findings", "-o", str(out), "--source", "hubspto")
    assert result.exit_code == 2 and "did you mean 'hubspot'" in result.stderr
    assert not out.exists()


def test_a_source_the_mirror_holds_no_data_of_is_exit_2_for_findings_and_kpi(org, roe, tmp_path):
    result = roe("findings", "--source", "hubspot")
    assert result.exit_code == 2 and "holds no hubspot data" in result.stderr
    assert "'demo'" in result.stderr  # what it does hold
    result = roe("export", "kpi", "-o", str(tmp_path / "k.csv"), "--source", "salesforce")
    assert result.exit_code == 2 and "holds no salesforce data" in result.stderr
    assert roe("findings", "--source", "demo").exit_code == 0


def test_reassign_from_findings_before_any_audit_says_so_with_exit_2(roe, tmp_path):
    assert roe("demo", "--accounts", "40", "--as-of", "2026-11-01").exit_code == 0
    plan = tmp_path / "plan.json"
    result = roe("reassign", "--findings", "all", "-o", str(plan))
    assert result.exit_code == 2, result.output
    assert "No audit has run on this mirror yet" in result.stderr and "roe audit" in result.stderr
    assert not plan.exists()


# -- -o - -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_to_dash_writes_the_rows_to_stdout_and_the_note_to_stderr(org, roe, tmp_path, fmt):
    to_file = tmp_path / f"f.{fmt}"
    assert roe("export", "findings", "-o", str(to_file), "--rule", "OWN001").exit_code == 0
    result = roe("export", "findings", "-o", "-", "--format", fmt, "--rule", "OWN001")
    assert result.exit_code == 0, result.output
    assert "to standard output" in result.stderr and "Wrote" not in result.stdout
    if fmt == "csv":  # the same rows as the file, without the byte-order mark
        assert list(csv.reader(io.StringIO(result.stdout))) == \
            list(csv.reader(io.StringIO(to_file.read_text(encoding="utf-8-sig"))))
    elif fmt == "json":
        assert json.loads(result.stdout) == json.loads(to_file.read_text())
    else:
        assert [json.loads(line) for line in result.stdout.splitlines()] == \
            [json.loads(line) for line in to_file.read_text().splitlines()]
    assert not (tmp_path / "-").exists()


def test_export_to_dash_defaults_to_csv_and_refuses_binary_formats(org, roe, tmp_path):
    result = roe("export", "runs", "-o", "-")
    assert result.exit_code == 0 and result.stdout.startswith("run_id,")
    result = roe("export", "findings", "-o", "-", "--format", "xlsx")
    assert result.exit_code == 2 and "binary" in result.stderr and result.stdout == ""


def test_reassign_and_revert_with_dash_write_the_plan_json_to_stdout(org, roe, tmp_path):
    with org.connect() as conn:
        rows = conn.execute(select(owners.c.email, func.count(accounts.c.id))
                            .join(accounts, and_(accounts.c.source == owners.c.source,
                                                 accounts.c.owner_id == owners.c.id))
                            .where(owners.c.active.is_(True), accounts.c.deleted.is_(False))
                            .group_by(owners.c.email).order_by(owners.c.email)).all()
    (giver, _), (taker, _) = rows[0], rows[1]
    result = roe("reassign", "--transfer-from", giver, "--to", taker, "--objects", "account",
                 "-o", "-")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)  # stdout holds the plan and nothing else
    assert plan["changes"] and "Dry run" in result.stderr and "standard output" in result.stderr
    # the same plan saved to a file approves and applies; its revert goes to stdout too
    path = tmp_path / "plan.json"
    path.write_text(result.stdout)
    assert roe("approve", str(path), "--by", "vp@example.com").exit_code == 0
    applied = roe("apply", str(path), "--results", str(tmp_path / "r.csv"))
    assert applied.exit_code == 0, applied.output
    reverse = roe("revert", str(tmp_path / "r.csv"), "-o", "-")
    assert reverse.exit_code == 0, reverse.output
    assert len(json.loads(reverse.stdout)["changes"]) == len(plan["changes"])


# -- --version and the lock ------------------------------------------------------------------------


def test_version_prints_the_package_version(roe):
    from importlib.metadata import version

    result = roe("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"roe {version('roe')}"


def test_the_lock_message_is_a_sentence_naming_command_pid_host_and_time(org, roe):
    with run_lock(org, "sync hubspot"):
        result = roe("audit", "--fail-on", "never")
    assert result.exit_code == 4
    first = result.stderr.splitlines()[0]
    assert "{" not in result.stderr and '"pid"' not in result.stderr
    assert f"`roe sync hubspot` (pid {os.getpid()} on {socket.gethostname()}, since " in first
    assert re.search(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", first)


# -- dates in details ------------------------------------------------------------------------------


def test_dates_in_findings_details_are_iso_8601_utc(org, roe, tmp_path):
    doc = json.loads(roe("findings", "--rule", "HND001,HND002", "--format", "json").stdout)
    dated = [(f["rule"], k, v) for f in doc["findings"] for k, v in f["details"].items()
             if k.endswith("_at")]
    assert {rule for rule, _, _ in dated} == {"HND001", "HND002"}
    assert all(v is None or ISO_UTC.match(v) for _, _, v in dated), dated[:5]
    assert any(v is not None for _, _, v in dated)
    out = tmp_path / "f.jsonl"
    assert roe("export", "findings", "-o", str(out), "--rule", "HND001").exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(ISO_UTC.match(r["details"]["changed_at"]) for r in rows)


# -- a CRM nobody answers for ----------------------------------------------------------------------


def test_a_refused_connection_to_hubspot_is_unreachable_within_a_minute(roe, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("HUBSPOT_BASE_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    result = roe("sync", "--source", "hubspot")  # the shipped rules: 8 retries, doubling waits
    assert time.monotonic() - started < 60
    assert result.exit_code == 3, result.output
    assert f"Cannot reach HubSpot at http://127.0.0.1:{port} (connection refused)" in result.stderr
    assert "requests_per_10s" not in result.stderr


def test_a_refused_connection_to_salesforce_is_unreachable_within_a_minute(roe, monkeypatch):
    port = closed_port()
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "00D000000000001!AQ0AQnotARealToken")
    started = time.monotonic()
    result = roe("sync", "--source", "salesforce")  # the shipped rules: 4 retries, doubling waits
    assert time.monotonic() - started < 60
    assert result.exit_code == 3, result.output
    assert f"Cannot reach Salesforce at 127.0.0.1:{port} (connection refused)" in result.stderr
    assert "notARealToken" not in result.output


def test_a_reader_that_closes_the_pipe_early_is_no_internal_error(roe, tmp_path):
    """`roe export findings -o - | head -1`: roe stops writing quietly, exit 141 as for SIGPIPE."""
    import subprocess
    import sys

    from tests.conftest import ROOT, RULES

    db = tmp_path / "mirror.db"
    assert roe("demo", "--accounts", "2000", db=str(db)).exit_code == 0  # more than a pipe holds
    assert roe("audit", "--fail-on", "never", db=str(db)).exit_code == 0
    command = (f"{sys.executable} -m roe_cli.cli --db {db} --rules {RULES} "
               "export findings -o - | head -1")
    run = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**__import__("os").environ,
                                                      "PYTHONPATH": str(ROOT)})
    assert run.stdout.count("\n") == 1 and "rule" in run.stdout  # the header line head kept
    assert run.stderr == ""  # no internal-error paragraph, no traceback
    assert run.returncode == 141
