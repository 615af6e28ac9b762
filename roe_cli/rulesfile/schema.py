"""The rules file's model: teams, territories, exceptions, settings, and :class:`RulesConfig`.

Pure data: pydantic models (strict, frozen, unknown keys forbidden) for each part of the file, and
the immutable :class:`RulesConfig` the loader builds from them. Nothing here reads files; e-mails
are stored lower-cased and stripped, and every rule code in the registry has its settings in
:attr:`RulesConfig.rules` (defaults for those the file leaves out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from ..rules import REGISTRY, Rule, RuleParams, rule_codes
from ..rules.base import EMAIL, is_email
from ..shared.errors import UsageError
from ..shared.text import suggest
from ..shared.vocab import OBJECT_TYPES
from .locate import KeyPath, line_for, render_key
from .problems import Problem

DEFAULT_FREE_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")


def _email(value: str) -> str:
    email = value.strip().lower()
    if not EMAIL.match(email):
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
            f"'{kind}' is not an object type{suggest(kind.strip(), OBJECT_TYPES, list_all_up_to=3)}"
        )
    return f"{kind.strip()}:{object_id.strip()}"


class ExceptionEntry(_Frozen):
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


class Settings(_Frozen):
    free_email_domains: tuple[Annotated[str, AfterValidator(_domain)], ...] = DEFAULT_FREE_EMAIL_DOMAINS


NIGHTLY_SOURCES = ("salesforce", "hubspot")  # the demo org comes from `roe demo`, never a sync


class Nightly(_Frozen):
    """The ``[nightly]`` table: which sources ``roe nightly`` syncs (else those with credentials)."""

    sources: tuple[str, ...] = ()


class SyncSettings(_Frozen):
    """``[sync]``: how far a full sync may go on its own."""

    # A full sync refuses to mark more than this share of an object's live records deleted
    # (and never acts on an empty pull); `roe sync --full --allow-mass-delete` overrides it.
    max_delete_share: Annotated[float, annotated_types.Ge(0), annotated_types.Le(1)] = 0.10


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
    nightly: Nightly | None = None  # None when the file has no [nightly]
    sync: SyncSettings = field(default_factory=SyncSettings)
    warnings: tuple[Problem, ...] = ()  # suspicious but valid: `roe rules --check` shows them
    key_lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "role_map", MappingProxyType(dict(self.role_map)))
        object.__setattr__(self, "key_lines", MappingProxyType(dict(self.key_lines)))
        rules = {code: r.params() for code, r in REGISTRY.items()} | dict(self.rules)
        object.__setattr__(self, "rules", MappingProxyType(rules))

    def line_of(self, *path: str | int) -> int | None:
        """The line that writes ``path`` (or its nearest parent), e.g. ``line_of("rules", "OWN004")``."""
        return line_for(self.key_lines, path)

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
            wanted = set(rule_codes(only))
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
        if isinstance(fallback, str) and is_email(fallback):
            add(fallback.strip().lower(), ("rules", "OWN002", "fallback"), "fallback owner")
        return named

