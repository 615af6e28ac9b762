"""The rule registry: every rule roe knows, by code, in the order they run and are listed; and the
one parser of rule codes typed by people (any case, with a "did you mean")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..shared.errors import UsageError
from ..shared.text import suggest_end
from . import (
    cov001,
    cov002,
    cov003,
    hnd001,
    hnd002,
    hnd003,
    own001,
    own002,
    own003,
    own004,
    own005,
    own006,
)
from .base import Rule

_MODULES = (own001, own002, own003, own004, own005, own006, hnd001, hnd002, hnd003, cov001, cov002,
            cov003)

REGISTRY: dict[str, Rule[Any]] = {
    m.CODE: Rule(code=m.CODE, name=m.NAME, params=m.Params, query=m.query, doc=m.__doc__ or "",
                 suggests_owner=m.SUGGESTS_OWNER)
    for m in _MODULES
}


def rule_code(code: str) -> str:
    """``code`` as a registry code (any case accepted); UsageError with a suggestion otherwise."""
    wanted = code.strip().upper()
    if wanted not in REGISTRY:
        raise UsageError(
            f"Unknown rule '{code.strip()}'{suggest_end(code.strip(), REGISTRY)}",
            f"roe's rules are {', '.join(REGISTRY)} (see `roe rules`).",
        )
    return wanted


def rule_codes(codes: Iterable[str]) -> list[str]:
    """Each of ``codes`` as a registry code, in the order given, each once."""
    return list(dict.fromkeys(rule_code(code) for code in codes))
