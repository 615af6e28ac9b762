"""What a rule is: a code, a name, a parameters model with defaults, and a set-based query.

A rule module defines ``Params`` (a pydantic model: its settings, their types, defaults and allowed
values) and ``query(ctx)``, which returns one SQLAlchemy ``Select`` producing the rule's findings
as rows of :data:`FINDING_COLUMNS`. The module docstring is the rule's documentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["low", "medium", "high"]
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}

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


def finding_columns(source, object_type: str, object_id, account_id, owner_id, details,
                    suggested=None, related=None) -> tuple:
    """The columns of :data:`FINDING_COLUMNS`, labelled, for a rule's select."""
    from sqlalchemy import literal, null

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


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    params: type[RuleParams]
    query: Callable  # (RuleContext) -> Select
    doc: str
    suggests_owner: bool  # whether its findings carry a suggested owner a plan can apply

    @property
    def summary(self) -> str:
        """The first line of the rule's documentation."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name
