"""What a rule is: a code, a name, a parameters model with defaults, and a set-based query.

A rule module defines ``CODE``, ``NAME``, ``SUGGESTS_OWNER``, ``Params`` (a :class:`RuleParams`
subclass: its settings, their types, defaults, allowed values and validators) and
``query(ctx, params)``, which returns a SQLAlchemy ``Select`` (or a list of them) producing the
rule's findings as rows of :data:`FINDING_COLUMNS`. The settings come in as an argument, typed
per rule; the context holds nothing rule-specific. The module docstring is the rule's
documentation. Everything a rule is lives in its module, nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Select, literal, null

from ..shared.vocab import SEVERITY_RANK

if TYPE_CHECKING:
    from .context import RuleContext

# A Literal rather than the Severity StrEnum: the rules file is validated strictly, and strict
# pydantic takes only enum members for an enum field, never the text TOML gives.
Severity = Literal["low", "medium", "high"]

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

FINDING_COLUMNS = (
    "source",
    "object_type",
    "object_id",
    "related_user_id",  # '' when the rule names no related user
    "account_id",
    "owner_id",
    "suggested_owner_id",
    "details",  # JSON text, the figures that made the rule fire
)

RuleQuery = Select[Any] | list[Select[Any]]


def is_email(value: object) -> bool:
    """Whether ``value`` is text shaped like an e-mail address (surrounding spaces allowed)."""
    return isinstance(value, str) and bool(EMAIL.match(value.strip()))


@dataclass(frozen=True)
class Takes:
    """Annotation metadata: what a setting takes, in words, when its type does not say it well
    (``Annotated[str, Takes("'territory', 'manager' or an owner's e-mail")]``)."""

    text: str


def finding_columns(
    source: ColumnElement[Any],
    object_type: str,
    object_id: ColumnElement[Any],
    account_id: ColumnElement[Any],
    owner_id: ColumnElement[Any],
    details: ColumnElement[Any],
    suggested: ColumnElement[Any] | None = None,
    related: ColumnElement[Any] | None = None,
) -> tuple[ColumnElement[Any], ...]:
    """The columns of :data:`FINDING_COLUMNS`, labelled, for a rule's select."""
    return (
        source.label("source"),
        literal(object_type).label("object_type"),
        object_id.label("object_id"),
        (literal("") if related is None else related).label("related_user_id"),
        account_id.label("account_id"),
        owner_id.label("owner_id"),
        (null() if suggested is None else suggested).label("suggested_owner_id"),
        details.label("details"),
    )


class RuleParams(BaseModel):
    """Settings every rule has. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = "medium"


P = TypeVar("P", bound=RuleParams)


@dataclass(frozen=True)
class Rule(Generic[P]):
    """One rule: its facts, its settings model and its query."""

    code: str
    name: str
    params: type[P]
    query: Callable[[RuleContext, P], RuleQuery]
    doc: str
    suggests_owner: bool  # whether its findings carry a suggested owner a plan can apply

    @property
    def summary(self) -> str:
        """The first line of the rule's documentation."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name


__all__ = [
    "EMAIL",
    "FINDING_COLUMNS",
    "SEVERITY_RANK",
    "Rule",
    "RuleParams",
    "RuleQuery",
    "Severity",
    "Takes",
    "finding_columns",
    "is_email",
]
