"""CRM text never drives the terminal: control characters from data are shown, never obeyed.

A real mirror (the audited demo org) gets an account whose name carries ESC sequences (clear the
screen, set the window title), BEL, a C1 CSI and a bidi override, as a CRM could hand it over.
Every terminal output of the CLI shows them as escapes; files keep the data as it is.
"""
# The sf_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import json
import logging

from sqlalchemy import select, update

from roe_cli.models import accounts, findings
from roe_cli.shared.text import visible, visible_json
from tests.emulators.salesforce import sf_emulator  # noqa: F401
from tests.support.writeback import read_results

EVIL = "Evil\x1b[2J\x1b]0;pwned\x07X\x9b31m\u202eMA"
ACTIVE = ("\x1b", "\x07", "\x9b", "\u202e")  # what a terminal would act on
SHOWN = "Evil\\x1b[2J\\x1b]0;pwned\\x07X\\x9b31m\\u202eMA"  # what it must show instead


def assert_inert(text: str) -> None:
    for ch in ACTIVE:
        assert ch not in text, f"raw {ch!r} reaches the terminal"


def name_an_account_evil(engine) -> str:
    """Rename the account of an open OWN002 finding (it has a suggested owner); its id."""
    with engine.begin() as conn:
        account_id = conn.execute(
            select(findings.c.object_id).where(findings.c.rule == "OWN002",
                                               findings.c.status == "open",
                                               findings.c.object_type == "account")
        ).scalars().first()
        assert account_id
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(name=EVIL))
    return account_id


def test_visible_shows_every_control_character_and_keeps_ordinary_text():
    assert visible(EVIL) == SHOWN
    assert visible("Zoë Ødegård, O'Brien & Co [EMEA] 50% — ok") == "Zoë Ødegård, O'Brien & Co [EMEA] 50% — ok"
    assert visible("a\r\nb\tc\x00\x7f\u2066") == "a\\x0d\\x0ab\\x09c\\x00\\x7f\\u2066"
    assert visible("line 1\nline 2\tx\x1b", lines=True) == "line 1\nline 2\tx\\x1b"
    doc = json.dumps({"name": EVIL}, ensure_ascii=False)
    assert json.loads(visible_json(doc)) == {"name": EVIL}  # same data, nothing active
    assert_inert(visible_json(doc))


def test_an_evil_account_name_is_shown_not_obeyed_by_findings(roe, org, tmp_path):
    name_an_account_evil(org)
    table = roe("findings", "--rule", "OWN002", "--limit", "0")
    assert table.exit_code == 0, table.output
    assert_inert(table.output)
    assert f"account:{SHOWN}" in table.stdout

    as_json = roe("findings", "--rule", "OWN002", "--format", "json")
    assert_inert(as_json.output)
    assert EVIL in {f["object_name"] for f in json.loads(as_json.stdout)["findings"]}

    audit = roe("audit", "--as-of", "2026-11-01", "--format", "json", "--fail-on", "never")
    assert_inert(audit.output)
    assert EVIL in {f["object_name"] for f in json.loads(audit.stdout)["findings"]}

    # Exports are files: the data as it is.
    out = tmp_path / "findings.csv"
    assert roe("export", "findings", "-o", str(out)).exit_code == 0
    assert EVIL in {row["object_name"] for row in read_results(out)}


def test_an_evil_account_name_is_shown_not_obeyed_by_reassign_approve_and_apply(roe, org, tmp_path):
    account_id = name_an_account_evil(org)
    plan_path = tmp_path / "plan.json"
    planned = roe("reassign", "--findings", "OWN002", "--show", "0", "-o", str(plan_path))
    assert planned.exit_code == 0, planned.output
    assert_inert(planned.output)
    assert SHOWN in planned.stdout
    changes = json.loads(plan_path.read_text(encoding="utf-8"))["changes"]
    assert {c["object_name"] for c in changes if c["object_id"] == account_id} == {EVIL}  # as is

    approved = roe("approve", str(plan_path), "--by", "vp\x1b]0;x\x07@example.com")
    assert approved.exit_code == 0, approved.output
    assert_inert(approved.output)
    applied = roe("apply", str(plan_path), "--results", str(tmp_path / "results.csv"))
    assert applied.exit_code == 0, applied.output
    assert_inert(applied.output)


def test_a_crm_error_message_shows_its_control_characters(sf_emulator, roe, tmp_path):
    sf_emulator.fail(status=400, soql="FROM Opportunity", body=[
        {"message": f"Bad value {EVIL}", "errorCode": "MALFORMED_QUERY"}])
    log = tmp_path / "roe.log"
    res = roe("-v", "--log-file", str(log), "sync", "--source", "salesforce")
    assert res.exit_code == 3, res.output
    assert "Error:" in res.stderr and SHOWN in res.stderr
    assert_inert(res.output + log.read_text(encoding="utf-8"))


def test_log_lines_show_control_characters(tmp_path):
    from roe_cli import logsetup

    log = tmp_path / "roe.log"
    logsetup.setup_logging(False, str(log))
    try:
        logging.getLogger("roe.test").warning("account %s skipped", EVIL)
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()
    text = log.read_text(encoding="utf-8")
    assert_inert(text)
    assert f"account {SHOWN} skipped" in text
