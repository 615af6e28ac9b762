"""The rule registry: every rule roe knows, by code, in the order they run and are listed."""

from __future__ import annotations

from . import hnd001, hnd002, hnd003, own001, own002, own003, own004, own005, own006
from .base import FINDING_COLUMNS, SEVERITY_RANK, Rule, RuleParams

_MODULES = (own001, own002, own003, own004, own005, own006, hnd001, hnd002, hnd003)

REGISTRY: dict[str, Rule] = {
    m.CODE: Rule(code=m.CODE, name=m.NAME, params=m.Params, query=m.query, doc=m.__doc__ or "",
            suggests_owner=m.SUGGESTS_OWNER)
    for m in _MODULES
}

__all__ = ["FINDING_COLUMNS", "REGISTRY", "SEVERITY_RANK", "Rule", "RuleParams"]
