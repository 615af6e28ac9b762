"""The demo company's people, teams and territories.

Fixed, whatever the org's size or seed, so that the shipped ``rules.toml`` can name them.
``tests/test_demo.py`` checks that ``rules.toml`` and these tables agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

EMAIL_DOMAIN = "example.com"

# CRM role names (Salesforce UserRole.Name) and the roe roles rules.toml maps them to.
CRM_ROLES = {
    "SDR": "Sales Development Representative",
    "AE": "Account Executive",
    "AM": "Account Manager",
    "CSM": "Customer Success Manager",
    "SE": "Solutions Engineer",
    "MGR": "Sales Manager",
    "EXEC": "VP Sales",
}
# One SE's CRM role is not in role_map; rules.toml gives it through a [[teams]] entry instead.
OVERLAY_CRM_ROLE = "Pre-Sales Consultant"


@dataclass(frozen=True)
class Person:
    id: str
    first: str
    name: str
    role: str  # the roe role
    crm_role: str
    team: str
    manager_id: str | None
    active: bool = True

    @property
    def email(self) -> str:
        return f"{self.first.lower()}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class Territory:
    name: str
    team: str
    default_owner: str  # a first name
    countries: tuple[str, ...]
    states: tuple[str, ...] = ()
    min_employees: int | None = None
    max_employees: int | None = None

    def matches(self, country: str | None, state: str | None, employees: int | None) -> bool:
        if (country or "").upper() not in self.countries:
            return False
        if self.states and (state or "").upper() not in self.states:
            return False
        if self.min_employees is not None or self.max_employees is not None:
            if employees is None:
                return False
            if self.min_employees is not None and employees < self.min_employees:
                return False
            if self.max_employees is not None and employees > self.max_employees:
                return False
        return True


TERRITORIES: tuple[Territory, ...] = (
    Territory("EMEA Enterprise", "EMEA Enterprise", "ana", ("DE", "FR", "GB", "NL", "SE"), min_employees=1000),
    Territory("EMEA Commercial", "EMEA Commercial", "mia", ("DE", "FR", "GB", "NL", "SE", "ES", "IT", "IE")),
    Territory("NA West", "NA West", "xavier", ("US", "CA"), states=("CA", "WA", "OR", "NV", "AZ", "CO", "UT", "BC", "AB")),
    Territory("NA East", "NA East", "harper", ("US", "CA")),
    Territory("APAC", "APAC", "sakura", ("AU", "NZ", "JP", "SG", "IN")),
)
ROW_TEAM = "Rest of World"  # accounts in no territory are worked by this team

# team -> (manager, [(first name, roe role, active)])
_TEAMS: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {
    "EMEA Enterprise": ("Greta", [
        ("Lea", "SDR", True), ("Malik", "SDR", True),
        ("Ana", "AE", True), ("Ben", "AE", True), ("Chloe", "AE", True), ("Dmitri", "AE", False),
        ("Elena", "AM", True), ("Farid", "AM", True), ("Hana", "CSM", True), ("Ivo", "SE", True),
    ]),
    "EMEA Commercial": ("Jonas", [
        ("Kira", "SDR", True), ("Luca", "SDR", True),
        ("Mia", "AE", True), ("Noah", "AE", True), ("Omar", "AE", True),
        ("Paula", "AM", True), ("Quentin", "AM", True), ("Rosa", "CSM", True), ("Sven", "SE", True),
    ]),
    "NA West": ("Tara", [
        ("Uma", "SDR", True), ("Victor", "SDR", True), ("Wes", "SDR", False),
        ("Xavier", "AE", True), ("Yara", "AE", True), ("Zoe", "AE", True),
        ("Aaron", "AM", True), ("Bella", "AM", True), ("Caleb", "CSM", True), ("Diana", "SE", True),
    ]),
    "NA East": ("Ethan", [
        ("Fiona", "SDR", True), ("George", "SDR", True),
        ("Harper", "AE", True), ("Isaac", "AE", True), ("Jade", "AE", True), ("Kyle", "AE", False),
        ("Liam", "AM", True), ("Maya", "AM", True), ("Nina", "CSM", True), ("Oscar", "SE", True),
    ]),
    "APAC": ("Priya", [
        ("Quinn", "SDR", True), ("Ravi", "SDR", True),
        ("Sakura", "AE", True), ("Tom", "AE", True), ("Uri", "AE", True),
        ("Vera", "AM", True), ("Will", "AM", False), ("Xin", "CSM", True), ("Yusuf", "SE", True),
    ]),
    ROW_TEAM: ("Zara", [
        ("Andre", "SDR", True), ("Bruno", "AE", True), ("Carla", "AE", True),
        ("Dario", "AM", True), ("Emma", "CSM", True),
    ]),
}
_LAST_NAMES = [
    "Silva", "Becker", "Martin", "Novak", "Costa", "Haddad", "Sato", "Okafor", "Larsen", "Rossi",
    "Kowalski", "Dubois", "Meyer", "Jensen", "Moreau", "Fischer", "Nguyen", "Patel", "Kim", "Lopez",
]
VP_FIRST = "Victoria"


def _build() -> tuple[Person, ...]:
    people: list[Person] = []

    def add(first: str, role: str, team: str, manager_id: str | None, active: bool = True,
            crm_role: str | None = None) -> str:
        pid = f"005D{len(people) + 1:014d}"
        last = _LAST_NAMES[len(people) % len(_LAST_NAMES)]
        people.append(
            Person(pid, first, f"{first} {last}", role, crm_role or CRM_ROLES[role], team, manager_id, active)
        )
        return pid

    vp = add(VP_FIRST, "EXEC", "Leadership", None)
    for team, (manager, members) in _TEAMS.items():
        manager_id = add(manager, "MGR", team, vp)
        for first, role, active in members:
            crm_role = OVERLAY_CRM_ROLE if first == "Ivo" else None
            add(first, role, team, manager_id, active, crm_role)
    return tuple(people)


PEOPLE: tuple[Person, ...] = _build()
BY_FIRST = {p.first.lower(): p for p in PEOPLE}
OVERLAY_SE = BY_FIRST["ivo"]
TEAMS: tuple[str, ...] = tuple(_TEAMS)


@functools.cache
def members(team: str, role: str | None = None, active: bool | None = True) -> tuple[Person, ...]:
    """People of ``team`` (managers excluded), optionally of one role and activity."""
    return tuple(
        p
        for p in PEOPLE
        if p.team == team
        and p.role not in ("MGR", "EXEC")
        and (role is None or p.role == role)
        and (active is None or p.active == active)
    )


def territory_of(country: str | None, state: str | None, employees: int | None) -> Territory | None:
    """The first territory whose match fits, as the rules file orders them."""
    for territory in TERRITORIES:
        if territory.matches(country, state, employees):
            return territory
    return None


def team_of(territory: Territory | None) -> str:
    return territory.team if territory else ROW_TEAM
