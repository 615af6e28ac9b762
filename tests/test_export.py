"""`roe export findings|kpi|runs`: files read back with pandas and compared with the audit's JSON
and with counts taken straight from the database."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql

from roe_cli import export
from roe_cli.findings import FIELDS
from roe_cli.models import accounts, activities, contacts, owners
from roe_cli.shared.errors import UsageError

AS_OF = "2026-11-01"
COLUMNS = [*FIELDS, "owner_name", "account_name"]


def audit_json(roe) -> dict:
    result = roe("audit", "--as-of", AS_OF, "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def export_ok(roe, *args) -> str:
    result = roe("export", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def read_back(path) -> list[dict]:
    """The file's rows as dicts of text (None for empty), whatever the format."""
    suffix = path.suffix
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in frame.to_dict("records")]
    if suffix == ".xlsx":
        frame = pd.read_excel(path, dtype=object)
    else:
        frame = pd.read_parquet(path)
    rows = []
    for row in frame.to_dict("records"):
        out = {}
        for k, v in row.items():
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                out[k] = None
            elif isinstance(v, pd.Timestamp | datetime):
                out[k] = pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                out[k] = str(v)
        rows.append(out)
    return rows


def as_text(finding: dict) -> dict:
    """A finding of the audit JSON as the text an export holds."""
    out = {}
    for k, v in finding.items():
        if k == "details":
            out[k] = v
        else:
            out[k] = None if v is None else str(v)
    return out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_findings_export_matches_the_audit_json(roe, org, tmp_path, suffix):
    audit = audit_json(roe)
    target = tmp_path / f"findings{suffix}"
    out = export_ok(roe, "findings", "-o", str(target))
    assert f"Wrote {len(audit['findings'])} finding(s)" in out
    rows = read_back(target)
    assert list(rows[0]) == COLUMNS
    assert len(rows) == len(audit["findings"])
    with org.connect() as conn:
        names = {
            (a.id): a.name for a in conn.execute(select(accounts.c.id, accounts.c.name))
        }
        owner_names = {o.id: o.name for o in conn.execute(select(owners.c.id, owners.c.name))}
    for row, finding in zip(rows, audit["findings"], strict=True):
        details = json.loads(row.pop("details"))
        assert details == finding["details"]
        expected = as_text({k: v for k, v in finding.items() if k not in ("details", "team")})
        assert {k: row[k] for k in expected} == expected
        assert row["account_name"] == names.get(finding["account_id"])
        assert row["owner_name"] == owner_names.get(finding["owner_id"])


def test_json_and_jsonl_exports_carry_the_same_findings(roe, org, tmp_path):
    audit = audit_json(roe)
    export_ok(roe, "findings", "-o", str(tmp_path / "f.json"))
    export_ok(roe, "findings", "-o", str(tmp_path / "f.jsonl"))
    export_ok(roe, "findings", "-o", str(tmp_path / "f.txt"), "--format", "jsonl")
    as_array = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    as_lines = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text(encoding="utf-8").splitlines()]
    assert as_array == as_lines
    assert (tmp_path / "f.txt").read_text(encoding="utf-8") == (tmp_path / "f.jsonl").read_text(encoding="utf-8")
    assert [{k: f[k] for k in FIELDS} for f in as_array] == [{k: f[k] for k in FIELDS} for f in audit["findings"]]
    assert pd.read_json(tmp_path / "f.jsonl", lines=True).shape == (len(audit["findings"]), len(COLUMNS))


def test_export_takes_the_filters_of_roe_findings(roe, org, tmp_path):
    listed = json.loads(roe("findings", "--rule", "OWN002", "--severity", "high", "--format", "json").stdout)
    target = tmp_path / "own002.csv"
    export_ok(roe, "findings", "-o", str(target), "--rule", "OWN002", "--severity", "high")
    rows = read_back(target)
    assert rows and {r["rule"] for r in rows} == {"OWN002"}
    assert [int(r["id"]) for r in rows] == [f["id"] for f in listed["findings"]]
    owner = rows[0]["owner_email"]
    export_ok(roe, "findings", "-o", str(target), "--owner", owner, "--status", "open")
    rows = read_back(target)
    assert rows and {(r["owner_email"], r["status"]) for r in rows} == {(owner, "open")}
    export_ok(roe, "findings", "-o", str(target), "--status", "resolved")
    assert read_back(target) == []
    assert target.read_bytes().startswith(b"\xef\xbb\xbfid,rule,")  # header even when empty


def _own001_contacts(roe) -> list[dict]:
    found = json.loads(roe("findings", "--rule", "OWN001", "--format", "json").stdout)["findings"]
    assert len(found) >= 3
    return found


