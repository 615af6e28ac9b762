"""`roe export kpi`'s leading indicators beyond activity counts: accounts touched, handoffs and
their first touch, opportunities and referrals; and week rows that roll up into months and
quarters exactly."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select, update

from roe_cli import export
from roe_cli.models import accounts, activities, contacts, opportunities, owners, ownership_changes
from tests.support.rules import edited, write
from tests.support.writeback import ANA, BEN, CLEO, DAN, make_org

HANDOFF_COLS = ["handoffs_received", "handoffs_touched_in_sla", "median_days_to_first_touch"]


def kpi(roe, tmp_path, *args, name="kpi.csv", rules=None):
    target = tmp_path / name
    res = roe("export", "kpi", "-o", str(target), *args, rules=rules)
    assert res.exit_code == 0, res.output
    if name.endswith(".csv"):
        return pd.read_csv(target, encoding="utf-8-sig", dtype={"period_start": str, "period_end": str})
    if name.endswith(".xlsx"):
        return pd.read_excel(target, dtype={"period_start": str, "period_end": str})
    return pd.read_parquet(target)


@pytest.fixture
def handoff_org(engine):
    """make_org's six accounts (0-2 Cleo's, 3-5 Ana's; contact k0 of each owned like it, k1 by
    Ben; deal 0 open, deal 1 closed), with handoffs whose every figure is known."""
    org = make_org(engine)
    acc = org["accounts"]
    con = org["contacts"]  # account n's contacts: 2n, 2n+1
    opp = org["opportunities"]  # account n's deals: 2n (open), 2n+1 (closed)

    def change(account, new, when, object_type="account"):
        return {"source": "demo", "object_type": object_type, "object_id": account,
                "old_owner_id": CLEO, "new_owner_id": new, "changed_at": when, "origin": "sync"}

    def act(i, owner, when, account=None, contact=None, deal=None, deleted=False):
        return {"source": "demo", "id": i, "kind": "call", "account_id": account,
                "contact_id": contact, "opportunity_id": deal, "owner_id": owner,
                "occurred_at": when, "deleted": deleted}

    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == acc[2]).values(deleted=True))
        conn.execute(contacts.insert(), {"source": "demo", "id": "003GONE", "account_id": acc[5],
                                         "owner_id": ANA, "name": "Gone", "deleted": True})
        conn.execute(ownership_changes.insert(), [
            change(acc[3], BEN, datetime(2026, 9, 30)),          # H0: Wed of the week split at Oct 1
            change(acc[3], ANA, datetime(2026, 10, 5, 9)),       # H1
            change(acc[4], ANA, datetime(2026, 10, 6)),          # H2
            change(acc[5], ANA, datetime(2026, 10, 7, 12)),      # H3
            change(acc[0], BEN, datetime(2026, 10, 8)),          # H4
            change(acc[1], BEN, datetime(2026, 10, 12)),         # H5
            change(acc[2], DAN, datetime(2026, 10, 13)),         # deleted account: not a handoff
            change(con[6], ANA, datetime(2026, 10, 6), "contact"),  # a contact: not a handoff
        ])
        conn.execute(activities.insert(), [
            act("B0", BEN, datetime(2026, 10, 1), account=acc[3]),        # H0 touched after 1 day
            act("A1", ANA, datetime(2026, 10, 7, 9), account=acc[3]),     # H1 touched after 2 days
            act("A0", ANA, datetime(2026, 10, 1), account=acc[4]),        # before H2: not a touch
            act("B1", BEN, datetime(2026, 10, 7), account=acc[4]),        # Ben, not Ana: not H2's
            act("A2", ANA, datetime(2026, 10, 16), contact=con[8]),       # H2 via a contact, 10 days
            act("A3", ANA, datetime(2026, 10, 8), contact="003GONE"),     # deleted contact: H3 untouched
            act("A4", ANA, datetime(2026, 10, 9), account=acc[5], deleted=True),  # deleted: no touch
            act("B4", BEN, datetime(2026, 10, 9, 12), deal=opp[0]),       # H4 via the open deal, 1.5 days
            act("B5", BEN, datetime(2026, 10, 19), account=acc[1]),       # H5 after exactly 7 days
        ])
        for n, (created, source, won) in {
            6: (datetime(2026, 10, 6), "partner referral", False),  # any case matches
            7: (datetime(2026, 10, 6), "Employee Referral", True),
            8: (datetime(2026, 10, 6), "Web", False),
            9: (datetime(2026, 10, 20), None, True),
        }.items():
            conn.execute(update(opportunities).where(opportunities.c.id == opp[n]).values(
                created_at=created, lead_source=source, is_won=won, owner_id=ANA))
    return org


def rows_by(frame, owner_id):
    return {r["period_start"]: r for r in frame.to_dict("records") if r["owner_id"] == owner_id}


def test_handoff_figures_per_week_match_a_hand_built_org_where_each_value_is_known(roe, handoff_org, tmp_path):
    frame = kpi(roe, tmp_path, "--since", "2026-09-28", "--until", "2026-10-25")
    ana, ben, dan = rows_by(frame, ANA), rows_by(frame, BEN), rows_by(frame, DAN)
    # Week of Oct 5: Ana got acc3 (H1, touched after 2 days), acc4 (H2, first touch through a
    # contact after 10 days: over the 7 of HND001) and acc5 (H3, never touched: her call on a
    # deleted contact and her deleted activity do not count). Median of 2 and 10 days: 6.
    assert [ana["2026-10-05"][c] for c in HANDOFF_COLS] == [3, 1, 6.0]
    # Ben got acc0 (H4) on Oct 8, touched through its open deal 1.5 days later.
    assert [ben["2026-10-05"][c] for c in HANDOFF_COLS] == [1, 1, 1.5]
    # Week of Oct 12: Ben got acc1 (H5), touched exactly 7 days later: within the SLA.
    assert [ben["2026-10-12"][c] for c in HANDOFF_COLS] == [1, 1, 7.0]
    # The week of Sep 28 is split at Oct 1: H0 (Sep 30, Ben, touched Oct 1) is in Sep 28-30.
    assert [ben["2026-09-28"][c] for c in HANDOFF_COLS] == [1, 1, 1.0]
    assert (ben["2026-09-28"]["period_end"], ben["2026-10-01"]["handoffs_received"]) == ("2026-09-30", 0)
    # Dan's handoff is of a deleted account; the change of a contact to Ana is no handoff.
    assert sum(r["handoffs_received"] for r in dan.values()) == 0
    assert frame["handoffs_received"].sum() == 6
    # Weeks without a handoff have an empty median, never 0.
    assert pd.isna(ana["2026-10-19"]["median_days_to_first_touch"])


def test_touched_within_sla_follows_hnd001_sla_days_of_the_rules_file(roe, handoff_org, tmp_path):
    rules = write(tmp_path, edited("sla_days = 7", "sla_days = 10"))
    frame = kpi(roe, tmp_path, "--since", "2026-09-28", "--until", "2026-10-25", rules=rules)
    # With 10 days, Ana's H2 (first touch after exactly 10 days) is within the SLA too.
    assert [rows_by(frame, ANA)["2026-10-05"][c] for c in HANDOFF_COLS] == [3, 2, 6.0]


def test_accounts_touched_opportunities_and_referrals_match_the_hand_built_org(roe, handoff_org, tmp_path):
    frame = kpi(roe, tmp_path, "--since", "2026-09-28", "--until", "2026-10-25")
    ana, ben = rows_by(frame, ANA), rows_by(frame, BEN)
    # Ana, week of Oct 5: calls A1 (acc3) and A3 (a deleted contact: no account): 2 activities,
    # 1 account touched. Deals 6, 7, 8 created: two referrals (case ignored), one of them won.
    w = ana["2026-10-05"]
    assert (w["activities"], w["accounts_touched"]) == (2, 1)
    assert (w["opportunities_created"], w["referrals_created"], w["referrals_won"]) == (3, 2, 1)
    # Ben, week of Oct 5: B1 on acc4 and B4 on acc0's deal: 2 accounts.
    assert ben["2026-10-05"]["accounts_touched"] == 2
    # Deal 9 (no lead source, won) created Oct 20: an opportunity, not a referral.
    w = ana["2026-10-19"]
    assert (w["opportunities_created"], w["referrals_created"], w["referrals_won"]) == (1, 0, 0)


def _segment(day: date) -> date:
    """The test's own rule: a week starts on Monday, or on the 1st when the month changes in it."""
    return max(day - timedelta(days=day.weekday()), day.replace(day=1))


