"""Loading ``rules.toml``: :func:`load_rules` reads the file, :func:`parse_rules` takes its text.

The loader reads the file with :mod:`tomllib` and validates every part with pydantic (strictly:
TOML has real types, so ``window_days = "30"`` is a mistake worth reporting). Every problem in the
file is reported at once, one per line, each naming the file, the line and the key as a dotted
path (``rules.OWN004.window_days``, ``territories[2].match.country``; list indexes count from 0),
with a "did you mean" where a close match exists::

    rules.toml:120: rules.OWN004.windw_days: unknown key 'windw_days'; did you mean 'window_days'?

A rule's own settings are validated by the rule's ``Params`` model alone; the loader only adds the
checks that span sections (teams named by territories, roles nobody has or near misses of a role
in ``[role_map]``, duplicate names).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..rules import REGISTRY, RuleParams
from ..shared.clock import utcnow
from ..shared.errors import ConfigError
from ..shared.text import did_you_mean, or_list, suggest
from ..shared.vocab import Source
from .locate import KeyPath, line_for, locate_keys, render_key
from .problems import (
    MISSING_FILE_TODO,
    Problem,
    RulesFileError,
    syntax_problem,
    validation_problems,
)
from .schema import (
    DEFAULT_FREE_EMAIL_DOMAINS,
    NIGHTLY_SOURCES,
    ExceptionEntry,
    ExceptionRule,
    Nightly,
    RulesConfig,
    Settings,
    SyncSettings,
    Team,
    Territory,
    Text,
)


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
    "nightly": dict[str, Any],
    "sync": dict[str, Any],
}
_CONNECTOR_SETTINGS = (Source.SALESFORCE, Source.HUBSPOT)  # sources with a rules.toml table


def _tuplify(value: Any) -> Any:
    """TOML arrays as tuples, so that strict validation accepts them for tuple fields."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuplify(v) for k, v in value.items()}
    return value



