"""Loading and validating ``rules.toml``: teams, territories, rule settings, exceptions.

:func:`load_rules` reads the file with :mod:`tomllib` and validates every part with pydantic
(strictly: TOML has real types, so ``window_days = "30"`` is a mistake worth reporting). Every
problem in the file is reported at once, one per line, each naming the file, the line and the key
as a dotted path (``rules.OWN004.window_days``, ``territories[2].match.country``; list indexes count
from 0), with a "did you mean" where a close match exists::

    rules.toml:120: rules.OWN004.windw_days: unknown key 'windw_days'; did you mean 'window_days'?

The result is an immutable :class:`RulesConfig`. :func:`check_people` checks the e-mails the file
names against the owners in the mirror; the audit calls it once the mirror has owners.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import hashlib
import importlib
import inspect
import re
import tomllib
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from ..rules import REGISTRY, Rule, RuleParams
from ..shared.errors import ConfigError, UsageError

DEFAULT_FREE_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
OBJECT_TYPES = ("account", "contact", "opportunity")
OWN002_FALLBACKS = ("territory", "manager")  # or an owner's e-mail
MISSING_FILE_TODO = "Copy the example rules.toml from the roe repository, or pass --rules / ROE_RULES."
FIX_TODO = "Fix the file, then check it with `roe rules --check`."

KeyPath = tuple[str | int, ...]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


# --- problems ------------------------------------------------------------------------------------


def render_key(path: Iterable[str | int]) -> str:
    """``("territories", 2, "match", "country")`` -> ``territories[2].match.country``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{text}" if out else text
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in a rules file, where it is and what it is."""

    file: str
    line: int | None
    key: str  # the dotted key path; '' when the problem is not about one key
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class RulesFileError(ConfigError):
    """Problems in a rules file, all of them; :attr:`problems` holds them one by one."""

    def __init__(self, file: str, problems: Iterable[Problem], todo: str = FIX_TODO):
        self.file = file
        self.problems = tuple(sorted(problems, key=lambda p: (p.line or 0, p.key)))
        if len(self.problems) == 1:
            what = str(self.problems[0])
        else:
            what = f"{file} has {len(self.problems)} problems:\n" + "\n".join(
                f"  {p}" for p in self.problems
            )
        super().__init__(what, todo)


def did_you_mean(word: str, candidates: Iterable[str]) -> list[str]:
    """The candidates that ``word`` is probably a typo of (best first; case-insensitive).

    Only the closest candidates are returned, and none when too many are equally close
    (``OWN007`` is as close to each of OWN001 to OWN006, so it suggests none of them).
    """
    cands = list(dict.fromkeys(c for c in candidates if isinstance(c, str) and c))
    folded: dict[str, str] = {}
    for cand in cands:
        folded.setdefault(cand.casefold(), cand)
    key = word.casefold()
    if key in folded:
        return [folded[key]] if folded[key] != word else []
    close = difflib.get_close_matches(key, list(folded), n=len(folded) or 1, cutoff=0.6)
    if not close:
        return []
    best = difflib.SequenceMatcher(None, key, close[0]).ratio()
    top = [c for c in close if difflib.SequenceMatcher(None, key, c).ratio() == best]
    return [folded[c] for c in top] if len(top) <= 3 else []


def _or_list(values: Iterable[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _suggest(word: str, candidates: Iterable[str], *, list_all_up_to: int = 0) -> str:
    """'; did you mean 'x'?' or, when nothing is close and the choice is small, '; use ...'."""
    candidates = list(candidates)
    matches = did_you_mean(word, candidates)
    if matches:
        return f"; did you mean {_or_list(matches)}?"
    if candidates and len(candidates) <= list_all_up_to:
        return f"; use {_or_list(candidates)}"
    return ""


def _is_email(value: object) -> bool:
    return isinstance(value, str) and bool(_EMAIL.match(value.strip()))


# --- where each key is: a scanner over the (valid) TOML text --------------------------------------


class _Locator:
    """Maps every key path in a TOML document to the line it is written on.

    ``tomllib`` keeps no positions, so this walks the text itself: table headers (``[a.b]`` and
    ``[[a]]``, counting array-of-tables elements), ``key = value`` lines, dotted and quoted keys,
    inline tables and arrays (each element gets its own path, so a bad e-mail in a long
    ``members`` list is found on its own line). It runs only on text ``tomllib`` accepted.
    """

    def __init__(self, text: str):
        self.s = text
        self.n = len(text)
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[KeyPath, int] = {}
        self.aot: dict[KeyPath, int] = {}  # array-of-tables path -> elements so far

    def run(self) -> dict[KeyPath, int]:
        try:
            self._document()
        except (IndexError, ValueError, AttributeError, tomllib.TOMLDecodeError):
            pass  # positions are a help; never fail a load over them
        return self.lines

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def _record(self, path: KeyPath, pos: int) -> None:
        line = self._line(pos)
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    def _skip(self, newlines: bool = False) -> None:
        while self.i < self.n:
            c = self.s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = self.n if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip(newlines=True)
            if self.i >= self.n:
                return
            start = self.i
            if self.s[self.i] == "[":
                double = self.s.startswith("[[", self.i)
                self.i += 2 if double else 1
                parts = self._key()
                self._skip()
                self.i += 2 if double else 1
                table = self._resolve(parts, double)
                self._record(table, start)
            else:
                path = table + self._key()
                self._record(path, start)
                self._expect("=")
                self._value(path)

    def _resolve(self, parts: tuple[str, ...], double: bool) -> KeyPath:
        resolved: KeyPath = ()
        for k, part in enumerate(parts):
            resolved += (part,)
            if double and k == len(parts) - 1:
                index = self.aot.get(resolved, 0)
                self.aot[resolved] = index + 1
                resolved += (index,)
            elif resolved in self.aot:
                resolved += (self.aot[resolved] - 1,)
        return resolved

    def _expect(self, char: str) -> None:
        self._skip()
        if self.s[self.i] != char:
            raise ValueError(f"expected {char!r} at {self.i}")
        self.i += 1
        self._skip()

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip()
            c = self.s[self.i]
            if c in "\"'":
                start = self.i
                self._string()
                parts.append(tomllib.loads("k = " + self.s[start:self.i])["k"])
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if not m:
                    raise ValueError(f"no key at {self.i}")
                parts.append(m.group())
                self.i = m.end()
            self._skip()
            if self.i < self.n and self.s[self.i] == ".":
                self.i += 1
                continue
            return tuple(parts)

    def _string(self) -> None:
        s, i = self.s, self.i
        for quote in ('"""', "'''"):
            if s.startswith(quote, i):
                i += 3
                while not s.startswith(quote, i):
                    i += 2 if (quote == '"""' and s[i] == "\\") else 1
                    if i >= self.n:
                        raise ValueError("unterminated string")
                i += 3
                while i < self.n and s[i] == quote[0]:  # up to two quotes may end the content
                    i += 1
                self.i = i
                return
        quote = s[i]
        i += 1
        while s[i] != quote:
            i += 2 if (quote == '"' and s[i] == "\\") else 1
        self.i = i + 1

    def _value(self, path: KeyPath) -> None:
        c = self.s[self.i]
        if c == "{":
            self.i += 1
            while True:
                self._skip(newlines=True)
                if self.s[self.i] == "}":
                    self.i += 1
                    return
                if self.s[self.i] == ",":
                    self.i += 1
                    continue
                start = self.i
                sub = path + self._key()
                self._record(sub, start)
                self._expect("=")
                self._value(sub)
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self.s[self.i] == "]":
                    self.i += 1
                    return
                if self.s[self.i] == ",":
                    self.i += 1
                    index += 1
                    continue
                self._record(path + (index,), self.i)
                self._value(path + (index,))
        elif c in "\"'":
            self._string()
        else:
            while self.i < self.n and self.s[self.i] not in ",]}#\r\n":
                self.i += 1


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Every key path of the TOML ``text`` (already known to parse) and its line number."""
    return _Locator(text).run()


def _line_for(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest parent that the file writes down."""
    for k in range(len(path), 0, -1):
        if path[:k] in lines:
            return lines[path[:k]]
    return None


