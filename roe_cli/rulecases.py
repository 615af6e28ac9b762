"""Rule cases: small TOML orgs with the findings they must produce, run in fresh in-memory mirrors.

One format and one runner for the project's own ``tests/rule_cases`` and users' cases
(``roe rules test PATH``). The format is documented in the README ("Rule cases").

:func:`load_cases` reads a file or a folder of ``.toml`` files (a :class:`~.shared.errors.ConfigError`
names the file and key of a mistake); :func:`run_case` builds the case's org in a new in-memory
SQLite mirror, runs the rules as of the case's ``as_of`` without storing anything, and compares the
findings (identity: rule, object, related user) with ``expect``; :func:`run_cases` does both and
:func:`junit_xml` turns the results into a JUnit report for CI.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from .audit import run_audit
from .db import open_database
from .models import account_team_members as team_table
from .models import accounts, activities, contacts, opportunities, owners, ownership_changes
from .rules import REGISTRY
from .rulesfile import RulesConfig, load_rules, parse_rules
from .shared.domains import email_domain, normalize_domain
from .shared.errors import ConfigError, RoeError
from .shared.text import suggest

SOURCE = "case"
FIX_TODO = "Fix the case file; the format is in the README, section \"Rule cases\"."

_FILE_KEYS = ("rule", "as_of", "owners", "rules", "params", "case")
_CASE_KEYS = ("name", "rule", "as_of", "owners", "rules", "params", "accounts", "contacts",
              "opportunities", "activities", "changes", "team", "expect")
_RECORD_KEYS = {
    "owners": ("id", "email", "name", "role", "team", "active", "manager"),
    "accounts": ("id", "name", "owner", "website", "country", "state", "employees", "industry",
                 "stage", "stage_changed", "created", "deleted"),
    "contacts": ("id", "account", "owner", "email", "name", "title", "stage", "deleted"),
    "opportunities": ("id", "account", "owner", "name", "stage", "amount", "closed", "won", "deleted"),
    "activities": ("account", "contact", "opportunity", "owner", "at", "kind", "deleted"),
    "changes": ("account", "old", "new", "at"),
    "team": ("account", "user", "role", "deleted"),  # account team members beside the owner
    "expect": ("rule", "object", "related", "suggested", "status"),
}
_REQUIRED = {"owners": ("id",), "accounts": ("id",), "contacts": ("id",), "opportunities": ("id",),
             "activities": ("at",), "changes": ("account", "at"), "team": ("account", "user"), "expect": ("object",)}
_TIMES = ("stage_changed", "created", "at")
_FLAGS = ("active", "deleted", "closed", "won")
_NUMBERS = ("employees", "amount")


@dataclass(frozen=True)
class Case:
    file: Path
    index: int  # 1-based within its file
    name: str
    codes: tuple[str, ...] | None  # None: every rule the rules file enables
    as_of: datetime
    org: Mapping[str, tuple[Mapping[str, Any], ...]]
    rules_text: tuple[str, ...]  # TOML merged over the rules file, file's first then the case's
    params: Mapping[str, Any]
    expect: tuple[Mapping[str, Any], ...]

    @property
    def label(self) -> str:
        return f"{self.file.name} #{self.index} {self.name}"


@dataclass
class CaseResult:
    case: Case
    missing: list[str] = field(default_factory=list)  # expected, not found
    unexpected: list[str] = field(default_factory=list)  # found, not expected
    wrong: list[str] = field(default_factory=list)  # found, but a checked detail differs
    error: str | None = None  # the case could not run
    found: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and not (self.missing or self.unexpected or self.wrong)

    def diff(self) -> list[str]:
        """What differed, one line each."""
        if self.error is not None:
            return [f"error: {self.error}"]
        return ([f"expected, not found: {m}" for m in self.missing]
                + [f"found, not expected: {u}" for u in self.unexpected]
                + [f"found, but {w}" for w in self.wrong])


@dataclass
class CasesReport:
    path: Path
    rules_file: Path | None
    results: list[CaseResult]
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]


# --- reading ---------------------------------------------------------------------------------

def case_files(path: Path, *, skip: Path | None = None) -> list[Path]:
    """``path`` itself, or the ``.toml`` files in the folder ``path`` (not its subfolders), in
    name order, leaving out ``skip`` (the rules file, when it sits among the cases)."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.toml") if p.is_file())
        if skip is not None:
            files = [p for p in files if p.resolve() != skip.resolve()]
        if not files:
            raise ConfigError(f"No .toml case files in {path}.", "Give a case file or a folder of them.")
        return files
    if not path.exists():
        raise ConfigError(f"No case file or folder at {path}.", "Give a case file or a folder of them.")
    return [path]


