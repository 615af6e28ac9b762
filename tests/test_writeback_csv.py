"""`roe reassign --csv`: good files plan, bad files are refused with every problem by row (exit 2)."""

from __future__ import annotations

import pytest

from roe_cli import plans
from tests.support.writeback import ANA, BEN, CLEO, DAN, make_org, snapshot

HEADER = "object_type,object_id,new_owner\n"


@pytest.fixture
def org(engine):
    return make_org(engine)


@pytest.fixture
def reassign_csv(roe, engine, tmp_path):
    """Write ``content`` (text or bytes) to a CSV, run reassign on it; assert nothing was written."""

    def run(content, *extra):
        path = tmp_path / "changes.csv"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        before = snapshot(engine)
        result = roe("reassign", "--csv", str(path), "-o", str(tmp_path / "plan.json"), *extra)
        assert snapshot(engine) == before
        if result.exit_code != 0:
            assert not (tmp_path / "plan.json").exists()
            assert "Traceback" not in result.output
        return result

    return run


def refused(result, *lines):
    assert result.exit_code == 2, result.output
    assert "nothing was planned" in result.stderr or "cannot be read" in result.stderr or \
        "problem" in result.stderr
    for line in lines:
        assert line in result.stderr, f"{line!r} not in:\n{result.stderr}"


def test_a_good_csv_plans_each_row(reassign_csv, tmp_path, org):
    result = reassign_csv(
        HEADER
        + f"account,{org['accounts'][0]},dan@example.com\n"
        + f"Contact,{org['contacts'][0]},{DAN}\n"  # object type in any case, owner by id
        + f"opportunity,{org['opportunities'][0]},ben@EXAMPLE.com\n"  # e-mails case-insensitive
        + f"account,{org['accounts'][3]},{ANA}\n"  # already Ana's: unchanged
    )
    assert result.exit_code == 0, result.output
    assert "3 owner change(s) planned" in result.stdout and "1 record(s) already have" in result.stdout
    plan = plans.load_plan(tmp_path / "plan.json")
    assert [(c.object_type, c.expected, c.new, c.why) for c in plan.changes] == [
        ("account", CLEO, DAN, {"kind": "csv", "row": 2}),
        ("contact", CLEO, DAN, {"kind": "csv", "row": 3}),
        ("opportunity", CLEO, BEN, {"kind": "csv", "row": 4}),
    ]
    assert plan.origin == {"kind": "csv", "file": "changes.csv"}


def test_excel_bom_semicolons_odd_headers_and_blank_rows_are_fine(reassign_csv, tmp_path, org):
    content = ("\ufeff Object_Type ; OBJECT_ID;New_Owner \r\n"
               f"account;{org['accounts'][0]};dan@example.com\r\n"
               ";;\r\n"
               f"account ; {org['accounts'][1]} ; dan@example.com \r\n")
    result = reassign_csv(content.encode("utf-8"))
    assert result.exit_code == 0, result.output
    assert [c.why["row"] for c in plans.load_plan(tmp_path / "plan.json").changes] == [2, 4]


def test_missing_columns(reassign_csv, org):
    refused(reassign_csv(f"object_type,object_id\naccount,{org['accounts'][0]}\n"),
            "row 1: missing column new_owner")


def test_unknown_columns(reassign_csv, org):
    refused(reassign_csv(f"object_type,object_id,new_owner,owner\naccount,{org['accounts'][0]},{DAN},x\n"),
            "row 1: unknown column 'owner'")
    refused(reassign_csv(f"object_type,object_id,new_ownr\naccount,{org['accounts'][0]},{DAN}\n"),
            "missing column new_owner", "did you mean 'new_owner'")


def test_unknown_object_types_and_records(reassign_csv, org):
    refused(reassign_csv(HEADER + f"lead,{org['accounts'][0]},{DAN}\n"
                         + f"account,001NOPE,{DAN}\n"
                         + f"account,,{DAN}\n"),
            "row 2: object_type 'lead' is not one of account, contact, opportunity",
            "row 3: no account '001NOPE' in the demo mirror",
            "row 4: object_id is empty")