# --- the model ----------------------------------------------------------------------------------


def _email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"'{value}' is not an e-mail address")
    return email


def _domain(value: str) -> str:
    domain = value.strip().lower().lstrip("@")
    if not domain or "." not in domain or any(c in domain for c in " /@"):
        raise ValueError(f"'{value}' is not a domain like gmail.com")
    return domain


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Email = Annotated[str, AfterValidator(_email)]
NonEmptyList = Annotated[tuple[Text, ...], annotated_types.MinLen(1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(_Frozen):
    """A ``[[teams]]`` entry: a name, an optional roe role, and its members' e-mails."""

    name: Text
    # The role is optional on purpose: a team with a role gives it to its members (and wins over
    # role_map); a team without one only groups people, e.g. the members of a territory, who keep
    # the role their CRM role name gives them through [role_map].
    role: Text | None = None
    members: tuple[Email, ...] = ()  # lower-cased and stripped


class Match(_Frozen):
    """When an account falls in a territory: every condition given must hold.

    Values compare case-insensitively; the employee bounds are inclusive, and an account whose
    employee count is unknown matches no territory that sets either bound.
    """

    country: NonEmptyList | None = None
    state: NonEmptyList | None = None
    industry: NonEmptyList | None = None
    min_employees: Annotated[int, annotated_types.Ge(0)] | None = None
    max_employees: Annotated[int, annotated_types.Ge(0)] | None = None

    @model_validator(mode="after")
    def _sensible(self) -> Match:
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError(
                "an empty match fits every account; give at least one of country, state, "
                "industry, min_employees, max_employees"
            )
        if (
            self.min_employees is not None
            and self.max_employees is not None
            and self.min_employees > self.max_employees
        ):
            raise ValueError(
                f"min_employees ({self.min_employees}) is more than max_employees "
                f"({self.max_employees}): no account fits"
            )
        return self

    def fits(
        self,
        country: str | None = None,
        state: str | None = None,
        industry: str | None = None,
        employees: int | None = None,
    ) -> bool:
        """Whether an account with these values falls under this match."""
        for wanted, value in ((self.country, country), (self.state, state), (self.industry, industry)):
            if wanted is not None:
                if value is None or value.strip().casefold() not in {w.casefold() for w in wanted}:
                    return False
        if self.min_employees is not None or self.max_employees is not None:
            if employees is None:
                return False
            if self.min_employees is not None and employees < self.min_employees:
                return False
            if self.max_employees is not None and employees > self.max_employees:
                return False
        return True


class Territory(_Frozen):
    """A ``[[territories]]`` entry. Territories are ordered: an account is in the first that fits."""

    name: Text
    team: Text
    default_owner: Email | None = None
    match: Match


def _to_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        raise ValueError(f"{value.isoformat()} is a date and time; give a date like 2027-03-31")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a date; write it like 2027-03-31") from None
    return value


def _object_ref(value: str) -> str:
    kind, sep, object_id = value.partition(":")
    if not sep or not kind.strip() or not object_id.strip():
        raise ValueError(f"'{value}' is not of the form type:id (e.g. account:001D000000AbCdE)")
    if kind.strip() not in OBJECT_TYPES:
        raise ValueError(
            f"'{kind}' is not an object type{_suggest(kind.strip(), OBJECT_TYPES, list_all_up_to=3)}"
        )
    return f"{kind.strip()}:{object_id.strip()}"


class _ExceptionEntry(_Frozen):
    """An ``[[exceptions]]`` entry as written in the file."""

    rule: str
    object: Annotated[str, AfterValidator(_object_ref)]
    reason: Text
    approved_by: Text
    expires: Annotated[dt.date, BeforeValidator(_to_date)]


class ExceptionRule(_Frozen):
    """A known, accepted finding: ``rule`` does not count against ``object`` until ``expires``."""

    rule: str
    object_type: Literal["account", "contact", "opportunity"]
    object_id: str
    reason: str
    approved_by: str
    expires: dt.date  # the waiver holds while the audit's date is on or before this

    @property
    def object(self) -> str:
        return f"{self.object_type}:{self.object_id}"


class _Settings(_Frozen):
    free_email_domains: tuple[Annotated[str, AfterValidator(_domain)], ...] = DEFAULT_FREE_EMAIL_DOMAINS


class NamedEmail(NamedTuple):
    """An e-mail the rules file names, the key that names it and the line it is on."""

    email: str
    key: str
    line: int | None
    kind: str  # 'team member', 'default owner', 'fallback owner'


@dataclass(frozen=True, eq=False)
class RulesConfig:
    """A validated rules file. Immutable; mappings are read-only views."""

    path: Path
    sha256: str  # of the file's bytes, stored with each audit run
    free_email_domains: tuple[str, ...] = DEFAULT_FREE_EMAIL_DOMAINS
    role_map: Mapping[str, str] = field(default_factory=dict)
    teams: tuple[Team, ...] = ()
    territories: tuple[Territory, ...] = ()
    rules: Mapping[str, RuleParams] = field(default_factory=dict)  # every code in REGISTRY
    exceptions: tuple[ExceptionRule, ...] = ()
    salesforce: Any = None  # SalesforceSettings, or None when the file has no [salesforce]
    hubspot: Any = None  # HubSpotSettings, or None when the file has no [hubspot]
    warnings: tuple[Problem, ...] = ()  # suspicious but valid: `roe rules --check` shows them
    key_lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "role_map", MappingProxyType(dict(self.role_map)))
        object.__setattr__(self, "key_lines", MappingProxyType(dict(self.key_lines)))
        rules = {code: r.params() for code, r in REGISTRY.items()} | dict(self.rules)
        object.__setattr__(self, "rules", MappingProxyType(rules))

    def line_of(self, *path: str | int) -> int | None:
        """The line that writes ``path`` (or its nearest parent), e.g. ``line_of("rules", "OWN004")``."""
        return _line_for(self.key_lines, path)

    @cached_property
    def _team_roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        for team in self.teams:
            if team.role:
                for member in team.members:
                    roles.setdefault(member, team.role)
        return roles

    @cached_property
    def _role_map_folded(self) -> dict[str, str]:
        return {k.strip().casefold(): v for k, v in self.role_map.items()}

    def role_of(self, email: str | None, crm_role: str | None) -> str | None:
        """A user's roe role: from the first team listing the e-mail that has a role, otherwise
        ``role_map`` applied to the CRM role name (exact, then ignoring case), otherwise None."""
        if email:
            role = self._team_roles.get(email.strip().lower())
            if role:
                return role
        if crm_role:
            role = self.role_map.get(crm_role)
            return role if role is not None else self._role_map_folded.get(crm_role.strip().casefold())
        return None

    def team_members(self, team_name: str) -> set[str]:
        """The (lower-cased) e-mails of the team's members; KeyError for a team the file lacks."""
        for team in self.teams:
            if team.name == team_name:
                return set(team.members)
        raise KeyError(f"no team named {team_name!r} in {self.path}")

    def territory_of(
        self,
        country: str | None = None,
        state: str | None = None,
        industry: str | None = None,
        employees: int | None = None,
    ) -> Territory | None:
        """The first territory whose match fits the account, or None."""
        for territory in self.territories:
            if territory.match.fits(country, state, industry, employees):
                return territory
        return None

    def enabled_rules(self, only: Iterable[str] | None = None) -> list[tuple[Rule, RuleParams]]:
        """The rules to run, in registry order, with their settings.

        ``only`` narrows them to some codes (any case); an unknown code, or one switched off in
        the file, is a :class:`UsageError`.
        """
        wanted: set[str] | None = None
        if only is not None:
            wanted = {rule_code(code) for code in only}
            off = [c for c in REGISTRY if c in wanted and not self.rules[c].enabled]
            if off:
                raise UsageError(
                    f"{', '.join(off)} {'is' if len(off) == 1 else 'are'} switched off in {self.path}.",
                    "Set `enabled = true` under [rules.CODE] to run it, or leave it out of the list.",
                )
        return [
            (rule, self.rules[code])
            for code, rule in REGISTRY.items()
            if self.rules[code].enabled and (wanted is None or code in wanted)
        ]

    def emails_named(self) -> list[NamedEmail]:
        """Every owner e-mail the file names: team members, default owners, an e-mail fallback.

        Exceptions' ``approved_by`` is left out: approvers need not own anything in the CRM.
        """
        named: list[NamedEmail] = []

        def add(email: str, path: KeyPath, kind: str) -> None:
            named.append(NamedEmail(email, render_key(path), self.line_of(*path), kind))

        for i, team in enumerate(self.teams):
            for j, member in enumerate(team.members):
                add(member, ("teams", i, "members", j), "team member")
        for i, territory in enumerate(self.territories):
            if territory.default_owner:
                add(territory.default_owner, ("territories", i, "default_owner"), "default owner")
        fallback = getattr(self.rules.get("OWN002"), "fallback", None)
        if _is_email(fallback):
            add(fallback.strip().lower(), ("rules", "OWN002", "fallback"), "fallback owner")
        return named


def rule_code(code: str) -> str:
    """``code`` as a registry code (any case accepted); UsageError with a suggestion otherwise."""
    wanted = code.strip().upper()
    if wanted not in REGISTRY:
        raise UsageError(
            f"Unknown rule '{code.strip()}'{_suggest(code.strip(), REGISTRY) or '.'}",
            f"roe's rules are {', '.join(REGISTRY)} (see `roe rules`).",
        )
    return wanted


# --- loading ------------------------------------------------------------------------------------


def load_rules(path: Path | str) -> RulesConfig:
    """Read and validate the rules file at ``path``.

    Raises :class:`ConfigError` for a missing or unreadable file and :class:`RulesFileError`
    (a ConfigError) listing every problem in it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"No rules file at {path}.", MISSING_FILE_TODO) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a rules file.", MISSING_FILE_TODO) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the rules file {path}: {exc.strerror}.",
                          "Check the file's permissions, or pass --rules / ROE_RULES.") from None
    return _Loader(path, data).load()


def parse_rules(text: str, path: Path | str = "rules.toml") -> RulesConfig:
    """Validate rules given as TOML text (``path`` only names it in messages). Handy in tests."""
    return _Loader(Path(path), text.encode("utf-8")).load()


_SECTIONS: dict[str, Any] = {
    "settings": dict[str, Any],
    "role_map": dict[Text, Text],
    "teams": tuple[dict[str, Any], ...],
    "territories": tuple[dict[str, Any], ...],
    "rules": dict[str, dict[str, Any]],
    "exceptions": tuple[dict[str, Any], ...],
    "salesforce": dict[str, Any],
    "hubspot": dict[str, Any],
}
_CONNECTOR_SETTINGS = {"salesforce": "SalesforceSettings", "hubspot": "HubSpotSettings"}
_CREDENTIAL_WORDS = ("token", "password", "secret", "client_id", "api_key", "apikey")


def _tuplify(value: Any) -> Any:
    """TOML arrays as tuples, so that strict validation accepts them for tuple fields."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuplify(v) for k, v in value.items()}
    return value


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel] | None, parent: tuple) -> list[str] | None:
    """The keys allowed at ``parent`` (a loc inside ``model``), or None when unknown."""
    for part in parent:
        if model is None:
            return None
        if isinstance(part, int) or part == "[key]":
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info else None
    if model is None:
        return None
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(info.alias if isinstance(info.alias, str) else name)
    return keys


_KINDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text in quotes",
    "tuple_type": "a list",
    "list_type": "a list",
    "set_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "date_type": "a date like 2027-03-31",
    "datetime_type": "a date and time like 2027-03-31T09:00:00Z",
}


def _describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text \"{value}\""
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.datetime):
        return f"the date and time {value.isoformat()}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def _error_message(err: Mapping[str, Any], model: type[BaseModel] | None, loc: tuple,
                   secret: bool = False) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if any(w in key.lower() for w in _CREDENTIAL_WORDS):
            # (worded so that redact() does not take it for a "password: ..." pair)
            return (f"unknown key '{key}'; credentials are read only from the environment, "
                    "never from the rules file (see the README)")
        allowed = _allowed_keys(model, loc[:-1]) or []
        return f"unknown key '{key}'{_suggest(key, allowed, list_all_up_to=12)}"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        shown = f"'{value}'" if isinstance(value, str) else _describe_value(value)
        hint = did_you_mean(value, expected) if isinstance(value, str) else []
        text = f"{shown} is not allowed; use {_or_list(expected)}" if expected else err["msg"]
        return text + (f"; did you mean {_or_list(hint)}?" if hint else "")
    if kind in _KINDS:
        text = f"expected {_KINDS[kind]}, got {'a value' if secret else _describe_value(value)}"
        if kind in ("tuple_type", "list_type") and isinstance(value, str) and not secret:
            text += f": write [\"{value}\"]"
        return text
    if kind == "string_pattern_mismatch":
        shown = "the value" if secret else _describe_value(value)
        return f"{shown} does not have the required form {ctx.get('pattern')}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
    return err["msg"][:1].lower() + err["msg"][1:]


