"""`roe report`: the weekly review in the terminal and as one HTML page (issue 11).

The handoff figures are checked on a hand-built org where every value is known; the rest on the
audited 300-account demo org, compared with the mirror. The browser test is in
tests/test_report_browser.py."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import func, insert, select, update

from roe_cli.handoffs import handoff_sla, summarize
from roe_cli.models import (
    accounts,
    activities,
    audit_runs,
    contacts,
    findings,
    opportunities,
    owners,
    ownership_changes,
)

D = datetime  # shorthand for the times below
AS_OF = "2026-11-01"  # a Sunday: the report's 12 weeks start on Monday 2026-08-10


def _hand_built_org(engine) -> None:
    """Cleo (u0) hands accounts to Ana (u1) and Ben (u2); each case is explained inline."""
    with engine.begin() as conn:
        conn.execute(insert(owners), [
            {"source": "demo", "id": i, "email": f"{n.lower()}@example.com", "name": n, "active": True}
            for i, n in (("u0", "Cleo"), ("u1", "Ana"), ("u2", "Ben"))])
        conn.execute(insert(accounts), [
            {"source": "demo", "id": a, "name": f"Account {a}", "owner_id": o, "deleted": gone}
            for a, o, gone in (("a1", "u1", False), ("a2", "u1", False), ("a3", "u1", False),
                               ("a4", "u1", False), ("a5", "u2", False), ("a6", "u2", True),
                               ("a7", "u2", False), ("a8", "u2", False))])
        conn.execute(insert(contacts), [
            {"source": "demo", "id": "c2", "account_id": "a2", "owner_id": "u1", "deleted": False},
            {"source": "demo", "id": "c5", "account_id": "a5", "owner_id": "u2", "deleted": True}])
        conn.execute(insert(opportunities), [
            {"source": "demo", "id": "d3", "account_id": "a3", "owner_id": "u1", "deleted": False}])
        changes = [
            ("a1", "u0", "u1", D(2026, 10, 10), "crm-history"),
            ("a1", "u0", "u1", D(2026, 10, 10), "observed"),  # the same change seen twice: once
            ("a2", "u0", "u1", D(2026, 10, 10), "crm-history"),
            ("a3", "u0", "u1", D(2026, 10, 15), "crm-history"),
            ("a4", "u0", "u1", D(2026, 10, 20), "crm-history"),
            ("a5", "u0", "u2", D(2026, 10, 25), "crm-history"),
            ("a6", "u0", "u2", D(2026, 10, 10), "crm-history"),  # deleted account: not counted
            ("a7", "u2", "u2", D(2026, 10, 10), "observed"),  # no new owner: not a handoff
            ("a8", "u0", "u2", D(2026, 8, 1), "crm-history"),  # before the 12 weeks: not counted
        ]
        conn.execute(insert(ownership_changes), [
            {"source": "demo", "object_type": "account", "object_id": a, "old_owner_id": o,
             "new_owner_id": n, "changed_at": t, "origin": origin} for a, o, n, t, origin in changes])
        acts = [
            # (id, owner, account, contact, deal, time, deleted)
            ("x1", "u1", "a1", None, None, D(2026, 10, 12), False),  # a1: 2 days, within 7
            ("x2", "u0", "a2", None, None, D(2026, 10, 11), False),  # a2: the old owner's: ignored
            ("x3", "u1", "a2", None, None, D(2026, 10, 5), False),  # a2: before the change: ignored
            ("x4", "u1", None, "c2", None, D(2026, 10, 20), False),  # a2 via its contact: 10 days, late
            ("x5", "u1", "a3", None, None, D(2026, 10, 16), True),  # a3: deleted: ignored
            ("x6", "u1", None, None, "d3", D(2026, 10, 19), False),  # a3 via its deal: 4 days, within
            ("x7", "u1", "a3", None, None, D(2026, 10, 25), False),  # a3: a later touch: not the first
            ("x8", "u2", None, "c5", None, D(2026, 10, 26), False),  # a5 via a deleted contact: ignored
            ("x9", "u1", "a4", None, None, D(2026, 11, 2), False),  # a4: after the as-of: not yet
        ]
        conn.execute(insert(activities), [
            {"source": "demo", "id": i, "kind": "call", "owner_id": o, "account_id": a,
             "contact_id": c, "opportunity_id": d, "occurred_at": t, "deleted": gone}
            for i, o, a, c, d, t, gone in acts])


def test_handoff_sla_counts_each_reps_handoffs_first_touch_and_median_on_a_hand_built_org(engine):
    _hand_built_org(engine)
    rows = handoff_sla(engine, D(2026, 8, 10), D(2026, 11, 1), as_of=D(2026, 11, 1))
    first = {(h.rep_id, h.account_id): h.first_touch_at for h in rows}
    # a1..a4 to Ana, a5 to Ben; a6 (deleted), a7 (same owner), a8 (too early) are not handoffs
    assert first == {("u1", "a1"): D(2026, 10, 12), ("u1", "a2"): D(2026, 10, 20),
                     ("u1", "a3"): D(2026, 10, 19), ("u1", "a4"): None, ("u2", "a5"): None}
    ana, ben = summarize(rows, 7)
    # Ana: 4 received, 3 touched (a1, a2, a3), 2 within 7 days (a1 at 2 days, a3 at 4 days;
    # a2 at 10 days is late), median of 2, 10 and 4 days = 4.0
    assert (ana.rep_id, ana.received, ana.touched, ana.within_sla, ana.median_days) == ("u1", 4, 3, 2, 4.0)
    # Ben: a5 received, its only activity is on a deleted contact: untouched, no median
    assert (ben.rep_id, ben.received, ben.touched, ben.within_sla, ben.median_days) == ("u2", 1, 0, 0, None)


def _row(output: str, name: str) -> list[str]:
    line = next(line for line in output.splitlines() if name in line)
    return [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]


def test_report_prints_the_handoff_sla_per_receiving_rep_from_the_hand_built_org(roe, engine,
                                                                                 tmp_path):
    _hand_built_org(engine)
    rules = tmp_path / "rules.toml"  # HND001's SLA at 9 days: Ana's a2 (10 days) is still late
    rules.write_text("[rules.HND001]\nsla_days = 9\n")
    res = roe("audit", "--as-of", AS_OF, "--fail-on", "never", rules=rules)
    assert res.exit_code == 0, res.output
    res = roe("report", rules=rules)
    assert res.exit_code == 0, res.output
    handoffs = res.stdout.split("Handoff SLA since 2026-08-10 (first touch within 9 days)")[1]
    handoffs = handoffs.split("Activity per rep")[0]
    assert _row(handoffs, "Ana <ana@example.com>")[1:] == ["demo", "4", "3", "2", "4.0"]
    assert _row(handoffs, "Ben <ben@example.com>")[1:] == ["demo", "1", "0", "0", "-"]
    assert "Cleo" not in handoffs


def test_report_trend_shows_open_new_and_resolved_per_run_as_the_stored_runs_say(roe, org):
    assert roe("audit", "--as-of", "2026-11-08", "--fail-on", "never").exit_code == 0
    res = roe("report", "--runs", "12")
    assert res.exit_code == 0, res.output
    with org.connect() as conn:
        runs = conn.execute(select(audit_runs.c.id, audit_runs.c.summary)
                            .where(audit_runs.c.status == "done").order_by(audit_runs.c.id)).all()
    assert len(runs) == 2
    trend = res.stdout.split("Owners with the most")[0]
    for run_id, summary in runs:
        s = json.loads(summary)
        cells = _row(trend, f"│ {run_id:>3} │")
        assert cells[-3:] == [f"{s['open']:,}", f"{s['new'] + s['reopened']:,}", f"{s['resolved']:,}"]
    # --runs 1: only the latest run
    res = roe("report", "--runs", "1")
    trend = res.stdout.split("Owners with the most")[0]
    assert "over the last 1 run(s)" in trend
    assert f"│ {runs[0][0]:>3} │" not in trend and f"│ {runs[1][0]:>3} │" in trend


def test_report_lists_the_owners_with_most_open_findings_with_the_mirrors_counts(roe, org):
    res = roe("report")
    assert res.exit_code == 0, res.output
    with org.connect() as conn:
        top = conn.execute(
            select(owners.c.name, owners.c.email, func.count())
            .join(findings, (findings.c.owner_id == owners.c.id) & (findings.c.source == owners.c.source))
            .where(findings.c.status == "open").group_by(owners.c.id, owners.c.name, owners.c.email)
            .order_by(func.count().desc(), owners.c.id).limit(3)).all()
    section = res.stdout.split("Owners with the most open findings")[1].split("Handoff SLA")[0]
    for name, email, n in top:
        assert _row(section, f"{name} <{email}>")[-1] == f"{n:,}"


def test_report_runs_of_zero_or_below_is_a_usage_error_that_says_what_to_pass(roe, org):
    for bad in ("0", "-3"):
        res = roe("report", "--runs", bad)
        assert res.exit_code == 2
        assert f"--runs must be 1 or more, not {bad}" in res.stderr
        assert "--runs 12" in res.stderr


def test_report_before_any_audit_says_to_run_one(roe, engine):
    _hand_built_org(engine)
    res = roe("report")
    assert res.exit_code == 2
    assert "No audit has run" in res.stderr and "roe audit" in res.stderr


def test_report_html_refuses_to_replace_a_file_without_force_and_replaces_it_with(roe, org, tmp_path):
    out = tmp_path / "report.html"
    out.write_text("keep me")
    res = roe("report", "--html", str(out))
    assert res.exit_code == 2 and "already exists" in res.stderr and "--force" in res.stderr
    assert out.read_text() == "keep me"
    res = roe("report", "--html", str(out), "--force")
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    missing = tmp_path / "no-such-folder" / "r.html"
    res = roe("report", "--html", str(missing))
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_report_html_has_no_network_reference_and_escapes_hostile_owner_names(roe, org, tmp_path):
    hostile = "<script>alert(1)</script>\x1b[2J"
    with org.begin() as conn:
        busiest = conn.execute(select(findings.c.owner_id).where(findings.c.status == "open")
                               .group_by(findings.c.owner_id).order_by(func.count().desc())
                               .limit(1)).scalar_one()
        conn.execute(update(owners).where(owners.c.id == busiest).values(name=hostile))
    out = tmp_path / "report.html"
    assert roe("report", "--html", str(out)).exit_code == 0
    page = out.read_text()
    assert "<script>alert(1)" not in page and "\x1b" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in page  # in the tables, as text
    # no external script, style sheet or font: no <script src>, no <link>, no @import or url()
    # in the style (plotly's own code is inlined; tests/test_report_browser.py records requests)
    assert not re.search(r"<script[^>]*\ssrc=", page) and "<link" not in page
    style = page.split("<style>")[1].split("</style>")[0]
    assert "@import" not in style and "url(" not in style


def test_report_in_the_terminal_shows_hostile_names_as_escapes_not_markup(roe, org):
    with org.begin() as conn:
        conn.execute(update(owners).values(name="[bold]Evil\x1b[2J"))
    res = roe("report")
    assert res.exit_code == 0, res.output
    assert "\x1b[2J" not in res.stdout and "[bold]Evil\\x1b[2J" in res.stdout


def test_report_activity_per_rep_per_week_by_kind_equals_a_count_of_the_mirrors_rows(org):
    from collections import Counter
    from datetime import timedelta

    from roe_cli.report import build_report

    report = build_report(org, None, 12)
    assert report.since == D(2026, 8, 10) and report.as_of == D(2026, 11, 1)
    expected: Counter = Counter()
    with org.connect() as conn:
        for source, owner, kind, when in conn.execute(
                select(activities.c.source, activities.c.owner_id, activities.c.kind,
                       activities.c.occurred_at).where(activities.c.deleted.is_(False))):
            if owner is None or not (report.since <= when <= report.as_of):
                continue
            monday = when.date() - timedelta(days=when.weekday())
            expected[(source, owner, monday, kind)] += 1
    got: Counter = Counter()
    for a in report.activity:
        for kind, n in a.by_kind.items():
            if n:
                got[(a.source, a.rep_id, a.week_start, kind)] += n
    assert sum(expected.values()) > 1000  # the demo org has activity in these weeks
    assert got == expected