def load_cases(path: Path, *, skip: Path | None = None) -> list[Case]:
    return [case for file in case_files(path, skip=skip) for case in load_case_file(file)]


def load_case_file(file: Path) -> list[Case]:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}.", FIX_TODO) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the case file {file}: {exc}.", FIX_TODO) from None
    _check_keys(file, "", data, _FILE_KEYS)
    entries = data.get("case")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{file} has no [[case]].", FIX_TODO)
    return [_case(file, i + 1, data, entry) for i, entry in enumerate(entries)]


def _check_keys(file: Path, where: str, table: Any, allowed: Iterable[str]) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: {where or 'the file'} must be a table.", FIX_TODO)
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            hint = suggest(key, allowed, list_all_up_to=20)
            raise ConfigError(f"{file}: unknown key '{key}' in {where or 'the file'}"
                              f"{hint}{'' if hint.endswith('?') else '.'}", FIX_TODO)


def _case(file: Path, index: int, top: dict[str, Any], entry: Any) -> Case:
    where = f"case #{index}"
    _check_keys(file, where, entry, _CASE_KEYS)
    name = str(entry.get("name") or f"case {index}")
    where = f"case #{index} ({name})"
    if "expect" not in entry:
        raise ConfigError(f"{file}: {where} has no 'expect' (write expect = [] for no finding).", FIX_TODO)
    codes = _codes(file, where, entry.get("rule", top.get("rule")))
    as_of = entry.get("as_of", top.get("as_of"))
    if as_of is None:
        raise ConfigError(f"{file}: {where} has no as_of (in the case or at the top of the file).",
                          FIX_TODO)
    for table in (top, entry):
        if not isinstance(table.get("rules", ""), str) or not isinstance(table.get("params", {}), dict):
            raise ConfigError(f"{file}: {where}: rules must be TOML text (in triple quotes) and "
                              "params a table ({ key = value }).", FIX_TODO)
        if not all(isinstance(table.get(k, []), list) for k in _RECORD_KEYS):
            raise ConfigError(f"{file}: {where}: records are lists: accounts = [{{ id = \"A1\" }}].",
                              FIX_TODO)
    org: dict[str, tuple[Mapping[str, Any], ...]] = {}
    for kind, keys in _RECORD_KEYS.items():
        rows = [*(top.get(kind, []) if kind == "owners" else []), *entry.get(kind, [])]
        org[kind] = tuple(_record(file, f"{where} {kind}", row, keys, _REQUIRED[kind]) for row in rows)
        if kind == "owners":  # a case's owner replaces the file's owner of the same id
            org[kind] = tuple({o["id"]: o for o in org[kind]}.values())
        ids = [r["id"] for r in org[kind] if "id" in r]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ConfigError(f"{file}: {where} has two {kind} with the id '{twice[0]}'.", FIX_TODO)
    params = {**top.get("params", {}), **entry.get("params", {})}
    if params and (codes is None or len(codes) != 1):
        raise ConfigError(f"{file}: {where} sets params but does not run exactly one rule.",
                          "Give rule = \"CODE\", or set the rule's settings in `rules` as [rules.CODE].")
    for e in org["expect"]:
        if ":" not in e["object"] or e.get("status", "open") not in ("open", "waived"):
            raise ConfigError(f"{file}: {where}: expect {e['object']!r} needs object = \"type:id\" "
                              "and a status of open or waived.", FIX_TODO)
        if "rule" not in e and (codes is None or len(codes) != 1):
            raise ConfigError(f"{file}: {where}: expect {e['object']} needs a rule "
                              "(the case runs more than one).", FIX_TODO)
    texts = tuple(t for t in (top.get("rules"), entry.get("rules")) if t)
    return Case(file, index, name, codes, _when(file, where, as_of), org, texts, params,
                org.pop("expect"))