class _Loader:
    """One pass over one rules file, collecting every problem before giving up."""

    def __init__(self, path: Path, data: bytes):
        self.path = path
        self.file = str(path)
        self.data = data
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    # reporting

    def _problem(self, path: KeyPath, message: str, *, warning: bool = False) -> None:
        problem = Problem(self.file, _line_for(self.lines, path), render_key(path), message)
        (self.warnings if warning else self.problems).append(problem)

    def _validate(self, schema: Any, value: Any, prefix: KeyPath, *, strict: bool = True,
                  secret: bool = False) -> Any:
        """Validate ``value`` against a model or type; None (and problems recorded) when it fails."""
        try:
            if isinstance(schema, type) and issubclass(schema, BaseModel):
                return schema.model_validate(value, strict=strict)
            return TypeAdapter(schema).validate_python(value, strict=strict)
        except ValidationError as exc:
            model = schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None
            errors = exc.errors(include_url=False)
            locs = [tuple(e["loc"]) for e in errors]
            # A misspelt key also leaves its right spelling missing: report the misspelling only.
            misspelt = set()
            for err in errors:
                if err["type"] == "extra_forbidden":
                    loc = tuple(err["loc"])
                    for key in did_you_mean(str(loc[-1]), _allowed_keys(model, loc[:-1]) or []):
                        misspelt.add(loc[:-1] + (key,))
            for err in errors:
                loc = tuple(p for p in err["loc"] if p != "[key]")
                if err["type"] == "too_short" and any(
                    other[: len(err["loc"])] == tuple(err["loc"]) and other != tuple(err["loc"])
                    for other in locs
                ):
                    continue  # an empty list left by its own bad items: those are reported
                if err["type"] == "missing" and tuple(err["loc"]) in misspelt:
                    continue
                self._problem(prefix + loc, _error_message(err, model, loc, secret))
            return None

    # the pass

    def load(self) -> RulesConfig:
        sha256 = hashlib.sha256(self.data).hexdigest()
        try:
            text = self.data.decode("utf-8-sig")  # Notepad may start the file with a BOM
        except UnicodeDecodeError as exc:
            line = self.data[: exc.start].count(b"\n") + 1
            raise RulesFileError(self.file, [Problem(
                self.file, line, "", "the file is not UTF-8 text; save it as UTF-8")]) from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RulesFileError(
                self.file, [_syntax_problem(self.file, text, str(exc))],
                "Fix the TOML syntax (key = value, text in quotes, lists in [ ]), then check the "
                "file with `roe rules --check`.",
            ) from None
        self.lines = locate_keys(text)
        config = self._build(raw, sha256)
        if self.problems:
            raise RulesFileError(self.file, self.problems)
        return config

    def _build(self, raw: dict[str, Any], sha256: str) -> RulesConfig:
        sections: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in _SECTIONS:
                self._problem((key,), f"unknown key '{key}'{_suggest(key, _SECTIONS, list_all_up_to=12)}")
                continue
            secret = key in _CONNECTOR_SETTINGS
            checked = self._validate(_SECTIONS[key], _tuplify(value), (key,), secret=secret)
            if checked is not None:
                sections[key] = value if secret else checked

        settings = self._validate(_Settings, sections.get("settings", {}), ("settings",))
        role_map = sections.get("role_map", {})
        teams = self._teams(sections.get("teams", ()), raw.get("teams"))
        territories = self._territories(sections.get("territories", ()), raw.get("teams"), teams)
        rules = self._rules(sections.get("rules", {}))
        exceptions = self._exceptions(sections.get("exceptions", ()))
        connectors = {
            source: self._connector(source, sections[source])
            for source in _CONNECTOR_SETTINGS
            if source in sections
        }
        self._check_roles(rules, role_map, teams)
        return RulesConfig(
            path=self.path,
            sha256=sha256,
            free_email_domains=settings.free_email_domains if settings else DEFAULT_FREE_EMAIL_DOMAINS,
            role_map=role_map,
            teams=tuple(teams),
            territories=tuple(territories),
            rules=rules,
            exceptions=tuple(exceptions),
            salesforce=connectors.get("salesforce"),
            hubspot=connectors.get("hubspot"),
            warnings=tuple(self.warnings),
            key_lines=self.lines,
        )

    def _teams(self, entries: tuple, raw_teams: Any) -> list[Team]:
        teams: list[Team] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            team = self._validate(Team, entry, ("teams", i))
            name = entry.get("name")
            if isinstance(name, str) and name.strip():
                name = name.strip()
                if name in seen:
                    first = _line_for(self.lines, ("teams", seen[name]))
                    self._problem(("teams", i, "name"),
                                  f"a team named '{name}' is already defined (line {first})")
                    continue
                seen[name] = i
            if team is not None:
                teams.append(team)
        return teams

    def _territories(self, entries: tuple, raw_teams: Any, teams: list[Team]) -> list[Territory]:
        # Names of every team written down, valid or not, so one bad team gives one error.
        team_names = list(dict.fromkeys(
            t.get("name").strip() for t in (raw_teams or [])
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        ))
        # A team whose name is missing or misspelt may be the one a territory names: say nothing
        # about territories' teams then, rather than a second error for the same mistake.
        names_known = isinstance(raw_teams, list) and all(
            isinstance(t, dict) and isinstance(t.get("name"), str) for t in raw_teams)
        members = {t.name: set(t.members) for t in teams}
        territories: list[Territory] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            territory = self._validate(Territory, _tuplify(entry), ("territories", i))
            team = entry.get("team")
            if (isinstance(team, str) and team.strip() and team.strip() not in team_names
                    and (names_known or raw_teams is None)):
                if team_names:
                    hint = _suggest(team.strip(), team_names) or f"; the teams are {_or_list(team_names)}"
                else:
                    hint = "; define it with a [[teams]] entry"
                self._problem(("territories", i, "team"), f"unknown team '{team.strip()}'{hint}")
                continue
            name = entry.get("name")
            if isinstance(name, str) and name.strip():
                if name.strip() in seen:
                    first = _line_for(self.lines, ("territories", seen[name.strip()]))
                    self._problem(("territories", i, "name"),
                                  f"a territory named '{name.strip()}' is already defined (line {first})")
                    continue
                seen[name.strip()] = i
            if territory is None:
                continue
            territories.append(territory)
            owner = territory.default_owner
            if owner and territory.team in members and owner not in members[territory.team]:
                self._problem(
                    ("territories", i, "default_owner"),
                    f"'{owner}' is not a member of the team '{territory.team}', so moving an account "
                    "to this default owner would still break OWN005",
                    warning=True,
                )
        return territories

    def _rules(self, tables: dict[str, dict[str, Any]]) -> dict[str, RuleParams]:
        rules: dict[str, RuleParams] = {}
        for code, table in tables.items():
            if code not in REGISTRY:
                hint = _suggest(code, REGISTRY) or f"; roe's rules are {', '.join(REGISTRY)}"
                self._problem(("rules", code), f"unknown rule code '{code}'{hint}")
                continue
            params = self._validate(REGISTRY[code].params, table, ("rules", code))
            fallback = table.get("fallback") if code == "OWN002" else None
            if isinstance(fallback, str) and fallback not in OWN002_FALLBACKS:
                if not _is_email(fallback):
                    hint = _suggest(fallback, OWN002_FALLBACKS)
                    self._problem(
                        ("rules", code, "fallback"),
                        f"'{fallback}' is not a fallback: use 'territory', 'manager' or an owner's "
                        f"e-mail{hint}",
                    )
                    continue
                if params is not None:
                    params = params.model_copy(update={"fallback": fallback.strip().lower()})
            if params is not None:
                rules[code] = params
        return rules

    def _exceptions(self, entries: tuple) -> list[ExceptionRule]:
        exceptions: list[ExceptionRule] = []
        today = dt.datetime.now(dt.UTC).date()
        for i, entry in enumerate(entries):
            parsed = self._validate(_ExceptionEntry, entry, ("exceptions", i))
            rule = entry.get("rule")
            if isinstance(rule, str) and rule not in REGISTRY:
                hint = _suggest(rule, REGISTRY) or f"; roe's rules are {', '.join(REGISTRY)}"
                self._problem(("exceptions", i, "rule"), f"unknown rule code '{rule}'{hint}")
                continue
            if parsed is None:
                continue
            object_type, _, object_id = parsed.object.partition(":")
            exceptions.append(ExceptionRule(
                rule=parsed.rule, object_type=object_type, object_id=object_id,
                reason=parsed.reason, approved_by=parsed.approved_by, expires=parsed.expires,
            ))
            if parsed.expires < today:
                self._problem(("exceptions", i, "expires"),
                              f"expired on {parsed.expires.isoformat()}: it waives nothing any more; "
                              "remove it or extend it", warning=True)
        return exceptions

    def _connector(self, source: str, table: dict[str, Any]) -> Any:
        settings_class = _connector_settings_class(source)
        if settings_class is None:
            return dict(table)  # the connector's settings model is not there: keep the table
        return self._validate(settings_class, table, (source,), strict=False, secret=True)

    def _check_roles(self, rules: dict[str, RuleParams], role_map: Mapping[str, str],
                     teams: list[Team]) -> None:
        """Warn about roles in rule settings that nobody can have (a typo, most likely)."""
        known = set(role_map.values()) | {t.role for t in teams if t.role}
        for code, params in rules.items():
            for name in sorted(params.model_fields_set):
                if not name.endswith("_roles"):
                    continue
                value = getattr(params, name)
                items: list[tuple[KeyPath, Any]] = []
                if isinstance(value, Mapping):
                    for key, roles in value.items():
                        items += [((key, j), r) for j, r in enumerate(roles)]
                elif isinstance(value, tuple | list):
                    items = [((j,), r) for j, r in enumerate(value)]
                for sub, role in items:
                    if isinstance(role, str) and role not in known:
                        hint = _suggest(role, sorted(known))
                        self._problem(
                            ("rules", code, name, *sub),
                            f"no [[teams]] role or [role_map] entry gives the role '{role}', so it "
                            f"matches nobody{hint}",
                            warning=True,
                        )


