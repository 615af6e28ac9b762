"""rules.toml: the shipped file's values, and every kind of mistake named by file, key and line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sys
import types

import pytest
from pydantic import BaseModel, ConfigDict

from roe_cli import rulesfile as config_module
from roe_cli.rules import REGISTRY
from roe_cli.rulesfile import (
    RulesFileError,
    check_people,
    did_you_mean,
    load_rules,
    locate_keys,
    parse_rules,
    render_key,
)
from roe_cli.shared.errors import EXIT_USAGE, ConfigError, UsageError

from .conftest import RULES
from .support.rules import (
    MISTAKES,
    ROSTER_EMAILS,
    SHIPPED,
    edited,
    line_of,
    problems_of,
    write,
)

# --- the shipped file ---------------------------------------------------------------------------


def test_shipped_rules_load_with_the_values_they_state():
    config = load_rules(RULES)

    assert config.path == RULES
    assert config.sha256 == hashlib.sha256(RULES.read_bytes()).hexdigest()
    assert config.free_email_domains == ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
    assert config.role_map["Account Executive"] == "AE"
    assert config.role_map["Solutions Engineer"] == "SE"
    assert len(config.role_map) == 7

    assert [t.name for t in config.teams] == [
        "Solutions Engineering", "EMEA Enterprise", "EMEA Commercial", "NA West", "NA East",
        "APAC", "Rest of World",
    ]
    assert config.teams[0].role == "SE" and config.teams[0].members == ("ivo@example.com",)
    assert all(t.role is None for t in config.teams[1:])  # territory teams only group people
    assert len(config.teams[1].members) == 11

    assert [t.name for t in config.territories] == [
        "EMEA Enterprise", "EMEA Commercial", "NA West", "NA East", "APAC",
    ]
    enterprise = config.territories[0]
    assert enterprise.team == "EMEA Enterprise"
    assert enterprise.default_owner == "ana@example.com"
    assert enterprise.match.country == ("DE", "FR", "GB", "NL", "SE")
    assert enterprise.match.min_employees == 1000 and enterprise.match.max_employees is None
    assert config.territories[2].match.state[:2] == ("CA", "WA")

    assert list(config.rules) == list(REGISTRY)
    assert config.rules["OWN001"].allowed_roles == ("SDR",)
    assert config.rules["OWN002"].severity == "high"
    assert config.rules["OWN002"].objects == ("account", "contact", "opportunity")
    assert config.rules["OWN002"].fallback == "territory"
    assert config.rules["OWN003"].prefer == "most_active"
    own004 = config.rules["OWN004"]
    assert (own004.severity, own004.window_days, own004.min_activities, own004.exempt_roles) == (
        "low", 30, 3, ("SE",))
    assert config.rules["OWN006"].allowed_roles == ("SE",)
    assert config.rules["HND001"].sla_days == 7 and config.rules["HND001"].severity == "high"
    assert config.rules["HND002"].grace_days == 14
    assert config.rules["HND002"].stage_roles["customer"] == ("AM", "CSM")
    assert config.rules["HND003"].max_idle_days == 21
    assert all(p.enabled for p in config.rules.values())

    (waiver,) = config.exceptions
    assert (waiver.rule, waiver.object_type, waiver.object_id) == ("OWN005", "account", "001D00000000000006")
    assert waiver.object == "account:001D00000000000006"
    assert waiver.approved_by == "victoria@example.com"
    assert waiver.expires == dt.date(2099, 12, 31)
    assert config.salesforce is None and config.hubspot is None
    assert config.warnings == ()


def test_shipped_rules_name_only_people_of_the_demo_org():
    config = load_rules(RULES)
    assert check_people(config, ROSTER_EMAILS) == []
    named = config.emails_named()
    assert len(named) == sum(len(t.members) for t in config.teams) + len(config.territories)
    ivo = named[0]
    assert (ivo.email, ivo.key, ivo.line, ivo.kind) == (
        "ivo@example.com", "teams[0].members[0]", line_of(SHIPPED, 'members = ["ivo@example.com"]'),
        "team member")
    mia = [n for n in named if n.key == "territories[1].default_owner"][0]
    assert mia.line == line_of(SHIPPED, 'default_owner = "mia@example.com"')
    assert "victoria@example.com" not in {n.email for n in named}  # approvers are not owners


def test_roles_come_from_teams_with_a_role_first_then_role_map():
    config = load_rules(RULES)
    assert config.role_of("Ivo@Example.com ", "Pre-Sales Consultant") == "SE"  # team with a role
    # Ana is in a territory team without a role: her CRM role decides.
    assert config.role_of("ana@example.com", "Account Executive") == "AE"
    assert config.role_of(None, "account executive") == "AE"  # CRM names compare ignoring case
    assert config.role_of("ana@example.com", "Pre-Sales Consultant") is None
    assert config.role_of(None, None) is None


def test_team_members_and_territory_lookup():
    config = load_rules(RULES)
    assert "ana@example.com" in config.team_members("EMEA Enterprise")
    assert len(config.team_members("Rest of World")) == 6
    with pytest.raises(KeyError):
        config.team_members("Nowhere")
    assert config.territory_of("de", None, None, 1000).name == "EMEA Enterprise"  # bounds inclusive
    assert config.territory_of("DE", None, None, 999).name == "EMEA Commercial"
    assert config.territory_of("DE", None, None, None).name == "EMEA Commercial"  # unknown size
    assert config.territory_of("US", "wa").name == "NA West"
    assert config.territory_of("US", "NY").name == "NA East"
    assert config.territory_of("BR") is None


def test_enabled_rules_in_registry_order_and_only():
    config = parse_rules('[rules.OWN003]\nenabled = false\n')
    codes = [rule.code for rule, _ in config.enabled_rules()]
    assert codes == [c for c in REGISTRY if c != "OWN003"]
    assert [r.code for r, _ in config.enabled_rules(["hnd001", "OWN004"])] == ["OWN004", "HND001"]
    rule, params = config.enabled_rules(["OWN004"])[0]
    assert params is config.rules["OWN004"] and rule is REGISTRY["OWN004"]
    with pytest.raises(UsageError, match="did you mean 'OWN004'"):
        config.enabled_rules(["OWN04"])
    with pytest.raises(UsageError, match="OWN003 is switched off"):
        config.enabled_rules(["OWN003"])


def test_config_is_immutable():
    config = load_rules(RULES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.teams = ()
    with pytest.raises(TypeError):
        config.role_map["CEO"] = "EXEC"
    with pytest.raises(TypeError):
        config.rules["OWN001"] = None
    with pytest.raises(Exception, match="frozen"):
        config.teams[0].name = "x"


def test_an_empty_file_takes_every_default():
    config = parse_rules("")
    assert config.teams == () and config.territories == () and config.exceptions == ()
    assert {code: p for code, p in config.rules.items()} == {c: r.params() for c, r in REGISTRY.items()}
    assert config.free_email_domains == config_module.DEFAULT_FREE_EMAIL_DOMAINS


def test_values_are_normalised():
    config = parse_rules(
        '[settings]\nfree_email_domains = ["GMX.de ", "@web.de"]\n'
        '[[teams]]\nname = "T"\nmembers = [" Ana@Example.COM "]\n'
        '[[territories]]\nname = "X"\nteam = "T"\ndefault_owner = "ANA@example.com"\n'
        'match = { industry = ["Software"], max_employees = 50 }\n'
        '[rules.OWN002]\nfallback = "Boss@Example.com"\n'
        '[[exceptions]]\nrule = "OWN001"\nobject = "contact:003X"\nreason = "r"\n'
        'approved_by = "vp@example.com"\nexpires = "2099-01-31"\n'
    )
    assert config.free_email_domains == ("gmx.de", "web.de")
    assert config.teams[0].members == ("ana@example.com",)
    assert config.territories[0].default_owner == "ana@example.com"
    assert config.territories[0].match.fits(industry="software", employees=50)
    assert not config.territories[0].match.fits(industry="software", employees=51)
    assert config.rules["OWN002"].fallback == "boss@example.com"
    assert [n.key for n in config.emails_named()][-1] == "rules.OWN002.fallback"
    assert config.exceptions[0].expires == dt.date(2099, 1, 31)  # an ISO string is accepted too


# --- mistakes: each names the file, the key and the line ----------------------------------------

@pytest.mark.parametrize(("old", "new", "key", "on_line", "words"),
                         [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_names_file_key_and_line(tmp_path, old, new, key, on_line, words):
    text = edited(old, new)
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    if on_line is not None:
        expected_line = line_of(text, on_line)
    else:  # a missing key: the line of the table it is missing from
        expected_line = problem.line
        assert expected_line is not None
        header = text.splitlines()[expected_line - 1].strip()
        assert header.startswith("[") and header.endswith("]"), header
    assert (problem.file, problem.key, problem.line) == (str(path), key, expected_line)
    for word in words:
        assert word in problem.message
    assert str(problem).startswith(f"{path}:{expected_line}: {key}: ")


def test_missing_match_points_at_its_territory(tmp_path):
    text = edited('match = { country = ["AU", "NZ", "JP", "SG", "IN"] }\n', "")
    (problem,) = problems_of(write(tmp_path, text))
    lines = text.splitlines()
    assert lines[problem.line - 1] == "[[territories]]"
    assert lines[problem.line:problem.line + 2] == ['name = "APAC"', 'team = "APAC"']


def test_every_problem_is_reported_at_once(tmp_path):
    text = edited("window_days = 30", "windw_days = 30")
    text = edited('team = "NA West"', 'team = "NA Wset"', text)
    text = edited("expires = 2099-12-31", 'expires = "someday"', text)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == f"{path} has 3 problems:"
    assert [line.strip().split(": ")[0] for line in lines[1:4]] == [  # in file order
        f"{path}:{line_of(text, 'NA Wset')}",
        f"{path}:{line_of(text, 'windw_days')}",
        f"{path}:{line_of(text, 'someday')}",
    ]
    assert "roe rules --check" in info.value.todo


def test_syntax_error_names_line_column_and_key(tmp_path):
    text = edited("window_days = 30", "window_days = = 30")
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert problem.line == line_of(text, "window_days = = 30")
    assert problem.column == len("window_days = ") + 1
    assert problem.key == "rules.OWN004.window_days"
    assert problem.message.startswith("TOML syntax error: invalid value")
    assert str(problem).startswith(f"{path}:{problem.line}:{problem.column}: rules.OWN004.window_days: ")


def test_syntax_error_in_an_array_of_tables(tmp_path):
    text = edited('name = "NA East"\nteam = "NA East"', 'name = "NA East"\nteam = NA East')
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.line == line_of(text, "team = NA East")
    assert problem.key == "territories[3].team"


def test_duplicate_key_is_a_syntax_error(tmp_path):
    text = edited("sla_days = 7", "sla_days = 7\nsla_days = 8")
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.line == line_of(text, "sla_days = 8")
    assert "cannot overwrite a value" in problem.message


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_rules(tmp_path / "nope.toml")
    assert info.value.what == f"No rules file at {tmp_path / 'nope.toml'}."
    assert "--rules / ROE_RULES" in info.value.todo and "example rules.toml" in info.value.todo


def test_a_folder_is_not_a_rules_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_rules(tmp_path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_bytes(b'[settings]\n# caf\xe9\n')
    (problem,) = problems_of(path)
    assert problem.line == 2 and "UTF-8" in problem.message


def test_duplicate_team_names(tmp_path):
    text = SHIPPED + '\n[[teams]]\nname = "APAC"\n'
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.key == "teams[7].name"
    assert problem.line == len(text.splitlines())
    apac_header = [i for i, line in enumerate(text.splitlines(), 1) if line == "[[teams]]"][5]
    assert problem.message == f"a team named 'APAC' is already defined (line {apac_header})"


def test_sections_of_the_wrong_shape(tmp_path):
    text = 'teams = "Field"\nrules = 3\n\n[[settings]]\nfree_email_domains = []\n'
    problems = {p.key: p for p in problems_of(write(tmp_path, text))}
    assert problems["teams"].line == 1 and problems["teams"].message == (
        'expected a list, got the text "Field": write ["Field"]')
    assert problems["rules"].line == 2 and "expected a table, got the number 3" in problems["rules"].message
    assert problems["settings"].line == 4 and "expected a table, got a list" in problems["settings"].message


# --- warnings: valid, but probably not meant ----------------------------------------------------


def test_expired_exceptions_are_warnings():
    text = edited("expires = 2099-12-31", "expires = 2020-01-01")
    config = parse_rules(text)
    warnings = {w.key: w for w in config.warnings}
    assert set(warnings) == {"exceptions[0].expires"}
    assert "expired on 2020-01-01" in warnings["exceptions[0].expires"].message


def test_default_owner_outside_the_team_is_a_warning():
    text = edited('default_owner = "sakura@example.com"', 'default_owner = "harper@example.com"')
    (warning,) = parse_rules(text).warnings
    assert warning.key == "territories[4].default_owner"
    assert "not a member of the team 'APAC'" in warning.message


# --- people against the mirror -------------------------------------------------------------------


def test_unknown_team_member_with_did_you_mean():
    text = edited('"malik@example.com", "ana@example.com",', '"malik@example.com", "anna@example.com",')
    config = parse_rules(text, "my-rules.toml")
    with pytest.raises(RulesFileError) as info:
        check_people(config, ROSTER_EMAILS)
    (problem,) = info.value.problems
    assert problem.file == "my-rules.toml"
    assert problem.key == "teams[1].members[3]"
    assert problem.line == line_of(text, "anna@example.com")
    assert problem.message.startswith("unknown team member 'anna@example.com'")
    assert "did you mean 'ana@example.com'?" in problem.message
    assert info.value.exit_code == EXIT_USAGE


def test_unknown_default_owner_and_fallback():
    text = edited('default_owner = "xavier@example.com"', 'default_owner = "xaver@example.com"')
    text = edited('fallback = "territory" ', 'fallback = "vp@example.com" ', text)
    with pytest.raises(RulesFileError) as info:
        check_people(parse_rules(text), ROSTER_EMAILS)
    by_key = {p.key: p for p in info.value.problems}
    assert set(by_key) == {"territories[2].default_owner", "rules.OWN002.fallback"}
    assert "did you mean 'xavier@example.com'?" in by_key["territories[2].default_owner"].message
    assert by_key["rules.OWN002.fallback"].line == line_of(text, "vp@example.com")
    assert "unknown fallback owner" in by_key["rules.OWN002.fallback"].message


def test_inactive_default_owner_is_a_warning():
    inactive = {"ana@example.com"}
    warnings = check_people(load_rules(RULES), ROSTER_EMAILS, inactive_emails=inactive)
    assert [w.key for w in warnings] == ["territories[0].default_owner"]


def test_mirror_people_reads_owner_emails_and_those_no_active_owner_has(engine):
    from sqlalchemy import insert

    from roe_cli.models import owners
    from roe_cli.rulesfile import mirror_people

    assert mirror_people(engine) is None  # no owners yet: nothing to check against
    with engine.begin() as conn:
        conn.execute(insert(owners), [
            {"source": "demo", "id": "u1", "email": " Ana@Example.com", "active": True},
            {"source": "demo", "id": "u2", "email": "leo@example.com", "active": False},
            {"source": "hubspot", "id": "9", "email": "ana@example.com", "active": False},
            {"source": "demo", "id": "u3", "email": None, "active": True},
        ])
    assert mirror_people(engine) == ({"ana@example.com", "leo@example.com"}, {"leo@example.com"})


def test_own002_fallback_is_validated_by_the_rule_itself():
    from pydantic import ValidationError

    from roe_cli.rules import own002

    assert own002.Params(fallback="manager").fallback == "manager"
    assert own002.Params(fallback=" Boss@Example.com ").fallback == "boss@example.com"
    with pytest.raises(ValidationError, match="'teritory' is not a fallback.*did you mean 'territory'"):
        own002.Params(fallback="teritory")


# --- connector tables ----------------------------------------------------------------------------


def test_hubspot_table_is_validated_by_the_connector_settings():
    settings = pytest.importorskip("connectors.hubspot.settings")
    config = parse_rules("[hubspot]\nrequests_per_10s = 190\n")
    assert isinstance(config.hubspot, settings.HubSpotSettings)
    assert config.hubspot.requests_per_10s == 190

    text = '[hubspot]\nrequests_per_10s = 190\nrequest_per_10s = 5\naccess_token = "pat-na1-xyz"\n'
    with pytest.raises(RulesFileError) as info:
        parse_rules(text)
    by_key = {p.key: p for p in info.value.problems}
    assert by_key["hubspot.request_per_10s"].line == 3
    assert "did you mean 'requests_per_10s'?" in by_key["hubspot.request_per_10s"].message
    assert "credentials are read only from the environment" in by_key["hubspot.access_token"].message
    assert "pat-na1" not in str(info.value)


def test_salesforce_table_is_validated_by_the_connector_settings():
    settings = pytest.importorskip("connectors.salesforce.settings")
    config = parse_rules('[salesforce]\nlifecycle_stage_field = "Lifecycle_Stage__c"\n')
    assert isinstance(config.salesforce, settings.SalesforceSettings)
    assert config.salesforce.lifecycle_stage_field == "Lifecycle_Stage__c"

    text = ('[salesforce]\nlifecycle_stage_field = "Lifecycle Stage"\ntimeout_seconds = "soon"\n'
            'password = "hunter2-secret"\n')
    with pytest.raises(RulesFileError) as info:
        parse_rules(text)
    by_key = {p.key: p for p in info.value.problems}
    assert set(by_key) == {"salesforce.lifecycle_stage_field", "salesforce.timeout_seconds",
                           "salesforce.password"}
    assert [by_key[k].line for k in sorted(by_key)] == [2, 4, 3]
    assert "expected a number" in by_key["salesforce.timeout_seconds"].message
    assert "read only from the environment" in by_key["salesforce.password"].message
    assert "hunter2" not in str(info.value)


def test_connector_table_uses_a_settings_model_when_there_is_one(monkeypatch):
    class FakeSettings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        api_version: str = "60.0"

    module = types.ModuleType("connectors.salesforce.settings")
    module.SalesforceSettings = FakeSettings
    monkeypatch.setitem(sys.modules, "connectors.salesforce.settings", module)
    config = parse_rules('[salesforce]\napi_version = "61.0"\n')
    assert config.salesforce == FakeSettings(api_version="61.0")
    with pytest.raises(RulesFileError, match=r"rules.toml:2: salesforce.api_versoin: unknown key"):
        parse_rules('[salesforce]\napi_versoin = "61.0"\n')


def test_connector_table_is_kept_as_is_without_a_settings_model(monkeypatch):
    monkeypatch.setattr(config_module.load, "_connector_settings_class", lambda source: None)
    config = parse_rules('[salesforce]\nlifecycle_stage_field = "Type"\n')
    assert config.salesforce == {"lifecycle_stage_field": "Type"}


# --- the pieces ----------------------------------------------------------------------------------


def test_locate_keys_handles_the_awkward_parts_of_toml():
    text = (
        'title = """\n'
        'not = "a key"\n'
        '"""\n'
        "[a.'b.c']\n"
        'x.y = 1  # dotted\n'
        '"quoted key" = [\n'
        '  "one",  # a comment, with a ] in it\n'
        "  'two',\n"
        "]\n"
        "[[t]]\n"
        "n = { p = 1, q = [1, {r = 2}] }\n"
        "[[t.sub]]\n"
        "z = 3\n"
        "[[t]]\n"
        "[[t.sub]]\n"
        "z = 4\n"
    )
    lines = locate_keys(text)
    assert ("not",) not in lines
    assert lines[("title",)] == 1
    assert lines[("a", "b.c")] == 4
    assert lines[("a", "b.c", "x", "y")] == 5
    assert lines[("a", "b.c", "quoted key", 0)] == 7
    assert lines[("a", "b.c", "quoted key", 1)] == 8
    assert lines[("t", 0, "n", "q", 1, "r")] == 11
    assert lines[("t", 0, "sub", 0, "z")] == 13
    assert lines[("t", 1)] == 14
    assert lines[("t", 1, "sub", 0, "z")] == 16


def test_render_key():
    assert render_key(("territories", 2, "match", "country")) == "territories[2].match.country"
    assert render_key(("role_map", "VP Sales")) == 'role_map."VP Sales"'


def test_did_you_mean():
    assert did_you_mean("windw_days", ["window_days", "enabled"]) == ["window_days"]
    assert did_you_mean("own001", list(REGISTRY)) == ["OWN001"]
    assert did_you_mean("OWN007", list(REGISTRY)) == []  # equally close to six codes: no guess
    assert did_you_mean("zzz", ["low", "high"]) == []


def test_windows_line_endings_and_a_byte_order_mark(tmp_path):
    text = edited("window_days = 30", "windw_days = 30")
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    (problem,) = problems_of(path)
    assert (problem.key, problem.line) == ("rules.OWN004.windw_days", line_of(text, "windw_days"))