def _record(file: Path, where: str, row: Any, keys: tuple[str, ...],
            required: tuple[str, ...]) -> dict[str, Any]:
    """A record checked: known keys, the ones it needs, values of the right kind; ids as text."""
    _check_keys(file, where, row, keys)
    if missing := [k for k in required if k not in row]:
        raise ConfigError(f"{file}: {where}: {row} has no {missing[0]}.", FIX_TODO)
    out = dict(row)
    for key, value in row.items():
        if key in _TIMES:
            ok = isinstance(value, int | float | date) and not isinstance(value, bool)
            kind = "a number of days before as_of or a TOML date"
        elif key in _FLAGS:
            ok, kind = isinstance(value, bool), "true or false"
        elif key in _NUMBERS:
            ok, kind = isinstance(value, int | float) and not isinstance(value, bool), "a number"
        else:
            ok, kind = isinstance(value, str | int) and not isinstance(value, bool), "text"
            out[key] = str(value)
        if not ok:
            raise ConfigError(f"{file}: {where}: {key} must be {kind}, not {value!r}.", FIX_TODO)
    return out


def _codes(file: Path, where: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    codes = (value,) if isinstance(value, str) else tuple(value)
    for code in codes:
        if code not in REGISTRY:
            raise ConfigError(f"{file}: {where}: unknown rule '{code}'{suggest(str(code), REGISTRY)}.",
                              FIX_TODO)
    return codes


def _when(file: Path, where: str, value: Any) -> datetime:
    """A TOML date or date-time as naive UTC (the mirror's convention)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise ConfigError(f"{file}: {where}: as_of must be a TOML date or date-time, not {value!r}.", FIX_TODO)


# --- running ---------------------------------------------------------------------------------

def run_cases(path: Path, rules_file: Path | None) -> CasesReport:
    """Every case in ``path`` against ``rules_file`` (None: the rules' defaults)."""
    started = time.perf_counter()
    cases = load_cases(path, skip=rules_file)
    base = load_rules(rules_file) if rules_file is not None else None  # its problems: exit 2
    results = [run_case(case, rules_file, base) for case in cases]
    return CasesReport(path, rules_file, results, time.perf_counter() - started)


def run_case(case: Case, rules_file: Path | None, base: RulesConfig | None = None,
             url: str = "sqlite://") -> CaseResult:
    """Run one case in a fresh mirror at ``url`` (an in-memory SQLite one unless told; another
    database must be empty of the case's source)."""
    started = time.perf_counter()
    result = CaseResult(case)
    engine = None
    try:
        config = case_config(case, rules_file, base)
        engine = open_database(url)
        _load_org(engine, case, config)
        audit = run_audit(engine, config, case.as_of, case.codes, store=False)
        _compare(result, case, audit.items or [])
    except RoeError as exc:
        result.error = str(exc).replace("\n", " ")
    except SQLAlchemyError as exc:  # what the org breaks that the checks above let through
        result.error = f"the case's org could not be loaded: {getattr(exc, 'orig', None) or exc}".replace("\n", " ")
    finally:
        if engine is not None:
            engine.dispose()
    result.seconds = time.perf_counter() - started
    return result


def case_config(case: Case, rules_file: Path | None, base: RulesConfig | None = None) -> RulesConfig:
    """The rules file with the case's own settings merged over it: tables key by key, any other
    value (arrays of teams or territories included) replaced."""
    if not case.rules_text and not case.params:
        if rules_file is None:
            return parse_rules("", path="(defaults)")
        return base if base is not None else load_rules(rules_file)
    merged: dict[str, Any] = {}
    if rules_file is not None:
        merged = tomllib.loads(rules_file.read_text(encoding="utf-8"))
    for text in case.rules_text:
        try:
            _merge(merged, tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"The rules of {case.label} are not valid TOML: {exc}.", FIX_TODO) from None
    if case.params:
        assert case.codes is not None and len(case.codes) == 1
        _merge(merged, {"rules": {case.codes[0]: dict(case.params)}})
    name = f"{rules_file or 'the defaults'} with the settings of {case.file.name} #{case.index}"
    return parse_rules(to_toml(merged), path=name)


def _merge(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _load_org(engine: Any, case: Case, config: RulesConfig) -> None:
    org = case.org

    def ago(value: Any, default: Any = None) -> datetime | None:
        if value is None:
            value = default
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return case.as_of - timedelta(days=value)
        return _when(case.file, f"case #{case.index} ({case.name})", value)

    people = [dict(o) for o in org["owners"]]
    emails = {str(o.get("email", o["id"] if "@" in str(o["id"]) else "")).lower() for o in people}
    for named in config.emails_named():  # the people the rules name exist, with their teams' roles
        if named.email not in emails:
            emails.add(named.email)
            people.append({"id": named.email, "email": named.email})
    ids = [str(o["id"]) for o in people]
    _check_people(case, ids)
    rows = {
        owners: [{"source": SOURCE, "id": str(o["id"]),
                  "email": o.get("email", o["id"] if "@" in str(o["id"]) else None),
                  "name": o.get("name", str(o["id"])), "active": o.get("active", True),
                  "role": o.get("role"), "team": o.get("team"), "manager_id": o.get("manager")}
                 for o in people],
        accounts: [{"source": SOURCE, "id": a["id"], "name": a.get("name", f"Account {a['id']}"),
                    "website": a.get("website"), "domain": normalize_domain(a.get("website")),
                    "owner_id": a.get("owner"), "country": a.get("country"), "state": a.get("state"),
                    "employees": a.get("employees"), "industry": a.get("industry"),
                    "lifecycle_stage": a.get("stage"), "stage_changed_at": ago(a.get("stage_changed")),
                    "created_at": ago(a.get("created"), 1000), "deleted": a.get("deleted", False)}
                   for a in org["accounts"]],
        contacts: [{"source": SOURCE, "id": c["id"], "account_id": c.get("account"),
                    "owner_id": c.get("owner"), "email": c.get("email"),
                    "email_domain": email_domain(c.get("email")), "name": c.get("name", c["id"]),
                    "title": c.get("title"), "lifecycle_stage": c.get("stage"),
                    "deleted": c.get("deleted", False)}
                   for c in org["contacts"]],
        opportunities: [{"source": SOURCE, "id": o["id"], "account_id": o.get("account"),
                         "owner_id": o.get("owner"), "name": o.get("name", o["id"]),
                         "stage": o.get("stage"), "amount": o.get("amount"),
                         "is_closed": o.get("closed", False), "is_won": o.get("won", False),
                         "deleted": o.get("deleted", False)}
                        for o in org["opportunities"]],
        activities: [{"source": SOURCE, "id": f"T{i}", "kind": x.get("kind", "call"),
                      "account_id": x.get("account"), "contact_id": x.get("contact"),
                      "opportunity_id": x.get("opportunity"), "owner_id": x.get("owner"),
                      "occurred_at": ago(x["at"]), "deleted": x.get("deleted", False)}
                     for i, x in enumerate(org["activities"])],
        ownership_changes: [{"source": SOURCE, "object_type": "account", "object_id": ch["account"],
                             "old_owner_id": ch.get("old"), "new_owner_id": ch.get("new"),
                             "changed_at": ago(ch["at"]), "origin": "crm-history"}
                            for ch in org["changes"]],
        team_table: [{"source": SOURCE, "id": f"{m['account']}/{i}", "account_id": m["account"],
                                "user_id": m["user"], "team_role": m.get("role"),
                                "origin": "AccountTeamMember", "deleted": m.get("deleted", False)}
                               for i, m in enumerate(org["team"])],
    }
    with engine.begin() as conn:
        for table, values in rows.items():
            if values:
                conn.execute(insert(table), values)


def _check_people(case: Case, ids: list[str]) -> None:
    """Every person a record names is one of the case's owners (or named by the rules)."""
    known = set(ids)
    refs = [(kind, key, row.get(key)) for kind, keys in
            (("owners", ("manager",)), ("accounts", ("owner",)), ("contacts", ("owner",)),
             ("opportunities", ("owner",)), ("activities", ("owner",)), ("changes", ("old", "new")),
             ("team", ("user",)))
            for row in case.org[kind] for key in keys]
    for kind, key, ref in refs:
        if ref is not None and str(ref) not in known:
            raise ConfigError(f"{kind} {key} '{ref}' is no owner of the case{suggest(str(ref), ids)}.",
                              "Add it to owners, or fix the name.")


def _compare(result: CaseResult, case: Case, items: Iterable[Mapping[str, Any]]) -> None:
    single = case.codes[0] if case.codes is not None and len(case.codes) == 1 else None
    found: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for item in items:
        if item["status"] == "resolved":
            continue
        found[(item["rule"], f"{item['object_type']}:{item['object_id']}",
               item["related_user_id"] or "")] = item
    result.found = len(found)
    expected: dict[tuple[str, str, str], Mapping[str, Any]] = {
        (str(e.get("rule", single)), str(e["object"]), str(e.get("related", ""))): e
        for e in case.expect
    }
    for key, e in expected.items():
        if key not in found:
            result.missing.append(_describe(key, e.get("suggested")))
            continue
        item = found[key]
        for what, column in (("suggested", "suggested_owner_id"), ("status", "status")):
            if what in e and str(e[what]) != str(item[column] or ""):
                result.wrong.append(f"{_describe(key)}: {what} expected {str(e[what]) or 'none'!r}, "
                                    f"found {str(item[column] or '') or 'none'!r}")
    for key, item in found.items():
        if key not in expected:
            result.unexpected.append(_describe(key, item["suggested_owner_id"] or ""))


def _describe(key: tuple[str, str, str], suggested: Any = None) -> str:
    rule, obj, related = key
    text = f"{rule} {obj}"
    if related:
        text += f" related {related}"
    if suggested is not None:
        text += f" (suggested {suggested or 'none'})"
    return text


# --- output ----------------------------------------------------------------------------------

def junit_xml(report: CasesReport) -> str:
    """A JUnit XML report: one testsuite per case file, one testcase per case."""
    suites = ET.Element("testsuites", name="roe rules test", tests=str(len(report.results)),
                        failures=str(len(report.failed)), time=f"{report.seconds:.3f}")
    by_file: dict[Path, list[CaseResult]] = {}
    for r in report.results:
        by_file.setdefault(r.case.file, []).append(r)
    for file, results in by_file.items():
        suite = ET.SubElement(suites, "testsuite", name=str(file), tests=str(len(results)),
                              failures=str(sum(1 for r in results if not r.passed)),
                              time=f"{sum(r.seconds for r in results):.3f}")
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=file.stem,
                                 name=f"#{r.case.index} {r.case.name}", time=f"{r.seconds:.3f}")
            if not r.passed:
                failure = ET.SubElement(case, "failure", message="; ".join(r.diff())[:500])
                failure.text = "\n".join(r.diff())
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(data: Mapping[str, Any]) -> str:
    """``data`` (as tomllib reads it) back as TOML: top-level tables and their sub-tables as
    headers (``[rules.OWN001]``), arrays of tables as ``[[teams]]``, anything deeper inline."""
    lines: list[str] = []
    _table(lines, (), data)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    subtables: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict) and len(path) < 2:
            subtables.append((key, value))
        elif (not path and isinstance(value, list) and value
              and all(isinstance(v, dict) for v in value)):
            subtables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables:
        header = ".".join(_key(k) for k in (*path, key))
        if isinstance(value, list):
            for entry in value:
                lines.append(f"[[{header}]]")
                _table(lines, (*path, key, "[]", "[]"), entry)  # entries' tables stay inline
        else:
            lines.append(f"[{header}]")
            _table(lines, (*path, key), value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return repr(value)