def test_hostile_names_are_neutralized_in_csv_and_kept_as_text_in_xlsx(roe, org, tmp_path):
    flagged = _own001_contacts(roe)
    hostile = {
        flagged[0]["object_id"]: "+1 555",
        flagged[1]["object_id"]: "@SUM(A1)",
        flagged[2]["object_id"]: "-2+3",
    }
    account = flagged[0]["account_id"]
    with org.begin() as conn:
        for cid, name in hostile.items():
            conn.execute(update(contacts).where(contacts.c.id == cid).values(name=name))
        conn.execute(update(accounts).where(accounts.c.id == account).values(name='=HYPERLINK("http://x")'))
    roe("audit", "--as-of", AS_OF, "--fail-on", "never")
    csv_file, xlsx_file = tmp_path / "f.csv", tmp_path / "f.xlsx"
    export_ok(roe, "findings", "-o", str(csv_file), "--rule", "OWN001")
    export_ok(roe, "findings", "-o", str(xlsx_file), "--rule", "OWN001")

    by_id = {r["object_id"]: r for r in read_back(csv_file)}
    for cid, name in hostile.items():
        assert by_id[cid]["object_name"] == "'" + name
    assert by_id[flagged[0]["object_id"]]["account_name"] == '\'=HYPERLINK("http://x")'
    assert all(not (v or "").startswith(("=", "+", "-", "@")) for r in by_id.values() for v in r.values())

    sheet = openpyxl.load_workbook(xlsx_file)["findings"]
    header = [c.value for c in sheet[1]]
    name_col, account_col, id_col = (header.index(k) for k in ("object_name", "account_name", "object_id"))
    seen = {}
    for row in sheet.iter_rows(min_row=2):
        seen[row[id_col].value] = row
    for cid, name in hostile.items():
        cell = seen[cid][name_col]
        assert (cell.value, cell.data_type) == (name, "s")  # text, exactly as in the CRM; no formula
    cell = seen[flagged[0]["object_id"]][account_col]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x")', "s")


def test_accents_survive_every_format(roe, org, tmp_path):
    flagged = _own001_contacts(roe)
    cid, account = flagged[0]["object_id"], flagged[0]["account_id"]
    with org.begin() as conn:
        conn.execute(update(contacts).where(contacts.c.id == cid).values(name="José Ñúñez-Łukasz 田中"))
        conn.execute(update(accounts).where(accounts.c.id == account).values(name="Société Générale Øresund"))
    roe("audit", "--as-of", AS_OF, "--fail-on", "never")
    for suffix in (".csv", ".xlsx", ".parquet", ".json"):
        target = tmp_path / f"f{suffix}"
        export_ok(roe, "findings", "-o", str(target), "--rule", "OWN001")
        if suffix == ".json":
            rows = json.loads(target.read_text(encoding="utf-8"))
        else:
            rows = read_back(target)
        row = next(r for r in rows if r["object_id"] == cid)
        assert (row["object_name"], row["account_name"]) == ("José Ñúñez-Łukasz 田中", "Société Générale Øresund")
    assert (tmp_path / "f.csv").read_bytes()[:3] == b"\xef\xbb\xbf"  # the BOM Excel needs