def test_unknown_and_inactive_new_owners(reassign_csv, org):
    refused(reassign_csv(HEADER + f"account,{org['accounts'][0]},zed@example.com\n"
                         + f"account,{org['accounts'][1]},cleo@example.com\n"
                         + f"account,{org['accounts'][2]},\n"),
            "row 2: new owner 'zed@example.com' is not a demo user",
            "row 3: new owner 'cleo@example.com' (Cleo) is inactive",
            "row 4: new_owner is empty")


def test_the_same_record_twice_with_different_owners(reassign_csv, tmp_path, org):
    acc = org["accounts"][0]
    refused(reassign_csv(HEADER + f"account,{acc},{DAN}\naccount,{acc},{BEN}\n"),
            f"row 3: account {acc} is also on row 2 with a different new owner")
    result = reassign_csv(HEADER + f"account,{acc},{DAN}\naccount,{acc},dan@example.com\n")
    assert result.exit_code == 0, result.output  # the same owner twice: planned once, said so
    assert "repeats row 2" in result.stdout
    assert len(plans.load_plan(tmp_path / "plan.json").changes) == 1


def test_empty_files(reassign_csv, org):
    refused(reassign_csv(b""), "the file is empty")
    refused(reassign_csv(b"\xef\xbb\xbf\r\n"), "the file is empty")
    refused(reassign_csv(HEADER), "the file has a header but no rows")


def test_wrong_encodings(reassign_csv, org):
    latin1 = (HEADER + f"account,{org['accounts'][0]},dan@example.com\n"
              + f"account,{org['accounts'][1]},José\n").encode("latin-1")
    refused(reassign_csv(latin1), "row 3: the file is not UTF-8 (Excel: Save As 'CSV UTF-8')")
    utf16 = (HEADER + f"account,{org['accounts'][0]},dan@example.com\n").encode("utf-16")
    refused(reassign_csv(utf16), "not UTF-8 (Excel: Save As 'CSV UTF-8')")


def test_a_row_with_too_many_values(reassign_csv, org):
    refused(reassign_csv(HEADER + f"account,{org['accounts'][0]},{DAN},extra\n"),
            "row 2: 4 values, but the header has 3 columns")


def test_every_problem_is_listed_at_once_in_row_order(reassign_csv, org):
    result = reassign_csv(HEADER
                          + f"account,{org['accounts'][0]},{DAN}\n"  # fine
                          + f"lead,x,{DAN}\n"
                          + f"account,{org['accounts'][1]},nobody\n"
                          + f"contact,{org['contacts'][0]},cleo@example.com\n"
                          + f"account,{org['accounts'][0]},{BEN}\n")
    refused(result, "4 problems")
    lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip().startswith("row ")]
    assert [ln.split(":")[0] for ln in lines] == ["row 3", "row 4", "row 5", "row 6"]


def test_a_csv_on_a_mirror_with_two_sources_needs_source(engine, reassign_csv, org):
    make_org(engine, source="hubspot")
    result = reassign_csv(HEADER + f"account,{org['accounts'][0]},{DAN}\n")
    assert result.exit_code == 2 and "several sources (demo, hubspot)" in result.stderr
    assert "--source" in result.stderr
    result = reassign_csv(HEADER + f"account,{org['accounts'][0]},{DAN}\n", "--source", "hubspot")
    assert result.exit_code == 0 and "planned on hubspot" in result.stdout


def test_salesforce_15_character_ids_are_read_as_18():
    assert plans.normalize_id("salesforce", "001D000000IqhSL") == "001D000000IqhSLIAZ"
    assert plans.normalize_id("hubspot", "123456789012345") == "123456789012345"


def test_ids_that_excel_turned_into_numbers(reassign_csv, org):
    refused(reassign_csv(HEADER + "account,1.23457E+11,dan@example.com\n"
                         + f"account,{org['accounts'][0]},51234567.0\n"),
            "row 2: object_id '1.23457E+11' looks like an id Excel turned into a number",
            "row 3: new_owner '51234567.0' looks like an id Excel turned into a number")