def _connector_settings_class(source: str) -> type[BaseModel] | None:
    """The connector's settings model, imported only when its table is present (None if absent)."""
    module_name = f"connectors.{source}.settings"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, f"connectors.{source}"):
            return None
        raise
    cls = getattr(module, _CONNECTOR_SETTINGS[source], None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?")
_LINE_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _syntax_problem(file: str, text: str, message: str) -> Problem:
    """A tomllib error as a Problem, with the key guessed from the text around it."""
    what = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)$", "", message)
    m = re.search(r"at line (\d+), column (\d+)", message)
    lines = text.splitlines()
    if m:
        line, column = int(m.group(1)), int(m.group(2))
    else:  # at the end of the document
        line, column = max(len(lines), 1), None
    table: list[str | int] = []
    counts: dict[str, int] = {}
    for source_line in lines[: line - 1]:
        header = _HEADER.match(source_line)
        if header:
            name = header.group(2)
            table = [p.strip().strip("\"'") for p in name.split(".")]
            if header.group(1) == "[[":
                counts[name] = counts.get(name, 0) + 1
                table.append(counts[name] - 1)
    key = ""
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    key_match = _LINE_KEY.match(current)
    if key_match and not _HEADER.match(current):
        key = render_key([*table, *(p.strip().strip("\"'") for p in key_match.group(1).split("."))])
    elif table and not _HEADER.match(current):
        key = render_key(table)
    return Problem(file, line, key, f"TOML syntax error: {what[:1].lower() + what[1:]}", column)


