"""`roe rules`: the listing, `--check` (exit 2 on every kind of mistake) and `--explain`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from roe_cli.rules import REGISTRY

from .conftest import RULES
from .support.rules import MISTAKES, SHIPPED, edited, line_of


def flat(text: str) -> str:
    """Output with rich's line wrapping undone, for robust substring checks."""
    return " ".join(text.split())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_lists_every_rule_with_its_settings(roe):
    result = roe("rules")
    assert result.exit_code == 0, result.output
    for code, rule in REGISTRY.items():
        assert code in result.stdout and rule.name in result.stdout
    assert "window_days = 30" in result.stdout
    assert "objects = [account, contact, opportunity]" in flat(result.stdout)


def test_rules_json(roe, tmp_path):
    path = write(tmp_path, "[rules.OWN004]\nwindow_days = 14\n[rules.HND003]\nenabled = false\n")
    result = roe("rules", "--format", "json", rules=path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rules_file"] == str(path)
    rows = {r["code"]: r for r in data["rules"]}
    assert list(rows) == list(REGISTRY)
    assert rows["OWN004"]["parameters"] == {"window_days": 14, "min_activities": 3, "exempt_roles": ["SE"]}
    assert rows["OWN004"]["set_in_file"] == ["window_days"]
    assert rows["HND003"]["enabled"] is False and rows["OWN002"]["severity"] == "high"


def test_check_the_shipped_file(roe, tmp_path):
    result = roe("rules", "--check")
    assert result.exit_code == 0, result.output
    assert f"{RULES} is valid: 12 rules (12 enabled), 7 teams, 5 territories, 1 exception" in result.stdout
    assert "People not checked" in flat(result.stdout)


def test_check_counts_what_is_switched_off(roe, tmp_path):
    path = write(tmp_path, edited("[rules.OWN005]", "[rules.OWN005]\nenabled = false"))
    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 0, result.output
    assert "12 rules (11 enabled), 7 teams, 5 territories, 1 exception" in result.stdout


def test_check_never_creates_a_mirror(roe, tmp_path):
    db = tmp_path / "none.db"
    result = roe("rules", "--check", db=str(db))
    assert result.exit_code == 0, result.output
    assert not db.exists()


@pytest.mark.parametrize(("old", "new", "key", "on_line", "words"),
                         [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_check_exits_2_naming_file_key_and_line(roe, tmp_path, old, new, key, on_line, words):
    text = edited(old, new)
    path = write(tmp_path, text)
    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 2
    err = flat(result.stderr)
    line = line_of(text, on_line) if on_line else None
    assert f"{path}:{line}: {key}: " in err if line else f": {key}: " in err
    for word in words:
        assert word in err
    assert "Traceback" not in result.output


def test_problems_print_literally_one_per_line(roe, tmp_path):
    # Line 100 must not become an emoji (":100:"), "[[teams]]" must not vanish as a style tag,
    # and a long problem stays on one line even when the terminal is narrow.
    text = "\n" * 99 + '[[territories]]\nname = "X"\nteam = "Nobody"\nmatch = { country = ["DE"] }\n'
    path = write(tmp_path, text)
    result = roe("rules", "--check", rules=path, env={"COLUMNS": "60"})
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first == (f"Error: {path}:102: territories[0].team: unknown team 'Nobody'; "
                     "define it with a [[teams]] entry")


def test_check_syntax_error_and_missing_file(roe, tmp_path):
    text = edited("window_days = 30", "window_days = = 30")
    result = roe("rules", "--check", rules=write(tmp_path, text))
    assert result.exit_code == 2
    assert f":{line_of(text, 'window_days = = 30')}:15: rules.OWN004.window_days: TOML syntax error" in result.stderr

    result = roe("rules", "--check", rules=tmp_path / "missing.toml")
    assert result.exit_code == 2
    assert f"No rules file at {tmp_path / 'missing.toml'}" in flat(result.stderr)
    assert "ROE_RULES" in result.stderr


def test_check_json_lists_problems(roe, tmp_path):
    text = edited("window_days = 30", "windw_days = 30")
    text = edited('team = "NA West"', 'team = "NA Wset"', text)
    path = write(tmp_path, text)
    result = roe("rules", "--check", "--format", "json", rules=path)
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert [(p["line"], p["key"]) for p in data["problems"]] == [
        (line_of(text, "NA Wset"), "territories[2].team"),
        (line_of(text, "windw_days"), "rules.OWN004.windw_days"),
    ]


def test_check_people_against_the_mirror(roe, tmp_path):
    assert roe("demo", "--accounts", "5").exit_code == 0
    result = roe("rules", "--check")
    assert result.exit_code == 0, result.output
    assert "Every e-mail it names is an owner in the mirror" in flat(result.stdout)

    text = edited('"malik@example.com", "ana@example.com",', '"malik@example.com", "anna@example.com",')
    path = write(tmp_path, text)
    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 2
    assert (
        f"{path}:{line_of(text, 'anna@example.com')}: teams[1].members[3]: unknown team member "
        "'anna@example.com': no owner in the mirror has this e-mail; did you mean 'ana@example.com'?"
    ) in flat(result.stderr)


def test_check_warns_without_failing(roe, tmp_path):
    path = write(tmp_path, edited("expires = 2099-12-31", "expires = 2020-01-01"))
    result = roe("rules", "--check", rules=path)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "exceptions[0].expires" in result.stderr


def test_explain(roe):
    result = roe("rules", "--explain", "own004")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "OWN004 non-owner-engagement" in out
    assert "Why: either the owner is wrong" in out
    assert re.search(r"window_days\s*│\s*whole number > 0\s*│\s*30\s*│\s*30\s*│", out)


def test_explain_without_a_rules_file_shows_defaults(roe, tmp_path):
    result = roe("rules", "--explain", "OWN002", "--format", "json", rules=tmp_path / "none.toml")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rules_file"] is None
    fallback = {p["name"]: p for p in data["parameters"]}["fallback"]
    assert fallback["value"] == "territory" and "owner's e-mail" in fallback["takes"]
    assert "Fix:" in data["doc"]


def test_explain_unknown_rule(roe):
    result = roe("rules", "--explain", "OWN04")
    assert result.exit_code == 2
    assert "Unknown rule 'OWN04'; did you mean 'OWN004'?" in result.stderr


def test_rules_with_a_broken_file_exits_2(roe, tmp_path):
    path = write(tmp_path, SHIPPED.replace("sla_days = 7", "sla_days = -1"))
    for args in (("rules",), ("rules", "--explain", "HND001")):
        result = roe(*args, rules=path)
        assert result.exit_code == 2
        assert "rules.HND001.sla_days: must be more than 0" in result.stderr