def _mirror_figures(engine, since: date, until: date) -> dict[tuple[str, str, str], int]:
    """accounts_touched, opportunities_created and referrals_* per (owner, week segment, column),
    computed in Python from the mirror's rows."""
    lo, hi = datetime.combine(since, datetime.min.time()), datetime.combine(until + timedelta(days=1), datetime.min.time())
    with engine.connect() as conn:
        live_acc = set(conn.execute(select(accounts.c.id).where(accounts.c.deleted.is_(False))).scalars())
        con = {r.id: r.account_id for r in conn.execute(select(contacts).where(contacts.c.deleted.is_(False)))}
        opp = {r.id: r.account_id for r in conn.execute(select(opportunities).where(opportunities.c.deleted.is_(False)))}
        acts = conn.execute(select(activities).where(activities.c.deleted.is_(False))).all()
        deals = conn.execute(select(opportunities).where(opportunities.c.deleted.is_(False))).all()
    touched: dict[tuple[str, date], set[str]] = defaultdict(set)
    for a in acts:
        if a.owner_id is None or a.occurred_at is None or not lo <= a.occurred_at < hi:
            continue
        for acc in (a.account_id, con.get(a.contact_id), opp.get(a.opportunity_id)):
            if acc in live_acc:
                touched[(a.owner_id, _segment(a.occurred_at.date()))].add(acc)
    out: Counter[tuple[str, str, str]] = Counter()
    for (owner, seg), accs in touched.items():
        out[(owner, seg.isoformat(), "accounts_touched")] = len(accs)
    referral = {"partner referral", "employee referral"}
    for d in deals:
        if d.owner_id is None or d.created_at is None or not lo <= d.created_at < hi:
            continue
        key = (d.owner_id, _segment(d.created_at.date()).isoformat())
        out[(*key, "opportunities_created")] += 1
        if (d.lead_source or "").lower() in referral:
            out[(*key, "referrals_created")] += 1
            out[(*key, "referrals_won")] += int(d.is_won)
    return out