# --- people -------------------------------------------------------------------------------------


def check_people(
    config: RulesConfig,
    known_emails: Iterable[str],
    *,
    inactive_emails: Iterable[str] = (),
) -> list[Problem]:
    """Check every e-mail the file names against the owners in the mirror.

    Raises :class:`RulesFileError` listing each team member, default owner or e-mail fallback that
    is no owner's e-mail, with a "did you mean" from ``known_emails``. Returns warnings: default
    owners and fallbacks that are inactive (they can be suggested to no one).
    """
    known = {e.strip().lower() for e in known_emails if e}
    inactive = {e.strip().lower() for e in inactive_emails if e}
    file = str(config.path)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for named in config.emails_named():
        if named.email not in known:
            hint = _suggest(named.email, sorted(known))
            problems.append(Problem(
                file, named.line, named.key,
                f"unknown {named.kind} '{named.email}': no owner in the mirror has this e-mail{hint}",
            ))
        elif named.email in inactive and named.kind != "team member":
            warnings.append(Problem(
                file, named.line, named.key,
                f"{named.kind} '{named.email}' is inactive in the CRM: nothing will be suggested "
                "through it",
            ))
    if problems:
        raise RulesFileError(
            file, problems,
            "Fix the e-mails in the rules file; if someone is new, sync the CRM first (`roe sync`).",
        )
    return warnings