class _Loader:
    """One pass over one rules file, collecting every problem before giving up."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.file = str(path)
        self.data = data
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    # reporting

    def _problem(self, path: KeyPath, message: str, *, warning: bool = False) -> None:
        problem = Problem(self.file, line_for(self.lines, path), render_key(path), message)
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
            for loc, message in validation_problems(exc, model, secret=secret):
                self._problem(prefix + loc, message)
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
                self.file, [syntax_problem(self.file, text, str(exc))],
                "Fix the TOML syntax (key = value, text in quotes, lists in [ ]), then check the "
                "file with `roe rules --check`.",
            ) from None
        self.lines = locate_keys(text)
        config = self._build(raw, sha256)
        if self.problems:
            # The config read so far goes with the error, so that `roe rules --check` can list
            # the problems with its people too, in the same pass.
            raise RulesFileError(self.file, self.problems, config=config)
        return config

    def _build(self, raw: dict[str, Any], sha256: str) -> RulesConfig:
        sections: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in _SECTIONS:
                self._problem((key,), f"unknown key '{key}'{suggest(key, _SECTIONS, list_all_up_to=12)}")
                continue
            secret = key in _CONNECTOR_SETTINGS
            checked = self._validate(_SECTIONS[key], _tuplify(value), (key,), secret=secret)
            if checked is not None:
                sections[key] = value if secret else checked

        settings = self._validate(Settings, sections.get("settings", {}), ("settings",))
        sync = self._validate(SyncSettings, sections.get("sync", {}), ("sync",))
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
        if "role_map" in sections or "role_map" not in raw:
            # A [role_map] that did not validate may hold the role a rule names: one error for
            # one mistake, as with territories' teams.
            # Roles of every team written down, valid or not (as for territories' teams).
            team_roles = {t["role"].strip() for t in raw.get("teams") or ()
                          if isinstance(t, dict) and isinstance(t.get("role"), str)}
            self._check_roles(rules, role_map, team_roles | {t.role for t in teams if t.role})
        nightly = self._nightly(sections["nightly"]) if "nightly" in sections else None
        return RulesConfig(
            path=self.path,
            sha256=sha256,
            free_email_domains=settings.free_email_domains if settings else DEFAULT_FREE_EMAIL_DOMAINS,
            role_map=role_map,
            teams=tuple(teams),
            territories=tuple(territories),
            rules=rules,
            exceptions=tuple(exceptions),
            salesforce=connectors.get(Source.SALESFORCE),
            hubspot=connectors.get(Source.HUBSPOT),
            nightly=nightly,
            sync=sync or SyncSettings(),
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
                    first = line_for(self.lines, ("teams", seen[name]))
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
            t["name"].strip() for t in (raw_teams or [])
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
                    hint = suggest(team.strip(), team_names) or f"; the teams are {or_list(team_names)}"
                else:
                    hint = "; define it with a [[teams]] entry"
                self._problem(("territories", i, "team"), f"unknown team '{team.strip()}'{hint}")
                continue
            name = entry.get("name")
            if isinstance(name, str) and name.strip():
                if name.strip() in seen:
                    first = line_for(self.lines, ("territories", seen[name.strip()]))
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
                hint = suggest(code, REGISTRY) or f"; roe's rules are {', '.join(REGISTRY)}"
                self._problem(("rules", code), f"unknown rule code '{code}'{hint}")
                continue
            params = self._validate(REGISTRY[code].params, table, ("rules", code))
            if params is not None:
                rules[code] = params
        return rules

    def _exceptions(self, entries: tuple) -> list[ExceptionRule]:
        exceptions: list[ExceptionRule] = []
        today = utcnow().date()
        for i, entry in enumerate(entries):
            parsed = self._validate(ExceptionEntry, entry, ("exceptions", i))
            rule = entry.get("rule")
            if isinstance(rule, str) and rule not in REGISTRY:
                hint = suggest(rule, REGISTRY) or f"; roe's rules are {', '.join(REGISTRY)}"
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

    def _nightly(self, table: dict[str, Any]) -> Nightly | None:
        nightly = self._validate(Nightly, _tuplify(table), ("nightly",))
        sources = table.get("sources")
        ok = True
        for i, source in enumerate(sources if isinstance(sources, list | tuple) else ()):
            if isinstance(source, str) and source not in NIGHTLY_SOURCES:
                ok = False
                hint = ("; the demo org is not synced: `roe demo` makes it" if source == Source.DEMO
                        else suggest(source, NIGHTLY_SOURCES) or f"; use {or_list(NIGHTLY_SOURCES)}")
                self._problem(("nightly", "sources", i), f"unknown source '{source}'{hint}")
        return nightly if ok else None

    def _connector(self, source: str, table: dict[str, Any]) -> Any:
        settings_class = _connector_settings_class(source)
        if settings_class is None:
            return dict(table)  # the connector's settings model is not there: keep the table
        return self._validate(settings_class, table, (source,), strict=False, secret=True)

    def _check_roles(self, rules: dict[str, RuleParams], role_map: Mapping[str, str],
                     team_roles: set[str]) -> None:
        """Every role a rule's settings name must be one a team or ``[role_map]`` gives (else the
        setting matches nobody and results change silently); a ``[role_map]`` value that is a near
        miss of a role the file or the rules use is a typo too. Both are errors."""
        known = set(role_map.values()) | team_roles
        named = _roles_in_settings(rules)
        for code, name, sub, role in named:
            if role in known:
                continue
            hint = suggest(role, sorted(known))
            if not hint:
                hint = (f"; the roles given are {or_list(sorted(known))}" if known else
                        "; give roles with [role_map] or a [[teams]] entry's role")
            self._problem(("rules", code, name, *sub),
                          f"no [[teams]] role or [role_map] value gives the role '{role}', so it "
                          f"would match nobody{hint}")
        # roe's own role names (the rules' defaults) are the yardstick for a mapping's value; the
        # roles the file's settings name were checked against the mappings just above.
        standard = _default_roles()
        for crm_role, role in role_map.items():
            others = {v for k, v in role_map.items() if k != crm_role} | team_roles
            if role in others or role in standard:
                continue
            near = did_you_mean(role, sorted(others | standard))
            if near:
                self._problem(("role_map", crm_role),
                              f"the role '{role}' is given by no other mapping or team and is none "
                              f"of the rules' default roles; did you mean {or_list(near)}?")


def _roles_in_settings(rules: dict[str, RuleParams]) -> list[tuple[str, str, KeyPath, str]]:
    """``(code, setting, sub-path, role)`` for each role the file's rule settings name (settings
    whose name ends in ``_roles``: a list of roles, or a table of lists)."""
    found: list[tuple[str, str, KeyPath, str]] = []
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
            found += [(code, name, sub, role) for sub, role in items if isinstance(role, str)]
        found += _roles_in_entries(code, params)
    return found


def _roles_in_entries(code: str, params: RuleParams) -> list[tuple[str, str, KeyPath, str]]:
    """Roles named inside a list of tables (COV003's ``requirements[i].roles``)."""
    found: list[tuple[str, str, KeyPath, str]] = []
    for name in sorted(params.model_fields_set):
        value = getattr(params, name)
        if not isinstance(value, tuple | list):
            continue
        for i, entry in enumerate(value):
            if not isinstance(entry, BaseModel):
                continue
            for key in sorted(entry.model_fields_set):
                roles = getattr(entry, key)
                if (key == "roles" or key.endswith("_roles")) and isinstance(roles, tuple | list):
                    found += [(code, name, (i, key, j), r) for j, r in enumerate(roles)
                              if isinstance(r, str)]
    return found


def _default_roles() -> set[str]:
    """The roles the rules' default settings name (SDR, AE, AM, CSM, SE...)."""
    roles: set[str] = set()
    for rule in REGISTRY.values():
        for name, info in rule.params.model_fields.items():
            if not name.endswith("_roles"):
                continue
            value = info.get_default(call_default_factory=True)
            if isinstance(value, Mapping):
                roles |= {r for rs in value.values() for r in rs if isinstance(r, str)}
            elif isinstance(value, tuple | list):
                roles |= {r for r in value if isinstance(r, str)}
    return roles


def _connector_settings_class(source: str) -> type[BaseModel] | None:
    """The connector's settings model, from the registry (None when it has none)."""
    from connectors.registry import settings_model

    return settings_model(source)
