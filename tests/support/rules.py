"""Helpers shared by the rules-file tests (test_config, test_rules_cmd): the shipped rules.toml,
edits of it, and the catalogue of mistakes each reported with its file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.demo import roster
from roe_cli.rulesfile import Problem, RulesFileError, load_rules
from roe_cli.shared.errors import EXIT_USAGE

from ..conftest import RULES

SHIPPED = RULES.read_text(encoding="utf-8")
ROSTER_EMAILS = {p.email for p in roster.PEOPLE}


def edited(old: str, new: str, text: str = SHIPPED) -> str:
    """The shipped file with one exact, unique edit."""
    assert text.count(old) == 1, f"{old!r} is not unique in the text"
    return text.replace(old, new)


def line_of(text: str, snippet: str) -> int:
    """The 1-based line of the only line containing ``snippet``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if snippet in line]
    assert len(hits) == 1, f"{snippet!r} is on lines {hits}"
    return hits[0]


def problems_of(path: Path) -> tuple[Problem, ...]:
    with pytest.raises(RulesFileError) as info:
        load_rules(path)
    assert info.value.exit_code == EXIT_USAGE
    return info.value.problems


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


# (what, old text, new text, key, the text on the line the problem is on, words of the message)
MISTAKES = [
    ("unknown key", "window_days = 30", "windw_days = 30", "rules.OWN004.windw_days",
     "windw_days = 30", ["unknown key 'windw_days'", "did you mean 'window_days'?"]),
    ("unknown rule code", "[rules.OWN005]", "[rules.OWN007]", "rules.OWN007",
     "[rules.OWN007]", ["unknown rule code 'OWN007'", "OWN001, OWN002"]),
    ("rule code in lower case", "[rules.OWN001]", "[rules.own001]", "rules.own001",
     "[rules.own001]", ["unknown rule code 'own001'", "did you mean 'OWN001'?"]),
    ("bad type", "max_idle_days = 21", 'max_idle_days = "21"', "rules.HND003.max_idle_days",
     'max_idle_days = "21"', ["expected a whole number", '"21"']),
    ("bad type: true for a number", "sla_days = 7", "sla_days = true", "rules.HND001.sla_days",
     "sla_days = true", ["expected a whole number, got true"]),
    ("bad value", "min_activities = 3", "min_activities = 0", "rules.OWN004.min_activities",
     "min_activities = 0", ["must be more than 0"]),
    ("bad severity", 'severity = "low"', 'severity = "critical"', "rules.OWN004.severity",
     'severity = "critical"', ["'critical' is not allowed", "'low', 'medium' or 'high'"]),
    ("severity typo", 'severity = "low"', 'severity = "lwo"', "rules.OWN004.severity",
     'severity = "lwo"', ["did you mean 'low'?"]),
    ("bad choice in a list", 'objects = ["account", "contact", "opportunity"]',
     'objects = ["account", "contacts", "opportunity"]', "rules.OWN002.objects[1]",
     'objects = ["account", "contacts"', ["'contacts' is not allowed", "did you mean 'contact'?"]),
    ("bad fallback", 'fallback = "territory" ', 'fallback = "teritory" ', "rules.OWN002.fallback",
     'fallback = "teritory"', ["'teritory' is not a fallback", "did you mean 'territory'?"]),
    ("missing match", 'match = { country = ["AU", "NZ", "JP", "SG", "IN"] }\n', "",
     "territories[4].match", None, ["missing required key 'match'"]),
    ("empty match", 'match = { country = ["AU", "NZ", "JP", "SG", "IN"] }', "match = {}",
     "territories[4].match", "match = {}", ["at least one of country"]),
    ("empty list in a match", 'match = { country = ["AU", "NZ", "JP", "SG", "IN"] }',
     "match = { country = [] }", "territories[4].match.country", "match = { country = [] }",
     ["must not be empty"]),
    ("bare string for a list", 'match = { country = ["US", "CA"] }', 'match = { country = "US" }',
     "territories[3].match.country", 'match = { country = "US" }',
     ["expected a list", 'write ["US"]']),
    ("min above max", 'match = { country = ["AU", "NZ", "JP", "SG", "IN"] }',
     'match = { country = ["AU"], min_employees = 500, max_employees = 100 }', "territories[4].match",
     "max_employees = 100", ["min_employees (500) is more than max_employees (100)"]),
    ("unknown key in a match", 'match = { country = ["AU", "NZ", "JP", "SG", "IN"] }',
     'match = { countries = ["AU"] }', "territories[4].match.countries", 'countries = ["AU"]',
     ["unknown key 'countries'", "did you mean 'country'?"]),
    ("unknown team", 'team = "NA West"', 'team = "NA Wset"', "territories[2].team",
     'team = "NA Wset"', ["unknown team 'NA Wset'", "did you mean 'NA West'?"]),
    ("default owner not an e-mail", 'default_owner = "mia@example.com"', 'default_owner = "mia"',
     "territories[1].default_owner", 'default_owner = "mia"', ["'mia' is not an e-mail address"]),
    ("team member not an e-mail", '"rosa@example.com", "sven@example.com",',
     '"rosa@example.com", "sven(at)example.com",', "teams[2].members[9]", "sven(at)example.com",
     ["is not an e-mail address"]),
    ("unknown key in a team", 'name = "APAC"\nmembers', 'nmae = "APAC"\nmembers', "teams[5].nmae",
     'nmae = "APAC"', ["unknown key 'nmae'", "did you mean 'name'?"]),
    ("unknown top-level table", "[settings]", "[setings]", "setings", "[setings]",
     ["unknown key 'setings'", "did you mean 'settings'?"]),
    ("unknown setting", "free_email_domains =", "free_mail_domains =", "settings.free_mail_domains",
     "free_mail_domains =", ["did you mean 'free_email_domains'?"]),
    ("role_map value not text", '"VP Sales" = "EXEC"', '"VP Sales" = ["EXEC"]',
     'role_map."VP Sales"', '"VP Sales" = ["EXEC"]', ["expected text in quotes, got a list"]),
    ("bad date", "expires = 2099-12-31", 'expires = "2099-13-01"', "exceptions[0].expires",
     'expires = "2099-13-01"', ["'2099-13-01' is not a date"]),
    ("date and time for a date", "expires = 2099-12-31", "expires = 2099-12-31T10:00:00",
     "exceptions[0].expires", "expires = 2099-12-31T10:00:00", ["give a date like"]),
    ("missing expiry", "expires = 2099-12-31\n", "", "exceptions[0].expires", None,
     ["missing required key 'expires'"]),
    ("object without a type", 'object = "account:001D00000000000006"', 'object = "001D00000000000006"',
     "exceptions[0].object", 'object = "001D00000000000006"', ["not of the form type:id"]),
    ("object of an unknown type", 'object = "account:001D00000000000006"',
     'object = "acount:001D00000000000006"', "exceptions[0].object", "acount:001D",
     ["'acount' is not an object type", "did you mean 'account'?"]),
    ("unknown rule in an exception", 'rule = "OWN005"', 'rule = "OWN05"', "exceptions[0].rule",
     'rule = "OWN05"', ["unknown rule code 'OWN05'", "did you mean 'OWN005'?"]),
]