# --- documentation of rule settings -------------------------------------------------------------


class ParamSpec(NamedTuple):
    """One setting of a rule, for `roe rules --explain`."""

    name: str
    kind: str  # what values it takes, in words
    default: Any
    value: Any  # the value in force
    set_in_file: bool


_PARAM_KINDS = {("OWN002", "fallback"): "'territory', 'manager' or an owner's e-mail"}


def _kind_text(annotation: Any, metadata: Iterable[Any] = ()) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _kind_text(args[0], [*metadata, *annotation.__metadata__])
    bounds = ""
    for meta in metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(meta, attr, None) is not None:
                bounds += f" {sign} {getattr(meta, attr)}"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "whole number" + bounds
    if annotation is float:
        return "number" + bounds
    if annotation is str:
        return "text"
    if annotation is dt.date:
        return "date"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list, set, frozenset):
        return "list of " + _kind_text(args[0]) if args else "list"
    if origin is dict:
        return f"table of {_kind_text(args[0])} = {_kind_text(args[1])}"
    if origin is Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(_kind_text(a) for a in rest) + (" (optional)" if len(rest) < len(args) else "")
    return getattr(annotation, "__name__", str(annotation))


def param_specs(code: str, params: RuleParams | None = None) -> list[ParamSpec]:
    """The settings of rule ``code``: what each takes, its default and the value in force."""
    cls = REGISTRY[code].params
    params = params if params is not None else cls()
    specs = []
    for name, info in cls.model_fields.items():
        kind = _PARAM_KINDS.get((code, name)) or _kind_text(info.annotation, info.metadata)
        specs.append(ParamSpec(name, kind, info.get_default(call_default_factory=True),
                               getattr(params, name), name in params.model_fields_set))
    return specs


def rule_doc(code: str) -> str:
    """The rule's documentation: what it flags, why, and how to fix it."""
    return inspect.cleandoc(REGISTRY[code].doc)


__all__ = [
    "DEFAULT_FREE_EMAIL_DOMAINS",
    "ExceptionRule",
    "Match",
    "NamedEmail",
    "ParamSpec",
    "Problem",
    "RulesConfig",
    "RulesFileError",
    "Team",
    "Territory",
    "check_people",
    "did_you_mean",
    "load_rules",
    "locate_keys",
    "param_specs",
    "parse_rules",
    "render_key",
    "rule_code",
    "rule_doc",
]