@pytest.mark.parametrize("name", ["kpi.csv", "kpi.xlsx", "kpi.parquet"])
def test_every_format_read_back_matches_the_mirror_on_the_demo_org(roe, org, tmp_path, name):
    since, until = date(2026, 3, 1), date(2026, 10, 31)
    frame = kpi(roe, tmp_path, "--since", since.isoformat(), "--until", until.isoformat(), name=name)
    assert list(frame.columns) == [c.name for c in export.KPI_COLUMNS]
    expected = _mirror_figures(org, since, until)
    cols = ("accounts_touched", "opportunities_created", "referrals_created", "referrals_won")
    got = Counter({(r["owner_id"], str(r["period_start"])[:10], c): int(r[c])
                   for r in frame.to_dict("records") for c in cols if int(r[c])})
    assert got == expected
    assert frame["referrals_created"].sum() > 0 and frame["referrals_won"].sum() > 0
    assert frame["handoffs_received"].sum() > 0  # the demo org's CRM history hands accounts over


def test_week_rows_roll_up_into_month_and_quarter_rows_exactly(roe, org, tmp_path):
    # May 13 (a Wednesday) to Oct 20: crosses five month ends and two quarter ends (Jun 30, Sep 30).
    span = ("--since", "2026-05-13", "--until", "2026-10-20")
    frames = {p: kpi(roe, tmp_path, *span, "--period", p, name=f"k-{p}.parquet")
              for p in ("week", "month", "quarter")}
    week = frames["week"]
    assert (week["period_start"].map(lambda d: d.month) == week["period_end"].map(lambda d: d.month)).all()
    assert len(week) > 0 and week["handoffs_received"].sum() > 0
    for period, bucket in (("month", lambda d: (d.year, d.month)),
                           ("quarter", lambda d: (d.year, (d.month - 1) // 3))):
        weeks = week.assign(bucket=week["period_start"].map(bucket))
        rolled = weeks.groupby(["source", "owner_id", "bucket"])[list(export.ADDITIVE)].sum()
        other = frames[period].assign(bucket=frames[period]["period_start"].map(bucket))
        direct = other.groupby(["source", "owner_id", "bucket"])[list(export.ADDITIVE)].sum()
        assert len(other) == len(direct)  # one row per owner and month/quarter
        pd.testing.assert_frame_equal(rolled.sort_index(), direct.sort_index(), check_dtype=False)
    first = frames["month"]["period_start"].min()
    assert first == date(2026, 5, 13)  # clipped to --since


def test_from_and_to_are_the_same_as_since_and_until(roe, handoff_org, tmp_path):
    a = kpi(roe, tmp_path, "--from", "2026-09-28", "--to", "2026-10-25", name="a.csv")
    b = kpi(roe, tmp_path, "--since", "2026-09-28", "--until", "2026-10-25", name="b.csv")
    pd.testing.assert_frame_equal(a, b)


def test_an_empty_mirror_exports_only_the_header(roe, engine, tmp_path):
    with engine.begin() as conn:
        conn.execute(owners.insert(), {"source": "demo", "id": "1", "email": "a@example.com", "active": True})
    frame = kpi(roe, tmp_path)
    assert len(frame) == 0 and list(frame.columns) == [c.name for c in export.KPI_COLUMNS]
