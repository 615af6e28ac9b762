"""COV003 coverage-gap: an account that calls for a role no active member of its team has.

For each entry of ``requirements`` (``{ stage, min_employees, max_employees, roles }``: every
key but ``roles`` optional; the stage compared ignoring case, employee bounds inclusive, an
unknown employee count fails any bound) that a live account matches, flags each role of
``roles`` that none of the account's active members (the owner included) has. One finding per
missing role: its related user is ``role:<ROLE>`` (no user: the identity must tell the roles
apart), and the details name the role and the requirement (its position in the list, from 1).
Why: a large customer without its CSM, or a deal without its SE, is a coverage model not applied.
Fix: add someone with that role to the account team. No suggestion.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import Select, and_, case, exists, func, literal, or_, select

from ..models import accounts
from .base import RuleParams, RuleQuery, Severity, Takes, finding_columns
from .context import RuleContext
from .teams import account_members

CODE = "COV003"
NAME = "coverage-gap"
SUGGESTS_OWNER = False

Role = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Requirement(BaseModel):
    """Accounts that match (every key given must hold) need a member of each of ``roles``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None
    min_employees: Annotated[int, annotated_types.Ge(0)] | None = None
    max_employees: Annotated[int, annotated_types.Ge(0)] | None = None
    roles: Annotated[tuple[Role, ...], annotated_types.MinLen(1)]

    def __str__(self) -> str:
        keys = [f"{k} = {v!r}" for k in ("stage", "min_employees", "max_employees")
                if (v := getattr(self, k)) is not None]
        roles = ", ".join(repr(r) for r in self.roles)
        return "{ " + ", ".join([*keys, f"roles = [{roles}]"]).replace("'", '"') + " }"

    @model_validator(mode="after")
    def _sensible(self) -> Requirement:
        if (self.min_employees is not None and self.max_employees is not None
                and self.min_employees > self.max_employees):
            raise ValueError(f"min_employees ({self.min_employees}) is more than max_employees "
                             f"({self.max_employees}): no account matches")
        return self


class Params(RuleParams):
    severity: Severity = "medium"
    requirements: Annotated[tuple[Requirement, ...], Takes(
        "list of { stage, min_employees, max_employees, roles } (roles required)")] = ()


def query(ctx: RuleContext, params: Params) -> RuleQuery:
    roles: dict[str, list[int]] = {}  # each role required, with the requirements naming it
    for number, req in enumerate(params.requirements, start=1):
        for role in req.roles:
            roles.setdefault(role, []).append(number)
    a = accounts.alias("a")
    if not roles:  # nothing required: an empty select
        return select(*finding_columns(a.c.source, "account", a.c.id, a.c.id, a.c.owner_id,
                                       literal("{}"))).where(literal(False))
    return [_missing(ctx, role, [params.requirements[n - 1] for n in numbers], numbers)
            for role, numbers in roles.items()]


def _matches(a: Any, req: Requirement) -> Any:
    conds: list[Any] = []
    if req.stage is not None:
        conds.append(func.lower(a.c.lifecycle_stage) == req.stage.lower())
    if req.min_employees is not None:
        conds.append(a.c.employees >= req.min_employees)
    if req.max_employees is not None:
        conds.append(a.c.employees <= req.max_employees)
    return and_(literal(True), *conds)


def _missing(ctx: RuleContext, role: str, reqs: list[Requirement], numbers: list[int]) -> Select[Any]:
    """Live accounts matching any of ``reqs`` (all of which name ``role``) without an active
    member of ``role``; the details name the first requirement that matches."""
    a = accounts.alias("a")
    number = case(*((_matches(a, r), n) for r, n in zip(reqs, numbers, strict=True)), else_=None)
    m = account_members(ctx)
    return (
        select(*finding_columns(
            a.c.source, "account", a.c.id, a.c.id, a.c.owner_id,
            ctx.json(missing_role=literal(role), requirement=number),
            related=literal(f"role:{role}"),
        ))
        .where(a.c.deleted.is_(False), or_(*(_matches(a, r) for r in reqs)),
               ~exists().where(and_(m.c.source == a.c.source, m.c.account_id == a.c.id,
                                    m.c.role == role)))
    )