def test_format_comes_from_the_extension_or_the_flag(roe, org, tmp_path):
    result = roe("export", "findings", "-o", str(tmp_path / "findings.txt"))
    assert result.exit_code == 2
    assert "--format" in result.stderr
    assert not (tmp_path / "findings.txt").exists()
    export_ok(roe, "findings", "-o", str(tmp_path / "findings.dat"), "--format", "parquet")
    assert (tmp_path / "findings.dat").read_bytes()[:4] == b"PAR1"
    result = roe("export", "findings", "-o", str(tmp_path / "no" / "such" / "folder.csv"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_a_failed_export_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous export\n", encoding="utf-8")

    def rows():
        for i in range(12_000):  # more than one batch reaches the temporary file first
            if i == 11_000:
                raise RuntimeError("disk full")
            yield {"n": i}

    for fmt in ("csv", "xlsx", "parquet", "jsonl"):
        with pytest.raises(RuntimeError, match="disk full"):
            export.write_rows(target, fmt, [export.Column("n", "int")], rows())
        assert target.read_text(encoding="utf-8") == "previous export\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_full_disk_is_reported_not_a_traceback(tmp_path):
    def rows():
        yield {"n": 1}
        raise OSError(28, "No space left on device")

    with pytest.raises(UsageError, match="No space left on device"):
        export.write_rows(tmp_path / "out.csv", "csv", [export.Column("n", "int")], rows())
    assert list(tmp_path.iterdir()) == []


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(export.writers, "XLSX_MAX_ROWS", 4)  # header + 3 rows a sheet
    result = export.write_rows(tmp_path / "big.xlsx", "xlsx", [export.Column("n", "int")],
                               ({"n": i} for i in range(7)), sheet="findings")
    assert result.rows == 7
    book = openpyxl.load_workbook(tmp_path / "big.xlsx")
    assert book.sheetnames == ["findings", "findings (2)", "findings (3)"]
    values = [c.value for ws in book for row in ws.iter_rows(min_row=2) for c in row]
    assert values == list(range(7))
    assert [ws["A1"].value for ws in book] == ["n"] * 3


def test_excel_safe():
    for text in ("=1+1", "+1 555", "-5", "@SUM(A1)", "\tx", "\rx"):
        assert export.excel_safe(text) == "'" + text
    for text in ("Acme", "", "1-800", "a=b", "José"):
        assert export.excel_safe(text) == text


# --- roe export kpi --------------------------------------------------------------------------


def _live_activities(engine, since: date, until: date):
    a = activities
    with engine.connect() as conn:
        return conn.execute(
            select(a.c.owner_id, a.c.kind, a.c.occurred_at).where(
                a.c.deleted.is_(False), a.c.owner_id.is_not(None),
                a.c.occurred_at >= datetime.combine(since, datetime.min.time()),
                a.c.occurred_at < datetime.combine(until + timedelta(days=1), datetime.min.time()),
            )
        ).all()


def test_kpi_per_week_matches_counts_taken_straight_from_the_database(roe, org, tmp_path):
    since, until = date(2026, 8, 3), date(2026, 10, 31)  # a Monday to a Saturday
    target = tmp_path / "kpi.csv"
    out = export_ok(roe, "kpi", "-o", str(target), "--since", since.isoformat(), "--until", until.isoformat())
    frame = pd.read_csv(target, encoding="utf-8-sig", keep_default_na=False, dtype={"active": str})
    assert list(frame.columns) == [c.name for c in export.KPI_COLUMNS]
    assert f"Wrote {len(frame)} owner-week row(s)" in out

    with org.connect() as conn:
        live_total = conn.execute(
            select(func.count()).select_from(activities).where(
                activities.c.deleted.is_(False), activities.c.owner_id.is_not(None),
                activities.c.occurred_at >= datetime(2026, 8, 3), activities.c.occurred_at < datetime(2026, 11, 1),
            )
        ).scalar()
        deleted = conn.execute(select(func.count()).select_from(activities).where(activities.c.deleted.is_(True))).scalar()
        people = {o.id: o for o in conn.execute(select(owners))}
    assert deleted > 0  # the demo has deleted activities; they must not count
    assert frame["activities"].sum() == live_total

    expected = Counter()
    for owner_id, kind, when in _live_activities(org, since, until):
        # its week's Monday, or the 1st of its month when the week began in the month before
        monday = when.date() - timedelta(days=when.weekday())
        expected[(owner_id, max(monday, when.date().replace(day=1)).isoformat(), kind)] += 1
    kinds = [*export.ACTIVITY_KINDS]
    for row in frame.to_dict("records"):
        for kind in kinds:
            assert row[kind] == expected[(row["owner_id"], row["period_start"], kind)], (row, kind)
        assert row["activities"] == sum(row[k] for k in kinds) + row["other"]
        owner = people[row["owner_id"]]
        assert (row["owner_email"], row["owner_name"], row["crm_role"]) == (owner.email, owner.name, owner.role)
    assert sum(expected.values()) == live_total

    # Weeks run Monday to Sunday, split where a month ends: 13 weeks, of which the weeks of
    # Aug 31 and Sep 28 cross into the next month: 15 rows per active owner, zeros too.
    starts = sorted(set(frame["period_start"]))
    assert starts[0] == "2026-08-03" and len(starts) == 15
    assert {"2026-08-31", "2026-09-01", "2026-09-28", "2026-10-01"} <= set(starts)
    assert all(date.fromisoformat(s).weekday() == 0 or s.endswith("-01") for s in starts)
    ends = dict(zip(frame["period_start"], frame["period_end"], strict=False))
    assert ends["2026-08-31"] == "2026-08-31" and ends["2026-09-01"] == "2026-09-06"
    assert ends["2026-09-28"] == "2026-09-30" and ends["2026-10-01"] == "2026-10-04"
    assert len(set(frame["period"])) == 13
    active = frame[frame["active"] == "true"]
    assert active.groupby("owner_id").size().eq(15).all()
    assert len(active["owner_id"].unique()) == sum(o.active for o in people.values())
    assert (frame["activities"] == 0).any()
    assert set(frame[frame["active"] == "false"]["activities"]) <= set(range(1, 10_000))
    roles = dict(zip(frame["owner_email"], frame["role"], strict=False))
    assert roles["ivo@example.com"] == "SE"  # the rules file's team role wins over the CRM role


@pytest.mark.parametrize("period, label", [("month", "2026-10"), ("quarter", "2026-Q3")])
def test_kpi_rolls_up_to_month_and_quarter(roe, org, tmp_path, period, label):
    since, until = date(2026, 7, 1), date(2026, 10, 31)
    target = tmp_path / f"kpi-{period}.parquet"
    export_ok(roe, "kpi", "-o", str(target), "--period", period, "--since", since.isoformat(),
              "--until", until.isoformat())
    frame = pd.read_parquet(target)
    assert label in set(frame["period"])
    expected = Counter()
    for owner_id, _kind, when in _live_activities(org, since, until):
        key = f"{when:%Y-%m}" if period == "month" else f"{when.year}-Q{(when.month - 1) // 3 + 1}"
        expected[(owner_id, key)] += 1
    got = {(r["owner_id"], r["period"]): r["activities"] for r in frame.to_dict("records") if r["activities"]}
    assert got == dict(expected)
    assert frame["activities"].dtype == "int64"


def test_kpi_xlsx_matches_csv(roe, org, tmp_path):
    export_ok(roe, "kpi", "-o", str(tmp_path / "k.csv"), "--period", "month")
    export_ok(roe, "kpi", "-o", str(tmp_path / "k.xlsx"), "--period", "month")
    from_csv = pd.read_csv(tmp_path / "k.csv", encoding="utf-8-sig")
    from_xlsx = pd.read_excel(tmp_path / "k.xlsx")
    assert len(from_csv) > 0
    assert from_csv["activities"].tolist() == from_xlsx["activities"].tolist()
    assert from_csv["owner_email"].tolist() == from_xlsx["owner_email"].tolist()
    assert from_csv["period"].tolist() == from_xlsx["period"].tolist()


def test_kpi_period_sql_for_postgresql():
    stmt = select(export.period_start_sql(activities.c.occurred_at, "quarter", "postgresql"))
    sql = str(stmt.compile(dialect=postgresql.dialect()))
    assert "date_trunc" in sql and "AS DATE" in sql


def test_period_helpers():
    assert export.period_start_of(date(2026, 1, 1), "week") == date(2025, 12, 29)
    assert export.period_label(date(2025, 12, 29), "week") == "2026-W01"
    assert export.period_label(date(2026, 11, 1), "quarter") == "2026-Q4"
    assert export.next_period(date(2026, 10, 1), "quarter") == date(2027, 1, 1)
    assert export.next_period(date(2026, 12, 1), "month") == date(2027, 1, 1)


def test_kpi_bad_dates_are_usage_errors(roe, org, tmp_path):
    result = roe("export", "kpi", "-o", str(tmp_path / "k.csv"), "--since", "2026-10-01", "--until", "2026-09-01")
    assert result.exit_code == 2
    assert "is after --until" in result.stderr
    result = roe("export", "kpi", "-o", str(tmp_path / "k.csv"), "--since", "yesterday")
    assert result.exit_code == 2


# --- roe export runs -------------------------------------------------------------------------


def test_runs_export_is_the_trend_of_the_audit_summaries(roe, org, tmp_path):
    first = audit_json(roe)
    with org.begin() as conn:  # resolve one OWN002 finding: its owner comes back to work
        inactive = [o for o in conn.execute(select(owners.c.id).where(owners.c.active.is_(False))).scalars()]
        conn.execute(update(owners).where(owners.c.id == inactive[0]).values(active=True))
    second = audit_json(roe)
    target = tmp_path / "runs.csv"
    export_ok(roe, "runs", "-o", str(target))
    frame = pd.read_csv(target, encoding="utf-8-sig")
    assert sorted(set(frame["run_id"])) == [1, first["run_id"], second["run_id"]]
    for doc in (first, second):
        rows = frame[frame["run_id"] == doc["run_id"]].set_index("rule")
        for code, counts in doc["summary"]["rules"].items():
            for key in ("open", "waived", "new", "reopened", "resolved"):
                assert rows.loc[code, key] == counts[key], (doc["run_id"], code, key)
    assert second["summary"]["rules"]["OWN002"]["resolved"] > 0

    by_owner = tmp_path / "runs-owner.parquet"
    export_ok(roe, "runs", "-o", str(by_owner), "--by", "owner")
    owners_frame = pd.read_parquet(by_owner)
    last = owners_frame[owners_frame["run_id"] == second["run_id"]].set_index("owner")
    for owner, counts in second["summary"]["by_owner"].items():
        assert (last.loc[owner, "open"], last.loc[owner, "waived"]) == (counts["open"], counts["waived"])


def test_an_export_refuses_to_replace_a_device(roe, org):
    """Exports are renamed into place; aimed at /dev/null they must not replace it."""
    result = roe("export", "findings", "-o", "/dev/null", "--format", "csv")
    assert result.exit_code == 2
    assert "not a regular file" in result.stderr
    assert Path("/dev/null").is_char_device()
