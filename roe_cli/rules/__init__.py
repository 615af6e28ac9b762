"""roe's ownership rules: the registry, the rule contract, the code parser and the rules' docs.

Each rule is a module (``own001`` ... ``hnd003``); :mod:`.base` says what a rule is,
:mod:`.context` holds the lookup tables the rules share, :mod:`.registry` lists them in order.
"""

from __future__ import annotations

from .base import FINDING_COLUMNS, SEVERITY_RANK, Rule, RuleParams
from .registry import REGISTRY, rule_code, rule_codes

__all__ = ["FINDING_COLUMNS", "REGISTRY", "SEVERITY_RANK", "Rule", "RuleParams", "rule_code", "rule_codes"]
